// xdisruptor/error_policy.h — what a stage does when its handler fails: the Disruptor's model
// of an exception handler and a batch rewind strategy, and the three presets (stop, skip,
// retry) built from them.
//
//   on_event throws RewindableError  -> the RewindStrategy: run the batch again from its first
//                                       event, or give up (then as a fatal error)
//   on_event throws anything else     -> the ExceptionHandler: skip the event, or stop the stage
//   on_start / on_shutdown throw      -> the ExceptionHandler is told; the stage goes on / ends
//
// A processor uses the presets of its ProcessorOptions unless given its own handler or
// strategy. The presets' rule is one function, PresetAction, which Python's Consumer.run asks
// too (through the compiled module), so the two languages cannot drift apart. Handlers and
// strategies are called on the consuming thread, only when something failed.
#ifndef XDISRUPTOR_ERROR_POLICY_H_
#define XDISRUPTOR_ERROR_POLICY_H_

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/names.h"

namespace xdisruptor {

// A failure worth retrying (a full disk, a busy service): thrown by a handler, it makes the
// stage run its whole batch again, as the rewind strategy allows (the Disruptor's
// RewindableException). Every other exception is fatal for its event.
class RewindableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ErrorPolicy : std::uint32_t {
  kStop,   // stop the stage: release what came before the failing event, report the failure
           // (Run returns kHandlerFailed); a restart under the name (hold policy) resumes at it
  kSkip,   // report the failure, count it, and go on with the next event
  kRetry,  // rewind on a RewindableError: run the whole batch again after retry_pause_ns, at
           // most max_retries times (handlers must tolerate seeing its events again), then stop
           // as kStop does; any other error stops at once
};
template <>
struct EnumNames<ErrorPolicy> {
  static constexpr std::string_view kWhat = "error policy";
  static constexpr NameTable<ErrorPolicy, 3> kTable{{
      {ErrorPolicy::kStop, "stop"}, {ErrorPolicy::kSkip, "skip"},
      {ErrorPolicy::kRetry, "retry"}}};
};

struct ProcessorOptions {
  ErrorPolicy error_policy = ErrorPolicy::kStop;
  int max_retries = 3;                      // kRetry: runs of a batch after the first
  std::int64_t retry_pause_ns = 1'000'000;  // kRetry: pause before each rerun
  // > 0: hand the handler at most this many events at once; 0: DefaultMaxBatch of the ring.
  // (A batch never holds more than the ring's capacity, so max_batch >= capacity: no cap.)
  std::int64_t max_batch = 0;
};

// The batch cap of a C++ consumer that names none: half the ring (a Python consumer takes at
// most 4096 of it, PYTHON_MAX_BATCH in python/xdisruptor/_ring.py). A stage a whole ring
// behind then releases half of it before it handles the rest, instead of holding the whole
// ring to the end of one batch while the producer and the stages after it wait.
// Measured on 2 cores, yielding, 20-100 M events (docs/benchmarks.md): a diamond went from
// 0.78-0.84x of multicast uncapped to 0.94-0.99x (five sets of 5-7 rounds); a cap of 4096
// helped as much there but cost unicast 1P-1C 12-24% and 3P-1C 43-50%; half the ring cost
// neither beyond the rounds' spread (unicast 0.90-0.97x, rounds 0.64..1.23).
inline std::int64_t DefaultMaxBatch(std::uint64_t capacity) {
  return static_cast<std::int64_t>(std::max<std::uint64_t>(capacity / 2, 1));
}
// The cap a processor applies: the one asked for (never more than the capacity, so a cap of
// any size is safe to add to a sequence), or the default.
inline std::int64_t EffectiveMaxBatch(const ProcessorOptions& options, std::uint64_t capacity) {
  const auto most = static_cast<std::int64_t>(std::max<std::uint64_t>(capacity, 1));
  return options.max_batch > 0 ? std::min(options.max_batch, most) : DefaultMaxBatch(capacity);
}
absl::Status ValidateProcessorOptions(const ProcessorOptions& options);

// What to do about a failure: rerun the batch, skip the event, or stop the stage.
enum class ErrorAction : std::uint32_t { kRewind, kSkip, kStop };
template <>
struct EnumNames<ErrorAction> {
  static constexpr std::string_view kWhat = "error action";
  static constexpr NameTable<ErrorAction, 3> kTable{{
      {ErrorAction::kRewind, "rewind"}, {ErrorAction::kSkip, "skip"},
      {ErrorAction::kStop, "stop"}}};
};

// The presets' rule: a failure (`rewindable` or not) in a batch that has failed `attempts`
// times in a row (1 for the first failure).
inline ErrorAction PresetAction(const ProcessorOptions& options, bool rewindable, int attempts) {
  switch (options.error_policy) {
    case ErrorPolicy::kSkip: return ErrorAction::kSkip;
    case ErrorPolicy::kRetry:
      return rewindable && attempts <= options.max_retries ? ErrorAction::kRewind
                                                           : ErrorAction::kStop;
    case ErrorPolicy::kStop: break;
  }
  return ErrorAction::kStop;
}

// How a report of a failure says what happens next.
inline std::string_view ErrorActionReport(ErrorAction action) {
  switch (action) {
    case ErrorAction::kSkip: return "skipped";
    case ErrorAction::kRewind: return "rewinding the batch";
    case ErrorAction::kStop: break;
  }
  return "stopping the stage";
}

inline void PauseFor(std::int64_t ns) {
  if (ns <= 0) return;
  const timespec t{.tv_sec = static_cast<time_t>(ns / 1'000'000'000),
                   .tv_nsec = static_cast<long>(ns % 1'000'000'000)};
  nanosleep(&t, nullptr);
}

// Decides about RewindableErrors (the Disruptor's BatchRewindStrategy).
class RewindStrategy {
 public:
  virtual ~RewindStrategy() = default;
  // The batch failed with `error` for the `attempts`th time in a row: true runs it again from
  // its first event (after any pause of the strategy's own); false gives up, and the error
  // goes to the exception handler as a fatal one.
  virtual bool Rewind(const RewindableError& error, int attempts) = 0;
};

// Rewinds every time (the Disruptor's SimpleBatchRewindStrategy).
class AlwaysRewind final : public RewindStrategy {
 public:
  bool Rewind(const RewindableError&, int) override { return true; }
};

// Rewinds `max_rewinds` times, pausing `pause_ns` before each, then gives up (the Disruptor's
// EventuallyGiveUpBatchRewindStrategy(n) is RewindUpTo(n - 1), its
// NanosecondPauseBatchRewindStrategy a RewindUpTo with no limit).
class RewindUpTo final : public RewindStrategy {
 public:
  explicit RewindUpTo(int max_rewinds, std::int64_t pause_ns = 0)
      : max_rewinds_(max_rewinds), pause_ns_(pause_ns) {}
  bool Rewind(const RewindableError&, int attempts) override {
    if (attempts > max_rewinds_) return false;
    PauseFor(pause_ns_);
    return true;
  }

 private:
  int max_rewinds_;
  std::int64_t pause_ns_;
};

// Never rewinds: a RewindableError is fatal like any other.
class NeverRewind final : public RewindStrategy {
 public:
  bool Rewind(const RewindableError&, int) override { return false; }
};

// Decides about fatal failures of a stage of events of type T (the Disruptor's
// ExceptionHandler).
template <typename T>
class ExceptionHandler {
 public:
  virtual ~ExceptionHandler() = default;
  // on_event failed at `sequence`: kSkip goes on with the next event, kStop stops the stage
  // (the events before it are released; Run returns kHandlerFailed).
  virtual ErrorAction HandleEventError(const std::exception& error, std::int64_t sequence,
                                       T& event) = 0;
  // on_start failed: the stage runs anyway. on_shutdown failed: the stage ends anyway.
  virtual void HandleStartError(const std::exception& error) = 0;
  virtual void HandleShutdownError(const std::exception& error) = 0;
};

// One line on stderr per failure, naming the stage.
void ReportStageError(std::string_view stage, std::string_view what, std::int64_t sequence,
                      std::string_view outcome);

// The presets: stop or skip on a fatal error, as ProcessorOptions say, with a report line.
template <typename T>
class PresetExceptionHandler final : public ExceptionHandler<T> {
 public:
  PresetExceptionHandler(ErrorPolicy policy, std::string stage)
      : policy_(policy), stage_(std::move(stage)) {}
  ErrorAction HandleEventError(const std::exception& error, std::int64_t sequence,
                               T&) override {
    const ErrorAction action =
        policy_ == ErrorPolicy::kSkip ? ErrorAction::kSkip : ErrorAction::kStop;
    if (report_) ReportStageError(stage_, error.what(), sequence, ErrorActionReport(action));
    return action;
  }
  void HandleStartError(const std::exception& error) override {
    ReportStageError(stage_, error.what(), -1, "on_start failed; the stage runs anyway");
  }
  void HandleShutdownError(const std::exception& error) override {
    ReportStageError(stage_, error.what(), -1, "on_shutdown failed");
  }
  void set_report(bool report) { report_ = report; }

 private:
  ErrorPolicy policy_;
  std::string stage_;
  bool report_ = true;
};

// The preset rewind strategy: kRetry rewinds max_retries times with retry_pause_ns between.
class PresetRewind final : public RewindStrategy {
 public:
  explicit PresetRewind(const ProcessorOptions& options) : options_(options) {}
  bool Rewind(const RewindableError&, int attempts) override {
    if (PresetAction(options_, true, attempts) != ErrorAction::kRewind) return false;
    PauseFor(options_.retry_pause_ns);
    return true;
  }

 private:
  ProcessorOptions options_;
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_ERROR_POLICY_H_
