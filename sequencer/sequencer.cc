#include "xdisruptor/sequencer.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_format.h"
#include "internal/gating.h"
#include "internal/reclaim.h"
#include "internal/registry_lock.h"
#include "xdisruptor/process.h"

namespace xdisruptor {

absl::StatusOr<SingleProducerSequencer> SingleProducerSequencer::Attach(RingSegment& ring,
                                                                        const WaitParams& wait) {
  if (ring.sequencer_kind() != SequencerKind::kSingleProducer) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ring '%s' was created for several producers; attach a multi-producer sequencer",
        ring.name()));
  }
  if (absl::Status s = ValidateWaitParams(wait); !s.ok()) return s;
  if (wait.timeout_ns != 0 || wait.kind == WaitKind::kTimeoutBlocking) {
    return absl::InvalidArgumentError(
        "a producer waits for space until it gets it: give it a wait strategy without a "
        "timeout (use TryNext to give up at once)");
  }
  ProducerState& p = ring.producer();
  internal::RegistryLock lock(p);
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  const std::int64_t holder = p.producer_pid.load(std::memory_order_relaxed);
  if (holder != 0 &&
      IsProcessAlive(holder, p.producer_start_time.load(std::memory_order_relaxed))) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ring '%s' already has a live producer (process %d); a single-producer ring takes one "
        "producer at a time",
        ring.name(), holder));
  }
  if (holder != 0) {  // the previous producer died, perhaps asleep on a consumer
    internal::ClearSleeperEverywhere(ring, {.producer = true, .index = 0});
  }
  const ProcessIdentity self = CurrentProcess();
  p.producer_pid.store(self.pid, std::memory_order_relaxed);
  p.producer_start_time.store(self.start_time, std::memory_order_relaxed);
  p.producer_wait_kind.store(static_cast<std::uint32_t>(wait.kind), std::memory_order_relaxed);
  p.producer_generation.store(p.producer_generation.load(std::memory_order_relaxed) + 1,
                              std::memory_order_relaxed);
  // SYNC POINT: pairs with SequenceBarrier::closed; a successor reopens a closed ring.
  p.ring_status.store(static_cast<std::uint32_t>(RingStatus::kOpen), std::memory_order_release);
  return SingleProducerSequencer(ring, wait);
}

SingleProducerSequencer::SingleProducerSequencer(RingSegment& ring, const WaitParams& wait)
    : ring_(&ring),
      producer_(&ring.producer()),
      consumers_(&ring.consumer(0)),
      capacity_(static_cast<std::int64_t>(ring.capacity())),
      // Pairs with the previous producer's release store in Publish: continue after it.
      next_value_(ring.producer().cursor.load(std::memory_order_acquire)),
      cached_gating_(kInitialSequence - capacity_),  // forces a gating read on first claim
      wait_(wait) {}

SingleProducerSequencer::SingleProducerSequencer(SingleProducerSequencer&& other) noexcept
    : attached_(false) {
  *this = std::move(other);
}

SingleProducerSequencer& SingleProducerSequencer::operator=(
    SingleProducerSequencer&& other) noexcept {
  if (this == &other) return *this;
  if (attached_) Detach().IgnoreError();
  ring_ = other.ring_;
  producer_ = other.producer_;
  consumers_ = other.consumers_;
  capacity_ = other.capacity_;
  next_value_ = other.next_value_;
  cached_gating_ = other.cached_gating_;
  wait_ = other.wait_;
  attached_ = std::exchange(other.attached_, false);
  return *this;
}

SingleProducerSequencer::~SingleProducerSequencer() {
  if (attached_) Detach().IgnoreError();
}

void SingleProducerSequencer::CheckClaimSize(std::int64_t n, std::int64_t capacity) {
  std::fprintf(stderr, "xdisruptor: Next/TryNext(%lld) needs 1 <= n <= capacity (%lld)\n",
               static_cast<long long>(n), static_cast<long long>(capacity));
  std::abort();
}

std::int64_t SingleProducerSequencer::MinimumGating() const {
  // Start from the published cursor, not the claimed next_value_: the RefreshGating proof
  // needs every cached bound to be one a joining consumer can see (it joins at the cursor).
  return internal::MinimumGating(*producer_, consumers_,
                                 producer_->cursor.load(std::memory_order_relaxed));
}

std::int64_t SingleProducerSequencer::RefreshGating() {
  // SYNC POINT (StoreLoad): orders this producer's earlier cursor stores before its load of
  // the gating mask; pairs with the seq_cst fetch_or + cursor load in Consumer::Register.
  // Without it a joining consumer and the producer could each miss the other's store and the
  // producer would lap the newcomer (the fence a well-known C++ port lost).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  cached_gating_ = MinimumGating();
  return cached_gating_;
}

wait::BlockTarget SingleProducerSequencer::LaggingConsumer(std::int64_t wrap_point) const {
  return internal::LaggingConsumer(*producer_, consumers_, wrap_point, 0);
}

bool SingleProducerSequencer::WaitForCapacity(std::int64_t wrap_point,
                                              std::int64_t max_wait_ns) {
  return internal::WaitForGating(
      *ring_, wait_, wrap_point, max_wait_ns, [&] { return RefreshGating(); },
      [&] { return LaggingConsumer(wrap_point); });
}

std::int64_t SingleProducerSequencer::RemainingCapacity() {
  const std::int64_t consumed = RefreshGating();
  return capacity_ - (next_value_ - consumed);
}

void SingleProducerSequencer::Close() {
  const std::int64_t final_cursor = producer_->cursor.load(std::memory_order_relaxed);
  producer_->closed_at_sequence.store(final_cursor, std::memory_order_relaxed);
  // SYNC POINT: pairs with SequenceBarrier::closed's acquire load; a consumer that sees
  // kClosed then reads the final cursor.
  producer_->ring_status.store(static_cast<std::uint32_t>(RingStatus::kClosed),
                               std::memory_order_release);
  wait::WakeAll(producer_->cursor_notification);  // sleepers must see the end of the stream
}

absl::Status SingleProducerSequencer::Detach() {
  if (!attached_) return absl::FailedPreconditionError("the producer is already detached");
  attached_ = false;
  if (producer_->producer_pid.load(std::memory_order_relaxed) != ::getpid()) {
    // A forked child's copy: the ring's producer is its parent (or someone else by now).
    return absl::FailedPreconditionError("this process is not the ring's producer");
  }
  internal::RegistryLock lock(*producer_);
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  producer_->producer_pid.store(0, std::memory_order_relaxed);
  producer_->producer_start_time.store(0, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace xdisruptor
