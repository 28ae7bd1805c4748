// xdisruptor/sequencer.h — the single-producer sequencer: claim slots, publish them.
//
// One producer process owns a single-producer ring at a time: Attach refuses a second one
// while the first lives (in any process, this one included). The claim/publish calls are the
// hot path and belong to one thread; they allocate nothing and make no system call except
// while waiting for the slowest gating consumer to free space.
//
//   std::int64_t hi = *sequencer.Next(n);          // claim hi-n+1 .. hi (waits while full)
//   ... write ring[hi-n+1] .. ring[hi] ...
//   sequencer.Publish(hi - n + 1, hi);            // consumers may now read them
#ifndef XDISRUPTOR_SEQUENCER_H_
#define XDISRUPTOR_SEQUENCER_H_

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/internal/producer_role.h"
#include "xdisruptor/latency.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

class SingleProducerSequencer {
 public:
  // Becomes the ring's producer; continues the sequence from the ring's cursor, and reopens a
  // ring a previous producer closed. `wait` is how Next waits on a full ring.
  static absl::StatusOr<SingleProducerSequencer> Attach(RingSegment& ring,
      const WaitParams& wait = {}) {
    using Self = SingleProducerSequencer;
    return internal::AttachProducer<Self>(ring, SequencerKind::kSingleProducer, wait);
  }
  // Built by Attach on the producer entry it took. Movable (a move-assignment detaches what
  // this one held), not copyable.
  explicit SingleProducerSequencer(internal::ProducerRole role);

  // Claims the next slot, waiting while the slowest gating consumer is a lap behind; returns
  // its sequence.
  std::int64_t Next() {
    role_.CheckProcess();
    return Claim(1);
  }

