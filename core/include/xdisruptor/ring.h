// xdisruptor/ring.h — typed access to a ring's slots: Ring<T> for trivially copyable T.
//
// Ring<T> owns a RingSegment and views each slot as a T. Create sizes the slots for T
// (sizeof(T) rounded up to 8) unless told otherwise; Attach refuses a ring whose slots cannot
// hold a T, whose slot alignment does not suit T, or whose schema describes events of another
// size or differs from the one the caller expects. Movable; any thread may index it, but
// what a slot holds is only defined between a barrier's wait and the consumer's release.
#ifndef XDISRUPTOR_RING_H_
#define XDISRUPTOR_RING_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/schema.h"

namespace xdisruptor {

// What a typed attach expects of the ring besides room for a T.
struct TypedAttachOptions {
  std::string expected_schema{};  // when non-empty, the ring's schema must be exactly this
  AttachOptions attach{};
};

// Checks that `segment`'s slots can hold T and that its schema agrees with T and `expected`.
template <typename T>
absl::Status CheckEventType(const RingSegment& segment, std::string_view expected_schema) {
  if (sizeof(T) > segment.slot_size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ring '%s' has %d-byte slots; the event type needs %d bytes", segment.name(),
        segment.slot_size(), sizeof(T)));
  }
  if (alignof(T) > 64 || segment.slot_size() % alignof(T) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ring '%s' has %d-byte slots, which do not keep the event type's %d-byte alignment",
        segment.name(), segment.slot_size(), alignof(T)));
  }
  if (!expected_schema.empty() && !SameSchema(segment.schema(), expected_schema)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ring '%s' carries schema \"%s\" but this consumer expects \"%s\"", segment.name(),
        segment.schema(), expected_schema));
  }
  if (!segment.schema().empty()) {
    auto schema = ParseSchema(segment.schema());
    if (!schema.ok()) return schema.status();
    if (schema->itemsize != sizeof(T)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "ring '%s' carries %d-byte events (schema \"%s\") but the event type has %d bytes",
          segment.name(), schema->itemsize, segment.schema(), sizeof(T)));
    }
  }
  return absl::OkStatus();
}

template <typename T>
class Ring {
  static_assert(std::is_trivially_copyable_v<T>, "ring events must be trivially copyable");
  static_assert(alignof(T) <= 64, "slots are at most 64-byte aligned");

 public:
  // Fills in slot_size from T (sizeof(T) rounded up to 8) when it is 0.
  static absl::StatusOr<Ring> Create(RingOptions options) {
    if (options.slot_size == 0) {
      options.slot_size = static_cast<std::uint32_t>((sizeof(T) + 7) / 8 * 8);
    }
    auto segment = RingSegment::Create(options);
    if (!segment.ok()) return segment.status();
    if (absl::Status s = CheckEventType<T>(*segment, ""); !s.ok()) {
      RingSegment::Remove(options.name).IgnoreError();
      return s;
    }
    return Ring(*std::move(segment));
  }

  static absl::StatusOr<Ring> Attach(std::string_view name,
                                     const TypedAttachOptions& options = {}) {
    auto segment = RingSegment::Attach(name, options.attach);
    if (!segment.ok()) return segment.status();
    if (absl::Status s = CheckEventType<T>(*segment, options.expected_schema); !s.ok()) return s;
    return Ring(*std::move(segment));
  }

  T& operator[](std::int64_t sequence) const {
    return *reinterpret_cast<T*>(segment_.slot(sequence));
  }
  // A copyable slot addresser for hot loops: held in registers, it cannot alias what a
  // handler writes, so the compiler need not reload the geometry for every event.
  struct Slots {
    std::byte* base;
    std::uint64_t mask;
    std::uint64_t slot_size;
    T& operator[](std::int64_t sequence) const {
      return *reinterpret_cast<T*>(base + (static_cast<std::uint64_t>(sequence) & mask) *
                                              slot_size);
    }
  };
  Slots slots() const { return {segment_.slot(0), capacity() - 1, segment_.slot_size()}; }
  RingSegment& segment() { return segment_; }
  const RingSegment& segment() const { return segment_; }
  std::uint64_t capacity() const { return segment_.capacity(); }

 private:
  explicit Ring(RingSegment segment) : segment_(std::move(segment)) {}
  RingSegment segment_;
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_RING_H_
