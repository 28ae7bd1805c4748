// xdisruptor/internal/worker_group.h — what the rest of the sequencer asks of worker groups
// (sequencer/worker_group.cc; docs/worker-groups.md). Not for users.
#ifndef XDISRUPTOR_INTERNAL_WORKER_GROUP_H_
#define XDISRUPTOR_INTERNAL_WORKER_GROUP_H_

#include <cstdint>

#include "absl/status/status.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/ring_segment.h"

namespace xdisruptor::internal {

// A group stage is alive while one of its members' processes is.
bool GroupAlive(const RingSegment& ring, const ConsumerState& group);
// Whether an entry's process (for a group stage: any member's) still runs.
bool EntryAlive(const RingSegment& ring, const ConsumerState& c);
// Evicting a group evicts every member (under the registry lock).
void EvictGroupMembers(RingSegment& ring, ConsumerState& group);
// The lowest sequence the group's members have finished through (never above `work`).
std::int64_t GroupMinimum(const RingSegment& ring, const ConsumerState& group);
// A member leaves (under the registry lock): with an unfinished run it stays in the group as
// if dead, so another member takes the run over; else it goes, and the group goes with its
// last member.
absl::Status LeaveGroup(RingSegment& ring, int member, int group);

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_INTERNAL_WORKER_GROUP_H_
