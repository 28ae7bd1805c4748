#include "internal/consumer_table.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/internal/worker_group.h"
#include "xdisruptor/process.h"

namespace xdisruptor::internal {
namespace {

// True when an active consumer runs after entry `index`: handing that entry to another name
// would let the downstream stage read the newcomer's sequence as its upstream's.
bool IsSomeonesUpstream(const RingSegment& ring, std::size_t index) {
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    if (!IsActive(c)) continue;
    for (std::uint32_t k = 0; k < std::min<std::uint32_t>(c.after_count, kMaxAfter); ++k) {
      if (static_cast<std::size_t>(c.after[k]) == index) return true;
    }
  }
  return false;
}

}  // namespace

std::string EntryName(const ConsumerState& c) {
  return std::string(c.name, std::min<std::size_t>(c.name_length, kMaxNameLength));
}

bool NameIs(const ConsumerState& c, std::string_view name) {
  return c.name_length == name.size() && c.name_length <= kMaxNameLength &&
         std::memcmp(c.name, name.data(), name.size()) == 0;
}

std::vector<std::string> UpstreamNames(const RingSegment& ring, const ConsumerState& c) {
  std::vector<std::string> names;
  for (std::uint32_t k = 0; k < std::min<std::uint32_t>(c.after_count, kMaxAfter); ++k) {
    const auto up = static_cast<std::size_t>(c.after[k]);
    if (up < kMaxConsumers) names.push_back(EntryName(ring.consumer(up)));
  }
  return names;
}

int FindActive(const RingSegment& ring, std::string_view name) {
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    if (IsActive(c) && NameIs(c, name)) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<int> FindActiveOrNotFound(const RingSegment& ring, std::string_view name) {
  const int index = FindActive(ring, name);
  if (index < 0) {
    return absl::NotFoundError(
        absl::StrFormat("no consumer named '%s' is registered on ring '%s'", name, ring.name()));
  }
  return index;
}

void ClearSleeperEverywhere(RingSegment& ring, wait::Sleeper who) {
  wait::ClearSleeper(ring.producer().cursor_notification, who);
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    wait::ClearSleeper(ring.consumer(i).notification, who);
  }
}

void RepairTable(RingSegment& ring) {
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    ConsumerState& c = ring.consumer(i);
    const ConsumerStatus status = LoadStatus(c);
    if (status == ConsumerStatus::kJoining) {
      LeaveGating(ring.producer(), i);
      ClearSleeperEverywhere(ring, {.producer = false, .index = static_cast<std::uint32_t>(i)});
      ClearOwner(c.owner);
      StoreStatus(c, ConsumerStatus::kFree);
    } else if (status != ConsumerStatus::kActive && IsGating(ring.producer(), i)) {
      LeaveGating(ring.producer(), i);
    } else if (status == ConsumerStatus::kActive && IsGating(ring.producer(), i) &&
               c.observer.load(std::memory_order_relaxed) == kCatchingUpMode) {
      // A join from a journal its process did not finish (FinishCatchUp holds this lock, so
      // a live one is never caught halfway): its position may already be overwritten. Not
      // gating, it counts as evicted-while-catching-up: its name catches up again from there.
      LeaveGating(ring.producer(), i);
    }
  }
}

absl::StatusOr<int> ChooseEntry(RingSegment& ring, std::string_view name) {
  int free_entry = -1;
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    const ConsumerStatus status = LoadStatus(c);
    if (NameIs(c, name)) {
      if (status == ConsumerStatus::kActive && IsAlive(c.owner)) {
        return absl::AlreadyExistsError(absl::StrFormat(
            "consumer '%s' is already registered on ring '%s' by live process %d; choose "
            "another name or stop that process",
            name, ring.name(), LoadOwner(c.owner).pid));
      }
      // Its own entry: left, or its owner died (perhaps asleep: clear its sleeper bits).
      ClearSleeperEverywhere(ring, {.producer = false, .index = static_cast<std::uint32_t>(i)});
      return static_cast<int>(i);
    }
    if (status == ConsumerStatus::kFree && free_entry < 0 && !IsSomeonesUpstream(ring, i)) {
      free_entry = static_cast<int>(i);
    }
  }
  if (free_entry < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "ring '%s' has no free consumer entry (all %d are taken); deregister a consumer first",
        ring.name(), kMaxConsumers));
  }
  return free_entry;
}

void EvictEntry(RingSegment& ring, std::size_t index) {
  ConsumerState& c = ring.consumer(index);
  BumpCounter(c.evictions);  // under the registry lock: one writer at a time
  // SYNC POINT: pairs with the acquire loads of the status in barriers (UpstreamGone, and the
  // evicted consumer's own kEvicted check). The status before the gating bit goes: an
  // evictor killed in between leaves an evicted entry still gating, which RepairTable mends,
  // never an active one no longer gating (its unread events overwritten, nobody told).
  StoreStatus(c, ConsumerStatus::kEvicted);
  LeaveGating(ring.producer(), index);
  wait::WakeAll(c.notification);
  // A worker group goes as a whole: each member sees kEvicted at its next wait.
  if (c.group_role.load(std::memory_order_relaxed) == kGroupStage) EvictGroupMembers(ring, c);
  wait::WakeAll(ring.producer().cursor_notification);  // the evicted one may sleep there
}

}  // namespace xdisruptor::internal
