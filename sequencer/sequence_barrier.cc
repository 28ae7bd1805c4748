#include "xdisruptor/sequence_barrier.h"

#include "xdisruptor/consumer.h"
#include "xdisruptor/multi_producer_sequencer.h"
#include "xdisruptor/process.h"

namespace xdisruptor {

namespace {
// How long a wait goes between asking whether the producer died (a /proc read per producer;
// only while waiting, never on the data path).
constexpr std::int64_t kLivenessCheckNs = 100'000'000;

// True when the ring had producers and none of them lives any more.
bool ProducersGone(const RingSegment& ring) {
  const ProducerState& p = ring.producer();
  bool any = false;
  if (!ring.multi_producer()) {
    const std::int64_t pid = p.producer_pid.load(std::memory_order_acquire);
    return pid != 0 && !IsProcessAlive(pid, p.producer_start_time.load(std::memory_order_relaxed));
  }
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const std::int64_t pid = p.producers[i].pid.load(std::memory_order_acquire);
    if (pid == 0) continue;
    if (IsProcessAlive(pid, p.producers[i].start_time.load(std::memory_order_relaxed))) {
      return false;
    }
    any = true;
  }
  return any;
}
}  // namespace

WaitParams SequenceBarrier::CurrentWaitParams() const { return LoadWaitParams(*self_); }

void SequenceBarrier::Alert() {
  // Relaxed: WakeAll's release bump publishes it to a waiter that reads the new word.
  alert_.store(true, std::memory_order_relaxed);
  WakeSelf();
}

void SequenceBarrier::WakeSelf() {
  wait::WakeAll(producer_->cursor_notification);
  for (std::uint32_t i = 0; i < upstream_count_; ++i) wait::WakeAll(upstream_[i]->notification);
}

wait::BlockTarget SequenceBarrier::Lagging(std::int64_t sequence) const {
  wait::BlockTarget t;
  t.needed = sequence;
  t.sleeper = {.producer = false, .index = self_index_};
  t.ring_status = ring_status_;
  t.alert = &alert_;
  if (cursor_->load(std::memory_order_acquire) < sequence) {
    t.sequence = cursor_;
    t.notification = &producer_->cursor_notification;
    return t;
  }
  if (multi_ && ring_->availability(sequence)->load(std::memory_order_acquire) !=
                    ring_->lap(sequence)) {  // claimed, not yet published
    t.sequence = cursor_;
    t.notification = &producer_->cursor_notification;
    t.mark = ring_->availability(sequence);
    t.mark_value = ring_->lap(sequence);
    return t;
  }
  for (std::uint32_t i = 0; i < upstream_count_; ++i) {
    if (upstream_[i]->sequence.load(std::memory_order_acquire) < sequence) {
      t.sequence = &upstream_[i]->sequence;
      t.notification = &upstream_[i]->notification;
      t.active_status = &upstream_[i]->status;
      return t;
    }
  }
  return {};
}

bool SequenceBarrier::UpstreamGone(std::int64_t sequence) const {
  for (std::uint32_t i = 0; i < upstream_count_; ++i) {
    const ConsumerState& up = *upstream_[i];
    // Another registration took the entry: its sequence says nothing about our upstream.
    if (up.generation.load(std::memory_order_acquire) != upstream_generation_[i]) return true;
    if (up.sequence.load(std::memory_order_acquire) >= sequence) continue;
    if (up.status.load(std::memory_order_acquire) !=
        static_cast<std::uint32_t>(ConsumerStatus::kActive)) {
      return true;
    }
  }
  return false;
}

WaitResult SequenceBarrier::WaitSlow(std::int64_t sequence, std::int64_t max_wait_ns) {
  // SYNC POINT: pairs with StoreWaitParams' release bump: the parameters read are complete.
  std::uint32_t version = self_->wait_config_version.load(std::memory_order_acquire);
  Idler idler(CurrentWaitParams(), max_wait_ns);
  // The liveness timer survives short waits (a Python consumer returns every 50 ms to check
  // for Ctrl-C): it restarts only once a wait succeeds.
  if (liveness_due_ns_ == 0) liveness_due_ns_ = MonotonicNanos() + kLivenessCheckNs;
  // Single writer (this consumer): load + store, no locked instruction.
  self_->waits.store(self_->waits.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
  for (;;) {
    std::int64_t available = std::min(AvailableFrom(sequence), sequence - 1 + lap_);
    if (alert_.load(std::memory_order_relaxed)) return {available, WaitStatus::kAlerted};
    if (self_->status.load(std::memory_order_acquire) ==
        static_cast<std::uint32_t>(ConsumerStatus::kEvicted)) {
      return {available, WaitStatus::kEvicted};
    }
    if (available >= sequence) {
      liveness_due_ns_ = 0;
      return {available, WaitStatus::kOk};
    }
    if (closed()) {
      // The cursor read after seeing kClosed is final: nothing beyond it will come.
      const std::int64_t final_cursor = cursor_->load(std::memory_order_acquire);
      available = AvailableFrom(sequence);
      if (available >= sequence) return {available, WaitStatus::kOk};
      if (sequence > final_cursor) return {available, WaitStatus::kClosed};
    }

    // Now and then while waiting: did a producer die? Claimed but never published (a
    // multi-producer ring whose producer died mid-claim), or everything delivered and the
    // producer gone without closing the stream.
    if (MonotonicNanos() >= liveness_due_ns_) {
      const bool claimed = cursor_->load(std::memory_order_acquire) >= sequence;
      if (multi_ && claimed && HasStalledProducer(*ring_, sequence) &&
          AvailableFrom(sequence) < sequence) {
        return {available, WaitStatus::kProducerStalled};
      }
      if (!claimed && ProducersGone(*ring_)) return {available, WaitStatus::kProducerGone};
      liveness_due_ns_ = MonotonicNanos() + kLivenessCheckNs;
    }
    if (UpstreamGone(sequence)) return {available, WaitStatus::kUpstreamGone};
    const std::uint32_t now = self_->wait_config_version.load(std::memory_order_acquire);
    if (now != version) {  // retuned from outside while waiting: continue by the new strategy
      version = now;
      idler = Idler(CurrentWaitParams(), max_wait_ns);
    }
    if (!idler.Idle([&] { return Lagging(sequence); })) {
      return {available,
              idler.strategy_timed_out() ? WaitStatus::kTimeout : WaitStatus::kCheckpoint};
    }
  }
}

}  // namespace xdisruptor
