// internal/consumer_table.h — the consumer table as registration, eviction and the tools see
// it: finding entries by name, choosing one for a registration, reclaiming what dead processes
// left, evicting. Everything that writes here runs under the registry lock, off the data path.
#ifndef XDISRUPTOR_SEQUENCER_INTERNAL_CONSUMER_TABLE_H_
#define XDISRUPTOR_SEQUENCER_INTERNAL_CONSUMER_TABLE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {

// The entry's name as stored (bounded by kMaxNameLength whatever the segment says).
std::string EntryName(const ConsumerState& c);
bool NameIs(const ConsumerState& c, std::string_view name);
// The names of the entries `c` runs after, in order (indices out of range are skipped).
std::vector<std::string> UpstreamNames(const RingSegment& ring, const ConsumerState& c);

// The index of the active consumer `name`, or -1.
int FindActive(const RingSegment& ring, std::string_view name);
// The same as a status: NotFound names the ring.
absl::StatusOr<int> FindActiveOrNotFound(const RingSegment& ring, std::string_view name);

// Clears a dead sleeper's bit from every notification word it may have slept on, so that
// publishers stop paying for wake-ups nobody waits for.
void ClearSleeperEverywhere(RingSegment& ring, wait::Sleeper who);

// Under the registry lock no registration is in progress, so a joining entry was left by a
// process that died inside Register: stop it gating and free it. And a gating bit whose entry
// is neither active nor joining is garbage (a stray bit nobody would ever release): clear it.
// Registration, producer attach and a blocked producer's checks run it.
void RepairTable(RingSegment& ring);

// The entry for a registration of `name`: its own earlier entry if its owner is gone (its
// sleeper bits cleared), else the first free one that no active stage runs after.
// AlreadyExists when a live process holds the name, ResourceExhausted when the table is full.
absl::StatusOr<int> ChooseEntry(RingSegment& ring, std::string_view name);

// Evicts entry `index`: it stops gating, counts the eviction, and everyone asleep on it wakes
// to see it gone.
void EvictEntry(RingSegment& ring, std::size_t index);

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_SEQUENCER_INTERNAL_CONSUMER_TABLE_H_
