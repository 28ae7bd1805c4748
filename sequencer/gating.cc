#include "xdisruptor/internal/gating.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/flight.h"
#include "xdisruptor/layout.h"

#include "internal/consumer_table.h"
#include "internal/registry_lock.h"
#include "xdisruptor/internal/worker_group.h"
#include "xdisruptor/process.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {
namespace {

// True when a live consumer with a slow-consumer limit has lagged beyond it for longer than
// allowed; keeps since when it has lagged in `since` (0 once it is within its limit).
bool SlowBeyondLimit(const ConsumerState& c, std::int64_t cursor, std::int64_t now,
                     std::int64_t& since) {
  const std::int64_t max_lag = c.max_lag.load(std::memory_order_relaxed);
  const std::int64_t max_lag_ns = c.max_lag_ns.load(std::memory_order_relaxed);
  if ((max_lag == 0 && max_lag_ns == 0) || cursor - LoadSequence(c) <= max_lag) {
    since = 0;
    return false;
  }
  if (since == 0) since = now;
  return now - since >= max_lag_ns;
}

// Why EvictLaggards would act on entry `i` now (without the lock; re-checked under it).
bool ShouldAct(const RingSegment& ring, const ConsumerState& c, std::int64_t cursor,
               std::int64_t wrap_point, std::int64_t now, std::int64_t& since) {
  if (!IsActive(c)) return true;  // a stray gating bit
  // A join from a journal left halfway by a process that died (RepairTable clears it).
  if (c.observer.load(std::memory_order_relaxed) == kCatchingUpMode && !EntryAlive(ring, c)) {
    return true;
  }
  if (LoadSequence(c) >= wrap_point || LoadStallPolicy(c) != StallPolicy::kEvict) {
    since = 0;
    return false;
  }
  if (!EntryAlive(ring, c)) return true;  // a worker group: when all its members died
  return SlowBeyondLimit(c, cursor, now, since);
}

// A gating consumer short of `wrap_point`, for producer entry `producer_index` to sleep on.
wait::BlockTarget LaggingConsumer(RingSegment& ring, std::int64_t wrap_point,
                                  std::uint32_t producer_index) {
  for (std::uint64_t m = LoadGatingMask(ring.producer()); m != 0; m &= m - 1) {
    ConsumerState& c = ring.consumer(static_cast<std::size_t>(std::countr_zero(m)));
    if (LoadSequence(c) < wrap_point) {
      wait::BlockTarget t;
      t.sequence = &c.sequence;
      t.needed = wrap_point;
      t.notification = &c.notification;
      t.sleeper = {.producer = true, .index = producer_index};
      t.must_stay_active = &c;  // a consumer that leaves stops gating: re-check
      return t;
    }
  }
  return {};
}

constexpr std::int64_t kBlockedRecordIntervalNs = 60'000'000'000;

// A flight record once per wait that has lasted the ring's flight_wait.
void RecordIfBlocked(RingSegment& ring, std::int64_t now, std::int64_t gating,
                     GatingWait& state) {
  const std::int64_t threshold = ring.header().flight_wait_ns;
  if (state.flight_written || threshold <= 0 || now - state.opened_ns < threshold) return;
  state.flight_written = true;
  // A consumer that keeps the producer waiting wait after wait would write a record a
  // second: one a minute per ring is enough to see it (evictions are always recorded).
  const std::int64_t last = LatestFlightRecord(ring).at_unix_ns;
  if (last != 0 && absl::ToUnixNanos(absl::Now()) - last < kBlockedRecordIntervalNs) return;
  (void)WriteFlightRecord(
      ring, kFlightProducerBlocked,
      absl::StrFormat("a producer (pid %d) has waited %.3f s on the full ring for sequence %d",
                      ::getpid(), static_cast<double>(now - state.opened_ns) / 1e9,
                      state.wrap_point + static_cast<std::int64_t>(ring.capacity())),
      gating + 1);
}

}  // namespace

void GatingWait::Open(std::int64_t wrap, const WaitParams& wait, std::int64_t limit_ns,
                      std::int64_t now) {
  const std::int64_t idle_for = now - last_blocked_ns;
  last_blocked_ns = now;
  if (wrap_point == wrap) {
    idler.NewSlice(limit_ns);  // the same wait, one more slice
    return;
  }
  idler = Idler(wait, limit_ns);
  wrap_point = wrap;
  opened_ns = now;
  flight_written = false;
  if (idle_for > 2 * kEvictCheckNs) {
    // Not blocked for a while: no evidence anyone kept lagging. Start the checks afresh.
    over_limit_since.fill(0);
    next_check_ns = now + kEvictCheckNs;
  }
}

