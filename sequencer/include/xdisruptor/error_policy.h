// xdisruptor/error_policy.h — what a stage does when its handler fails: the policies, their
// names, and the one rule that turns a failure into an action. The C++ BatchEventProcessor and
// Python's Consumer.run both ask NextErrorAction, so the two languages cannot drift apart.
#ifndef XDISRUPTOR_ERROR_POLICY_H_
#define XDISRUPTOR_ERROR_POLICY_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/names.h"

namespace xdisruptor {

enum class ErrorPolicy : std::uint32_t {
  kStop,   // stop the stage: release what came before the failing event, report the failure
           // (Run returns kHandlerFailed); a restart under the name (hold policy) resumes at it
  kSkip,   // report the failure, count it, and go on with the next event
  kRetry,  // rewind: run the whole batch again after retry_pause_ns, at most max_retries
           // times (handlers must tolerate seeing its events again), then stop as kStop does
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
  std::int64_t max_batch = 0;               // > 0: hand the handler at most this many at once
};
absl::Status ValidateProcessorOptions(const ProcessorOptions& options);

// What a stage does about a failure in a batch that has run `attempts` times (the first
// included): the policy itself, except that kRetry turns into kStop once the retries ran out.
inline ErrorPolicy NextErrorAction(const ProcessorOptions& options, int attempts) {
  if (options.error_policy == ErrorPolicy::kRetry && attempts > options.max_retries) {
    return ErrorPolicy::kStop;
  }
  return options.error_policy;
}
// How the report of a failure says what happens next.
inline std::string_view ErrorActionReport(ErrorPolicy action) {
  switch (action) {
    case ErrorPolicy::kSkip: return "skipped";
    case ErrorPolicy::kRetry: return "retrying the batch";
    case ErrorPolicy::kStop: break;
  }
  return "stopping the stage";
}

}  // namespace xdisruptor

#endif  // XDISRUPTOR_ERROR_POLICY_H_
