// xdisruptor/ring_queries.h — questions about a ring's stream that the Disruptor's RingBuffer
// answers (isAvailable, getHighestPublishedSequence, getMinimumGatingSequence), for either
// kind of ring, from any process and thread. None waits; each reads a few shared words.
#ifndef XDISRUPTOR_RING_QUERIES_H_
#define XDISRUPTOR_RING_QUERIES_H_

#include <cstdint>

#include "xdisruptor/ring_segment.h"

namespace xdisruptor {

// True when `sequence` is published and its slot still holds it (not yet overwritten by a
// later lap).
bool IsAvailable(const RingSegment& ring, std::int64_t sequence);

// The highest sequence from `lo` to `hi` before the first one not yet published (lo - 1 if lo
// is not); for one producer that is min(hi, cursor).
std::int64_t HighestPublished(const RingSegment& ring, std::int64_t lo, std::int64_t hi);

// The slowest gating consumer's sequence, or the cursor when none is slower (or none gates):
// how far the producer may not yet overwrite.
std::int64_t MinimumGatingSequence(const RingSegment& ring);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_RING_QUERIES_H_
