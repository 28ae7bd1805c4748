#include "xdisruptor/internal/gating.h"

#include "xdisruptor/layout.h"

#include "internal/consumer_table.h"
#include "internal/registry_lock.h"
#include "xdisruptor/process.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {
namespace {

// Why EvictLaggards would act on entry `c` now (without the lock; re-checked under it).
bool ShouldAct(const ConsumerState& c, std::int64_t cursor, std::int64_t wrap_point,
               std::int64_t blocked_ns) {
  if (!IsActive(c)) return true;  // a stray gating bit
  const std::int64_t sequence = LoadSequence(c);
  if (sequence >= wrap_point || LoadStallPolicy(c) != StallPolicy::kEvict) return false;
  if (OwnerLiveness(c.owner) != Liveness::kAlive) return true;
  const std::int64_t max_lag = c.max_lag.load(std::memory_order_relaxed);
  const std::int64_t max_lag_ns = c.max_lag_ns.load(std::memory_order_relaxed);
  return (max_lag > 0 || max_lag_ns > 0) && cursor - sequence > max_lag &&
         blocked_ns > max_lag_ns;
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

}  // namespace

int EvictLaggards(RingSegment& ring, std::int64_t wrap_point, std::int64_t blocked_ns) {
  ProducerState& p = ring.producer();
  bool candidates = false;
  for (std::uint64_t m = LoadGatingMask(p); m != 0 && !candidates; m &= m - 1) {
    candidates = ShouldAct(ring.consumer(static_cast<std::size_t>(std::countr_zero(m))),
                           LoadCursor(p), wrap_point, blocked_ns);
  }
  if (!candidates) return 0;
  RegistryLock lock(p);
  if (!lock.Acquire().ok()) return 0;
  ReclaimAbandonedJoins(ring);  // under the lock, a joining entry's registrant died inside
  int acted = 0;
  for (std::uint64_t m = LoadGatingMask(p); m != 0; m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    const ConsumerState& c = ring.consumer(i);
    // Under the lock no registration is half done, so an entry that gates but is not active
    // is a stray bit.
    if (!ShouldAct(c, LoadCursor(p), wrap_point, blocked_ns)) continue;
    if (IsActive(c)) {
      EvictEntry(ring, i);
    } else {
      LeaveGating(p, i);
    }
    ++acted;
  }
  return acted;
}

bool WaitForGating(RingSegment& ring, const WaitParams& wait, std::uint32_t producer_index,
                   std::int64_t wrap_point, std::int64_t start, std::int64_t max_wait_ns,
                   std::int64_t* gating, GatingWait& state) {
  if (wrap_point <= (*gating = RefreshGating(ring, start))) {
    state.wrap_point = GatingWait::kNone;
    return true;
  }
  const std::int64_t now = MonotonicNanos();
  if (state.wrap_point == wrap_point) {
    state.idler.NewSlice(max_wait_ns);  // the same wait, one more slice
  } else {
    state.idler = Idler(wait, max_wait_ns);
    state.wrap_point = wrap_point;
    state.started_ns = now;
    state.next_check_ns = now + kEvictCheckNs;
  }
  while (wrap_point > (*gating = RefreshGating(ring, start))) {
    if (!state.idler.Idle([&] { return LaggingConsumer(ring, wrap_point, producer_index); })) {
      return false;
    }
    if (const std::int64_t t = MonotonicNanos(); t >= state.next_check_ns) {
      EvictLaggards(ring, wrap_point, t - state.started_ns);
      state.next_check_ns = t + kEvictCheckNs;
    }
  }
  state.wrap_point = GatingWait::kNone;
  return true;
}

}  // namespace xdisruptor::internal
