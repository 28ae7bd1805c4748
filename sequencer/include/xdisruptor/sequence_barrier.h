// xdisruptor/sequence_barrier.h — a consumer's view of how far it may read.
//
// A barrier waits until min(cursor, sequences of the consumers it runs after) reaches the
// sequence it wants, and returns the highest available sequence so the caller can take the
// whole batch. It is process-local and owned by one consuming thread; Alert() may be called
// from any thread of the same process (it is how a processor is halted).
#ifndef XDISRUPTOR_SEQUENCE_BARRIER_H_
#define XDISRUPTOR_SEQUENCE_BARRIER_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <utility>

#include "xdisruptor/layout.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

enum class WaitStatus {
  kOk,            // `available` >= the sequence asked for
  kAlerted,       // Alert() was called (a halt from this process)
  kClosed,        // the producer closed the ring and everything it published was delivered
  kTimeout,       // the wait strategy's timeout elapsed first
  kUpstreamGone,  // a consumer this one runs after left before reaching the sequence
  kCheckpoint,    // the caller's own limit (WaitFor's max_wait_ns) elapsed; nothing else
  kProducerStalled,  // multi-producer ring: a producer died between claim and publish, so
                     // the sequence waited for will never be published
  kProducerGone,     // every event published was delivered, and the producer process died
                     // without closing the stream (a new producer may attach and go on)
  kEvicted,          // this consumer was evicted (an operator, or its stall policy): it no
                     // longer holds the producer back, and may have missed events
  kHandlerFailed,    // processors only: the handler failed and the stage's error policy
                     // stopped it (BatchEventProcessor::failure() says where and why)
};

struct WaitResult {
  std::int64_t available;  // highest sequence readable now (may be below the one asked for)
  WaitStatus status;
};

