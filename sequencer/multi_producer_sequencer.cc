#include "xdisruptor/multi_producer_sequencer.h"

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

absl::StatusOr<MultiProducerSequencer> MultiProducerSequencer::Attach(RingSegment& ring,
                                                                      const WaitParams& wait) {
  if (!ring.multi_producer()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ring '%s' was created for a single producer; create it with "
        "SequencerKind::kMultiProducer to publish from several",
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
  int chosen = -1;
  for (std::size_t i = 0; i < kMaxProducers && chosen < 0; ++i) {
    ProducerEntryState& e = p.producers[i];
    const std::int64_t pid = e.pid.load(std::memory_order_relaxed);
    if (pid == 0) {
      chosen = static_cast<int>(i);
    } else if (!IsProcessAlive(pid, e.start_time.load(std::memory_order_relaxed)) &&
               e.claim_lo.load(std::memory_order_relaxed) == kNoClaim) {
      // Died between claims: nothing of its is missing, the entry can be reused.
      internal::ClearSleeperEverywhere(
          ring, {.producer = true, .index = static_cast<std::uint32_t>(i)});
      chosen = static_cast<int>(i);
    }
  }
  if (chosen < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "ring '%s' has %d live producers (or dead ones whose claims stalled it); no room for "
        "another",
        ring.name(), kMaxProducers));
  }
  const ProcessIdentity self = CurrentProcess();
  ProducerEntryState& e = p.producers[chosen];
  e.claim_lo.store(kNoClaim, std::memory_order_relaxed);
  e.claim_hi.store(kNoClaim, std::memory_order_relaxed);
  e.start_time.store(self.start_time, std::memory_order_relaxed);
  e.pid.store(self.pid, std::memory_order_release);
  p.ring_status.store(static_cast<std::uint32_t>(RingStatus::kOpen), std::memory_order_release);
  return MultiProducerSequencer(ring, chosen, wait);
}

MultiProducerSequencer::MultiProducerSequencer(RingSegment& ring, int entry_index,
                                               const WaitParams& wait)
    : ring_(&ring),
      producer_(&ring.producer()),
      entry_(&ring.producer().producers[entry_index]),
      entry_index_(entry_index),
      capacity_(static_cast<std::int64_t>(ring.capacity())),
      wait_(wait),
      attached_(true) {}

MultiProducerSequencer::MultiProducerSequencer(MultiProducerSequencer&& other) noexcept {
  *this = std::move(other);
}

MultiProducerSequencer& MultiProducerSequencer::operator=(
    MultiProducerSequencer&& other) noexcept {
  if (this == &other) return *this;
  if (attached_) Detach().IgnoreError();
  ring_ = other.ring_;
  producer_ = other.producer_;
  entry_ = other.entry_;
  entry_index_ = other.entry_index_;
  capacity_ = other.capacity_;
  cached_gating_ = other.cached_gating_;
  wait_ = other.wait_;
  attached_ = std::exchange(other.attached_, false);
  return *this;
}

MultiProducerSequencer::~MultiProducerSequencer() {
  if (attached_) Detach().IgnoreError();
}

void MultiProducerSequencer::CheckClaimSize(std::int64_t n) const {
  if (n >= 1 && n <= capacity_) [[likely]] return;
  std::fprintf(stderr, "xdisruptor: Next/TryNext(%lld) needs 1 <= n <= capacity (%lld)\n",
               static_cast<long long>(n), static_cast<long long>(capacity_));
  std::abort();
}

std::int64_t MultiProducerSequencer::RefreshGating(std::int64_t current) {
  // SYNC POINT (StoreLoad): as in SingleProducerSequencer::RefreshGating, pairs with the
  // seq_cst fetch_or + claim load of a joining consumer. `current` (the claim counter before
  // our claim) bounds what a joiner may have seen.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  cached_gating_ = internal::MinimumGating(*producer_, &ring_->consumer(0), current);
  return cached_gating_;
}

bool MultiProducerSequencer::WaitForCapacity(std::int64_t wrap_point, std::int64_t current,
                                             std::int64_t max_wait_ns) {
  return internal::WaitForGating(
      *ring_, wait_, wrap_point, max_wait_ns, [&] { return RefreshGating(current); },
      [&] {
        return internal::LaggingConsumer(*producer_, &ring_->consumer(0), wrap_point,
                                         static_cast<std::uint32_t>(entry_index_));
      });
}

std::int64_t MultiProducerSequencer::Next(std::int64_t n) {
  CheckClaimSize(n);
  // Evidence for stall detection: from here until Publish, a claim of ours is in flight.
  entry_->claim_lo.store(kClaiming, std::memory_order_relaxed);
  // seq_cst RMW: claims are totally ordered; each producer gets a distinct range.
  const std::int64_t current = producer_->claim.fetch_add(n, std::memory_order_seq_cst);
  const std::int64_t hi = current + n;
  entry_->claim_hi.store(hi, std::memory_order_relaxed);
  entry_->claim_lo.store(current + 1, std::memory_order_relaxed);
  if (hi - capacity_ > cached_gating_) [[unlikely]] WaitForCapacity(hi - capacity_, current, 0);
  AwaitPreviousLaps(current + 1, hi);
  return hi;
}

