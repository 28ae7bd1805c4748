#include "xdisruptor/wait_strategy.h"

#include "absl/strings/str_format.h"

namespace xdisruptor {

std::string_view WaitKindName(WaitKind kind) {
  switch (kind) {
    case WaitKind::kBusySpin: return "busy-spin";
    case WaitKind::kYielding: return "yielding";
    case WaitKind::kSleeping: return "sleeping";
  }
  return "unknown";
}

absl::StatusOr<WaitKind> ParseWaitKind(std::string_view name) {
  for (WaitKind kind : {WaitKind::kBusySpin, WaitKind::kYielding, WaitKind::kSleeping}) {
    if (name == WaitKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown wait strategy '%s'; choose busy-spin, yielding or sleeping", name));
}

absl::Status ValidateWaitParams(const WaitParams& params) {
  if (static_cast<std::uint32_t>(params.kind) > static_cast<std::uint32_t>(WaitKind::kSleeping)) {
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
  return absl::OkStatus();
}

}  // namespace xdisruptor
