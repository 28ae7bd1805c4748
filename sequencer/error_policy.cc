#include "xdisruptor/error_policy.h"

namespace xdisruptor {

absl::Status ValidateProcessorOptions(const ProcessorOptions& options) {
  if (!IsNamed(options.error_policy)) {
    return absl::InvalidArgumentError("unknown error policy");
  }
  if (options.max_retries < 0 || options.max_retries > 1'000'000) {
    return absl::InvalidArgumentError("max_retries must be between 0 and 1000000");
  }
  if (options.retry_pause_ns < 0 || options.retry_pause_ns > 3'600'000'000'000) {
    return absl::InvalidArgumentError("the retry pause must be between 0 and 1 hour");
  }
  if (options.max_batch < 0) {
    return absl::InvalidArgumentError("max_batch must be >= 0 (0: no cap)");
  }
  return absl::OkStatus();
}

}  // namespace xdisruptor
