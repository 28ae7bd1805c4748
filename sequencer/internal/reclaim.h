// internal/reclaim.h — clean-up of what a dead process left in the segment.
// Called under the registry lock, off the data path.
#ifndef XDISRUPTOR_SEQUENCER_INTERNAL_RECLAIM_H_
#define XDISRUPTOR_SEQUENCER_INTERNAL_RECLAIM_H_

#include <bit>

#include "internal/registry_lock.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/process.h"
#include "xdisruptor/wait_strategy.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {

// How often a producer blocked on a full ring looks for dead consumers it may evict.
inline constexpr std::int64_t kEvictCheckNs = 100'000'000;

// Clears a dead sleeper's bit from every notification word it may have slept on, so that
// publishers stop paying for wake-ups nobody waits for.
inline void ClearSleeperEverywhere(RingSegment& ring, wait::Sleeper who) {
  wait::ClearSleeper(ring.producer().cursor_notification, who);
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    wait::ClearSleeper(ring.consumer(i).notification, who);
  }
}

// Evicts entry `index` (under the registry lock): it stops gating, counts the eviction, and
// everyone asleep on it wakes to see it gone.
inline void EvictEntry(RingSegment& ring, std::size_t index) {
  ConsumerState& c = ring.consumer(index);
  ring.producer().gating_mask.fetch_and(~(std::uint64_t{1} << index), std::memory_order_seq_cst);
  c.evictions.store(c.evictions.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // SYNC POINT: pairs with the acquire loads of the status in barriers (UpstreamGone, and the
  // evicted consumer's own kEvicted check).
  c.status.store(static_cast<std::uint32_t>(ConsumerStatus::kEvicted), std::memory_order_release);
  wait::WakeAll(c.notification);
  wait::WakeAll(ring.producer().cursor_notification);  // the evicted one may sleep there
}

// A producer blocked on a full ring calls this now and then: every gating consumer short of
// `wrap_point` whose process died and whose stall policy is kEvict is evicted, so the ring
// goes on. Returns true if it evicted any. Dead kHold consumers keep holding (by design).
inline bool EvictDeadLaggards(RingSegment& ring, std::int64_t wrap_point) {
  std::uint64_t mask = ring.producer().gating_mask.load(std::memory_order_acquire);
  bool candidates = false;
  for (std::uint64_t m = mask; m != 0; m &= m - 1) {
    const ConsumerState& c = ring.consumer(static_cast<std::size_t>(std::countr_zero(m)));
    candidates = candidates ||
                 (c.sequence.load(std::memory_order_acquire) < wrap_point &&
                  c.stall_policy.load(std::memory_order_relaxed) ==
                      static_cast<std::uint32_t>(StallPolicy::kEvict));
  }
  if (!candidates) return false;
  RegistryLock lock(ring.producer());
  if (!lock.Acquire().ok()) return false;
  bool evicted = false;
  mask = ring.producer().gating_mask.load(std::memory_order_acquire);
  for (; mask != 0; mask &= mask - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(mask));
    ConsumerState& c = ring.consumer(i);
    if (c.sequence.load(std::memory_order_acquire) < wrap_point &&
        c.stall_policy.load(std::memory_order_relaxed) ==
            static_cast<std::uint32_t>(StallPolicy::kEvict) &&
        c.status.load(std::memory_order_acquire) ==
            static_cast<std::uint32_t>(ConsumerStatus::kActive) &&
        !IsProcessAlive(c.pid.load(std::memory_order_relaxed),
                        c.start_time.load(std::memory_order_relaxed))) {
      EvictEntry(ring, i);
      evicted = true;
    }
  }
  return evicted;
}

// The full-ring wait of both sequencers: until `refresh()` (the slowest gating sequence)
// reaches `wrap_point`, idling by `wait` on `target()`, evicting dead kEvict laggards every
// kEvictCheckNs. False if `max_wait_ns` (> 0) elapsed first.
template <typename Refresh, typename Target>
bool WaitForGating(RingSegment& ring, const WaitParams& wait, std::int64_t wrap_point,
                   std::int64_t max_wait_ns, Refresh refresh, Target target) {
  if (wrap_point <= refresh()) return true;
  Idler idler(wait, max_wait_ns);
  std::int64_t next_check = MonotonicNanos() + kEvictCheckNs;
  while (wrap_point > refresh()) {
    if (!idler.Idle(target)) return false;
    if (MonotonicNanos() >= next_check) {  // a dead consumer with policy kEvict blocks us?
      EvictDeadLaggards(ring, wrap_point);
      next_check = MonotonicNanos() + kEvictCheckNs;
    }
  }
  return true;
}

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_SEQUENCER_INTERNAL_RECLAIM_H_
