#include "xdisruptor/wait_strategy.h"

#include <charconv>
#include <cmath>
#include <string>

#include "absl/strings/str_format.h"

namespace xdisruptor {
namespace {

// Longest time any parameter may hold: far beyond any sensible wait, far below int64 ns.
constexpr double kMaxSeconds = 365.0 * 24 * 3600;

const WaitParamInfo* FindParam(std::string_view key) {
  for (const WaitParamInfo& info : kWaitParams) {
    if (info.name == key) return &info;
  }
  return nullptr;
}

absl::Status UnknownParam(std::string_view key) {
  std::string names;
  for (const WaitParamInfo& info : kWaitParams) {
    names += (names.empty() ? "" : ", ") + std::string(info.name);
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown wait parameter '%s'; use %s (counts as whole numbers, times in seconds)", key,
      names));
}

std::int64_t* SecondsField(WaitParams& p, std::string_view key) {
  if (key == "sleep_ceiling") return &p.sleep_ceiling_ns;
  if (key == "timeout") return &p.timeout_ns;
  if (key == "phase_spin") return &p.phase_spin_ns;
  return &p.phase_yield_ns;
}

std::uint32_t* CountField(WaitParams& p, std::string_view key) {
  return key == "spin_tries" ? &p.spin_tries : &p.yield_tries;
}

}  // namespace

absl::Status SetWaitParam(WaitParams& params, std::string_view key, double value) {
  const WaitParamInfo* info = FindParam(key);
  if (info == nullptr) return UnknownParam(key);
  switch (info->unit) {
    case WaitParamUnit::kCount:
      if (!(value >= 0) || value > 4294967295.0 || value != std::floor(value)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "wait parameter %s=%g: expected a whole number from 0 to 4294967295", key, value));
      }
      *CountField(params, key) = static_cast<std::uint32_t>(value);
      return absl::OkStatus();
    case WaitParamUnit::kSeconds:
      if (!(value >= 0) || value > kMaxSeconds) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "wait parameter %s=%g: expected seconds from 0 to %g", key, value, kMaxSeconds));
      }
      *SecondsField(params, key) = std::llround(value * 1e9);
      return absl::OkStatus();
    case WaitParamUnit::kWaitKind:
      break;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "wait parameter %s takes a strategy name (sleeping or blocking), not a number", key));
}

absl::Status SetWaitParam(WaitParams& params, std::string_view key, std::string_view value) {
  const WaitParamInfo* info = FindParam(key);
  if (info == nullptr) return UnknownParam(key);
  if (info->unit == WaitParamUnit::kWaitKind) {
    auto kind = ParseWaitKind(value);
    if (!kind.ok()) return kind.status();
    params.fallback_kind = *kind;
    return absl::OkStatus();
  }
  double number = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "wait parameter %s=%s: expected a number (%s)", key, value,
        info->unit == WaitParamUnit::kCount ? "a count" : "seconds"));
  }
  return SetWaitParam(params, key, number);
}

absl::Status ParseWaitParams(std::string_view text, WaitParams* params) {
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("wait parameter '%s' is not key=value", item));
    }
    if (absl::Status s = SetWaitParam(*params, item.substr(0, eq), item.substr(eq + 1));
        !s.ok()) {
      return s;
    }
  }
  return ValidateWaitParams(*params);
}

double WaitParamNumber(const WaitParams& params, const WaitParamInfo& info) {
  WaitParams copy = params;
  switch (info.unit) {
    case WaitParamUnit::kCount: return *CountField(copy, info.name);
    case WaitParamUnit::kSeconds: return static_cast<double>(*SecondsField(copy, info.name)) / 1e9;
    case WaitParamUnit::kWaitKind: break;
  }
  return static_cast<double>(params.fallback_kind);
}

absl::Status ValidateWaitParams(const WaitParams& params) {
  if (!IsNamed(params.kind)) {
    return absl::InvalidArgumentError("the wait strategy kind is not one this library knows");
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
        "timeout-blocking needs a timeout: set timeout (seconds; timeout_ns in C++) to how "
        "long a wait may last");
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

WaitParams LoadWaitParams(const ConsumerState& entry) {
  // Relaxed: each field is independent tuning; a retune half-seen by one wait is harmless and
  // the next wait sees all of it (the version is bumped last, with release).
  WaitParams p;
  p.kind = LoadWaitKind(entry.wait_kind, WaitKind::kYielding);
  p.spin_tries = entry.wait_spin_tries.load(std::memory_order_relaxed);
  p.yield_tries = entry.wait_yield_tries.load(std::memory_order_relaxed);
  p.sleep_ceiling_ns = std::clamp<std::int64_t>(
      entry.wait_sleep_ceiling_ns.load(std::memory_order_relaxed), 0, 1'000'000'000);
  p.timeout_ns = std::max<std::int64_t>(entry.wait_timeout_ns.load(std::memory_order_relaxed), 0);
  p.phase_spin_ns =
      std::max<std::int64_t>(entry.wait_phase_spin_ns.load(std::memory_order_relaxed), 0);
  p.phase_yield_ns =
      std::max<std::int64_t>(entry.wait_phase_yield_ns.load(std::memory_order_relaxed), 0);
  p.fallback_kind = LoadWaitKind(entry.wait_fallback_kind, WaitKind::kBlocking);
  if (p.fallback_kind != WaitKind::kSleeping) p.fallback_kind = WaitKind::kBlocking;
  if (p.kind == WaitKind::kTimeoutBlocking && p.timeout_ns == 0) p.kind = WaitKind::kBlocking;
  return p;
}

void StoreWaitParams(ConsumerState& entry, const WaitParams& params) {
  StoreWaitKind(entry.wait_kind, params.kind);
  entry.wait_spin_tries.store(params.spin_tries, std::memory_order_relaxed);
  entry.wait_yield_tries.store(params.yield_tries, std::memory_order_relaxed);
  entry.wait_sleep_ceiling_ns.store(params.sleep_ceiling_ns, std::memory_order_relaxed);
  entry.wait_timeout_ns.store(params.timeout_ns, std::memory_order_relaxed);
  entry.wait_phase_spin_ns.store(params.phase_spin_ns, std::memory_order_relaxed);
  entry.wait_phase_yield_ns.store(params.phase_yield_ns, std::memory_order_relaxed);
  StoreWaitKind(entry.wait_fallback_kind, params.fallback_kind);
  // SYNC POINT: pairs with LoadWaitConfigVersion's acquire: a barrier that sees the new
  // version reads the new parameters.
  entry.wait_config_version.fetch_add(1, std::memory_order_release);
}

}  // namespace xdisruptor
