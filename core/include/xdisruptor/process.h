// xdisruptor/process.h — who is alive: process identity as pid plus start time.
//
// A pid alone can be reused by an unrelated process after its owner died; the pair
// (pid, start time in clock ticks since boot, field 22 of /proc/PID/stat) cannot, within one
// boot. A process that has exited but is not yet reaped (a zombie) counts as dead.
// Off the data path only: these read /proc. Safe from any thread of any process.
#ifndef XDISRUPTOR_PROCESS_H_
#define XDISRUPTOR_PROCESS_H_

#include <cstdint>

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

}  // namespace xdisruptor

#endif  // XDISRUPTOR_PROCESS_H_
