#include "xdisruptor/sequence_barrier.h"

namespace xdisruptor {

WaitParams SequenceBarrier::CurrentWaitParams() const {
  // Relaxed: each field is independent tuning; a retune half-seen for one wait is harmless
  // and the next wait sees all of it.
  WaitParams params;
  const std::uint32_t kind = self_->wait_kind.load(std::memory_order_relaxed);
  params.kind = kind <= static_cast<std::uint32_t>(WaitKind::kSleeping)
                    ? static_cast<WaitKind>(kind)
                    : WaitKind::kYielding;  // an unknown value from shared memory
  params.spin_tries = self_->wait_spin_tries.load(std::memory_order_relaxed);
  params.yield_tries = self_->wait_yield_tries.load(std::memory_order_relaxed);
  params.sleep_ceiling_ns = std::clamp<std::int64_t>(
      self_->wait_sleep_ceiling_ns.load(std::memory_order_relaxed), 0, 1000000000);
  params.timeout_ns = std::max<std::int64_t>(
      self_->wait_timeout_ns.load(std::memory_order_relaxed), 0);
  return params;
}

bool SequenceBarrier::UpstreamGone(std::int64_t sequence) const {
  for (std::uint32_t i = 0; i < upstream_count_; ++i) {
    const ConsumerState& up = *upstream_[i];
    if (up.sequence.load(std::memory_order_acquire) >= sequence) continue;
    const bool active = up.status.load(std::memory_order_acquire) ==
                        static_cast<std::uint32_t>(ConsumerStatus::kActive);
    if (!active || up.generation.load(std::memory_order_relaxed) != upstream_generation_[i]) {
      return true;
    }
  }
  return false;
}

WaitResult SequenceBarrier::WaitSlow(std::int64_t sequence) {
  Idler idler(CurrentWaitParams());
  // Single writer (this consumer): load + store, no locked instruction.
  self_->waits.store(self_->waits.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
  for (;;) {
    std::int64_t available = Available();
    if (alert_.load(std::memory_order_relaxed)) return {available, WaitStatus::kAlerted};
    if (available >= sequence) return {available, WaitStatus::kOk};
    if (closed()) {
      // The cursor read after seeing kClosed is final: nothing beyond it will come.
      const std::int64_t final_cursor = cursor_->load(std::memory_order_acquire);
      available = Available();
      if (available >= sequence) return {available, WaitStatus::kOk};
      if (sequence > final_cursor) return {available, WaitStatus::kClosed};
    }
    if (UpstreamGone(sequence)) return {available, WaitStatus::kUpstreamGone};
    if (!idler.Idle()) return {available, WaitStatus::kTimeout};
  }
}

}  // namespace xdisruptor
