// xdisruptor/wait_strategy.h — the one interface through which barriers and producers wait.
//
// A WaitParams value names a strategy and its tuning; it is plain data, stored in each
// consumer's table entry (so an operator can read and retune it from another process) and
// given to the producer for its full-ring waits. An Idler is one wait in progress in this
// process: call Idle(target) each time the awaited sequence is not there yet, where `target`
// says which sequence holds the wait back (blocking kinds sleep on its notification word).
// No virtual call: the strategy is a switch that runs only when there is nothing to do.
//
//   busy-spin          pause instruction, re-check            lowest latency, a core per waiter
//   yielding           spin_tries pauses, then sched_yield    low latency, 100% CPU when idle
//   sleeping           spin, yield_tries yields, then sleeps  ~0% CPU idle, latency up to
//                      doubling up to sleep_ceiling_ns         the ceiling
//   blocking           spin phase_spin_ns, then futex sleep   ~0% CPU idle, a wake-up costs
//                      until the publisher wakes it             a few microseconds; the spin
//                      (blocking.h)                             catches a stream's next batch
//                                                               without one
//   timeout-blocking   blocking, and the wait ends after      for heartbeats and flushes
//                      timeout_ns (processor: on_timeout)       (on_timeout)
//   phased-backoff     spin phase_spin_ns, yield              burst latency of spinning,
//                      phase_yield_ns, then fallback_kind       idle cost of the fallback
//                      (sleeping or blocking)
// The blocking kinds' spin (phase_spin_ns, 10 us by default; 0 sleeps at once) is why a
// blocking consumer of a busy stream keeps up: without it every batch ended in a futex sleep
// and cost the producer a futex wake (see docs/wait-strategies.md, "Blocking: spin first").
// A consumer's barrier makes it adaptive (SpinAdvisor): it stops spinning while its waits end
// asleep anyway (a stream slower than the spin), and tries again every 8th wait.
// Any kind may also carry timeout_ns > 0: the wait then returns kTimeout after that long.
//
// Units, one per surface: C++ fields are nanoseconds (`_ns`); everywhere else (Python
// keywords, the stage environment, the launcher's TOML, the tool's --wait_params) the same
// parameter is named without `_ns` and given in seconds. kWaitParams is the table of names;
// SetWaitParam / ParseWaitParams the one parser every surface uses.
#ifndef XDISRUPTOR_WAIT_STRATEGY_H_
#define XDISRUPTOR_WAIT_STRATEGY_H_

#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/names.h"
#include "xdisruptor/waitstrategies/blocking.h"
#include "xdisruptor/waitstrategies/busy_spin.h"
#include "xdisruptor/waitstrategies/phased_backoff.h"
#include "xdisruptor/waitstrategies/sleeping.h"
#include "xdisruptor/waitstrategies/timeout_blocking.h"
#include "xdisruptor/waitstrategies/yielding.h"

