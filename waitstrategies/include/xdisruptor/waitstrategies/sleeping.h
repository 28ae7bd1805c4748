// xdisruptor/waitstrategies/sleeping.h — spin, then yield, then sleep with a growing pause.
//
// Near-zero CPU when idle after the first microseconds; the price is wake-up latency of up to
// the sleep ceiling. For loggers, recorders and other consumers that must not burn a core.
#ifndef XDISRUPTOR_WAITSTRATEGIES_SLEEPING_H_
#define XDISRUPTOR_WAITSTRATEGIES_SLEEPING_H_

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdint>

#include "xdisruptor/waitstrategies/busy_spin.h"

namespace xdisruptor::wait {

struct Sleeping {
  static constexpr std::int64_t kFirstSleepNs = 1000;

  // `attempt` counts idle steps of this wait from 1; `sleep_ns` is this wait's current pause
  // (start it at 0), doubled after each sleep up to `ceiling_ns`.
  static void Idle(std::uint64_t attempt, std::uint32_t spin_tries, std::uint32_t yield_tries,
                   std::int64_t ceiling_ns, std::int64_t* sleep_ns) {
    if (attempt <= spin_tries) {
      CpuRelax();
      return;
    }
    if (attempt <= std::uint64_t{spin_tries} + yield_tries) {
      sched_yield();
      return;
    }
    *sleep_ns = std::clamp(*sleep_ns * 2, kFirstSleepNs, std::max(ceiling_ns, kFirstSleepNs));
    const timespec pause{static_cast<time_t>(*sleep_ns / 1000000000),
                         static_cast<long>(*sleep_ns % 1000000000)};
    nanosleep(&pause, nullptr);
  }
};

}  // namespace xdisruptor::wait

#endif  // XDISRUPTOR_WAITSTRATEGIES_SLEEPING_H_
