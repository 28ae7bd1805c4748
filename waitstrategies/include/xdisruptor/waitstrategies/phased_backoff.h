// xdisruptor/waitstrategies/phased_backoff.h — spin for a time, yield for a time, then hand
// over to a fallback strategy (sleeping or blocking).
//
// For a consumer that wants busy-spin latency for bursts but must not burn a core through a
// quiet period: the phases are measured in time, not attempts, so they mean the same on any
// machine.
#ifndef XDISRUPTOR_WAITSTRATEGIES_PHASED_BACKOFF_H_
#define XDISRUPTOR_WAITSTRATEGIES_PHASED_BACKOFF_H_

#include <cstdint>

namespace xdisruptor::wait {

enum class Phase { kSpin, kYield, kFallback };

struct PhasedBackoff {
  // `elapsed_ns` since the wait's first idle step.
  static Phase PhaseAt(std::int64_t elapsed_ns, std::int64_t spin_ns, std::int64_t yield_ns) {
    if (elapsed_ns < spin_ns) return Phase::kSpin;
    if (elapsed_ns < spin_ns + yield_ns) return Phase::kYield;
    return Phase::kFallback;
  }
};

}  // namespace xdisruptor::wait

#endif  // XDISRUPTOR_WAITSTRATEGIES_PHASED_BACKOFF_H_
