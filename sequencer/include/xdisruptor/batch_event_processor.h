// xdisruptor/batch_event_processor.h — the consumer loop: wait, hand a batch to the handler,
// release the batch.
//
// A handler is any type with
//   void on_event(T& event, std::int64_t sequence, bool end_of_batch);
// and optionally
//   on_start(), on_shutdown()
//   on_timeout(std::int64_t sequence)     the wait strategy's timeout elapsed
//   on_batch_start(std::int64_t batch_size, std::int64_t queue_depth)
//                                         before each batch: its size, and how many events
//                                         were ready when it was taken (the Disruptor's
//                                         onBatchStart; queue_depth >= batch_size when the
//                                         batch is capped by ProcessorOptions::max_batch)
//   on_handler_error(T& event, std::int64_t sequence, const std::exception& error)
//                                         an exception left on_event (else one line on stderr)
// The handler may change the event in place; stages that run after this one see the change.
// An exception from on_event is handled by the stage's ErrorPolicy, as the Disruptor's
// exception handlers and batch rewind do it. Run() belongs to one thread; Halt() may be called
// from any other thread of the same process. No virtual call: the handler is a template
// parameter and on_event inlines into the loop (the try block costs nothing until a throw).
#ifndef XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_
#define XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <optional>
#include <string>
#include <string_view>

#include "xdisruptor/consumer.h"
#include "xdisruptor/error_policy.h"
#include "xdisruptor/ring.h"
#include "xdisruptor/sequence_barrier.h"

namespace xdisruptor {

template <typename H, typename T>
concept EventHandler = requires(H& h, T& event, std::int64_t sequence, bool end_of_batch) {
  h.on_event(event, sequence, end_of_batch);
};

// The failure that stopped a stage (kStop, or kRetry out of retries).
struct HandlerFailure {
  std::int64_t sequence = -1;  // the event on_event failed on
  std::string what;            // the exception's what()
  int attempts = 1;            // runs of its batch, the first included
};

template <typename T, EventHandler<T> Handler>
class BatchEventProcessor {
 public:
  BatchEventProcessor(const Ring<T>& ring, Consumer& consumer, Handler& handler,
                      const ProcessorOptions& options = {})
      : ring_(&ring), consumer_(&consumer), handler_(&handler), options_(options) {}