namespace xdisruptor {

enum class WaitKind : std::uint32_t {
  kBusySpin = 0,
  kYielding = 1,
  kSleeping = 2,
  kBlocking = 3,
  kTimeoutBlocking = 4,
  kPhasedBackoff = 5,
};
inline constexpr std::uint32_t kWaitKindCount = 6;

struct WaitParams {
  WaitKind kind = WaitKind::kYielding;
  // Pauses before yielding or sleeping. 0 by default: measured on 2 cores against the
  // hand-written ring, yielding rings that spun 100 pauses first ran at 0.91x (1P-1C) and
  // 0.98x (1P-3C), yielding at once 1.37x and 1.16x, with the same latency (sched_yield with
  // nobody else to run returns in under a microsecond): docs/wait-strategies.md.
  std::uint32_t spin_tries = 0;
  std::uint32_t yield_tries = 100;            // yields before sleeping (sleeping only)
  std::int64_t sleep_ceiling_ns = 200'000;    // longest single sleep (sleeping)
  std::int64_t timeout_ns = 0;                // > 0: a wait gives up after this long
  std::int64_t phase_spin_ns = 10'000;        // phased backoff and blocking: spin this long,
  std::int64_t phase_yield_ns = 100'000;      // then yield this long,
  WaitKind fallback_kind = WaitKind::kBlocking;  // then wait like this (sleeping or blocking)
};

template <>
struct EnumNames<WaitKind> {
  static constexpr std::string_view kWhat = "wait strategy";
  static constexpr NameTable<WaitKind, kWaitKindCount> kTable{{
      {WaitKind::kBusySpin, "busy-spin"}, {WaitKind::kYielding, "yielding"},
      {WaitKind::kSleeping, "sleeping"}, {WaitKind::kBlocking, "blocking"},
      {WaitKind::kTimeoutBlocking, "timeout-blocking"},
      {WaitKind::kPhasedBackoff, "phased-backoff"}}};
};
// The most used pair, by their long-standing names.
inline std::string_view WaitKindName(WaitKind kind) { return NameOf(kind); }
inline absl::StatusOr<WaitKind> ParseWaitKind(std::string_view name) {
  return ParseEnum<WaitKind>(name);
}

// The tunable parameters by their name outside C++ (see the unit note above).
enum class WaitParamUnit { kCount, kSeconds, kWaitKind };
struct WaitParamInfo {
  std::string_view name;
  WaitParamUnit unit;
};
inline constexpr std::array<WaitParamInfo, 7> kWaitParams{{
    {"spin_tries", WaitParamUnit::kCount},
    {"yield_tries", WaitParamUnit::kCount},
    {"sleep_ceiling", WaitParamUnit::kSeconds},
    {"timeout", WaitParamUnit::kSeconds},
    {"phase_spin", WaitParamUnit::kSeconds},
    {"phase_yield", WaitParamUnit::kSeconds},
    {"fallback", WaitParamUnit::kWaitKind},
}};
// Sets parameter `key` from its text: a whole number (counts), seconds (times), or a wait
// strategy name (fallback). InvalidArgument for an unknown key or a value out of range.
absl::Status SetWaitParam(WaitParams& params, std::string_view key, std::string_view value);
// The same from a number (Python); `fallback` takes a name only.
absl::Status SetWaitParam(WaitParams& params, std::string_view key, double value);
// "key=value,key=value" (the stage environment, the tool's --wait_params): sets each, then
// validates the whole.
absl::Status ParseWaitParams(std::string_view text, WaitParams* params);
// The value of parameter `info` in its surface unit (fallback: see WaitKindName).
double WaitParamNumber(const WaitParams& params, const WaitParamInfo& info);
// Range checks for values that came from a user or from shared memory.
absl::Status ValidateWaitParams(const WaitParams& params);

// The wait strategy recorded in a consumer entry: what a barrier waits by, re-read at every
// wait so a retune from another process applies (values from shared memory are clamped to what
// this library accepts), and the way registration and retunes record it.
WaitParams LoadWaitParams(const ConsumerState& entry);
// A WaitKind field of the segment (a uint32: layout.h sits below this library), relaxed; a
// value this library does not know reads as `otherwise`.
inline WaitKind LoadWaitKind(const std::atomic<std::uint32_t>& field, WaitKind otherwise) {
  const std::uint32_t raw = field.load(std::memory_order_relaxed);
  return raw < kWaitKindCount ? static_cast<WaitKind>(raw) : otherwise;
}
inline void StoreWaitKind(std::atomic<std::uint32_t>& field, WaitKind kind) {
  field.store(static_cast<std::uint32_t>(kind), std::memory_order_relaxed);
}
void StoreWaitParams(ConsumerState& entry, const WaitParams& params);
// SYNC POINT: acquire pairs with StoreWaitParams' release bump: parameters read after a new
// version are complete.
inline std::uint32_t LoadWaitConfigVersion(const ConsumerState& entry) {
  return entry.wait_config_version.load(std::memory_order_acquire);
}

inline std::int64_t MonotonicNanos() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return std::int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

// One wait, from its first idle step until the awaited sequence shows up (or time runs out).
// A wait may be run in slices (a binding returning to its interpreter every few ms to check
// for signals): the strategy's timeout and phases count from the wait's first step, the
// caller's limit from the start of each slice (NewSlice).
class Idler {
 public:
  // `limit_ns` > 0 bounds this slice of the wait for the caller's own reasons (a Python
  // binding checking for Ctrl-C, a producer that will try again), apart from the strategy's
  // timeout.
  // `spin_first` false: the blocking kinds skip their spin phase (see SpinAdvisor).
  explicit Idler(const WaitParams& params, std::int64_t limit_ns = 0, bool spin_first = true)
      : params_(params), limit_ns_(limit_ns), spin_first_(spin_first) {}

  // Goes on with the same wait after the caller's limit ended the previous slice.
  void NewSlice(std::int64_t limit_ns) {
    limit_ns_ = limit_ns;
    slice_start_ = 0;
  }

  // Waits once by the strategy. `target()` returns the wait::BlockTarget to sleep on; it is
  // called only by the blocking kinds. Returns false when the strategy's timeout or the
  // caller's limit has elapsed (strategy_timed_out() tells which).
  template <typename TargetFn>
  bool Idle(TargetFn&& target) {
    ++attempt_;
    WaitKind kind = params_.kind;
    if (kind == WaitKind::kPhasedBackoff) {
      switch (wait::PhasedBackoff::PhaseAt(Now() - start_, params_.phase_spin_ns,
                                           params_.phase_yield_ns)) {
        case wait::Phase::kSpin:
          wait::CpuRelax();
          return !TimedOut();
        case wait::Phase::kYield:
          sched_yield();
          return !TimedOut();
        case wait::Phase::kFallback:
          kind = params_.fallback_kind;
          ++fallback_attempt_;
          break;
      }
    }
    switch (kind) {
      case WaitKind::kBusySpin:
        wait::BusySpin::Idle();
        break;
      case WaitKind::kYielding:
        wait::Yielding::Idle(attempt_, params_.spin_tries);
        break;
      case WaitKind::kSleeping:
        if (params_.kind == WaitKind::kPhasedBackoff) {  // spun and yielded already: sleep
          wait::Sleeping::Idle(fallback_attempt_, 0, 0, params_.sleep_ceiling_ns, &sleep_ns_);
        } else {
          wait::Sleeping::Idle(attempt_, params_.spin_tries, params_.yield_tries,
                               params_.sleep_ceiling_ns, &sleep_ns_);
        }
        break;
      case WaitKind::kBlocking:
      case WaitKind::kTimeoutBlocking:
        // Spin first: a stream's next batch usually comes within microseconds, and catching
        // it awake spares both sides the futex (the sleeper bit the publisher must collect).
        if (spin_first_ && Now() - start_ < params_.phase_spin_ns) {
          wait::CpuRelax();
          break;
        }
        [[fallthrough]];
      case WaitKind::kPhasedBackoff: {
        const wait::BlockTarget t = target();
        if (t.sequence != nullptr) {
          slept_ = true;
          const wait::SleepOutcome outcome = wait::BlockOn(t, SleepBudget());
          sleeps_ += outcome != wait::SleepOutcome::kNoSleep;
          wakes_ += outcome == wait::SleepOutcome::kWoken;
        }
        break;
      }
    }
    return !TimedOut();
  }

