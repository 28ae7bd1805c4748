// xdisruptor/batch_event_processor.h — the consumer loop: wait, hand a batch to the handler,
// release the batch.
//
// A handler is any type with
//   void on_event(T& event, std::int64_t sequence, bool end_of_batch);
// and optionally
//   on_start(), on_shutdown()             always paired, once per Run (also when halted
//                                         before it started)
//   on_timeout(std::int64_t sequence)     the wait strategy's timeout elapsed
//   on_batch_start(std::int64_t batch_size, std::int64_t queue_depth)
//                                         before each batch: its size, and how many events
//                                         were ready when it was taken (the Disruptor's
//                                         onBatchStart; queue_depth >= batch_size when the
//                                         batch is capped by ProcessorOptions::max_batch)
//   set_sequence_callback(SequenceCallback) given once before on_start: Release(s) from
//                                         inside on_event releases events up to s before the
//                                         batch ends (the Disruptor's setSequenceCallback)
//   on_handler_error(T& event, std::int64_t sequence, const std::exception& error)
//                                         told of every failure of on_event (instead of the
//                                         preset's line on stderr)
// The handler may change the event in place; stages that run after this one see the change.
// A failure is handled as error_policy.h describes: a RewindableError goes to the rewind
// strategy, anything else to the exception handler (the ProcessorOptions presets unless
// SetExceptionHandler / SetRewindStrategy gave others). Run() belongs to one thread; Halt()
// may be called from any other thread of the same process. No virtual call on the data path:
// the handler is a template parameter and on_event inlines into the loop (the try block costs
// nothing until a throw; the error handlers are virtual, called only after one).
#ifndef XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_
#define XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
#include "xdisruptor/catch_up.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/error_policy.h"
#include "xdisruptor/ring.h"
#include "xdisruptor/sequence_barrier.h"

namespace xdisruptor {

template <typename H, typename T>
concept EventHandler = requires(H& h, T& event, std::int64_t sequence, bool end_of_batch) {
  h.on_event(event, sequence, end_of_batch);
};

// Given to a handler's set_sequence_callback: Release(s) from inside on_event releases the
// events up to s (at most the one in hand) at once, before the batch ends, so the producer and
// later stages need not wait for the rest of a long batch. Released events are never handed
// out again, not even by a rewind.
class SequenceCallback {
 public:
  SequenceCallback(Consumer* consumer, std::int64_t* released)
      : consumer_(consumer), released_(released) {}
  void Release(std::int64_t sequence) {
    if (sequence <= *released_) return;
    consumer_->Release(sequence, static_cast<std::uint64_t>(sequence - *released_));
    *released_ = sequence;
  }

 private:
  Consumer* consumer_;
  std::int64_t* released_;
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
      : ring_(&ring),
        consumer_(&consumer),
        handler_(&handler),
        options_(options),
        max_batch_(EffectiveMaxBatch(options, ring.capacity())),
        preset_handler_(options.error_policy, std::string(consumer.name())),
        preset_rewind_(options) {
    if constexpr (requires(const std::exception& e) { handler.on_handler_error(
                      std::declval<T&>(), std::int64_t{}, e); }) {
      preset_handler_.set_report(false);  // the handler reports its own failures
    }
  }

  // Decides fatal failures (and start/shutdown failures) instead of the preset of
  // ProcessorOptions::error_policy; it must outlive the processor's runs.
  void SetExceptionHandler(ExceptionHandler<T>& handler) { exceptions_ = &handler; }
  // Decides RewindableErrors instead of the preset (kRetry rewinds max_retries times).
  void SetRewindStrategy(RewindStrategy& strategy) { rewind_ = &strategy; }

