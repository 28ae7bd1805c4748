// market_tick.h — the event of the pipeline demo: a quote for one of a few dozen symbols,
// which an enricher stage completes in place (mid, spread).
#ifndef XDISRUPTOR_EXAMPLES_MARKET_TICK_H_
#define XDISRUPTOR_EXAMPLES_MARKET_TICK_H_

#include <cstddef>
#include <cstdint>

namespace examples {

struct MarketTick {
  std::int64_t sequence;      // the feed's count, equal to the ring sequence
  std::int64_t timestamp_ns;  // CLOCK_MONOTONIC when published
  std::int32_t symbol_id;     // 0 .. kSymbolCount-1
  std::int32_t size;          // traded quantity
  double bid;
  double ask;
  double mid;                 // (bid + ask) / 2, written by the enricher (0 until then)
  double spread;              // ask - bid, written by the enricher (0 until then)
  char symbol[8];
};
static_assert(sizeof(MarketTick) == 64);
static_assert(offsetof(MarketTick, mid) == 40 && offsetof(MarketTick, symbol) == 56);

// The schema stored in the ring: Python stages rebuild this exact layout as a numpy dtype.
inline constexpr char kMarketTickSchema[] =
    "<i8:sequence,<i8:timestamp_ns,<i4:symbol_id,<i4:size,<f8:bid,<f8:ask,<f8:mid,"
    "<f8:spread,S8:symbol";

inline constexpr int kSymbolCount = 32;

}  // namespace examples

#endif  // XDISRUPTOR_EXAMPLES_MARKET_TICK_H_
