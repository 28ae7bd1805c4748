// xdisruptor/waitstrategies/timeout_blocking.h — blocking that gives up after a timeout.
//
// The waiter sleeps on the futex word exactly as in blocking.h, but never past the wait's
// deadline, so the batch processor can call its handler's on_timeout (heartbeats, flushes)
// when nothing arrived in time. Each sleep is also capped by the safety net.
#ifndef XDISRUPTOR_WAITSTRATEGIES_TIMEOUT_BLOCKING_H_
#define XDISRUPTOR_WAITSTRATEGIES_TIMEOUT_BLOCKING_H_

#include <algorithm>
#include <cstdint>

#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::wait {

struct TimeoutBlocking {
  // How long the next futex sleep may last when the wait must end in `remaining_ns` (0: no
  // deadline). At least 1 us, so a late wake-up never turns into spinning.
  static std::int64_t SleepBudget(std::int64_t remaining_ns) {
    if (remaining_ns == 0) return kSafetyNetNs;
    return std::clamp<std::int64_t>(remaining_ns, 1000, kSafetyNetNs);
  }
};

}  // namespace xdisruptor::wait

#endif  // XDISRUPTOR_WAITSTRATEGIES_TIMEOUT_BLOCKING_H_
