// internal/gating.h — what producers of both kinds read of the consumers that gate them.
#ifndef XDISRUPTOR_SEQUENCER_INTERNAL_GATING_H_
#define XDISRUPTOR_SEQUENCER_INTERNAL_GATING_H_

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>

#include "xdisruptor/layout.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor::internal {

// The slowest gating consumer's sequence, or `start` when none is slower (or none gates).
// `start` must be a value a joining consumer can see (see docs/architecture.md, join protocol).
inline std::int64_t MinimumGating(const ProducerState& producer, const ConsumerState* consumers,
                                  std::int64_t start) {
  // Acquire pairs with Consumer::Register's seq_cst RMW (the bit is set after its sequence).
  std::uint64_t mask = producer.gating_mask.load(std::memory_order_acquire);
  std::int64_t minimum = start;
  while (mask != 0) {
    const int i = std::countr_zero(mask);
    mask &= mask - 1;
    // SYNC POINT: pairs with Consumer::Release's release store: the consumer's reads of the
    // slots up to its sequence happen before the producer overwrites them.
    minimum = std::min(minimum, consumers[i].sequence.load(std::memory_order_acquire));
  }
  return minimum;
}

// A gating consumer less than a lap ahead of `wrap_point`, for a producer to sleep on.
inline wait::BlockTarget LaggingConsumer(const ProducerState& producer, ConsumerState* consumers,
                                         std::int64_t wrap_point, std::uint32_t producer_index) {
  std::uint64_t mask = producer.gating_mask.load(std::memory_order_acquire);
  while (mask != 0) {
    const int i = std::countr_zero(mask);
    mask &= mask - 1;
    ConsumerState& c = consumers[i];
    if (c.sequence.load(std::memory_order_acquire) < wrap_point) {
      wait::BlockTarget t;
      t.sequence = &c.sequence;
      t.needed = wrap_point;
      t.notification = &c.notification;
      t.sleeper = {.producer = true, .index = producer_index};
      t.active_status = &c.status;  // a consumer that leaves stops gating: re-check
      return t;
    }
  }
  return {};
}

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_SEQUENCER_INTERNAL_GATING_H_
