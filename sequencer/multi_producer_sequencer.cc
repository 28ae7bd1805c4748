#include "xdisruptor/multi_producer_sequencer.h"

#include <algorithm>
#include <utility>

#include "internal/producer_table.h"
#include "xdisruptor/latency.h"

namespace xdisruptor {

using internal::kClaiming;
using internal::kNoClaim;

namespace {
constexpr std::int64_t kPreviousLapCheckNs = 100'000'000;  // a dead writer looked for
}  // namespace

MultiProducerSequencer::MultiProducerSequencer(internal::ProducerRole role)
    : role_(std::move(role)),
      availability_(role_.ring()),
      producer_(&role_.ring().producer()),
      entry_(&role_.entry()),
      capacity_(role_.capacity()),
      sample_mask_(latency::SampleMask(role_.ring().latency_sample_every())) {}

std::int64_t MultiProducerSequencer::Claim(std::int64_t n) {
  role_.CheckProcess();
  // Evidence for stall detection: from here until Publish, a claim of ours is in flight.
  entry_->claim_lo.store(kClaiming, std::memory_order_relaxed);
  // seq_cst RMW: claims are totally ordered; each producer gets a distinct range.
  const std::int64_t current = producer_->cursor.fetch_add(n, std::memory_order_seq_cst);
  const std::int64_t hi = current + n;
  entry_->claim_hi.store(hi, std::memory_order_relaxed);
  entry_->claim_lo.store(current + 1, std::memory_order_relaxed);
  // SYNC POINT: the claim before the slot writes, for observers (Consumer::Lapped).
  std::atomic_thread_fence(std::memory_order_release);
  if (hi - capacity_ > cached_gating_) [[unlikely]] {
    role_.WaitForCapacity(hi - capacity_, current, 0, &cached_gating_);
  }
  AwaitPreviousLaps(current + 1, hi);
  return hi;
}

void MultiProducerSequencer::AwaitPreviousLaps(std::int64_t lo, std::int64_t hi) {
  // Each slot must first show the previous lap published before it is written (see
  // Availability::PreviousLapPublished; lap 0 finds the initial -1 marks).
  for (std::int64_t s = std::max<std::int64_t>(lo, capacity_); s <= hi; ++s) {
    if (availability_.PreviousLapPublished(s)) [[likely]] continue;
    const WaitParams& wait = role_.wait();
    Idler idler(wait.kind == WaitKind::kBusySpin ? wait : WaitParams{.kind = WaitKind::kYielding});
    std::int64_t check_at = MonotonicNanos() + kPreviousLapCheckNs;
    while (!availability_.PreviousLapPublished(s)) {
      idler.Idle(NoBlockTarget);
      if (MonotonicNanos() < check_at) continue;
      // The previous lap's producer died between its claim and its publish: nobody will mark
      // it, and nobody reads it (this claim waited until every gating consumer was past it;
      // they were told kProducerStalled). The slot is this claim's: waiting would be for ever.
      if (internal::HasStalledProducer(role_.ring(), s - capacity_)) break;
      check_at = MonotonicNanos() + kPreviousLapCheckNs;
    }
  }
}

absl::StatusOr<std::int64_t> MultiProducerSequencer::NextFor(std::int64_t n,
                                                             std::int64_t max_wait_ns) {
  if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) return s;
  // A claim cannot be taken back, so claim only when there is room (TryNext's CAS), and wait
  // for room in between, never past the deadline.
  const std::int64_t deadline = MonotonicNanos() + max_wait_ns;
  for (;;) {
    if (absl::StatusOr<std::int64_t> hi = TryNext(n); hi.ok()) return hi;
    const std::int64_t left = deadline - MonotonicNanos();
    if (left <= 0) return internal::NoRoomWithin();
    const std::int64_t current = cursor();
    if (!role_.WaitForCapacity(current + n - capacity_, current, left, &cached_gating_)) {
      return internal::NoRoomWithin();
    }
  }
}

absl::StatusOr<bool> MultiProducerSequencer::WaitForRoom(std::int64_t n,
                                                         std::int64_t max_wait_ns) {
  if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) return s;
  role_.CheckProcess();
  const std::int64_t current = cursor();
  const std::int64_t wrap_point = current + n - capacity_;
  return wrap_point <= cached_gating_ || wrap_point <= RefreshGating(current) ||
         role_.WaitForCapacity(wrap_point, current, max_wait_ns, &cached_gating_);
}

absl::StatusOr<std::int64_t> MultiProducerSequencer::TryNext(std::int64_t n) {
  if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) return s;
  role_.CheckProcess();
  entry_->claim_lo.store(kClaiming, std::memory_order_relaxed);
  std::int64_t current = cursor();
  for (;;) {
    const std::int64_t wrap = current + n - capacity_;
    if (wrap > cached_gating_ && wrap > RefreshGating(current)) {
      entry_->claim_lo.store(kNoClaim, std::memory_order_relaxed);
      return internal::InsufficientCapacity();
    }
    if (producer_->cursor.compare_exchange_weak(current, current + n, std::memory_order_seq_cst,
                                                std::memory_order_acquire)) {
      entry_->claim_hi.store(current + n, std::memory_order_relaxed);
      entry_->claim_lo.store(current + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);  // SYNC POINT: as in Claim
      AwaitPreviousLaps(current + 1, current + n);
      return current + n;
    }
  }
}

void MultiProducerSequencer::Publish(std::int64_t lo, std::int64_t hi) {
  role_.CheckProcess();
  if (latency::HoldsSample(lo, hi, sample_mask_)) [[unlikely]] {
    latency::Stamp(role_.ring(), lo, hi, sample_mask_, MonotonicNanos());
  }
  availability_.MarkPublished(lo, hi);
  if (hi >= entry_->claim_hi.load(std::memory_order_relaxed)) {
    entry_->claim_lo.store(kNoClaim, std::memory_order_relaxed);
  }
  wait::Notify(producer_->cursor_notification);
}

std::int64_t MultiProducerSequencer::RemainingCapacity() {
  const std::int64_t current = cursor();
  return capacity_ - (current - RefreshGating(current));
}

}  // namespace xdisruptor
