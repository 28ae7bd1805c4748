// xdisruptor/internal/producer_role.h — what both sequencers share of their lifecycle: attach
// (the checks, the registry lock, an entry of the producer table), move, detach, close, the
// claim-size check and the full-ring wait. Not for users.
//
// The producer table has one entry per producer process: a single-producer ring uses entry 0,
// a multi-producer ring up to kMaxProducers. Setup and teardown run under the registry lock;
// nothing here but CheckClaimSize is on the data path.
#ifndef XDISRUPTOR_INTERNAL_PRODUCER_ROLE_H_
#define XDISRUPTOR_INTERNAL_PRODUCER_ROLE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/internal/gating.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/process.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor::internal {

// claim_lo of a producer entry: no claim in flight / a claim being taken (range not yet known).
inline constexpr std::int64_t kNoClaim = -1;
inline constexpr std::int64_t kClaiming = -2;

// Gives up a producer entry when a ProducerRole lets go of it (ignoring errors: a destructor
// or a move has nobody to tell).
struct ProducerEntryRelease {
  RingSegment* ring = nullptr;
  void operator()(ProducerEntryState* entry) const;
};

class ProducerRole {
 public:
  // Checks that `ring` was made for `kind` and that `wait` suits a producer, then takes a
  // producer entry under the registry lock (FailedPrecondition if a single-producer ring has a
  // live producer, ResourceExhausted if a multi-producer table is full) and reopens the ring.
  static absl::StatusOr<ProducerRole> Attach(RingSegment& ring, SequencerKind kind,
                                             const WaitParams& wait);

  // Movable; a move-assignment (or the destructor) detaches the entry this one held.
  ProducerRole() = default;

  // Gives up the entry (the ring stays open for a successor). FailedPrecondition when already
  // detached, or in a forked child (the entry is its parent's).
  absl::Status Detach();
  // End of stream at the current cursor: consumers drain what was published, then see
  // WaitStatus::kClosed.
  void Close();

  // InvalidArgument unless 1 <= n <= capacity.
  absl::Status CheckClaimSize(std::int64_t n) const {
    if (n < 1 || n > capacity_) [[unlikely]] return ClaimSizeError(n);
    return absl::OkStatus();
  }
  // Aborts in a forked child of the process that attached (it would publish over its
  // parent's events): one relaxed load.
  void CheckProcess() const {
    if (ForkGeneration() != fork_generation_) [[unlikely]] ForkedUse("a producer", ring_->name());
  }
  // True in a forked child of the process that attached.
  bool forked() const { return ForkGeneration() != fork_generation_; }
  // The full-ring wait (gating.h) as this producer entry.
  bool WaitForCapacity(std::int64_t wrap_point, std::int64_t start, std::int64_t max_wait_ns,
                       std::int64_t* gating) {
    return WaitForGating(*ring_, wait_, static_cast<std::uint32_t>(index_), wrap_point, start,
                         max_wait_ns, gating, gating_wait_);
  }

  RingSegment& ring() const { return *ring_; }
  ProducerEntryState& entry() const { return ring_->producer().producers[index_]; }
  bool attached() const { return held_ != nullptr; }
  int index() const { return index_; }
  std::int64_t capacity() const { return capacity_; }
  const WaitParams& wait() const { return wait_; }

 private:
  ProducerRole(RingSegment& ring, int index, const WaitParams& wait);
  [[gnu::noinline]] absl::Status ClaimSizeError(std::int64_t n) const;

  RingSegment* ring_ = nullptr;
  int index_ = -1;
  std::int64_t capacity_ = 0;
  WaitParams wait_{};
  std::uint32_t fork_generation_ = 0;  // ForkGeneration() of the process that attached
  GatingWait gating_wait_;             // a full-ring wait run in slices
  std::unique_ptr<ProducerEntryState, ProducerEntryRelease> held_;  // null once detached
};

// Aborts: a second thread claimed on a single-producer sequencer (debug builds check).
[[noreturn]] void SecondClaimingThread(std::string_view ring);

// The status of a claim that found no room: TryNext's (at once) and NextFor's (in time). Made
// once: returning one copies a reference, never allocates.
const absl::Status& InsufficientCapacity();
const absl::Status& NoRoomWithin();

// Attach of either sequencer: the role, then the sequencer built on it.
template <typename Sequencer>
absl::StatusOr<Sequencer> AttachProducer(RingSegment& ring, SequencerKind kind,
                                         const WaitParams& wait) {
  auto role = ProducerRole::Attach(ring, kind, wait);
  if (!role.ok()) return role.status();
  return Sequencer(*std::move(role));
}

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_INTERNAL_PRODUCER_ROLE_H_
