// xdisruptor/names.h — one spelling per value: the name tables of the enums every surface
// shows (C++, Python, the tool, the launcher's TOML, the stage environment, metric labels).
//
// Each enum that a user can name has exactly one table of (value, name) pairs, next to the
// enum's own header; NameOf and ParseName work on any of them, so there is one parser and one
// error message shape ("unknown stall policy 'x'; use hold or evict"). The Python package reads
// the same tables from the compiled module (xdisruptor._xdisruptor) instead of copying them.
// This header holds the tables of the segment's own enums (layout.h). Pure; any thread.
#ifndef XDISRUPTOR_NAMES_H_
#define XDISRUPTOR_NAMES_H_

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/layout.h"

namespace xdisruptor {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

template <typename E, std::size_t N>
using NameTable = std::array<EnumName<E>, N>;

// The name of `value`, or "unknown" for a value the table lacks (from a corrupt segment).
template <typename E, std::size_t N>
constexpr std::string_view NameOf(const NameTable<E, N>& table, E value) {
  for (const EnumName<E>& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "unknown";
}

// "a, b or c": the table's names, for messages.
template <typename E, std::size_t N>
std::string NameList(const NameTable<E, N>& table) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    out += i == 0 ? "" : (i + 1 == N ? " or " : ", ");
    out += table[i].name;
  }
  return out;
}

// The value named `text`; InvalidArgument naming `what` and the choices otherwise.
template <typename E, std::size_t N>
absl::StatusOr<E> ParseName(const NameTable<E, N>& table, std::string_view text,
                            std::string_view what) {
  for (const EnumName<E>& entry : table) {
    if (entry.name == text) return entry.value;
  }
  std::string message = "unknown ";
  message.append(what).append(" '").append(text).append("'; use ").append(NameList(table));
  return absl::InvalidArgumentError(message);
}

// Each nameable enum specialises EnumNames with its table (kTable) and what a message calls
// it (kWhat); NameOf(value) and ParseEnum<E>(text) then work for it.
template <typename E>
struct EnumNames;

template <typename E>
constexpr std::string_view NameOf(E value) {
  return NameOf(EnumNames<E>::kTable, value);
}
template <typename E>
absl::StatusOr<E> ParseEnum(std::string_view text) {
  return ParseName(EnumNames<E>::kTable, text, EnumNames<E>::kWhat);
}
template <typename E>
constexpr bool IsNamed(E value) {
  return NameOf(value) != "unknown";
}

template <>
struct EnumNames<StallPolicy> {
  static constexpr std::string_view kWhat = "stall policy";
  static constexpr NameTable<StallPolicy, kStallPolicyCount> kTable{{
      {StallPolicy::kHold, "hold"}, {StallPolicy::kEvict, "evict"}}};
};
template <>
struct EnumNames<ConsumerStatus> {
  static constexpr std::string_view kWhat = "consumer status";
  static constexpr NameTable<ConsumerStatus, kConsumerStatusCount> kTable{{
      {ConsumerStatus::kFree, "free"}, {ConsumerStatus::kJoining, "joining"},
      {ConsumerStatus::kActive, "active"}, {ConsumerStatus::kEvicted, "evicted"}}};
};
template <>
struct EnumNames<SequencerKind> {
  static constexpr std::string_view kWhat = "producer kind";
  static constexpr NameTable<SequencerKind, 2> kTable{{
      {SequencerKind::kSingleProducer, "single"}, {SequencerKind::kMultiProducer, "multi"}}};
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_NAMES_H_
