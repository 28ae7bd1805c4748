#include "xdisruptor/internal/producer_role.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "internal/consumer_table.h"
#include "internal/producer_table.h"
#include "internal/registry_lock.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/process.h"

namespace xdisruptor::internal {
namespace {

absl::Status CheckAttach(const RingSegment& ring, SequencerKind kind, const WaitParams& wait) {
  if (absl::Status s = ring.CheckWritable("produce"); !s.ok()) return s;
  if (ring.sequencer_kind() != kind) {
    return absl::FailedPreconditionError(
        kind == SequencerKind::kSingleProducer
            ? absl::StrFormat("ring '%s' was created for several producers; attach a "
                              "multi-producer sequencer",
                              ring.name())
            : absl::StrFormat("ring '%s' was created for a single producer; create it with "
                              "SequencerKind::kMultiProducer to publish from several",
                              ring.name()));
  }
  if (absl::Status s = ValidateWaitParams(wait); !s.ok()) return s;
  if (wait.timeout_ns != 0 || wait.kind == WaitKind::kTimeoutBlocking) {
    return absl::InvalidArgumentError(
        "a producer waits for space until it gets it: give it a wait strategy without a "
        "timeout (use TryNext to give up at once)");
  }
  return absl::OkStatus();
}

// Under the registry lock: the entry a new producer takes. A single producer has entry 0,
// free or left by a dead process; several take a free entry, or one whose dead owner had no
// claim in flight (nothing of its is missing).
absl::StatusOr<int> ChooseProducerEntry(RingSegment& ring) {
  ProducerState& p = ring.producer();
  const bool single = ring.sequencer_kind() == SequencerKind::kSingleProducer;
  const std::size_t entries = single ? 1 : kMaxProducers;
  for (std::size_t i = 0; i < entries; ++i) {
    const ProducerEntryState& e = p.producers[i];
    const Liveness owner = OwnerLiveness(e.owner);
    if (single && owner == Liveness::kAlive) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "ring '%s' already has a live producer (process %d); a single-producer ring takes "
          "one producer at a time",
          ring.name(), LoadOwner(e.owner).pid));
    }
    // A dead producer's unpublished claim is kept: it is the evidence consumers waiting at
    // the hole are told by (kProducerStalled), and producers waiting on its slot a lap later.
    const bool reusable = owner == Liveness::kNobody ||
                          (owner == Liveness::kDead &&
                           (single || e.claim_lo.load(std::memory_order_relaxed) == kNoClaim));
    if (!reusable) continue;
    if (owner == Liveness::kDead) {  // it may have died asleep on a consumer
      ClearSleeperEverywhere(ring, {.producer = true, .index = static_cast<std::uint32_t>(i)});
    }
    return static_cast<int>(i);
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "ring '%s' has %d live producers (or dead ones whose claims stalled it); no room for "
      "another",
      ring.name(), kMaxProducers));
}

}  // namespace

absl::StatusOr<ProducerRole> ProducerRole::Attach(RingSegment& ring, SequencerKind kind,
                                                  const WaitParams& wait) {
  if (absl::Status s = CheckAttach(ring, kind, wait); !s.ok()) return s;
  RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  RepairTable(ring);  // a stray gating bit would block this producer forever
  auto index = ChooseProducerEntry(ring);
  if (!index.ok()) return index.status();
  ProducerEntryState& e = ring.producer().producers[*index];
  // Wrote nothing yet; but the entry's last holder (dead, or detached) may have claimed and
  // written slots past the cursor it never published: they stay in the frontier, so no
  // consumer joins with history at a slot that holds half of the next lap.
  const std::int64_t written =
      std::max(LoadCursor(ring.producer()), e.claim_hi.load(std::memory_order_relaxed));
  e.claim_lo.store(kNoClaim, std::memory_order_relaxed);
  e.claim_hi.store(written, std::memory_order_relaxed);  // kept (Claimed never goes below it)
  e.frontier.store(written, std::memory_order_relaxed);
  StoreWaitKind(e.wait_kind, wait.kind);
  StoreOwner(e.owner, CurrentProcess());
  // A successor reopens a ring its predecessor closed.
  SetRingStatus(ring.producer(), RingStatus::kOpen);
  return ProducerRole(ring, *index, wait);
}

ProducerRole::ProducerRole(RingSegment& ring, int index, const WaitParams& wait)
    : ring_(&ring),
      index_(index),
      capacity_(static_cast<std::int64_t>(ring.capacity())),
      wait_(wait),
      fork_generation_(ForkGeneration()),
      held_(&ring.producer().producers[index], ProducerEntryRelease{&ring}) {}

