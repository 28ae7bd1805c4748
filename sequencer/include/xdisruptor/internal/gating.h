// xdisruptor/internal/gating.h — the producer's side of gating, for both sequencer kinds: the
// slowest gating sequence, whom to sleep on, and the full-ring wait (which also evicts dead
// consumers whose stall policy is kEvict). Not for users; producers' threads only.
#ifndef XDISRUPTOR_INTERNAL_GATING_H_
#define XDISRUPTOR_INTERNAL_GATING_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <string>

#include "xdisruptor/layout.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor::internal {

// How often a producer blocked on a full ring looks for dead consumers it may evict.
inline constexpr std::int64_t kEvictCheckNs = 100'000'000;

// The slowest gating consumer's sequence, or `start` when none is slower (or none gates).
// `start` must be a cursor value a joining consumer can see (docs/architecture.md, join
// protocol): the published cursor of a single producer, the claim a multi-producer read
// before its own.
inline std::int64_t MinimumGating(const RingSegment& ring, std::int64_t start) {
  std::uint64_t mask = LoadGatingMask(ring.producer());
  std::int64_t minimum = start;
  while (mask != 0) {
    const int i = std::countr_zero(mask);
    mask &= mask - 1;
    // SYNC POINT: pairs with Consumer::Release's release store: the consumer's reads of the
    // slots up to its sequence happen before the producer overwrites them.
    minimum = std::min(minimum, LoadSequence(ring.consumer(static_cast<std::size_t>(i))));
  }
  return minimum;
}

// MinimumGating after the producer's StoreLoad fence, with the producer entry's frontier
// published. Fence #1 (StoreLoad) orders this producer's earlier cursor stores (or its claim)
// before its load of the gating mask; it pairs with JoinGating's seq_cst RMW + cursor load in
// Consumer::Register (join at the cursor). Without it a joining consumer and the producer could
// each miss the other's store and the producer would lap the newcomer (the fence a well-known
// C++ port lost). Then the frontier, how far the producer may now write, is stored before
// fence #2 and a second look at the mask; that pairs with the seq_cst RMW + frontier load of a
// consumer joining at an older sequence (Register's start_at): either the second look sees its
// bit (and the minimum is taken again, with it) or it sees this frontier and backs off.
inline std::int64_t RefreshGating(const RingSegment& ring, ProducerEntryState& entry,
                                  std::int64_t start) {
  const auto lap = static_cast<std::int64_t>(ring.capacity());
  for (;;) {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // SYNC POINT: fence #1
    const std::uint64_t mask = LoadGatingMask(ring.producer());
    const std::int64_t minimum = MinimumGating(ring, start);
    // SYNC POINT: release pairs with the joiner's frontier load: what this producer claimed
    // before (claim_hi) is seen with it.
    entry.frontier.store(minimum + lap, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // SYNC POINT: fence #2
    if ((LoadGatingMask(ring.producer()) & ~mask) == 0) return minimum;  // nobody new joined
  }
}

// A producer's full-ring waits: the one in progress may run in slices (NextFor with a limit,
// as the Python binding does to check for signals), and is kept between slices so its checks
// and its strategy's phases count from its start. The checks run every kEvictCheckNs while
// the producer is blocked, on a schedule that goes on across back-to-back waits (a consumer
// that frees a few slots at a time ends each wait quickly), and remember since when each
// consumer has lagged beyond its slow-consumer limit.
struct GatingWait {
  static constexpr std::int64_t kNone = kInitialSequence - 1;
  Idler idler{WaitParams{}};
  std::int64_t wrap_point = kNone;  // the wait in progress, or kNone
  std::int64_t next_check_ns = 0;
  std::int64_t last_blocked_ns = 0;  // when a wait last opened or went on
  std::array<std::int64_t, kMaxConsumers> over_limit_since{};  // 0: within its limit
  std::int64_t opened_ns = 0;     // when the wait for wrap_point began
  bool flight_written = false;    // this wait wrote its producer-blocked flight record
  // Filled by EvictLaggards: who it evicted and why, and the first sequence they had not
  // released (for the flight record written once the registry lock is free).
  std::string evicted;
  std::int64_t evicted_stuck = 0;

  // Opens a wait for `wrap_point` at `now` (or goes on with it: one more slice).
  void Open(std::int64_t wrap, const WaitParams& wait, std::int64_t limit_ns, std::int64_t now);
};

// What a producer blocked on a full ring does every kEvictCheckNs: under the registry lock
// (taken only when there is something to do) it evicts each gating consumer short of
// `wrap_point` that has stall policy kEvict and either died, or lives but has lagged more than
// its max_lag events, at every check, for longer than its max_lag_ns; and it clears a gating
// bit whose entry is not active (a stray bit nobody would ever release). Dead kHold consumers
// keep holding (by design). Returns how many it evicted or cleared.
int EvictLaggards(RingSegment& ring, std::int64_t wrap_point, std::int64_t now,
                  GatingWait& state);

// The full-ring wait of both sequencers: until RefreshGating(ring, entry, start) reaches
// `wrap_point`, idling by `wait` on the lagging consumer (producer entry `producer_index`
// sleeps there), calling EvictLaggards every kEvictCheckNs. Stores the last minimum in
// `*gating`. False if `max_wait_ns` (> 0) elapsed first; `state` then keeps the wait open for
// the next call with the same wrap point.
bool WaitForGating(RingSegment& ring, const WaitParams& wait, std::uint32_t producer_index,
                   std::int64_t wrap_point, std::int64_t start, std::int64_t max_wait_ns,
                   std::int64_t* gating, GatingWait& state);

// The highest sequence any producer of `ring` may have written or may write without reading
// the gating sequences again (each entry's frontier and claim, and the cursor): a consumer
// joining at an older sequence S is protected only if this is below S + capacity.
std::int64_t WriteFrontier(const RingSegment& ring);

// The highest sequence any producer of `ring` has claimed (the cursor, each entry's claim): a
// slot of a sequence s has been (or is being) overwritten when this is >= s + capacity.
std::int64_t ClaimFrontier(const RingSegment& ring);

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_INTERNAL_GATING_H_