int EvictLaggards(RingSegment& ring, std::int64_t wrap_point, std::int64_t now,
                  GatingWait& state) {
  ProducerState& p = ring.producer();
  bool candidates = false;
  for (std::uint64_t m = LoadGatingMask(p); m != 0; m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    candidates = ShouldAct(ring, ring.consumer(i), LoadCursor(p), wrap_point, now,
                           state.over_limit_since[i]) ||
                 candidates;
  }
  if (!candidates) return 0;
  RegistryLock lock(p);
  if (!lock.Acquire().ok()) return 0;
  RepairTable(ring);  // joining entries left by the dead, stray gating bits
  int acted = 0;
  state.evicted.clear();
  for (std::uint64_t m = LoadGatingMask(p); m != 0; m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    const ConsumerState& c = ring.consumer(i);
    // Under the lock no registration is half done, so an entry that gates but is not active
    // is a stray bit.
    std::int64_t since = state.over_limit_since[i];
    if (!ShouldAct(ring, c, LoadCursor(p), wrap_point, now, since)) continue;
    if (IsActive(c)) {
      const bool dead = !EntryAlive(ring, c);
      state.evicted += absl::StrFormat(
          "%s%s (at %d, %s)", state.evicted.empty() ? "" : ", ", EntryName(c), LoadSequence(c),
          dead ? "its process died" : "beyond its slow-consumer limit");
      state.evicted_stuck = LoadSequence(c) + 1;
      EvictEntry(ring, i);
    } else {
      LeaveGating(p, i);
    }
    state.over_limit_since[i] = 0;
    ++acted;
  }
  return acted;
}

bool WaitForGating(RingSegment& ring, const WaitParams& wait, std::uint32_t producer_index,
                   std::int64_t wrap_point, std::int64_t start, std::int64_t max_wait_ns,
                   std::int64_t* gating, GatingWait& state) {
  if (wrap_point <= (*gating = RefreshGating(ring, ring.producer().producers[producer_index], start))) {
    state.wrap_point = GatingWait::kNone;
    return true;
  }
  ProducerEntryState& entry = ring.producer().producers[producer_index];
  // The time waited is counted as it goes (at each check below), so a producer blocked for
  // good shows in the metrics too, not only once it gets going again.
  std::int64_t counted = MonotonicNanos();
  const auto count_wait = [&](std::int64_t now) {
    BumpCounter(entry.full_wait_ns, static_cast<std::uint64_t>(now - counted));
    counted = now;
  };
  if (state.wrap_point != wrap_point) BumpCounter(entry.full_waits);
  state.Open(wrap_point, wait, max_wait_ns, counted);
  while (wrap_point > (*gating = RefreshGating(ring, ring.producer().producers[producer_index], start))) {
    // Checked before idling: a blocking idle step may sleep to the end of a slice and return
    // false, and the check must still come round across slices.
    if (const std::int64_t t = MonotonicNanos(); t >= state.next_check_ns) {
      state.next_check_ns = t + kEvictCheckNs;
      count_wait(t);
      if (EvictLaggards(ring, wrap_point, t, state) > 0) {
        if (!state.evicted.empty()) {  // before this producer overwrites what they held
          (void)WriteFlightRecord(ring, kFlightEviction,
                                  "evicted by a producer's stall policy: " + state.evicted,
                                  state.evicted_stuck);
        }
        continue;
      }
      RecordIfBlocked(ring, t, *gating, state);
    }
    if (!state.idler.Idle([&] { return LaggingConsumer(ring, wrap_point, producer_index); })) {
      state.last_blocked_ns = MonotonicNanos();
      count_wait(state.last_blocked_ns);
      return false;
    }
  }
  state.last_blocked_ns = MonotonicNanos();
  count_wait(state.last_blocked_ns);
  state.wrap_point = GatingWait::kNone;
  return true;
}

std::int64_t ClaimFrontier(const RingSegment& ring) {
  const ProducerState& p = ring.producer();
  std::int64_t highest = p.cursor.load(std::memory_order_acquire);
  for (const ProducerEntryState& e : p.producers) {
    // Free entries too: a producer that detached may have written slots it never published.
    highest = std::max(highest, e.claim_hi.load(std::memory_order_relaxed));
  }
  return highest;
}

std::int64_t WriteFrontier(const RingSegment& ring) {
  const ProducerState& p = ring.producer();
  // seq_cst: after the joiner's seq_cst RMW of its gating bit (see RefreshGating).
  std::int64_t highest = p.cursor.load(std::memory_order_seq_cst);
  for (const ProducerEntryState& e : p.producers) {
    // What a producer claimed it may have written, published or not, even one that detached
    // since (a claim it never published leaves those slots half written).
    highest = std::max(highest, e.claim_hi.load(std::memory_order_relaxed));
    if (e.owner.pid.load(std::memory_order_acquire) == 0) continue;  // a free entry: no
    highest = std::max(highest, e.frontier.load(std::memory_order_seq_cst));  // permission
  }
  return highest;
}

}  // namespace xdisruptor::internal
