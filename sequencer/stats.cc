#include "xdisruptor/stats.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/consumer_table.h"
#include "internal/producer_table.h"
#include "xdisruptor/internal/availability.h"
#include "xdisruptor/internal/worker_group.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/names.h"
#include "xdisruptor/process.h"

namespace xdisruptor {
namespace {

const char* JsonBool(bool b) { return b ? "true" : "false"; }

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + JsonString(items[i]);
  return out + "]";
}

ConsumerStats EntryStats(const RingSegment& ring, std::size_t i, std::int64_t published,
                         std::int64_t now_ns) {
  const ConsumerState& c = ring.consumer(i);
  ConsumerStats cs;
  cs.index = static_cast<int>(i);
  cs.name = internal::EntryName(c);
  cs.pid = LoadOwner(c.owner).pid;
  cs.alive = IsAlive(c.owner);
  cs.state = LoadStatus(c);
  cs.sequence = LoadSequence(c);
  cs.lag = std::max<std::int64_t>(0, published - cs.sequence);
  cs.events = LoadCounter(c.events);
  cs.batches = LoadCounter(c.batches);
  cs.waits = LoadCounter(c.waits);
  cs.registered_at_unix_ns = c.registered_at_unix_ns.load(std::memory_order_relaxed);
  if (now_ns > cs.registered_at_unix_ns && cs.registered_at_unix_ns > 0) {
    cs.events_per_second = static_cast<double>(cs.events) * 1e9 /
                           static_cast<double>(now_ns - cs.registered_at_unix_ns);
  }
  cs.wait = LoadWaitParams(c);
  cs.stall_policy = LoadStallPolicy(c);
  cs.max_lag = c.max_lag.load(std::memory_order_relaxed);
  cs.max_lag_ns = c.max_lag_ns.load(std::memory_order_relaxed);
  cs.gating = IsGating(ring.producer(), i);
  cs.observer = c.observer.load(std::memory_order_relaxed) == kObserverMode;
  const std::uint32_t role = c.group_role.load(std::memory_order_relaxed);
  if (role == kGroupStage) {
    cs.role = "group";
    cs.group = cs.name;
    cs.alive = internal::GroupAlive(ring, c);
    for (std::uint64_t m = c.group_members.load(std::memory_order_acquire); m != 0; m &= m - 1) {
      cs.members.push_back(internal::EntryName(ring.consumer(
          static_cast<std::size_t>(std::countr_zero(m)))));
    }
  } else if (role == kGroupMember) {
    cs.role = "member";
    const auto g = static_cast<std::size_t>(c.group.load(std::memory_order_relaxed));
    if (g < kMaxConsumers) cs.group = internal::EntryName(ring.consumer(g));
    cs.claim_hi = c.claim_hi.load(std::memory_order_relaxed);
    cs.takeovers = LoadCounter(c.takeovers);
  }
  cs.after = internal::UpstreamNames(ring, c);
  cs.join_sequence = c.join_sequence.load(std::memory_order_relaxed);
  cs.evictions = LoadCounter(c.evictions);
  cs.missed = LoadCounter(c.missed);
  cs.handler_errors = LoadCounter(c.handler_errors);
  cs.sleeps = LoadCounter(c.sleeps);
  cs.wakes = LoadCounter(c.wakes);
  cs.last_batch = LoadCounter(c.last_batch);
  cs.latency = latency::Histogram::Of(c);
  return cs;
}

// The highest sequence published contiguously, as a barrier without upstreams would see it:
// scanned from the fastest gating consumer's next sequence (it has read everything before it),
// else from a lap back. Producers may lap the scan's start while it runs: marks of a later lap
// count as published.
std::int64_t Published(const RingSegment& ring, std::int64_t cursor) {
  const internal::Availability availability(ring);
  std::int64_t from = cursor - static_cast<std::int64_t>(ring.capacity()) + 1;
  for (std::uint64_t m = LoadGatingMask(ring.producer()); m != 0; m &= m - 1) {
    from = std::max(from, LoadSequence(ring.consumer(std::countr_zero(m))) + 1);
  }
  return availability.HighestPublishedLapped(std::max<std::int64_t>(from, 0), cursor);
}

// Seconds, as everywhere outside C++: samples, p50/p99/max, sum, and the buckets (upper bound,
// count in that bucket alone).
std::string LatencyJson(const latency::Histogram& h) {
  std::string buckets;
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    buckets += absl::StrFormat("%s[%.9g, %d]", i ? ", " : "",
                               static_cast<double>(latency::BucketBound(i)) / 1e9, h.buckets[i]);
  }
  return absl::StrFormat(
      "{\"samples\": %d, \"p50_s\": %.9g, \"p99_s\": %.9g, \"max_s\": %.9g, \"sum_s\": %.9g, "
      "\"buckets\": [%s]}",
      h.count, h.QuantileNs(0.5) / 1e9, h.QuantileNs(0.99) / 1e9,
      static_cast<double>(h.max_ns) / 1e9, static_cast<double>(h.sum_ns) / 1e9, buckets);
}

}  // namespace

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(ch));
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