  // Claims the next n slots, waiting while the slowest gating consumer is less than a lap
  // behind them; returns the highest claimed sequence. InvalidArgument unless
  // 1 <= n <= capacity.
  absl::StatusOr<std::int64_t> Next(std::int64_t n) {
    if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) [[unlikely]] return s;
    role_.CheckProcess();
    return Claim(n);
  }

  // Like Next, but gives up after `max_wait_ns` of waiting: DeadlineExceeded, nothing claimed.
  absl::StatusOr<std::int64_t> NextFor(std::int64_t n, std::int64_t max_wait_ns) {
    if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) [[unlikely]] return s;
    role_.CheckProcess();
    CheckOwnerThread();
    const std::int64_t next = next_value_ + n;
    if (next - capacity_ > cached_gating_ && !WaitForCapacity(next - capacity_, max_wait_ns)) {
      return internal::NoRoomWithin();
    }
    Claimed(next);
    return next;
  }

  // Waits at most `max_wait_ns` (> 0) until n slots can be claimed, claiming nothing: true
  // when there is room. For a caller that must be able to give up between the wait and the
  // claim (Python's apublish: a cancelled task publishes nothing); the same thread rules as
  // a claim.
  absl::StatusOr<bool> WaitForRoom(std::int64_t n, std::int64_t max_wait_ns) {
    if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) [[unlikely]] return s;
    role_.CheckProcess();
    const std::int64_t wrap_point = next_value_ + n - capacity_;
    return wrap_point <= cached_gating_ || WaitForCapacity(wrap_point, max_wait_ns);
  }

  // Like Next, but never waits: ResourceExhausted at once when the ring has no room for n
  // (the Disruptor's InsufficientCapacityException; no allocation).
  [[nodiscard]] absl::StatusOr<std::int64_t> TryNext(std::int64_t n = 1) {
    if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) [[unlikely]] return s;
    role_.CheckProcess();
    CheckOwnerThread();
    const std::int64_t next = next_value_ + n;
    if (next - capacity_ > cached_gating_ && next - capacity_ > RefreshGating()) {
      return internal::InsufficientCapacity();
    }
    Claimed(next);
    return next;
  }

  // Makes lo..hi readable. A single producer publishes in claim order, so only hi matters.
  void Publish(std::int64_t lo, std::int64_t hi) {
    (void)lo;  // Publish(hi) after a claim of many is allowed: the cursor tells where they start
    role_.CheckProcess();
    if (hi >= next_sample_) [[unlikely]] StampSamples(hi);
    // SYNC POINT: pairs with LoadCursor's acquire in the barrier (Availability::cursor).
    // Weaker, a consumer could see the new cursor before the slot contents written above it.
    producer_->cursor.store(hi, std::memory_order_release);
    // Wakes consumers asleep in a blocking wait; no syscall when none sleeps.
    wait::Notify(producer_->cursor_notification);
  }
  void Publish(std::int64_t sequence) { Publish(sequence, sequence); }

  std::int64_t cursor() const { return producer_->cursor.load(std::memory_order_relaxed); }
  // Slots that can be claimed now without waiting (the Disruptor's remainingCapacity).
  std::int64_t RemainingCapacity() { return capacity_ - (next_value_ - RefreshGating()); }
  // True when n slots can be claimed now without waiting (hasAvailableCapacity).
  bool HasAvailableCapacity(std::int64_t n) { return next_value_ + n - capacity_ <= RefreshGating(); }
  // Moves the claim to `sequence`, so the next claim starts after it (the Disruptor's
  // claim): for tests and replays that publish at given sequences. No gating check: the
  // caller knows nobody needs the slots it skips or reuses.
  void ClaimSequence(std::int64_t sequence) { Claimed(sequence); }

  // End of stream: consumers drain what was published, then see WaitStatus::kClosed.
  void Close() { role_.Close(); }
  // Gives up the ring (the destructor does this too); the ring stays open for a successor.
  absl::Status Detach() { return role_.Detach(); }
  // True in a forked child of the process that attached: it may not use this producer.
  bool forked() const { return role_.forked(); }

 private:
  // Debug builds: one thread claims on a single-producer sequencer (the Disruptor's
  // assertion); another thread claiming aborts with a message. Release builds check nothing.
  void CheckOwnerThread() {
#ifndef NDEBUG
    const std::thread::id self = std::this_thread::get_id();
    if (owner_thread_ == std::thread::id()) owner_thread_ = self;
    if (owner_thread_ != self) [[unlikely]] internal::SecondClaimingThread(role_.ring().name());
#endif
  }

  std::int64_t Claim(std::int64_t n) {
    CheckOwnerThread();
    const std::int64_t next = next_value_ + n;
    if (next - capacity_ > cached_gating_) [[unlikely]] WaitForCapacity(next - capacity_, 0);
    Claimed(next);
    return next;
  }

  // Records a claim up to `next`. The store to claim_hi comes before the caller writes the
  // slots (the release fence keeps them after it), so a non-gating observer that read an
  // overwritten slot also sees the claim that overwrote it (SequenceBarrier::Lapped).
  void Claimed(std::int64_t next) {
    next_value_ = next;
    // Never below what the entry's last holder wrote past the cursor (written_): those slots
    // hold half of the next lap until this producer's claims pass them.
    entry_->claim_hi.store(next > written_ ? next : written_, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }

  // The slowest gating sequence, read after the StoreLoad fence. It starts from the published
  // cursor, not the claimed next_value_: the join proof needs every cached bound to be one a
  // joining consumer can see (it joins at the cursor).
  std::int64_t RefreshGating() {
    return cached_gating_ = internal::RefreshGating(role_.ring(), *entry_, cursor());
  }
  // Waits until the slowest gating consumer passes `wrap_point`; false if `max_wait_ns` (> 0)
  // elapsed first.
  [[gnu::noinline]] bool WaitForCapacity(std::int64_t wrap_point, std::int64_t max_wait_ns) {
    return role_.WaitForCapacity(wrap_point, cursor(), max_wait_ns, &cached_gating_);
  }
  // Stamps the sampled sequences from next_sample_ to hi (latency.h).
  [[gnu::noinline]] void StampSamples(std::int64_t hi) {
    latency::Stamp(role_.ring(), next_sample_, hi, sample_mask_, MonotonicNanos());
    next_sample_ = latency::NextSample(hi, sample_mask_);
  }

  internal::ProducerRole role_;
  ProducerState* producer_ = nullptr;
  ProducerEntryState* entry_ = nullptr;
  std::int64_t capacity_ = 0;
  std::int64_t next_value_ = kInitialSequence;     // highest claimed sequence
  std::int64_t written_ = kInitialSequence;  // the entry's claim_hi at attach (ProducerRole)
  std::int64_t cached_gating_ = kInitialSequence;  // slowest gating sequence when last read
  std::int64_t sample_mask_ = -1;  // latency::SampleMask of the ring's sampling period
  std::int64_t next_sample_ = INT64_MAX;  // the next sequence to stamp (latency::NextSample)
#ifndef NDEBUG
  std::thread::id owner_thread_{};  // the thread that claims (debug builds)
#endif
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_SEQUENCER_H_