namespace {

absl::Status DetachEntry(RingSegment& ring, ProducerEntryState& e) {
  if (!OwnedByMe(e.owner)) {
    // A forked child's copy: the entry is its parent's (or someone else's by now).
    return absl::FailedPreconditionError("this process is not that producer of the ring");
  }
  RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  const std::int64_t lo = e.claim_lo.load(std::memory_order_relaxed);
  if (ring.sequencer_kind() == SequencerKind::kMultiProducer && lo != kNoClaim) {
    // A claim it never published (an exception between Next and Publish): the hole will
    // never fill. The entry stays a dead producer's with that claim, as after a crash, so a
    // consumer waiting at the hole is told (kProducerStalled) instead of waiting for ever,
    // and the entry is not reused (which would wipe that evidence).
    StoreOwner(e.owner, ProcessIdentity{.pid = kNoSuchPid});
    return absl::OkStatus();
  }
  e.claim_lo.store(kNoClaim, std::memory_order_relaxed);
  ClearOwner(e.owner);
  return absl::OkStatus();
}

}  // namespace

void ProducerEntryRelease::operator()(ProducerEntryState* entry) const {
  DetachEntry(*ring, *entry).IgnoreError();
}

absl::Status ProducerRole::Detach() {
  if (held_ == nullptr) return absl::FailedPreconditionError("the producer is already detached");
  return DetachEntry(*ring_, *held_.release());
}

void ProducerRole::Close() {
  CloseRing(ring_->producer());
  wait::WakeAll(ring_->producer().cursor_notification);  // sleepers must see the end
}

absl::Status ProducerRole::ClaimSizeError(std::int64_t n) const {
  return absl::InvalidArgumentError(absl::StrFormat(
      "a claim of %d slots on ring '%s': claim from 1 to the ring's capacity (%d)", n,
      ring_->name(), capacity_));
}

void SecondClaimingThread(std::string_view ring) {
  std::fprintf(stderr,
               "xdisruptor: two threads claimed on the single-producer sequencer of ring '%.*s'; "
               "one thread claims on a single-producer ring (use a multi-producer ring, or "
               "one sequencer per thread)\n",
               static_cast<int>(ring.size()), ring.data());
  std::abort();
}

const absl::Status& InsufficientCapacity() {
  static const absl::Status* const status = new absl::Status(absl::ResourceExhaustedError(
      "the ring has no room for that many slots now (insufficient capacity): a consumer is "
      "less than a lap ahead; try again, or wait with Next/NextFor"));
  return *status;
}

const absl::Status& NoRoomWithin() {
  static const absl::Status* const status = new absl::Status(absl::DeadlineExceededError(
      "the ring had no room for that many slots within the time given"));
  return *status;
}

std::vector<ProducerInfo> Producers(const RingSegment& ring) {
  std::vector<ProducerInfo> out;
  const ProducerState& p = ring.producer();
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const ProducerEntryState& e = p.producers[i];
    const Liveness owner = OwnerLiveness(e.owner);
    if (owner == Liveness::kNobody) continue;
    out.push_back({.index = static_cast<int>(i),
                   .pid = LoadOwner(e.owner).pid,
                   .alive = owner == Liveness::kAlive,
                   .wait = LoadWaitKind(e.wait_kind, WaitKind::kYielding)});
  }
  return out;
}

bool ProducersGone(const RingSegment& ring) {
  bool any = false;
  for (const ProducerEntryState& e : ring.producer().producers) {
    const Liveness owner = OwnerLiveness(e.owner);
    if (owner == Liveness::kAlive) return false;
    any = any || owner == Liveness::kDead;
  }
  return any;
}

bool HasStalledProducer(const RingSegment& ring, std::int64_t sequence) {
  bool unknown_dead = false;  // a dead producer that died before recording its range
  bool live_covers = false;
  for (const ProducerEntryState& e : ring.producer().producers) {
    const Liveness owner = OwnerLiveness(e.owner);  // acquire: the claim read next is its
    const std::int64_t lo = e.claim_lo.load(std::memory_order_relaxed);
    if (owner == Liveness::kNobody || lo == kNoClaim) continue;
    const std::int64_t hi = e.claim_hi.load(std::memory_order_relaxed);
    const bool covers = lo != kClaiming && lo <= sequence && sequence <= hi;
    if (owner == Liveness::kAlive) {
      live_covers = live_covers || covers;
    } else if (covers) {
      return true;
    } else if (lo == kClaiming) {
      unknown_dead = true;
    }
  }
  return unknown_dead && !live_covers;
}

}  // namespace xdisruptor::internal
