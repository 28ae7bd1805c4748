// internal/producer_table.h — questions about the producer table (both ring kinds) that
// consumers and the tools ask: which producers there are, whether they live, whether a dead
// one left a claim that will never be published. Read /proc; off the data path.
#ifndef XDISRUPTOR_SEQUENCER_INTERNAL_PRODUCER_TABLE_H_
#define XDISRUPTOR_SEQUENCER_INTERNAL_PRODUCER_TABLE_H_

#include <cstdint>
#include <vector>

#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor::internal {

// One producer entry in use, as the tools show it.
struct ProducerInfo {
  int index = 0;
  std::int64_t pid = 0;
  bool alive = false;
  WaitKind wait = WaitKind::kYielding;
};
std::vector<ProducerInfo> Producers(const RingSegment& ring);

// True when the ring had producers and none of them lives any more.
bool ProducersGone(const RingSegment& ring);

// True when a producer died with a claim in flight that covers `sequence` (or whose range it
// had not recorded yet, while no live producer's claim covers it): that sequence will never be
// published.
bool HasStalledProducer(const RingSegment& ring, std::int64_t sequence);

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_SEQUENCER_INTERNAL_PRODUCER_TABLE_H_
