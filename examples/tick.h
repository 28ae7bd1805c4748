// tick.h — the event of the examples: one market-data tick in a 64-byte slot.
#ifndef XDISRUPTOR_EXAMPLES_TICK_H_
#define XDISRUPTOR_EXAMPLES_TICK_H_

#include <cstddef>
#include <cstdint>

namespace examples {

struct Tick {
  std::int64_t sequence;      // the producer's count, equal to the ring sequence
  std::int64_t timestamp_ns;  // CLOCK_MONOTONIC when published
  double price;
  std::int64_t quantity;
  char symbol[16];
  double mid;                 // filled in place by an enricher stage (0 until then)
  std::uint64_t checksum;     // over the fields above except mid
};
static_assert(sizeof(Tick) == 64);
static_assert(offsetof(Tick, symbol) == 32 && offsetof(Tick, checksum) == 56);

// The schema text stored in the ring, so Python consumers rebuild this exact layout.
inline constexpr char kTickSchema[] =
    "<i8:sequence,<i8:timestamp_ns,<f8:price,<i8:quantity,S16:symbol,<f8:mid,<u8:checksum";

inline std::uint64_t TickChecksum(const Tick& t) {
  std::uint64_t h = static_cast<std::uint64_t>(t.sequence) * 0x9E3779B97F4A7C15ull;
  h ^= static_cast<std::uint64_t>(t.quantity) + (h << 6) + (h >> 2);
  for (char c : t.symbol) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

// A text message with its sequence and publish time: the classic C++-feed, Python-reader case.
struct Message {
  std::int64_t sequence;
  std::int64_t timestamp_ns;  // CLOCK_MONOTONIC when published
  char text[48];              // "message <sequence>", zero-padded
};
static_assert(sizeof(Message) == 64);

inline constexpr char kMessageSchema[] = "<i8:sequence,<i8:timestamp_ns,S48:text";

}  // namespace examples

#endif  // XDISRUPTOR_EXAMPLES_TICK_H_
