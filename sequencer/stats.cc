#include "xdisruptor/stats.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/process.h"

namespace xdisruptor {
namespace {

std::string EntryName(const ConsumerState& c) {
  return std::string(c.name, std::min<std::size_t>(c.name_length, kMaxNameLength));
}

std::string JsonString(const std::string& s) {
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

}  // namespace

RingStats Stats(const RingSegment& ring) {
  RingStats st;
  const ProducerState& p = ring.producer();
  st.name = std::string(ring.name());
  st.capacity = ring.capacity();
  st.slot_size = ring.slot_size();
  st.schema = std::string(ring.schema());
  st.multi_producer = ring.multi_producer();
  st.cursor = (st.multi_producer ? p.claim : p.cursor).load(std::memory_order_acquire);
  st.closed = p.ring_status.load(std::memory_order_acquire) ==
              static_cast<std::uint32_t>(RingStatus::kClosed);
  if (st.multi_producer) {
    for (const ProducerEntryState& e : p.producers) {
      const std::int64_t pid = e.pid.load(std::memory_order_acquire);
      if (pid == 0) continue;
      st.producer_pids.push_back(pid);
      st.producer_alive = st.producer_alive ||
                          IsProcessAlive(pid, e.start_time.load(std::memory_order_relaxed));
    }
  } else if (const std::int64_t pid = p.producer_pid.load(std::memory_order_acquire); pid != 0) {
    st.producer_pids.push_back(pid);
    st.producer_alive = IsProcessAlive(pid, p.producer_start_time.load(std::memory_order_relaxed));
  }
  const std::int64_t now_ns = absl::ToUnixNanos(absl::Now());
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    const std::uint32_t status = c.status.load(std::memory_order_acquire);
    if (status != static_cast<std::uint32_t>(ConsumerStatus::kActive) &&
        status != static_cast<std::uint32_t>(ConsumerStatus::kEvicted)) {
      continue;
    }
    ConsumerStats cs;
    cs.index = static_cast<int>(i);
    cs.name = EntryName(c);
    cs.pid = c.pid.load(std::memory_order_relaxed);
    cs.alive = IsProcessAlive(cs.pid, c.start_time.load(std::memory_order_relaxed));
    cs.state = status == static_cast<std::uint32_t>(ConsumerStatus::kActive) ? "active"
                                                                              : "evicted";
    cs.sequence = c.sequence.load(std::memory_order_acquire);
    cs.lag = std::max<std::int64_t>(0, st.cursor - cs.sequence);
    cs.events = c.events.load(std::memory_order_relaxed);
    cs.batches = c.batches.load(std::memory_order_relaxed);
    cs.waits = c.waits.load(std::memory_order_relaxed);
    const std::int64_t since = c.registered_at_unix_ns.load(std::memory_order_relaxed);
    if (now_ns > since && since > 0) {
      cs.events_per_second = static_cast<double>(cs.events) * 1e9 /
                             static_cast<double>(now_ns - since);
    }
    cs.wait = LoadWaitParams(c);
    cs.stall_policy = c.stall_policy.load(std::memory_order_relaxed) ==
                              static_cast<std::uint32_t>(StallPolicy::kEvict)
                          ? "evict"
                          : "hold";
    for (std::uint32_t k = 0; k < std::min<std::uint32_t>(c.after_count, kMaxAfter); ++k) {
      const auto up = static_cast<std::size_t>(c.after[k]);
      if (up < kMaxConsumers) cs.after.push_back(EntryName(ring.consumer(up)));
    }
    cs.evictions = c.evictions.load(std::memory_order_relaxed);
    cs.missed = c.missed.load(std::memory_order_relaxed);
    cs.handler_errors = c.handler_errors.load(std::memory_order_relaxed);
    st.consumers.push_back(std::move(cs));
  }
  return st;
}

std::string StatsJson(const RingStats& st) {
  std::string out = absl::StrFormat(
      "{\"name\": %s, \"capacity\": %d, \"slot_size\": %d, \"schema\": %s, "
      "\"multi_producer\": %s, \"cursor\": %d, \"closed\": %s, \"producer_alive\": %s, "
      "\"producer_pids\": [",
      JsonString(st.name), st.capacity, st.slot_size, JsonString(st.schema),
      st.multi_producer ? "true" : "false", st.cursor, st.closed ? "true" : "false",
      st.producer_alive ? "true" : "false");
  for (std::size_t i = 0; i < st.producer_pids.size(); ++i) {
    out += absl::StrFormat("%s%d", i ? ", " : "", st.producer_pids[i]);
  }
  out += "], \"consumers\": [";
  for (std::size_t i = 0; i < st.consumers.size(); ++i) {
    const ConsumerStats& c = st.consumers[i];
    std::string after = "[";
    for (std::size_t k = 0; k < c.after.size(); ++k) {
      after += (k ? ", " : "") + JsonString(c.after[k]);
    }
    after += "]";
    out += absl::StrFormat(
        "%s{\"index\": %d, \"name\": %s, \"pid\": %d, \"alive\": %s, \"state\": %s, "
        "\"sequence\": %d, \"lag\": %d, \"events\": %d, \"batches\": %d, \"waits\": %d, "
        "\"events_per_second\": %.1f, \"wait\": %s, \"spin_tries\": %d, \"yield_tries\": %d, "
        "\"sleep_ceiling_ns\": %d, \"timeout_ns\": %d, \"stall_policy\": %s, \"after\": %s, "
        "\"evictions\": %d, \"missed\": %d, \"handler_errors\": %d}",
        i ? ", " : "", c.index, JsonString(c.name), c.pid, c.alive ? "true" : "false",
        JsonString(c.state), c.sequence, c.lag, c.events, c.batches, c.waits,
        c.events_per_second, JsonString(std::string(WaitKindName(c.wait.kind))),
        c.wait.spin_tries, c.wait.yield_tries, c.wait.sleep_ceiling_ns, c.wait.timeout_ns,
        JsonString(c.stall_policy), after, c.evictions, c.missed,
        c.handler_errors);
  }
  return out + "]}";
}

}  // namespace xdisruptor
