// xdisruptor/event_poller.h — consume on the caller's own loop instead of a processor's.
//
// Poll() hands every event available now to a callable
//   bool handler(T& event, std::int64_t sequence, bool end_of_batch)   // false: stop early
// releases what it handled, and says what it found. It never waits. The consuming thread only.
#ifndef XDISRUPTOR_EVENT_POLLER_H_
#define XDISRUPTOR_EVENT_POLLER_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "xdisruptor/consumer.h"
#include "xdisruptor/ring.h"

namespace xdisruptor {

enum class PollState {
  kProcessing,  // handled at least one event
  kGating,      // the producer published more, but a stage this one runs after holds it
  kIdle,        // nothing new published
  kClosed,      // the producer closed the ring and everything was handled
  kUpstreamGone,  // a stage this one runs after left before releasing what is published
  kLapped,  // an observer: events from its position were overwritten; the events this poll
            // handed out (if any) may be among them and were not released
  kEvicted,  // this consumer was evicted (stall policy or an operator): nothing more is handed
             // out; register again with rejoin_at_cursor (docs/reliability.md)
};

template <typename T>
class EventPoller {
 public:
  EventPoller(const Ring<T>& ring, Consumer& consumer) : ring_(&ring), consumer_(&consumer) {}

  template <typename F>
  PollState Poll(F&& handler) {
    SequenceBarrier& barrier = consumer_->barrier();
    const std::int64_t current = consumer_->sequence();
    const bool observer = consumer_->observer();
    if (observer && consumer_->Lapped(current + 1)) [[unlikely]] return PollState::kLapped;
    // Never more than a lap past its position, as WaitFor: only an evicted consumer (no longer
    // gating) could be offered more, and those slots may be overwritten while it reads.
    const std::int64_t available = std::min(barrier.Available(), current + barrier.lap());
    if (barrier.evicted()) [[unlikely]] return PollState::kEvicted;
    if (available > current) {
      std::int64_t processed = current;
      for (std::int64_t s = current + 1; s <= available;) {
        const bool more = handler((*ring_)[s], s, s == available);
        processed = s++;
        if (!more) break;
      }
      if (observer && consumer_->Lapped(current + 1)) [[unlikely]] return PollState::kLapped;
      // Evicted while it read: the producer may have overwritten what it was handed. The
      // fence keeps the slot reads above before the status load (as Consumer::Lapped).
      std::atomic_thread_fence(std::memory_order_acquire);
      if (barrier.evicted()) [[unlikely]] return PollState::kEvicted;
      consumer_->Release(processed, static_cast<std::uint64_t>(processed - current));
      return PollState::kProcessing;
    }
    const bool closed = barrier.closed();  // read before the cursor: see sequence_barrier.h
    const std::int64_t cursor = barrier.cursor();
    if (cursor > current) {
      return barrier.UpstreamGone(current + 1) ? PollState::kUpstreamGone : PollState::kGating;
    }
    return closed ? PollState::kClosed : PollState::kIdle;
  }

 private:
  const Ring<T>* ring_;
  Consumer* consumer_;
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_EVENT_POLLER_H_
