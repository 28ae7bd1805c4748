// xdisruptor/translators.h — publish through a function that fills the event in its slot (the
// Disruptor's EventTranslator family): claim, translate, publish in one call, so a slot is
// never left claimed and unpublished.
//
//   PublishEvent(ring, producer, [](Tick& t, std::int64_t seq, double px) { ... }, 101.5);
//   if (!TryPublishEvent(ring, producer, fill)) { /* full now */ }
//   PublishEvents(ring, producer, fill, std::span(prices), {.first = 1, .count = 2});
//
// `translate(T& event, std::int64_t sequence, args...)` runs on the producer's thread between
// the claim and the publish; for a batch it gets the i-th element of each argument span. It
// must not throw: a claimed slot has to be published (an exception would stall consumers of a
// multi-producer ring). Works with either sequencer kind.
#ifndef XDISRUPTOR_TRANSLATORS_H_
#define XDISRUPTOR_TRANSLATORS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/ring.h"

namespace xdisruptor {

// Which part of the argument spans a batch publishes (publishEvents' batchStartsAt/batchSize).
struct BatchRange {
  std::int64_t first = 0;
  std::optional<std::int64_t> count{};  // unset: to the end of the spans
};

template <typename T, typename Producer, typename F, typename... Args>
std::int64_t PublishEvent(Ring<T>& ring, Producer& producer, F&& translate, Args&&... args) {
  const std::int64_t s = producer.Next();
  translate(ring[s], s, args...);
  producer.Publish(s);
  return s;
}

// False at once when the ring has no room (nothing claimed).
template <typename T, typename Producer, typename F, typename... Args>
bool TryPublishEvent(Ring<T>& ring, Producer& producer, F&& translate, Args&&... args) {
  const absl::StatusOr<std::int64_t> s = producer.TryNext();
  if (!s.ok()) return false;
  translate(ring[*s], *s, args...);
  producer.Publish(*s);
  return true;
}

namespace internal {
// InvalidArgument, and nothing published, for a range outside the spans, an empty or negative
// one, or one larger than the ring (publishEvents' checks).
template <typename... Spans>
absl::StatusOr<std::pair<std::int64_t, std::int64_t>> CheckBatch(std::uint64_t capacity, BatchRange range,
                                      const Spans&... spans) {
  std::int64_t size = -1;
  ((size = size < 0 ? static_cast<std::int64_t>(spans.size())
                    : std::min(size, static_cast<std::int64_t>(spans.size()))),
   ...);
  const std::int64_t count = range.count.value_or(size - range.first);
  if (range.first < 0 || count < 1 || range.first + count > size ||
      count > static_cast<std::int64_t>(capacity)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "a batch of %d events from %d of spans of %d: it must hold 1 to the ring's capacity "
        "(%d) events within the spans",
        count, range.first, size, capacity));
  }
  return std::pair{range.first, count};
}
}  // namespace internal

namespace internal {
// Checks `range`, claims by `claim(count)`, translates and publishes the batch.
template <typename T, typename Producer, typename F, typename Claim, typename... Elements>
absl::StatusOr<std::int64_t> PublishBatch(Ring<T>& ring, Producer& producer, F& translate,
                                          BatchRange range, Claim claim,
                                          std::span<Elements>... spans) {
  auto checked = CheckBatch(ring.capacity(), range, spans...);
  if (!checked.ok()) return checked.status();
  const auto [first, count] = *checked;
  const absl::StatusOr<std::int64_t> hi = claim(count);
  if (!hi.ok()) return hi.status();
  const std::int64_t lo = *hi - count + 1;
  for (std::int64_t i = 0; i < count; ++i) {
    translate(ring[lo + i], lo + i, spans[static_cast<std::size_t>(first + i)]...);
  }
  producer.Publish(lo, *hi);
  return *hi;
}
}  // namespace internal

// Claims `range.count` slots at once and calls translate for each with the matching elements
// of `spans`; returns the highest sequence published.
template <typename T, typename Producer, typename F, typename... Elements>
absl::StatusOr<std::int64_t> PublishEvents(Ring<T>& ring, Producer& producer, F&& translate,
                                           BatchRange range, std::span<Elements>... spans) {
  return internal::PublishBatch(
      ring, producer, translate, range, [&](std::int64_t n) { return producer.Next(n); },
      spans...);
}

// The same, but ResourceExhausted at once (nothing claimed) when the ring has no room.
template <typename T, typename Producer, typename F, typename... Elements>
absl::StatusOr<std::int64_t> TryPublishEvents(Ring<T>& ring, Producer& producer, F&& translate,
                                              BatchRange range, std::span<Elements>... spans) {
  return internal::PublishBatch(
      ring, producer, translate, range, [&](std::int64_t n) { return producer.TryNext(n); },
      spans...);
}

}  // namespace xdisruptor

#endif  // XDISRUPTOR_TRANSLATORS_H_