  std::uint64_t attempts() const { return attempt_; }
  // True once this wait went to sleep in the kernel (a blocking kind's futex).
  bool slept() const { return slept_; }
  // Futex sleeps of this wait, and those a wake-up ended (not the sleep budget).
  std::uint64_t sleeps() const { return sleeps_; }
  std::uint64_t wakes() const { return wakes_; }
  bool strategy_timed_out() const { return strategy_timed_out_; }
  // Nanoseconds since the wait's first idle step (0 before it).
  std::int64_t elapsed_ns() const { return start_ == 0 ? 0 : MonotonicNanos() - start_; }

 private:
  // The clock, starting the wait and the slice at their first step.
  std::int64_t Now() {
    const std::int64_t now = MonotonicNanos();
    if (start_ == 0) start_ = now;
    if (slice_start_ == 0) slice_start_ = now;
    return now;
  }
  // The earliest deadline (absolute ns) of the strategy's timeout and the caller's limit, or 0.
  std::int64_t Deadline() const {
    const std::int64_t strategy = params_.timeout_ns > 0 ? start_ + params_.timeout_ns : 0;
    const std::int64_t caller = limit_ns_ > 0 ? slice_start_ + limit_ns_ : 0;
    if (strategy == 0) return caller;
    return caller == 0 ? strategy : std::min(strategy, caller);
  }
  // How long one futex sleep may last: the safety net, or less when a deadline is near.
  std::int64_t SleepBudget() {
    const std::int64_t now = Now();
    const std::int64_t deadline = Deadline();
    return wait::TimeoutBlocking::SleepBudget(
        deadline == 0 ? 0 : std::max<std::int64_t>(deadline - now, 1));
  }
  // Reads the clock only every 64th step while spinning, so busy-spin stays a tight loop.
  bool TimedOut() {
    if (params_.timeout_ns <= 0 && limit_ns_ <= 0) return false;
    if (params_.kind == WaitKind::kBusySpin && (attempt_ & 63) != 1) return false;
    const std::int64_t now = Now();
    if (params_.timeout_ns > 0 && now - start_ >= params_.timeout_ns) strategy_timed_out_ = true;
    return now >= Deadline();
  }

  WaitParams params_;
  std::int64_t limit_ns_ = 0;
  bool strategy_timed_out_ = false;
  bool spin_first_ = true;
  bool slept_ = false;
  std::uint64_t attempt_ = 0;
  std::uint64_t fallback_attempt_ = 0;
  std::uint64_t sleeps_ = 0;
  std::uint64_t wakes_ = 0;
  std::int64_t sleep_ns_ = 0;
  std::int64_t start_ = 0;        // the wait's first step
  std::int64_t slice_start_ = 0;  // this slice's first step
};

// Whether a blocking wait should spin before it sleeps, learnt from the waits before it: a
// wait that ended while spinning earns the next ones their spin; one that slept anyway costs
// a credit; with none left the waits sleep at once, but every 8th still spins to notice when
// the stream speeds up again. So a consumer of a busy stream catches batches awake, and one
// of a slow stream (events further apart than the spin) does not burn the spin per event.
class SpinAdvisor {
 public:
  bool SpinNext() { return credit_ > 0 || (++skipped_ & 7) == 0; }
  // After a wait that got what it waited for.
  void Done(const Idler& idler) {
    if (idler.attempts() == 0) return;  // never idled: says nothing
    if (!idler.slept()) {
      credit_ = kCredit;
    } else if (credit_ > 0) {
      --credit_;
    }
  }

 private:
  static constexpr int kCredit = 4;
  int credit_ = kCredit;
  std::uint32_t skipped_ = 0;
};

// For waits that have nothing to block on (tests, polling loops).
inline wait::BlockTarget NoBlockTarget() { return {}; }

}  // namespace xdisruptor

#endif  // XDISRUPTOR_WAIT_STRATEGY_H_
