#include "xdisruptor/internal/gating.h"

#include "internal/consumer_table.h"
#include "internal/registry_lock.h"
#include "xdisruptor/process.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {
namespace {

bool ShouldEvict(const ConsumerState& c, std::int64_t wrap_point) {
  return LoadSequence(c) < wrap_point && LoadStallPolicy(c) == StallPolicy::kEvict;
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

bool EvictDeadLaggards(RingSegment& ring, std::int64_t wrap_point) {
  bool candidates = false;
  for (std::uint64_t m = LoadGatingMask(ring.producer()); m != 0 && !candidates; m &= m - 1) {
    candidates = ShouldEvict(ring.consumer(static_cast<std::size_t>(std::countr_zero(m))),
                             wrap_point);
  }
  if (!candidates) return false;
  RegistryLock lock(ring.producer());
  if (!lock.Acquire().ok()) return false;
  bool evicted = false;
  for (std::uint64_t m = LoadGatingMask(ring.producer()); m != 0; m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    const ConsumerState& c = ring.consumer(i);
    if (ShouldEvict(c, wrap_point) && IsActive(c) &&
        OwnerLiveness(c.owner) != Liveness::kAlive) {
      EvictEntry(ring, i);
      evicted = true;
    }
  }
  return evicted;
}

bool WaitForGating(RingSegment& ring, const WaitParams& wait, std::uint32_t producer_index,
                   std::int64_t wrap_point, std::int64_t start, std::int64_t max_wait_ns,
                   std::int64_t* gating) {
  if (wrap_point <= (*gating = RefreshGating(ring, start))) return true;
  Idler idler(wait, max_wait_ns);
  std::int64_t next_check = MonotonicNanos() + kEvictCheckNs;
  while (wrap_point > (*gating = RefreshGating(ring, start))) {
    if (!idler.Idle([&] { return LaggingConsumer(ring, wrap_point, producer_index); })) {
      return false;
    }
    if (MonotonicNanos() >= next_check) {  // a dead consumer with policy kEvict blocks us?
      EvictDeadLaggards(ring, wrap_point);
      next_check = MonotonicNanos() + kEvictCheckNs;
    }
  }
  return true;
}

}  // namespace xdisruptor::internal
