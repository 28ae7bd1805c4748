#include <charconv>
#include <cstdint>
#include <string_view>

#include "absl/strings/str_format.h"
#include "xdisruptor/bridge.h"

namespace xdisruptor::bridge {
namespace {

bool ParseInt(const char* text, std::int64_t* out) {
  if (text == nullptr) return false;
  const std::string_view s(text);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::string MessageId(std::int64_t epoch, std::int64_t first, std::int64_t count) {
  return absl::StrFormat("%d-%d-%d", epoch, first, count);
}

absl::StatusOr<WireBatch> DecodeBatch(const std::function<const char*(const char*)>& header,
                                      std::span<const char> body) {
  WireBatch b;
  const char* ring = header(kHeaderRing);
  if (ring == nullptr) return absl::InvalidArgumentError("not a bridge message: no Xd-Ring header");
  b.ring = ring;
  if (!ParseInt(header(kHeaderEpoch), &b.epoch)) {
    return absl::InvalidArgumentError("bridge message without a valid Xd-Epoch");
  }
  if (const char* close = header(kHeaderClose); close != nullptr) {
    if (!ParseInt(close, &b.close_at) || b.close_at < -1 || !body.empty()) {
      return absl::InvalidArgumentError("bridge close marker is malformed");
    }
    return b;
  }
  std::int64_t size = 0;
  if (!ParseInt(header(kHeaderFirst), &b.first) || b.first < 0 ||
      !ParseInt(header(kHeaderCount), &b.count) || b.count <= 0 ||
      !ParseInt(header(kHeaderSize), &size) || size <= 0 || size > (1 << 20)) {
    return absl::InvalidArgumentError(
        "bridge message without valid Xd-First, Xd-Count and Xd-Event-Size headers");
  }
  if (b.first > INT64_MAX - b.count) {
    return absl::InvalidArgumentError("bridge message: Xd-First + Xd-Count overflows");
  }
  b.event_size = static_cast<std::uint32_t>(size);
  // count * size could overflow: compare by division first.
  const auto body_size = static_cast<std::int64_t>(body.size());
  if (b.count > body_size / size || body_size != b.count * size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bridge message of %d events of %d bytes has %d bytes (truncated or padded)", b.count,
        size, body.size()));
  }
  if (const char* schema = header(kHeaderSchema); schema != nullptr) b.schema = schema;
  b.events = body;
  return b;
}

}  // namespace xdisruptor::bridge