RingStats Stats(const RingSegment& ring) {
  RingStats st;
  const ProducerState& p = ring.producer();
  const RingHeaderState& h = ring.header();
  st.name = std::string(ring.name());
  st.capacity = ring.capacity();
  st.slot_size = ring.slot_size();
  st.schema = std::string(ring.schema());
  st.sequencer = ring.sequencer_kind();
  st.multi_producer = ring.multi_producer();
  st.closed = IsClosed(p);  // before the cursor: a closed ring's cursor read next is final
  st.cursor = LoadCursor(p);
  st.published = Published(ring, st.cursor);
  st.closed_at = p.closed_at_sequence.load(std::memory_order_relaxed);
  st.origin_epoch = LoadOriginEpoch(p);
  st.creator_pid = h.creator_pid;
  st.created_at_unix_ns = h.created_at_unix_ns;
  for (const internal::ProducerInfo& info : internal::Producers(ring)) {
    const ProducerEntryState& e = p.producers[static_cast<std::size_t>(info.index)];
    st.producers.push_back({.index = info.index,
                            .pid = info.pid,
                            .alive = info.alive,
                            .wait = info.wait,
                            .full_waits = LoadCounter(e.full_waits),
                            .full_wait_ns = LoadCounter(e.full_wait_ns)});
    st.producer_pids.push_back(info.pid);
    st.producer_alive = st.producer_alive || info.alive;
  }
  for (const ProducerEntryState& e : p.producers) {  // every entry: totals never go back
    st.full_waits += LoadCounter(e.full_waits);
    st.full_wait_ns += LoadCounter(e.full_wait_ns);
  }
  st.latency_sample_every = ring.latency_sample_every();
  st.flight = LatestFlightRecord(ring);
  const std::int64_t now_ns = absl::ToUnixNanos(absl::Now());
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerStatus status = LoadStatus(ring.consumer(i));
    if (status == ConsumerStatus::kActive || status == ConsumerStatus::kEvicted ||
        IsGating(p, i)) {
      st.consumers.push_back(EntryStats(ring, i, st.published, now_ns));
    }
  }
  return st;
}

