// xdisruptor/process.h — who is alive: the one rule for every registered process.
//
// A pid alone can be reused by an unrelated process after its owner died; the pair
// (pid, start time in clock ticks since boot, field 22 of /proc/PID/stat) cannot, within one
// boot. A process that has exited but is not yet reaped (a zombie) counts as dead.
// Every question "does the process holding this entry (a consumer, a producer, the registry
// lock) still live?" is answered here, by OwnerLiveness / IsAlive, and nowhere else.
// Off the data path only: these read /proc. Safe from any thread of any process.
#ifndef XDISRUPTOR_PROCESS_H_
#define XDISRUPTOR_PROCESS_H_

#include <cstdint>

#include "xdisruptor/layout.h"

namespace xdisruptor {

struct ProcessIdentity {
  std::int64_t pid = 0;
  std::uint64_t start_time = 0;
};

// The calling process (re-read after fork).
ProcessIdentity CurrentProcess();

// True when a process with this pid runs and, if `start_time` is non-zero, started then.
// A zombie or a pid that now belongs to a process started at another time is dead.
bool IsProcessAlive(std::int64_t pid, std::uint64_t start_time);
// The same for an identity; pid 0 (nobody) is not alive.
bool IsAlive(const ProcessIdentity& who);

// --- Owners of shared entries (OwnerState in layout.h) ---------------------------------------

// SYNC POINT: acquire on the pid pairs with StoreOwner's release: the start time read after it
// is the one stored with that pid.
ProcessIdentity LoadOwner(const OwnerState& owner);
// Records `who` as the owner: start time first, then the pid with release.
void StoreOwner(OwnerState& owner, const ProcessIdentity& who);
void ClearOwner(OwnerState& owner);

enum class Liveness {
  kNobody,  // no owner recorded (pid 0)
  kAlive,   // the recorded process runs (same pid and start time)
  kDead,    // it exited (or is a zombie), or its pid now belongs to another process
};
Liveness OwnerLiveness(const OwnerState& owner);
inline bool IsAlive(const OwnerState& owner) { return OwnerLiveness(owner) == Liveness::kAlive; }
// True when the calling process is the recorded owner (a forked child is not).
bool OwnedByMe(const OwnerState& owner);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_PROCESS_H_
