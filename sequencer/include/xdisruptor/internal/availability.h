// xdisruptor/internal/availability.h — which sequences are published: the one home of the
// multi-producer availability protocol. Not for users: the sequencers, barriers, stats and
// Python bindings call it.
//
// A single producer publishes in order, so the cursor alone says what is published. Several
// producers claim ranges by fetch-add on the cursor and publish them in any order, so each slot
// carries an availability mark: the lap number (sequence >> log2(capacity)) of the last
// sequence published into it, a plain int32 in the segment (the Disruptor's
// MultiProducerSequencer scheme; marks start at -1, "lap -1 published"). Consumers read up to
// the highest *contiguous* published sequence, so every consumer sees one order.
//
//   producer:  claim (cursor fetch-add) -> AwaitPreviousLap per slot -> write -> MarkPublished
//   consumer:  cursor (acquire) -> HighestPublished(next, cursor) -> read
//
// Process-local and copyable: a few pointers into the mapping. Any thread.
#ifndef XDISRUPTOR_INTERNAL_AVAILABILITY_H_
#define XDISRUPTOR_INTERNAL_AVAILABILITY_H_

#include <atomic>
#include <cstdint>

#include "xdisruptor/layout_access.h"
#include "xdisruptor/ring_segment.h"

namespace xdisruptor::internal {

class Availability {
 public:
  Availability() = default;
  explicit Availability(const RingSegment& ring)
      : cursor_(&ring.producer().cursor),
        marks_(ring.availability_marks()),
        mask_(ring.capacity() - 1),
        shift_(ring.index_shift()) {}

  bool multi_producer() const { return marks_ != nullptr; }

  // The cursor: published (one producer) or claimed (several); see LoadCursor.
  std::int64_t cursor() const { return cursor_->load(std::memory_order_acquire); }
  const std::atomic<std::int64_t>* cursor_word() const { return cursor_; }

  // The highest published sequence from `next` up to `cursor` (a value of cursor() the caller
  // read): the cursor itself for one producer, else the sequence before the first slot whose
  // mark does not hold its lap. The only question a barrier asks (as the Disruptor's
  // ProcessingSequenceBarrier only asks getHighestPublishedSequence).
  std::int64_t HighestPublished(std::int64_t next, std::int64_t cursor) const {
    if (marks_ == nullptr) return cursor;
    for (std::int64_t s = next; s <= cursor; ++s) {
      if (!MarkHoldsLap(s)) return s - 1;
    }
    return cursor;
  }

  // HighestPublished for a reader that gates nothing (stats): the producers may claim and
  // publish the next lap of a slot while it scans, and a mark holding a later lap than
  // `sequence`'s means that sequence was published before it was overwritten, so it counts
  // (an exact match would stop the scan a lap short, and the published count would drop).
  std::int64_t HighestPublishedLapped(std::int64_t next, std::int64_t cursor) const {
    if (marks_ == nullptr) return cursor;
    for (std::int64_t s = next; s <= cursor; ++s) {
      const auto mark = static_cast<std::uint32_t>(Mark(s).load(std::memory_order_acquire));
      // Laps compared modulo 2^32, as the marks wrap.
      if (static_cast<std::int32_t>(mark - static_cast<std::uint32_t>(Lap(s))) < 0) return s - 1;
    }
    return cursor;
  }

  // True once `sequence` is published.
  bool IsPublished(std::int64_t sequence) const {
    return marks_ == nullptr ? cursor() >= sequence : MarkHoldsLap(sequence);
  }

  // Producers of a multi-producer ring: makes lo..hi readable (in claim order or not).
  void MarkPublished(std::int64_t lo, std::int64_t hi) const {
    for (std::int64_t s = lo; s <= hi; ++s) {
      // SYNC POINT: pairs with the acquire load in MarkHoldsLap (consumers) and in
      // PreviousLapPublished (the producer of the next lap): the slot's contents written
      // before are visible to whoever sees this lap.
      Mark(s).store(Lap(s), std::memory_order_release);
    }
  }

  // Producers of a multi-producer ring: true when the slot of `sequence` holds the previous
  // lap's event published, so it may be overwritten. Gating keeps a producer a lap behind
  // every consumer, but a consumer joins after everything *claimed*, so another producer's
  // claim one lap back may still be unpublished while the gating minimum has passed it.
  bool PreviousLapPublished(std::int64_t sequence) const {
    return Mark(sequence).load(std::memory_order_acquire) == Lap(sequence) - 1;
  }

  // For a blocking wait on an unpublished `sequence`: the mark to watch and the value that
  // means published (null on a single-producer ring: the cursor says it all).
  const std::atomic<std::int32_t>* MarkOf(std::int64_t sequence) const {
    return marks_ == nullptr ? nullptr : &Mark(sequence);
  }
  std::int32_t Lap(std::int64_t sequence) const {
    return static_cast<std::int32_t>(static_cast<std::uint64_t>(sequence) >> shift_);
  }

 private:
  std::atomic<std::int32_t>& Mark(std::int64_t sequence) const {
    return marks_[static_cast<std::uint64_t>(sequence) & mask_];
  }
  bool MarkHoldsLap(std::int64_t sequence) const {
    // SYNC POINT: pairs with MarkPublished's release store.
    return Mark(sequence).load(std::memory_order_acquire) == Lap(sequence);
  }

  const std::atomic<std::int64_t>* cursor_ = nullptr;
  std::atomic<std::int32_t>* marks_ = nullptr;
  std::uint64_t mask_ = 0;
  int shift_ = 0;
};

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_INTERNAL_AVAILABILITY_H_
