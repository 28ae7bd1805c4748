// internal/reclaim.h — clean-up of what a dead process left in the segment.
// Called under the registry lock, off the data path.
#ifndef XDISRUPTOR_SEQUENCER_INTERNAL_RECLAIM_H_
#define XDISRUPTOR_SEQUENCER_INTERNAL_RECLAIM_H_

#include "xdisruptor/layout.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {

// Clears a dead sleeper's bit from every notification word it may have slept on, so that
// publishers stop paying for wake-ups nobody waits for.
inline void ClearSleeperEverywhere(RingSegment& ring, wait::Sleeper who) {
  wait::ClearSleeper(ring.producer().cursor_notification, who);
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    wait::ClearSleeper(ring.consumer(i).notification, who);
  }
}

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_SEQUENCER_INTERNAL_RECLAIM_H_
