// xdisruptor/multi_producer_sequencer.h — several producer processes publishing into one ring.
//
// Producers claim sequences with one atomic fetch-add on the ring's cursor, write their slots,
// and publish each slot by storing its lap number into the slot's availability mark (the
// Disruptor's scheme, all of it in xdisruptor/internal/availability.h).
// Consumers' barriers return only the highest contiguous published sequence, so every consumer
// reads one order, with each producer's events in that producer's order. Gating is the same as
// for one producer. Up to 16 producers at once (the producer table); each thread that claims
// needs its own MultiProducerSequencer. A producer that dies between claim and publish leaves a
// hole no one will fill: consumers waiting at it get WaitStatus::kProducerStalled (see
// docs/architecture.md for why it is reported, not papered over).
//
//   std::int64_t hi = *producer.Next(n);         // claim hi-n+1 .. hi (waits while full)
//   ... write ring[hi-n+1] .. ring[hi] ...
//   producer.Publish(hi - n + 1, hi);
#ifndef XDISRUPTOR_MULTI_PRODUCER_SEQUENCER_H_
#define XDISRUPTOR_MULTI_PRODUCER_SEQUENCER_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/internal/availability.h"
#include "xdisruptor/internal/producer_role.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

class MultiProducerSequencer {
 public:
  // This producer's entry in the ring's producer table.
  int producer_index() const { return role_.index(); }

  static absl::StatusOr<MultiProducerSequencer> Attach(RingSegment& ring,
      const WaitParams& wait = {}) {
    using Self = MultiProducerSequencer;
    return internal::AttachProducer<Self>(ring, SequencerKind::kMultiProducer, wait);
  }
  // Built by Attach on the producer entry it took. Movable (a move-assignment detaches what
  // this one held), not copyable.
  explicit MultiProducerSequencer(internal::ProducerRole role);

  // Claims one slot, waiting while it is less than a lap ahead of the slowest gating
  // consumer; returns its sequence.
  std::int64_t Next() { return Claim(1); }
  // Claims n slots the same way; returns the highest claimed sequence. InvalidArgument unless
  // 1 <= n <= capacity.
  absl::StatusOr<std::int64_t> Next(std::int64_t n) {
    if (absl::Status s = role_.CheckClaimSize(n); !s.ok()) [[unlikely]] return s;
    return Claim(n);
  }
  // Waits at most `max_wait_ns` for room before claiming: DeadlineExceeded if there was none
  // (nothing claimed).
  absl::StatusOr<std::int64_t> NextFor(std::int64_t n, std::int64_t max_wait_ns);
  // Waits at most `max_wait_ns` (> 0) until n slots can be claimed, claiming nothing: true
  // when there was room (another producer may take it first).
  absl::StatusOr<bool> WaitForRoom(std::int64_t n, std::int64_t max_wait_ns);
  // Claims only if there is room now: ResourceExhausted at once otherwise.
  [[nodiscard]] absl::StatusOr<std::int64_t> TryNext(std::int64_t n = 1);
  // Marks lo..hi published; consumers read them once every sequence before them is too.
  void Publish(std::int64_t lo, std::int64_t hi);
  void Publish(std::int64_t sequence) { Publish(sequence, sequence); }

  // The highest sequence claimed by any producer (the ring's cursor).
  std::int64_t cursor() const { return LoadCursor(*producer_); }
  std::int64_t RemainingCapacity();
  // True when n slots can be claimed now without waiting (hasAvailableCapacity).
  bool HasAvailableCapacity(std::int64_t n) {
    const std::int64_t current = cursor();
    return current + n - capacity_ <= RefreshGating(current);
  }
  // Moves the ring's claim counter to `sequence` (the Disruptor's claim): for tests and
  // replays; with other producers running it would hand out sequences twice.
  void ClaimSequence(std::int64_t sequence) {
    producer_->cursor.store(sequence, std::memory_order_seq_cst);
  }
  // Ends the stream for every producer: call it when all of them are done.
  void Close() { role_.Close(); }
  absl::Status Detach() { return role_.Detach(); }
  // True in a forked child of the process that attached: it may not use this producer.
  bool forked() const { return role_.forked(); }

 private:
  std::int64_t Claim(std::int64_t n);
  // `current` (the cursor before our claim) bounds what a joining consumer may have seen.
  std::int64_t RefreshGating(std::int64_t current) {
    return cached_gating_ = internal::RefreshGating(role_.ring(), *entry_, current);
  }
  void AwaitPreviousLaps(std::int64_t lo, std::int64_t hi);

  internal::ProducerRole role_;
  internal::Availability availability_;
  ProducerState* producer_ = nullptr;
  ProducerEntryState* entry_ = nullptr;
  std::int64_t capacity_ = 0;
  std::int64_t cached_gating_ = kInitialSequence;
  std::int64_t sample_mask_ = -1;  // latency::SampleMask of the ring's sampling period
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_MULTI_PRODUCER_SEQUENCER_H_