  // Processes events until halted, until the ring is closed and drained, until a stage this
  // one runs after leaves, or until the error handling stops it. Returns why: kHalted,
  // kClosed, kUpstreamGone, kHandlerFailed (see failure()), kLapped (observers: the batch
  // handed out last may hold overwritten events and was not released), or the barrier's other
  // statuses (kEvicted, kProducerGone, kProducerStalled). on_start and on_shutdown are called once
  // each per Run, also when a Halt() came first (then Run returns kHalted right after them,
  // as the Disruptor's earlyExit does).
  WaitStatus Run() {
    int expected = kIdle;
    if (!state_.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) {
      if (expected == kHalted) {  // halted before it ran: still one start, one shutdown
        NotifyStart();
        NotifyShutdown();
        Reset();
      }
      return WaitStatus::kHalted;  // (or Run() called twice at once: the second does nothing)
    }
    failed_ = false;
    NotifyStart();
    const WaitStatus why = Loop();
    NotifyShutdown();
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
  static constexpr std::int64_t kCatchUpBatch = 4096;  // journal events per batch at most
  static constexpr std::int64_t kCatchUpGiveUpNs = 5'000'000'000;

  WaitStatus Loop() {
    if (consumer_->catching_up()) {
      if (const WaitStatus why = CatchUp(); why != WaitStatus::kOk) return why;
    }
    if (consumer_->member()) return MemberLoop();
    SequenceBarrier& barrier = consumer_->barrier();
    const typename Ring<T>::Slots slots = ring_->slots();
    const bool observer = consumer_->observer();
    std::int64_t next = consumer_->sequence() + 1;
    for (;;) {
      const WaitResult r = barrier.WaitFor(next);
      if (r.status != WaitStatus::kOk) [[unlikely]] {
        if (r.status != WaitStatus::kTimeout) return r.status;
        if constexpr (requires { handler_->on_timeout(next - 1); }) handler_->on_timeout(next - 1);
        continue;
      }
      const std::int64_t hi = std::min(r.available, next + max_batch_ - 1);
      released_ = next - 1;
      // An observer is told it was lapped before a batch already overwritten is handed out,
      // and after one overwritten while it was handled (that batch is not released).
      if (observer && consumer_->Lapped(next)) [[unlikely]] return WaitStatus::kLapped;
      const std::int64_t done = ProcessBatch(slots, next, hi, r.available);
      if (observer && consumer_->Lapped(next)) [[unlikely]] return WaitStatus::kLapped;
      if (done > released_) {
        consumer_->Release(done, static_cast<std::uint64_t>(done - released_));
        released_ = done;
      }
      if (done < hi) [[unlikely]] return WaitStatus::kHandlerFailed;  // the stage stopped
      next = hi + 1;
    }
  }

  // A worker group's member (docs/worker-groups.md): the runs it claims, in batches of at most
  // max_batch; a run taken over from a dead member comes first and may repeat events.
  WaitStatus MemberLoop() {
    const typename Ring<T>::Slots slots = ring_->slots();
    for (;;) {
      const ClaimedRun run = consumer_->NextRun();
      if (run.status != WaitStatus::kOk) [[unlikely]] {
        if (run.status != WaitStatus::kTimeout) return run.status;
        if constexpr (requires { handler_->on_timeout(consumer_->sequence()); }) {
          handler_->on_timeout(consumer_->sequence());
        }
        continue;
      }
      for (std::int64_t next = run.first; next <= run.last;) {
        const std::int64_t hi = std::min(run.last, next + max_batch_ - 1);
        released_ = next - 1;
        const std::int64_t done = ProcessBatch(slots, next, hi, run.last);
        if (done > released_) {
          consumer_->Release(done, static_cast<std::uint64_t>(done - released_));
          released_ = done;
        }
        if (done < hi) [[unlikely]] return WaitStatus::kHandlerFailed;
        next = hi + 1;
      }
    }
  }

  // A consumer registered with a journal: the events from its position on out of the journal,
  // in batches, then the join onto the ring at the first sequence the journal does not hold
  // (Consumer::FinishCatchUp; catch_up.h). kOk once joined.
  WaitStatus CatchUp() {
    CatchUpSource& source = *consumer_->catch_up();
    const std::int64_t max = options_.max_batch > 0 ? options_.max_batch : kCatchUpBatch;
    std::int64_t next = consumer_->sequence() + 1;
    std::int64_t stuck_since = 0;  // when joining first failed with the journal not growing
    std::int64_t stuck_last = kInitialSequence;
    for (;;) {
      if (state_.load(std::memory_order_acquire) == kHalted) return WaitStatus::kHalted;
      const absl::StatusOr<CatchUpBatch> batch = source.Read(next, max);
      if (!batch.ok()) {
        // Older than the journal (a recorder started late, or retention): the ring may still
        // hold it; a join there is as good.
        if (batch.status().code() == absl::StatusCode::kOutOfRange &&
            consumer_->FinishCatchUp(next).ok()) {
          return WaitStatus::kOk;
        }
        return Missed(next, batch.status().ToString());
      }
      if (batch->count > 0) {
        const std::int64_t hi = next + batch->count - 1;
        released_ = next - 1;
        const std::uint64_t slot_size = ring_->slots().slot_size;
        // The journal is mapped read-only and is not the ring: handlers take T& and may write
        // in place, so they get a copy of the batch (a write into the mapping would fault).
        const std::size_t bytes = static_cast<std::size_t>(batch->count) * slot_size;
        std::byte* copy = catch_up_copy_.Reserve(bytes);
        std::memcpy(copy, batch->data, bytes);
        const LinearSlots slots{copy, next, slot_size};
        const std::int64_t done = ProcessBatch(slots, next, hi, hi);
        if (done > released_) {
          consumer_->Release(done, static_cast<std::uint64_t>(done - released_));
          released_ = done;
        }
        if (done < hi) return WaitStatus::kHandlerFailed;
        next = hi + 1;
        stuck_since = 0;
        continue;
      }
      const absl::Status joined = consumer_->FinishCatchUp(next);
      if (joined.ok()) return WaitStatus::kOk;
      if (joined.code() != absl::StatusCode::kOutOfRange) return Missed(next, joined.ToString());
      // Not protected in the ring yet: the journal's recorder writes before it releases, so
      // the journal will hold it. If the journal stops growing, nothing protects it any more.
      const std::int64_t now = MonotonicNanos();
      const std::int64_t last = source.Last();
      if (stuck_since == 0 || last != stuck_last) {
        stuck_since = now;
        stuck_last = last;
      } else if (now - stuck_since > kCatchUpGiveUpNs) {
        return Missed(next, absl::StrFormat(
                                "the journal ends at %d and has not grown for %d s, and the "
                                "ring no longer holds %d (is the journal's recorder running?)",
                                last, kCatchUpGiveUpNs / 1'000'000'000, next));
      }
      timespec pause{0, 50'000};
      ::nanosleep(&pause, nullptr);
    }
  }

  WaitStatus Missed(std::int64_t next, std::string what) {
    failure_ = HandlerFailure{.sequence = next, .what = std::move(what), .attempts = 0};
    failed_ = true;
    return WaitStatus::kMissedEvents;
  }

  // Events read out of a journal batch: `first` at `base`, the rest slot_size apart.
  struct LinearSlots {
    const std::byte* base;
    std::int64_t first;
    std::uint64_t slot_size;
    T& operator[](std::int64_t sequence) const {
      // (a copy of the journal batch: CatchUp)
      return *reinterpret_cast<T*>(const_cast<std::byte*>(base) +
                                   static_cast<std::uint64_t>(sequence - first) * slot_size);
    }
  };

  void NotifyStart() {
    if constexpr (requires(SequenceCallback cb) { handler_->set_sequence_callback(cb); }) {
      handler_->set_sequence_callback(SequenceCallback(consumer_, &released_));
    }
    if constexpr (requires { handler_->on_start(); }) {
      try {
        handler_->on_start();
      } catch (const std::exception& e) {
        exceptions().HandleStartError(e);
      }
    }
  }

  void NotifyShutdown() {
    if constexpr (requires { handler_->on_shutdown(); }) {
      try {
        handler_->on_shutdown();
      } catch (const std::exception& e) {
        exceptions().HandleShutdownError(e);
      }
    }
  }

  void Reset() {
    consumer_->barrier().ClearAlert();
    state_.store(kIdle, std::memory_order_release);
  }

  ExceptionHandler<T>& exceptions() {
    return exceptions_ != nullptr ? *exceptions_ : preset_handler_;
  }

  // Runs the batch lo..hi (of events available up to `available`) under the error handling;
  // returns the last sequence done (handled or skipped): hi, or less when the stage stops (the
  // failing event and those after it stay unreleased). After a skipped event the rest is a
  // new batch, as in the Disruptor: announced again, and rewinds go back only to its start.
  template <typename Slots>
  std::int64_t ProcessBatch(const Slots& slots, std::int64_t lo,
                            std::int64_t hi, std::int64_t available) {
    int failures = 0;  // of this batch in a row, for the rewind strategy
    std::int64_t from = lo;
    for (;;) {
      if (from == lo) {
        if constexpr (requires { handler_->on_batch_start(hi - lo + 1, available - lo + 1); }) {
          handler_->on_batch_start(hi - lo + 1, available - lo + 1);
        }
      }
      try {
        HandleBatch(slots, from, hi);
        return hi;
      } catch (const RewindableError& e) {
        from = OnRewindable(slots, lo, e, &failures);
      } catch (const std::exception& e) {
        from = OnFatal(slots, lo, e, failures + 1);
      } catch (...) {
        from = OnFatal(slots, lo, std::runtime_error("a non-standard exception"), failures + 1);
      }
      if (from < lo) return current_ - 1;  // stop
      if (from > hi) return hi;            // skipped the last event
      if (from > current_) {               // skipped current_: the rest is a new batch
        lo = from;
        failures = 0;
      }
      from = std::max(from, released_ + 1);  // released events are never handed out again
    }
  }


  // A RewindableError at current_: the batch again from lo, or (given up) as a fatal error.
  template <typename Slots>
  [[gnu::noinline]] std::int64_t OnRewindable(const Slots& slots,
                                              std::int64_t lo, const RewindableError& error,
                                              int* failures) {
    ++*failures;
    RewindStrategy& strategy = rewind_ != nullptr ? *rewind_ : preset_rewind_;
    if (!strategy.Rewind(error, *failures)) return OnFatal(slots, lo, error, *failures);
    consumer_->CountHandlerError();
    Tell(slots, error, ErrorAction::kRewind);
    return lo;
  }

  // A fatal failure at current_: the exception handler skips it (the next event) or stops the
  // stage (lo - 1).
  template <typename Slots>
  [[gnu::noinline]] std::int64_t OnFatal(const Slots& slots, std::int64_t lo,
                                         const std::exception& error, int attempts) {
    consumer_->CountHandlerError();
    const ErrorAction action = exceptions().HandleEventError(error, current_,
                                                              slots[current_]);
    Tell(slots, error, action == ErrorAction::kSkip ? ErrorAction::kSkip : ErrorAction::kStop);
    if (action == ErrorAction::kSkip) return current_ + 1;
    failure_ = HandlerFailure{.sequence = current_, .what = error.what(), .attempts = attempts};
    failed_ = true;
    return lo - 1;
  }

  // The handler's own on_handler_error hook, told of every failure.
  template <typename Slots>
  void Tell(const Slots& slots, const std::exception& error, ErrorAction) {
    if constexpr (requires { handler_->on_handler_error(slots[current_], current_,
                                                        error); }) {
      handler_->on_handler_error(slots[current_], current_, error);
    }
  }

  // Calls the handler for lo..hi, walking each run of adjacent slots (at most two: the batch
  // may wrap) with a pointer instead of masking and multiplying per event. current_ tracks
  // the event in hand, for the error policy.
  // A journal batch is one run.
  void HandleBatch(const LinearSlots& slots, std::int64_t lo, std::int64_t hi) {
    for (std::int64_t s = lo; s <= hi; ++s) {
      current_ = s;
      handler_->on_event(slots[s], s, s == hi);
    }
  }

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
  std::int64_t max_batch_;  // EffectiveMaxBatch: the batch cap of the live and member loops
  PresetExceptionHandler<T> preset_handler_;
  PresetRewind preset_rewind_;
  ExceptionHandler<T>* exceptions_ = nullptr;
  RewindStrategy* rewind_ = nullptr;
  std::int64_t released_ = -1;  // the highest sequence released in the batch in hand
  std::int64_t current_ = 0;
  // The journal batch in hand (CatchUp), aligned as ring slots are (events may ask for 64).
  class AlignedBuffer {
   public:
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { Free(); }
    std::byte* Reserve(std::size_t bytes) {
      if (bytes > size_) {
        Free();
        data_ = static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kAlign}));
        size_ = bytes;
      }
      return data_;
    }

   private:
    static constexpr std::size_t kAlign = 64;
    void Free() {
      if (data_ != nullptr) ::operator delete(data_, std::align_val_t{kAlign});
      data_ = nullptr;
      size_ = 0;
    }
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
  };
  AlignedBuffer catch_up_copy_;
  HandlerFailure failure_{};  // (not an optional: GCC 12 misreads its reset as uninitialised)
  bool failed_ = false;
  std::atomic<int> state_{kIdle};
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_BATCH_EVENT_PROCESSOR_H_
