#include "xdisruptor/sequence_barrier.h"

#include "xdisruptor/internal/gating.h"
#include "internal/producer_table.h"

namespace xdisruptor {

namespace {
// How long a wait goes between asking whether the producer died (a /proc read per producer;
// only while waiting, never on the data path).
constexpr std::int64_t kLivenessCheckNs = 100'000'000;
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
  t.ring = producer_;
  t.alert = &alert_;
  if (published_.cursor() < sequence || !published_.IsPublished(sequence)) {
    // Not claimed yet, or (several producers) claimed and not yet published: the producers
    // wake the cursor's sleepers either way.
    t.sequence = published_.cursor_word();
    t.notification = &producer_->cursor_notification;
    t.mark = published_.MarkOf(sequence);
    t.mark_value = published_.Lap(sequence);
    return t;
  }
  for (std::uint32_t i = 0; i < upstream_count_; ++i) {
    if (LoadSequence(*upstream_[i]) < sequence) {
      t.sequence = &upstream_[i]->sequence;
      t.notification = &upstream_[i]->notification;
      t.must_stay_active = upstream_[i];
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
    if (LoadSequence(up) >= sequence) continue;
    if (!IsActive(up)) return true;
  }
  return false;
}

WaitResult SequenceBarrier::WaitSlow(std::int64_t sequence, std::int64_t max_wait_ns) {
  if (ForkGeneration() != fork_generation_) [[unlikely]] ForkedUse("a consumer", ring_->name());
  if (open_wait_ == sequence) {
    idler_.NewSlice(max_wait_ns);  // the same wait, one more slice
  } else {
    wait_version_ = LoadWaitConfigVersion(*self_);
    idler_ = Idler(CurrentWaitParams(), max_wait_ns, spin_advisor_.SpinNext());
    open_wait_ = sequence;
    BumpCounter(self_->waits);
  }
  // The liveness timer survives slices and short waits: it restarts only once a wait
  // succeeds.
  if (liveness_due_ns_ == 0) liveness_due_ns_ = MonotonicNanos() + kLivenessCheckNs;
  const WaitResult r = WaitLoop(sequence, max_wait_ns);
  if (r.status != WaitStatus::kCheckpoint) open_wait_ = kNoOpenWait;
  return r;
}

WaitResult SequenceBarrier::WaitLoop(std::int64_t sequence, std::int64_t max_wait_ns) {
  for (;;) {
    std::int64_t available = std::min(AvailableFrom(sequence), sequence - 1 + lap_);
    if (alert_.load(std::memory_order_relaxed)) return {available, WaitStatus::kHalted};
    if (IsEvicted(*self_)) return {available, WaitStatus::kEvicted};
    // An observer waiting for an overwritten event (a multi-producer ring's slot then shows a
    // later lap and never this one) is told at once.
    // (A worker-group member does not gate either, but its group does, for it.)
    if (const std::uint32_t mode = self_->observer.load(std::memory_order_relaxed);
        mode != kGatingMode && mode != kMemberMode &&
        internal::ClaimFrontier(*ring_) - lap_ >= sequence) [[unlikely]] {
      return {available, WaitStatus::kLapped};
    }
    if (available >= sequence) {
      liveness_due_ns_ = 0;
      spin_advisor_.Done(idler_);
      return {available, WaitStatus::kOk};
    }
    if (closed()) {
      // The cursor read after seeing kClosed is final: nothing beyond it will come.
      const std::int64_t final_cursor = published_.cursor();
      available = AvailableFrom(sequence);
      if (available >= sequence) return {available, WaitStatus::kOk};
      if (sequence > final_cursor) return {available, WaitStatus::kClosed};
    }

    // Now and then while waiting: did a producer die? Claimed but never published (a
    // multi-producer ring whose producer died mid-claim), or everything delivered and the
    // producer gone without closing the stream.
    if (MonotonicNanos() >= liveness_due_ns_) {
      const bool claimed = published_.cursor() >= sequence;
      if (published_.multi_producer() && claimed &&
          internal::HasStalledProducer(*ring_, sequence) && AvailableFrom(sequence) < sequence) {
        return {available, WaitStatus::kProducerStalled};
      }
      if (!claimed && internal::ProducersGone(*ring_)) {
        return {available, WaitStatus::kProducerGone};
      }
      liveness_due_ns_ = MonotonicNanos() + kLivenessCheckNs;
    }
    if (UpstreamGone(sequence)) return {available, WaitStatus::kUpstreamGone};
    const std::uint32_t now = LoadWaitConfigVersion(*self_);
    if (now != wait_version_) {  // retuned from outside while waiting: go on by the new one
      wait_version_ = now;
      idler_ = Idler(CurrentWaitParams(), max_wait_ns, spin_advisor_.SpinNext());
    }
    const std::uint64_t sleeps = idler_.sleeps(), wakes = idler_.wakes();
    const bool more = idler_.Idle([&] { return Lagging(sequence); });
    if (idler_.sleeps() != sleeps) [[unlikely]] {  // counted for `stat` and the metrics
      BumpCounter(self_->sleeps, idler_.sleeps() - sleeps);
      BumpCounter(self_->wakes, idler_.wakes() - wakes);
    }
    if (!more) {
      return {available,
              idler_.strategy_timed_out() ? WaitStatus::kTimeout : WaitStatus::kCheckpoint};
    }
  }
}

}  // namespace xdisruptor
