// xdisruptor/wait_strategy.h — the one interface through which barriers and producers wait.
//
// A WaitParams value names a strategy and its tuning; it is plain data, stored in each
// consumer's table entry (so an operator can read and retune it) and in the producer state.
// An Idler is one wait in progress in this process: call Idle() each time the awaited
// sequence is not there yet. No virtual call: the strategy is a switch that runs only when
// there is nothing to do. Kinds 3..5 are reserved in the layout for blocking,
// timeout-blocking and phased backoff (wait-strategies issue).
#ifndef XDISRUPTOR_WAIT_STRATEGY_H_
#define XDISRUPTOR_WAIT_STRATEGY_H_

#include <time.h>

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/waitstrategies/busy_spin.h"
#include "xdisruptor/waitstrategies/sleeping.h"
#include "xdisruptor/waitstrategies/yielding.h"

namespace xdisruptor {

enum class WaitKind : std::uint32_t { kBusySpin = 0, kYielding = 1, kSleeping = 2 };

struct WaitParams {
  WaitKind kind = WaitKind::kYielding;
  std::uint32_t spin_tries = 100;           // pauses before yielding or sleeping
  std::uint32_t yield_tries = 100;          // yields before sleeping (sleeping only)
  std::int64_t sleep_ceiling_ns = 200000;   // longest single sleep (sleeping only)
  std::int64_t timeout_ns = 0;              // > 0: a wait gives up after this long
};

// "busy-spin", "yielding", "sleeping".
std::string_view WaitKindName(WaitKind kind);
absl::StatusOr<WaitKind> ParseWaitKind(std::string_view name);
// Range checks for values that came from a user or from shared memory.
absl::Status ValidateWaitParams(const WaitParams& params);

inline std::int64_t MonotonicNanos() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return std::int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

// One wait, from its first idle step until the awaited sequence shows up (or time runs out).
class Idler {
 public:
  explicit Idler(const WaitParams& params) : params_(params) {}

  // Waits once by the strategy. Returns false when the wait's timeout has elapsed.
  bool Idle() {
    ++attempt_;
    switch (params_.kind) {
      case WaitKind::kBusySpin:
        wait::BusySpin::Idle();
        break;
      case WaitKind::kYielding:
        wait::Yielding::Idle(attempt_, params_.spin_tries);
        break;
      case WaitKind::kSleeping:
        wait::Sleeping::Idle(attempt_, params_.spin_tries, params_.yield_tries,
                             params_.sleep_ceiling_ns, &sleep_ns_);
        break;
    }
    return params_.timeout_ns <= 0 || !TimedOut();
  }

  std::uint64_t attempts() const { return attempt_; }

 private:
  // Reads the clock only every 64th step while spinning, so busy-spin stays a tight loop.
  bool TimedOut() {
    if (deadline_ == 0) deadline_ = MonotonicNanos() + params_.timeout_ns;
    if (params_.kind == WaitKind::kBusySpin && (attempt_ & 63) != 0) return false;
    return MonotonicNanos() >= deadline_;
  }

  WaitParams params_;
  std::uint64_t attempt_ = 0;
  std::int64_t sleep_ns_ = 0;
  std::int64_t deadline_ = 0;
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_WAIT_STRATEGY_H_