std::string StatsJson(const RingStats& st) {
  std::string out = absl::StrFormat(
      "{\"name\": %s, \"capacity\": %d, \"slot_size\": %d, \"schema\": %s, "
      "\"producers_kind\": %s, \"multi_producer\": %s, \"cursor\": %d, \"published\": %d, "
      "\"closed\": %s, \"closed_at\": %d, \"creator_pid\": %d, \"created_at_unix_ns\": %d, "
      "\"origin_epoch\": %d, \"producer_alive\": %s, \"producer_pids\": [",
      JsonString(st.name), st.capacity, st.slot_size, JsonString(st.schema),
      JsonString(NameOf(st.sequencer)), JsonBool(st.multi_producer), st.cursor,
      st.published, JsonBool(st.closed), st.closed_at, st.creator_pid, st.created_at_unix_ns,
      st.origin_epoch, JsonBool(st.producer_alive));
  for (std::size_t i = 0; i < st.producer_pids.size(); ++i) {
    out += absl::StrFormat("%s%d", i ? ", " : "", st.producer_pids[i]);
  }
  out += "], \"producers\": [";
  for (std::size_t i = 0; i < st.producers.size(); ++i) {
    const ProducerStats& p = st.producers[i];
    out += absl::StrFormat(
        "%s{\"index\": %d, \"pid\": %d, \"alive\": %s, \"wait\": %s, \"full_waits\": %d, "
        "\"full_wait_s\": %.9g}",
        i ? ", " : "", p.index, p.pid, JsonBool(p.alive), JsonString(WaitKindName(p.wait)),
        p.full_waits, static_cast<double>(p.full_wait_ns) / 1e9);
  }
  out += absl::StrFormat(
      "], \"full_waits\": %d, \"full_wait_s\": %.9g, \"latency_sample_every\": %d, "
      "\"flight_records\": %d, \"latest_flight_record\": %s, "
      "\"latest_flight_record_at_unix_ns\": %d, \"consumers\": [",
      st.full_waits, static_cast<double>(st.full_wait_ns) / 1e9, st.latency_sample_every,
      st.flight.count, st.flight.count ? JsonString(st.flight.path) : "null",
      st.flight.at_unix_ns);
  for (std::size_t i = 0; i < st.consumers.size(); ++i) {
    const ConsumerStats& c = st.consumers[i];
    std::string after = "[";
    for (std::size_t k = 0; k < c.after.size(); ++k) {
      after += (k ? ", " : "") + JsonString(c.after[k]);
    }
    after += "]";
    std::string wait_params;
    for (const WaitParamInfo& info : kWaitParams) {
      wait_params += info.unit == WaitParamUnit::kWaitKind
                         ? absl::StrFormat(", \"%s\": %s", info.name,
                                           JsonString(WaitKindName(c.wait.fallback_kind)))
                         : absl::StrFormat(", \"%s\": %.9g", info.name,
                                           WaitParamNumber(c.wait, info));
    }
    out += absl::StrFormat(
        "%s{\"index\": %d, \"name\": %s, \"pid\": %d, \"alive\": %s, \"state\": %s, "
        "\"sequence\": %d, \"lag\": %d, \"events\": %d, \"batches\": %d, \"waits\": %d, "
        "\"events_per_second\": %.1f, \"wait\": %s%s, \"stall_policy\": %s, \"after\": %s, "
        "\"join_sequence\": %d, \"registered_at_unix_ns\": %d, \"evictions\": %d, "
        "\"missed\": %d, \"handler_errors\": %d, \"gating\": %s, \"observer\": %s, "
        "\"max_lag\": %d, \"max_lag_s\": %.9g, \"sleeps\": %d, \"wakes\": %d, "
        "\"last_batch\": %d, \"latency\": %s, \"role\": %s, \"group\": %s, \"members\": %s, "
        "\"claim_hi\": %d, \"takeovers\": %d}",
        i ? ", " : "", c.index, JsonString(c.name), c.pid, JsonBool(c.alive),
        JsonString(NameOf(c.state)), c.sequence, c.lag, c.events, c.batches,
        c.waits, c.events_per_second, JsonString(WaitKindName(c.wait.kind)), wait_params,
        JsonString(NameOf(c.stall_policy)), after, c.join_sequence,
        c.registered_at_unix_ns, c.evictions, c.missed, c.handler_errors, JsonBool(c.gating),
        JsonBool(c.observer), c.max_lag, static_cast<double>(c.max_lag_ns) / 1e9, c.sleeps,
        c.wakes, c.last_batch, LatencyJson(c.latency), JsonString(c.role), JsonString(c.group),
        JsonList(c.members), c.claim_hi, c.takeovers);
  }
  return out + "]}";
}

}  // namespace xdisruptor
