#include "xdisruptor/wait_strategy.h"

#include "absl/strings/str_format.h"

namespace xdisruptor {

std::string_view WaitKindName(WaitKind kind) {
  switch (kind) {
    case WaitKind::kBusySpin: return "busy-spin";
    case WaitKind::kYielding: return "yielding";
    case WaitKind::kSleeping: return "sleeping";
    case WaitKind::kBlocking: return "blocking";
    case WaitKind::kTimeoutBlocking: return "timeout-blocking";
    case WaitKind::kPhasedBackoff: return "phased-backoff";
  }
  return "unknown";
}

absl::StatusOr<WaitKind> ParseWaitKind(std::string_view name) {
  for (std::uint32_t k = 0; k < kWaitKindCount; ++k) {
    if (name == WaitKindName(static_cast<WaitKind>(k))) return static_cast<WaitKind>(k);
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown wait strategy '%s'; choose busy-spin, yielding, sleeping, blocking, "
      "timeout-blocking or phased-backoff",
      name));
}

absl::Status ValidateWaitParams(const WaitParams& params) {
  if (static_cast<std::uint32_t>(params.kind) >= kWaitKindCount) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "wait strategy kind %d is not one this library knows", static_cast<int>(params.kind)));
  }
  if (params.sleep_ceiling_ns < 0 || params.sleep_ceiling_ns > 1000000000) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sleep ceiling %dns is outside 0..1s", params.sleep_ceiling_ns));
  }
  if (params.timeout_ns < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("wait timeout %dns is negative", params.timeout_ns));
  }
  if (params.kind == WaitKind::kTimeoutBlocking && params.timeout_ns == 0) {
    return absl::InvalidArgumentError(
        "timeout-blocking needs a timeout: set timeout_ns to how long a wait may last");
  }
  if (params.phase_spin_ns < 0 || params.phase_yield_ns < 0) {
    return absl::InvalidArgumentError("phased backoff phases cannot be negative");
  }
  if (params.fallback_kind != WaitKind::kSleeping && params.fallback_kind != WaitKind::kBlocking) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "phased backoff falls back to sleeping or blocking, not %s",
        WaitKindName(params.fallback_kind)));
  }
  return absl::OkStatus();
}

}  // namespace xdisruptor