  // Processes events until halted, until the ring is closed and drained, until a stage this
  // one runs after leaves, or until the error policy stops it. Returns why: kHalted,
  // kClosed, kUpstreamGone, kHandlerFailed (see failure()), or the barrier's other statuses
  // (kEvicted, kProducerGone, kProducerStalled). A Halt() that came before Run() makes it
  // return kHalted at once, without calling the handler.
  WaitStatus Run() {
    int expected = kIdle;
    if (!state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) {
      // Halted before it ran (or Run() called twice at once): do nothing.
      if (expected == kHalted) Reset();
      return WaitStatus::kHalted;
    }
    failed_ = false;
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
      const std::int64_t hi =
          options_.max_batch > 0 ? std::min(r.available, next + options_.max_batch - 1)
                                 : r.available;
      const std::int64_t done = ProcessBatch(slots, next, hi, r.available - next + 1);
      if (done >= next) {
        consumer_->Release(done, static_cast<std::uint64_t>(done - next + 1));
      }
      if (done < hi) [[unlikely]] {  // the error policy stopped the stage
        why = WaitStatus::kHandlerFailed;
        break;
      }
      next = hi + 1;
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

  // Where and why the error policy stopped the last Run() (empty otherwise).
  std::optional<HandlerFailure> failure() const {
    return failed_ ? std::optional<HandlerFailure>(failure_) : std::nullopt;
  }

 private:
  static constexpr int kIdle = 0;
  static constexpr int kRunning = 1;
  static constexpr int kHalted = 2;

  void Reset() {
    consumer_->barrier().ClearAlert();
    state_.store(kIdle, std::memory_order_release);
  }

  // Runs the batch lo..hi under the error policy; returns the last sequence done (handled or
  // skipped): hi, or less when the stage stops (the failing event and those after it stay
  // unreleased).
  std::int64_t ProcessBatch(const typename Ring<T>::Slots& slots, std::int64_t lo,
                            std::int64_t hi, std::int64_t queue_depth) {
    int attempts = 1;
    std::int64_t from = lo;
    for (;;) {
      if (from == lo) {
        if constexpr (requires { handler_->on_batch_start(hi - lo + 1, queue_depth); }) {
          handler_->on_batch_start(hi - lo + 1, queue_depth);
        }
      }
      try {
        HandleBatch(slots, from, hi);
        return hi;
      } catch (const std::exception& e) {
        from = OnFailure(slots, lo, e, e.what(), &attempts);
      } catch (...) {
        from = OnFailure(slots, lo, std::runtime_error("a non-standard exception"),
                         "a non-standard exception", &attempts);
      }
      if (from < lo) return current_ - 1;  // stop
      if (from > hi) return hi;            // skipped the last event
    }
  }

  // Applies the policy to the failure at current_; returns where to go on from (lo again
  // to rerun the batch, the next event to skip, or lo - 1 to stop).
  [[gnu::noinline]] std::int64_t OnFailure(const typename Ring<T>::Slots& slots,
                                           std::int64_t lo, const std::exception& error,
                                           const char* what, int* attempts) {
    consumer_->CountHandlerError();
    T& event = *reinterpret_cast<T*>(slots.base + (static_cast<std::uint64_t>(current_) &
                                                   slots.mask) * slots.slot_size);
    const ErrorPolicy action = NextErrorAction(options_, *attempts);
    if constexpr (requires { handler_->on_handler_error(event, current_, error); }) {
      handler_->on_handler_error(event, current_, error);
    } else {
      std::fprintf(stderr, "xdisruptor: stage '%.*s': handler failed on event %lld: %s (%.*s)\n",
                   static_cast<int>(consumer_->name().size()), consumer_->name().data(),
                   static_cast<long long>(current_), what,
                   static_cast<int>(ErrorActionReport(action).size()),
                   ErrorActionReport(action).data());
    }
    switch (action) {
      case ErrorPolicy::kSkip:
        return current_ + 1;
      case ErrorPolicy::kRetry:
        ++*attempts;
        Pause(options_.retry_pause_ns);
        return lo;
      case ErrorPolicy::kStop:
        break;
    }
    failure_ = HandlerFailure{.sequence = current_, .what = what, .attempts = *attempts};
    failed_ = true;
    return lo - 1;
  }

  static void Pause(std::int64_t ns) {
    if (ns <= 0) return;
    timespec t{.tv_sec = static_cast<time_t>(ns / 1'000'000'000),
               .tv_nsec = static_cast<long>(ns % 1'000'000'000)};
    nanosleep(&t, nullptr);
  }

  // Calls the handler for lo..hi, walking each run of adjacent slots (at most two: the batch
  // may wrap) with a pointer instead of masking and multiplying per event. current_ tracks
  // the event in hand, for the error policy.
  void HandleBatch(const typename Ring<T>::Slots& slots, std::int64_t lo, std::int64_t hi) {
    for (std::int64_t s = lo; s <= hi;) {
      const std::uint64_t index = static_cast<std::uint64_t>(s) & slots.mask;
      const std::int64_t run_end =
          std::min(hi, s + static_cast<std::int64_t>(slots.mask - index));
      std::byte* p = slots.base + index * slots.slot_size;
      for (; s <= run_end; ++s, p += slots.slot_size) {
        current_ = s;
        handler_->on_event(*reinterpret_cast<T*>(p), s, s == hi);
      }
    }
  }

  const Ring<T>* ring_;
  Consumer* consumer_;
  Handler* handler_;
  ProcessorOptions options_;
  std::int64_t current_ = 0;
  HandlerFailure failure_{};  // (not an optional: GCC 12 misreads its reset as uninitialised)
  bool failed_ = false;
  std::atomic<int> state_{kIdle};
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_
