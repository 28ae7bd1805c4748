// xdisruptor/waitstrategies/yielding.h — spin a little, then give the core away each time.
//
// Good latency while leaving the core to other runnable processes; still 100% CPU when idle
// (sched_yield returns at once when nothing else runs). The strategy for more processes than
// cores when latency matters more than idle CPU.
#ifndef XDISRUPTOR_WAITSTRATEGIES_YIELDING_H_
#define XDISRUPTOR_WAITSTRATEGIES_YIELDING_H_

#include <sched.h>

#include <cstdint>

#include "xdisruptor/waitstrategies/busy_spin.h"

namespace xdisruptor::wait {

struct Yielding {
  // `attempt` counts idle steps of this wait from 1.
  static void Idle(std::uint64_t attempt, std::uint32_t spin_tries) {
    if (attempt <= spin_tries) {
      CpuRelax();
    } else {
      sched_yield();
    }
  }
};

}  // namespace xdisruptor::wait

#endif  // XDISRUPTOR_WAITSTRATEGIES_YIELDING_H_