void MultiProducerSequencer::AwaitPreviousLaps(std::int64_t lo, std::int64_t hi) {
  // Gating keeps us a lap behind every consumer, but a consumer joins after everything
  // *claimed*, so another producer's claim one lap back may still be unpublished while the
  // gating minimum has passed it. Writing the slot now would clobber that event. So each slot
  // must first show the previous lap published (marks start at -1 == lap(s) - 1 for lap 0).
  for (std::int64_t s = std::max<std::int64_t>(lo, capacity_); s <= hi; ++s) {
    const std::atomic<std::int32_t>* mark = ring_->availability(s);
    // Acquire pairs with the release store in Publish of the previous lap's producer.
    if (mark->load(std::memory_order_acquire) == ring_->lap(s) - 1) [[likely]] continue;
    Idler idler(wait_.kind == WaitKind::kBusySpin ? wait_ : WaitParams{.kind = WaitKind::kYielding});
    while (mark->load(std::memory_order_acquire) != ring_->lap(s) - 1) {
      idler.Idle(NoBlockTarget);
    }
  }
}

std::optional<std::int64_t> MultiProducerSequencer::NextFor(std::int64_t n,
                                                            std::int64_t max_wait_ns) {
  CheckClaimSize(n);
  // A claim cannot be taken back, so claim only when there is room (TryNext's CAS), and wait
  // for room in between, never past the deadline.
  const std::int64_t deadline = MonotonicNanos() + max_wait_ns;
  for (;;) {
    if (std::optional<std::int64_t> hi = TryNext(n)) return hi;
    const std::int64_t left = deadline - MonotonicNanos();
    if (left <= 0) return std::nullopt;
    const std::int64_t current = producer_->claim.load(std::memory_order_acquire);
    if (!WaitForCapacity(current + n - capacity_, current, left)) return std::nullopt;
  }
}

std::optional<std::int64_t> MultiProducerSequencer::TryNext(std::int64_t n) {
  CheckClaimSize(n);
  entry_->claim_lo.store(kClaiming, std::memory_order_relaxed);
  std::int64_t current = producer_->claim.load(std::memory_order_acquire);
  for (;;) {
    const std::int64_t wrap = current + n - capacity_;
    if (wrap > cached_gating_ && wrap > RefreshGating(current)) {
      entry_->claim_lo.store(kNoClaim, std::memory_order_relaxed);
      return std::nullopt;
    }
    if (producer_->claim.compare_exchange_weak(current, current + n, std::memory_order_seq_cst,
                                               std::memory_order_acquire)) {
      entry_->claim_hi.store(current + n, std::memory_order_relaxed);
      entry_->claim_lo.store(current + 1, std::memory_order_relaxed);
      AwaitPreviousLaps(current + 1, current + n);
      return current + n;
    }
  }
}

void MultiProducerSequencer::Publish(std::int64_t lo, std::int64_t hi) {
  for (std::int64_t s = lo; s <= hi; ++s) {
    // SYNC POINT: pairs with the barrier's acquire load of the mark (HighestPublished): the
    // slot's contents written before are visible to a consumer that sees this lap.
    ring_->availability(s)->store(ring_->lap(s), std::memory_order_release);
  }
  if (hi >= entry_->claim_hi.load(std::memory_order_relaxed)) {
    entry_->claim_lo.store(kNoClaim, std::memory_order_relaxed);
  }
  wait::Notify(producer_->cursor_notification);
}

std::int64_t MultiProducerSequencer::RemainingCapacity() {
  const std::int64_t current = producer_->claim.load(std::memory_order_acquire);
  return capacity_ - (current - RefreshGating(current));
}

void MultiProducerSequencer::Close() {
  producer_->closed_at_sequence.store(producer_->claim.load(std::memory_order_acquire),
                                      std::memory_order_relaxed);
  // SYNC POINT: pairs with SequenceBarrier::closed; the claim counter read after it is final.
  producer_->ring_status.store(static_cast<std::uint32_t>(RingStatus::kClosed),
                               std::memory_order_release);
  wait::WakeAll(producer_->cursor_notification);
}

absl::Status MultiProducerSequencer::Detach() {
  if (!attached_) return absl::FailedPreconditionError("the producer is already detached");
  attached_ = false;
  if (entry_->pid.load(std::memory_order_relaxed) != ::getpid()) {
    return absl::FailedPreconditionError("this process is not that producer");
  }
  internal::RegistryLock lock(*producer_);
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  entry_->claim_lo.store(kNoClaim, std::memory_order_relaxed);
  entry_->pid.store(0, std::memory_order_release);
  return absl::OkStatus();
}

bool HasStalledProducer(const RingSegment& ring, std::int64_t sequence) {
  const ProducerState& p = ring.producer();
  bool unknown_dead = false;  // a dead producer that died before recording its range
  bool live_covers = false;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const ProducerEntryState& e = p.producers[i];
    const std::int64_t pid = e.pid.load(std::memory_order_acquire);
    const std::int64_t lo = e.claim_lo.load(std::memory_order_relaxed);
    if (pid == 0 || lo == kNoClaim) continue;
    const std::int64_t hi = e.claim_hi.load(std::memory_order_relaxed);
    const bool covers = lo != kClaiming && lo <= sequence && sequence <= hi;
    if (IsProcessAlive(pid, e.start_time.load(std::memory_order_relaxed))) {
      live_covers = live_covers || covers;
    } else if (covers) {
      return true;
    } else if (lo == kClaiming) {
      unknown_dead = true;
    }
  }
  return unknown_dead && !live_covers;
}

}  // namespace xdisruptor
