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

#include <atomic>
#include <cstdint>
#include <string_view>

#include "xdisruptor/layout.h"

namespace xdisruptor {

struct ProcessIdentity {
  std::int64_t pid = 0;
  std::uint64_t start_time = 0;
};

// No process has this pid (Linux's pid_max is at most 2^22): the owner of an entry let go
// of as if its process had died (Consumer::Abandon, a producer detached mid-claim).
inline constexpr std::int64_t kNoSuchPid = std::int64_t{1} << 22;

// The calling process (re-read after fork). Also starts watching for forks (WatchForks).
ProcessIdentity CurrentProcess();

// --- fork() safety -------------------------------------------------------------------------
// A producer or consumer belongs to the process that registered it. After fork() the child
// holds copies of its parent's objects; using one would publish over the parent's events or
// advance the parent's position. Every fork bumps this counter in the child (pthread_atfork,
// installed by WatchForks, which registration calls), so an object compares the value it was
// made with against the current one: one relaxed load on the hot path.
inline std::atomic<std::uint32_t> g_fork_generation{0};
inline std::uint32_t ForkGeneration() {
  return g_fork_generation.load(std::memory_order_relaxed);
}
void WatchForks();
// Prints why and aborts: `what` (a producer or consumer of ring `ring`) was made by the parent
// of this forked process, which must register its own.
[[noreturn]] void ForkedUse(std::string_view what, std::string_view ring);

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