class SequenceBarrier {
 public:
  // `self` is the waiting consumer's entry: its wait strategy is re-read from there at the
  // start of every wait, so a retune from another process applies at the next wait.
  SequenceBarrier(const RingSegment& ring, ConsumerState* self)
      : ring_(&ring),
        producer_(&ring.producer()),
        cursor_(ring.multi_producer() ? &ring.producer().claim : &ring.producer().cursor),
        multi_(ring.multi_producer()),
        lap_(static_cast<std::int64_t>(ring.capacity())),
        ring_status_(&ring.producer().ring_status),
        self_(self) {
    self_index_ = static_cast<std::uint32_t>(self - &ring.consumer(0));
    upstream_count_ = std::min<std::uint32_t>(self->after_count, kMaxAfter);
    for (std::uint32_t i = 0; i < upstream_count_; ++i) {
      const auto up = static_cast<std::uint32_t>(self->after[i]);
      upstream_[i] = &ring.consumer(up < kMaxConsumers ? up : self_index_);
      upstream_generation_[i] = self->after_generation[i];
    }
  }
  SequenceBarrier() = default;  // unusable until assigned; for owners that move one in
  SequenceBarrier(SequenceBarrier&& other) noexcept { *this = std::move(other); }
  SequenceBarrier& operator=(SequenceBarrier&& other) noexcept {
    ring_ = other.ring_;
    producer_ = other.producer_;
    cursor_ = other.cursor_;
    multi_ = other.multi_;
    lap_ = other.lap_;
    ring_status_ = other.ring_status_;
    self_ = other.self_;
    self_index_ = other.self_index_;
    upstream_ = other.upstream_;
    upstream_generation_ = other.upstream_generation_;
    upstream_count_ = other.upstream_count_;
    liveness_due_ns_ = other.liveness_due_ns_;
    alert_.store(other.alert_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }

  // Highest sequence this consumer may read now; never waits.
  std::int64_t Available() const {
    return AvailableFrom(self_->sequence.load(std::memory_order_relaxed) + 1);
  }

  // Highest sequence readable now, for a consumer whose next sequence is `next`.
  std::int64_t AvailableFrom(std::int64_t next) const {
    // SYNC POINT: pairs with the producer's release store in Publish: the slots up to the
    // value read are written and visible. (Multi-producer rings: the claim counter is only an
    // upper bound; HighestPublished's acquire loads of the marks are the sync points.)
    std::int64_t available = cursor_->load(std::memory_order_acquire);
    if (multi_) available = HighestPublished(next, available);
    for (std::uint32_t i = 0; i < upstream_count_; ++i) {
      // SYNC POINT: pairs with the upstream consumer's release in Consumer::Release: its
      // in-place changes to those slots are visible.
      const std::int64_t up = upstream_[i]->sequence.load(std::memory_order_acquire);
      // A new registration bumps the generation before it stores a sequence (release), so a
      // sequence from someone else's entry is never taken for our upstream's: the barrier
      // then stops at what it has, and the slow path reports kUpstreamGone.
      if (upstream_[i]->generation.load(std::memory_order_relaxed) != upstream_generation_[i])
          [[unlikely]] {
        return std::min(available, kInitialSequence - 1);
      }
      available = std::min(available, up);
    }
    return available;
  }

  // Multi-producer rings: the highest sequence from `next` to `hi` before the first slot whose
  // availability mark does not yet hold its lap.
  std::int64_t HighestPublished(std::int64_t next, std::int64_t hi) const {
    for (std::int64_t s = next; s <= hi; ++s) {
      // SYNC POINT: pairs with MultiProducerSequencer::Publish's release store of the mark.
      if (ring_->availability(s)->load(std::memory_order_acquire) != ring_->lap(s)) {
        return s - 1;
      }
    }
    return hi;
  }

  // Waits until `sequence` is available; returns the highest available sequence. With
  // `max_wait_ns` > 0 it also returns kCheckpoint after that long (to check for signals).
  WaitResult WaitFor(std::int64_t sequence, std::int64_t max_wait_ns = 0) {
    // Never more than a lap past the sequence wanted: only an evicted consumer (no longer
    // gating) could be offered more, and those slots may already be overwritten.
    const std::int64_t available = std::min(AvailableFrom(sequence), sequence - 1 + lap_);
    // Relaxed: the alert flag carries no data; a halt seen one batch late is fine. The own
    // status (acquire, pairs with EvictEntry) costs one load of this consumer's own line.
    if (available >= sequence && !alert_.load(std::memory_order_relaxed) &&
        self_->status.load(std::memory_order_acquire) !=
            static_cast<std::uint32_t>(ConsumerStatus::kEvicted)) [[likely]] {
      return {available, WaitStatus::kOk};
    }
    return WaitSlow(sequence, max_wait_ns);
  }

  std::int64_t cursor() const { return cursor_->load(std::memory_order_acquire); }
  bool closed() const {
    // SYNC POINT: pairs with the release store in SingleProducerSequencer::Close; after
    // seeing kClosed, the cursor read next is the final one.
    return ring_status_->load(std::memory_order_acquire) ==
           static_cast<std::uint32_t>(RingStatus::kClosed);
  }

  // Stops the wait in progress (and every later one until ClearAlert), waking it if asleep.
  void Alert();
  void ClearAlert() { alert_.store(false, std::memory_order_relaxed); }
  bool alerted() const { return alert_.load(std::memory_order_relaxed); }

  // The strategy this consumer has now, as recorded in its entry.
  WaitParams CurrentWaitParams() const;

  // What a blocking wait for `sequence` sleeps on: the cursor, or the upstream that lags.
  wait::BlockTarget Lagging(std::int64_t sequence) const;

  // True when a stage this consumer runs after left (or its entry was taken by another
  // registration) before reaching `sequence`.
  bool UpstreamGone(std::int64_t sequence) const;

 private:
  [[gnu::noinline]] WaitResult WaitSlow(std::int64_t sequence, std::int64_t max_wait_ns);
  void WakeSelf();

  const RingSegment* ring_ = nullptr;
  ProducerState* producer_ = nullptr;
  // The cursor of a single-producer ring; the claim counter of a multi-producer ring.
  const std::atomic<std::int64_t>* cursor_ = nullptr;
  bool multi_ = false;
  std::int64_t lap_ = 0;  // capacity
  const std::atomic<std::uint32_t>* ring_status_ = nullptr;
  ConsumerState* self_ = nullptr;
  std::uint32_t self_index_ = 0;
  std::array<ConsumerState*, kMaxAfter> upstream_{};
  std::array<std::uint32_t, kMaxAfter> upstream_generation_{};
  std::uint32_t upstream_count_ = 0;
  std::atomic<bool> alert_{false};
  std::int64_t liveness_due_ns_ = 0;  // when the slow path next asks if producers died
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_SEQUENCE_BARRIER_H_
