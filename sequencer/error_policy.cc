#include "xdisruptor/error_policy.h"

#include <cstdio>

namespace xdisruptor {

void ReportStageError(std::string_view stage, std::string_view what, std::int64_t sequence,
                      std::string_view outcome) {
  if (sequence >= 0) {
    std::fprintf(stderr, "xdisruptor: stage '%.*s': handler failed on event %lld: %.*s (%.*s)\n",
                 static_cast<int>(stage.size()), stage.data(), static_cast<long long>(sequence),
                 static_cast<int>(what.size()), what.data(), static_cast<int>(outcome.size()),
                 outcome.data());
  } else {
    std::fprintf(stderr, "xdisruptor: stage '%.*s': %.*s (%.*s)\n",
                 static_cast<int>(stage.size()), stage.data(), static_cast<int>(what.size()),
                 what.data(), static_cast<int>(outcome.size()), outcome.data());
  }
}

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
    return absl::InvalidArgumentError("max_batch must be >= 0 (0: the default, half the ring)");
  }
  return absl::OkStatus();
}

}  // namespace xdisruptor
