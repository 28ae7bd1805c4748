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

#include "xdisruptor/internal/availability.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/process.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_status.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

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
        published_(ring),
        lap_(static_cast<std::int64_t>(ring.capacity())),
        self_(self),
        fork_generation_(ForkGeneration()) {
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
    published_ = other.published_;
    lap_ = other.lap_;
    self_ = other.self_;
    self_index_ = other.self_index_;
    upstream_ = other.upstream_;
    upstream_generation_ = other.upstream_generation_;
    upstream_count_ = other.upstream_count_;
    liveness_due_ns_ = other.liveness_due_ns_;
    idler_ = other.idler_;
    open_wait_ = other.open_wait_;
    wait_version_ = other.wait_version_;
    fork_generation_ = other.fork_generation_;
    alert_.store(other.alert_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }

  // Highest sequence this consumer may read now; never waits.
  std::int64_t Available() const {
    return AvailableFrom(self_->sequence.load(std::memory_order_relaxed) + 1);
  }

  // Highest sequence readable now, for a consumer whose next sequence is `next`.
  std::int64_t AvailableFrom(std::int64_t next) const {
    // SYNC POINT: the cursor's acquire load (and, on a multi-producer ring, the marks' acquire
    // loads) pair with the producers' release stores: the slots up to it are written.
    std::int64_t available = published_.HighestPublished(next, published_.cursor());
    for (std::uint32_t i = 0; i < upstream_count_; ++i) {
      // SYNC POINT: pairs with the upstream consumer's release in Consumer::Release: its
      // in-place changes to those slots are visible.
      const std::int64_t up = LoadSequence(*upstream_[i]);
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

  // Waits until `sequence` is available; returns the highest available sequence. With
  // `max_wait_ns` > 0 it also returns kCheckpoint after that long (to check for signals): the
  // wait stays open, and the next WaitFor of the same sequence goes on with it, so its
  // strategy timeout and the liveness checks count from the wait's start, not the slice's.
  WaitResult WaitFor(std::int64_t sequence, std::int64_t max_wait_ns = 0) {
    // Never more than a lap past the sequence wanted: only an evicted consumer (no longer
    // gating) could be offered more, and those slots may already be overwritten.
    const std::int64_t available = std::min(AvailableFrom(sequence), sequence - 1 + lap_);
    // Relaxed: the alert flag carries no data; a halt seen one batch late is fine. The own
    // status (acquire, pairs with EvictEntry) costs one load of this consumer's own line.
    if (available >= sequence && !alert_.load(std::memory_order_relaxed) &&
        !IsEvicted(*self_)) [[likely]] {
      return {available, WaitStatus::kOk};
    }
    return WaitSlow(sequence, max_wait_ns);
  }

  std::int64_t cursor() const { return published_.cursor(); }
  // After seeing it closed, the cursor read next is the final one (layout_access.h).
  bool closed() const { return IsClosed(*producer_); }
  // This consumer was evicted (acquire: pairs with EvictEntry); it may read nothing more.
  bool evicted() const { return IsEvicted(*self_); }
  // How far past the sequence before it a consumer may read at most: one lap (capacity).
  std::int64_t lap() const { return lap_; }

  // Forgets a wait left open by kCheckpoint (a caller that got its sequence from a later
  // call's fast path, or gives up waiting): the next wait starts afresh.
  void EndWait() { open_wait_ = kNoOpenWait; }

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
  WaitResult WaitLoop(std::int64_t sequence, std::int64_t max_wait_ns);
  void WakeSelf();

  const RingSegment* ring_ = nullptr;
  ProducerState* producer_ = nullptr;
  internal::Availability published_;  // what is published, for either ring kind
  std::int64_t lap_ = 0;  // capacity
  ConsumerState* self_ = nullptr;
  std::uint32_t self_index_ = 0;
  std::array<ConsumerState*, kMaxAfter> upstream_{};
  std::array<std::uint32_t, kMaxAfter> upstream_generation_{};
  std::uint32_t upstream_count_ = 0;
  std::atomic<bool> alert_{false};
  std::int64_t liveness_due_ns_ = 0;  // when the slow path next asks if producers died
  // The wait in progress across kCheckpoint slices: its sequence, its idle state (deadlines
  // from its start) and the wait-parameter version it runs by.
  static constexpr std::int64_t kNoOpenWait = kInitialSequence - 1;
  Idler idler_{WaitParams{}};
  SpinAdvisor spin_advisor_;  // whether the next blocking wait spins first
  std::int64_t open_wait_ = kNoOpenWait;
  std::uint32_t wait_version_ = 0;
  std::uint32_t fork_generation_ = 0;  // ForkGeneration() of the process that registered
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_SEQUENCE_BARRIER_H_
