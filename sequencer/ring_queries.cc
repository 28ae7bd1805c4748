#include "xdisruptor/ring_queries.h"

#include <algorithm>

#include "xdisruptor/internal/availability.h"
#include "xdisruptor/internal/gating.h"

namespace xdisruptor {

bool IsAvailable(const RingSegment& ring, std::int64_t sequence) {
  const internal::Availability published(ring);
  if (sequence < 0) return false;
  if (published.multi_producer()) return published.IsPublished(sequence);
  // Published, and no claim (stored before its slots are written) has reached its slot yet.
  return sequence <= published.cursor() &&
         sequence > internal::ClaimFrontier(ring) - static_cast<std::int64_t>(ring.capacity());
}

std::int64_t HighestPublished(const RingSegment& ring, std::int64_t lo, std::int64_t hi) {
  const internal::Availability published(ring);
  return published.HighestPublished(lo, std::min(hi, published.cursor()));
}

std::int64_t MinimumGatingSequence(const RingSegment& ring) {
  return internal::MinimumGating(ring, LoadCursor(ring.producer()));
}

}  // namespace xdisruptor
