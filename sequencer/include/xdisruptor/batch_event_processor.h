// xdisruptor/batch_event_processor.h — the consumer loop: wait, hand a batch to the handler,
// release the batch.
//
// A handler is any type with
//   void on_event(T& event, std::int64_t sequence, bool end_of_batch);
// and optionally on_start(), on_shutdown() and on_timeout(std::int64_t sequence) (called when
// the consumer's wait strategy has a timeout and it elapses). The handler may change the
// event in place; stages that run after this one see the change. Run() belongs to one thread;
// Halt() may be called from any other thread of the same process. No virtual call: the
// handler is a template parameter and on_event inlines into the loop.
#ifndef XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_
#define XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "xdisruptor/consumer.h"
#include "xdisruptor/ring.h"
#include "xdisruptor/sequence_barrier.h"

namespace xdisruptor {

template <typename H, typename T>
concept EventHandler = requires(H& h, T& event, std::int64_t sequence, bool end_of_batch) {
  h.on_event(event, sequence, end_of_batch);
};

template <typename T, EventHandler<T> Handler>
class BatchEventProcessor {
 public:
  BatchEventProcessor(const Ring<T>& ring, Consumer& consumer, Handler& handler)
      : ring_(&ring), consumer_(&consumer), handler_(&handler) {}

  // Processes events until halted, until the ring is closed and drained, or until a stage this
  // one runs after leaves. Returns which: kAlerted, kClosed or kUpstreamGone. A Halt() that
  // came before Run() makes it return kAlerted at once, without calling the handler.
  WaitStatus Run() {
    int expected = kIdle;
    if (!state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) {
      // Halted before it ran (or Run() called twice at once): do nothing.
      if (expected == kHalted) Reset();
      return WaitStatus::kAlerted;
    }
    if constexpr (requires { handler_->on_start(); }) handler_->on_start();
    SequenceBarrier& barrier = consumer_->barrier();
    const typename Ring<T>::Slots slots = ring_->slots();
    std::int64_t next = consumer_->sequence() + 1;
    WaitStatus why;
    for (;;) {
      const WaitResult r = barrier.WaitFor(next);
      if (r.status != WaitStatus::kOk) [[unlikely]] {
        if (r.status == WaitStatus::kTimeout) {
          if constexpr (requires { handler_->on_timeout(next - 1); }) {
            handler_->on_timeout(next - 1);
          }
          continue;
        }
        why = r.status;
        break;
      }
      HandleBatch(slots, next, r.available);
      consumer_->Release(r.available, static_cast<std::uint64_t>(r.available - next + 1));
      next = r.available + 1;
    }
    if constexpr (requires { handler_->on_shutdown(); }) handler_->on_shutdown();
    Reset();
    return why;
  }

  // Asks Run() to return after the batch in hand (or at once, if it has not started yet).
  void Halt() {
    state_.store(kHalted, std::memory_order_release);
    consumer_->barrier().Alert();
  }

 private:
  static constexpr int kIdle = 0;
  static constexpr int kRunning = 1;
  static constexpr int kHalted = 2;

  void Reset() {
    consumer_->barrier().ClearAlert();
    state_.store(kIdle, std::memory_order_release);
  }

  // Calls the handler for lo..hi, walking each run of adjacent slots (at most two: the batch
  // may wrap) with a pointer instead of masking and multiplying per event.
  void HandleBatch(const typename Ring<T>::Slots& slots, std::int64_t lo, std::int64_t hi) {
    for (std::int64_t s = lo; s <= hi;) {
      const std::uint64_t index = static_cast<std::uint64_t>(s) & slots.mask;
      const std::int64_t run_end =
          std::min(hi, s + static_cast<std::int64_t>(slots.mask - index));
      std::byte* p = slots.base + index * slots.slot_size;
      for (; s <= run_end; ++s, p += slots.slot_size) {
        handler_->on_event(*reinterpret_cast<T*>(p), s, s == hi);
      }
    }
  }

  const Ring<T>* ring_;
  Consumer* consumer_;
  Handler* handler_;
  std::atomic<int> state_{kIdle};
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_
