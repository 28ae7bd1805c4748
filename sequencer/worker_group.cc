// Worker groups (docs/worker-groups.md): members of one group share a stream, each event
// handled by one live member.
//
// The group is a stage of its own (an entry with group_role kGroupStage): it gates the
// producer, it runs after what its first member named, and other stages run after it. Its
// `work` word is the highest sequence any member claimed; members take runs (work, hi] with a
// CAS, hi at most `claim` past it and never past what is published. Each member's own
// `sequence` says "nothing at or below this is unfinished in my hands": it is stored as the
// `work` value a member read before it claims above it, and moves up as it releases within
// its run. The group stage's `sequence` is therefore the minimum over its members' sequences
// (and `work`): every member moves it up (a CAS to the maximum) when it starts a claim, so it
// never passes a run that is not finished. A member that dies keeps its bit in
// `group_members` and its `sequence` < `claim_hi`: the next live member to look (every
// kTakeoverCheckNs with nothing in hand, waiting or not, and before it reports the end of the
// stream; under the registry lock) takes the unfinished part over and handles it again (at
// least once), and drops dead members from the group so they stop holding it back.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <climits>

#include "absl/strings/str_format.h"
#include "internal/consumer_table.h"
#include "internal/registry_lock.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/internal/worker_group.h"
#include "xdisruptor/process.h"
#include "xdisruptor/waitstrategies/blocking.h"

namespace xdisruptor {
namespace {

constexpr std::int64_t kTakeoverCheckNs = 100'000'000;

}  // namespace

namespace internal {

bool GroupAlive(const RingSegment& ring, const ConsumerState& group) {
  for (std::uint64_t m = group.group_members.load(std::memory_order_acquire); m != 0;
       m &= m - 1) {
    if (IsAlive(ring.consumer(static_cast<std::size_t>(std::countr_zero(m))).owner)) return true;
  }
  return false;
}

bool EntryAlive(const RingSegment& ring, const ConsumerState& c) {
  if (c.group_role.load(std::memory_order_relaxed) == kGroupStage) return GroupAlive(ring, c);
  return OwnerLiveness(c.owner) == Liveness::kAlive;
}

void EvictGroupMembers(RingSegment& ring, ConsumerState& group) {
  const std::uint64_t members = group.group_members.exchange(0, std::memory_order_seq_cst);
  for (std::uint64_t m = members; m != 0; m &= m - 1) {
    ConsumerState& c = ring.consumer(static_cast<std::size_t>(std::countr_zero(m)));
    if (LoadStatus(c) != ConsumerStatus::kActive) continue;
    BumpCounter(c.evictions);
    StoreStatus(c, ConsumerStatus::kEvicted);  // its barrier says kEvicted at its next wait
    wait::WakeAll(c.notification);
  }
}

std::int64_t GroupMinimum(const RingSegment& ring, const ConsumerState& group) {
  // The order matters: `work` first (acquire: a member's sequence stored before its claim is
  // seen), then the members (acquire: one that joined before that claim is among them), then
  // their sequences.
  std::int64_t low = group.work.load(std::memory_order_acquire);
  for (std::uint64_t m = group.group_members.load(std::memory_order_acquire); m != 0;
       m &= m - 1) {
    low = std::min(low, LoadSequence(ring.consumer(static_cast<std::size_t>(std::countr_zero(m)))));
  }
  return low;
}

}  // namespace internal

std::string Consumer::group() const {
  if (group_index_ < 0) return {};
  return internal::EntryName(ring_->consumer(static_cast<std::size_t>(group_index_)));
}

void Consumer::AdvanceGroup() {
  ConsumerState& g = ring_->consumer(static_cast<std::size_t>(group_index_));
  const std::int64_t low = internal::GroupMinimum(*ring_, g);
  std::int64_t now = g.sequence.load(std::memory_order_relaxed);
  while (low > now) {
    // SYNC POINT: the release pairs with the producer's gating acquire load and downstream
    // barriers' acquire loads; what members released (acquire in GroupMinimum) comes along.
    if (g.sequence.compare_exchange_weak(now, low, std::memory_order_release,
                                         std::memory_order_relaxed)) {
      // Every member that wins a CAS counts here: an atomic add, not the single writer's
      // BumpCounter (a load-then-store would lose counts and could go backwards).
      g.batches.fetch_add(1, std::memory_order_relaxed);
      wait::Notify(g.notification);
      return;
    }
  }
}

void Consumer::TakeOverDeadMembers() {
  ConsumerState& g = ring_->consumer(static_cast<std::size_t>(group_index_));
  // Cheap look first: any member whose process is gone?
  bool dead = false;
  for (std::uint64_t m = g.group_members.load(std::memory_order_acquire); m != 0 && !dead;
       m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    dead = static_cast<int>(i) != index_ && !IsAlive(ring_->consumer(i).owner);
  }
  if (!dead) return;
  internal::RegistryLock lock(ring_->producer());
  if (!lock.Acquire().ok()) return;
  const bool idle = LoadSequence(*state_) >= state_->claim_hi.load(std::memory_order_relaxed);
  bool took = !idle;  // one run at a time: a member with a run of its own takes none
  for (std::uint64_t m = g.group_members.load(std::memory_order_acquire); m != 0; m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    ConsumerState& d = ring_->consumer(i);
    if (static_cast<int>(i) == index_ || IsAlive(d.owner)) continue;
    const std::int64_t done = LoadSequence(d);
    const std::int64_t hi = d.claim_hi.load(std::memory_order_relaxed);
    // A member announces a claim (claim_hi) before its CAS on `work`: killed in between, its
    // announced run was never its own when `work` is still below it (work only grows, and a
    // won claim moves it to hi). Such a run is claimed as usual, not redone as taken over.
    // SYNC POINT: acquire pairs with the claim's CAS (acq_rel) in NextRun.
    const bool owned = g.work.load(std::memory_order_acquire) >= hi;
    if (done < hi && owned) {
      if (took) continue;  // its run waits for the next look (it still holds the group back)
      // Its unfinished run becomes ours: our sequence goes to where it stopped before its
      // bit goes (so the group's minimum never passes the run), then we redo (done, hi].
      state_->claim_hi.store(hi, std::memory_order_relaxed);
      state_->sequence.store(done, std::memory_order_release);
      BumpCounter(state_->takeovers);
      run_taken_over_ = true;
      took = true;
    }
    g.group_members.fetch_and(~(std::uint64_t{1} << i), std::memory_order_seq_cst);
    ClearOwner(d.owner);
    StoreStatus(d, ConsumerStatus::kFree);  // its name may register again: a fresh member
    wait::WakeAll(d.notification);
  }
  if (!IsAlive(g.owner)) StoreOwner(g.owner, CurrentProcess());
}

ClaimedRun Consumer::NextRun(std::int64_t max_wait_ns) {
  if (group_index_ < 0) {
    return {.status = WaitStatus::kUpstreamGone};  // not a member (a programming error)
  }
  ConsumerState& g = ring_->consumer(static_cast<std::size_t>(group_index_));
  // Waits go in slices of at most kTakeoverCheckNs: a member waiting for events that never
  // come because a dead member's run holds the ring full must still look for the dead.
  const std::int64_t give_up = max_wait_ns > 0 ? MonotonicNanos() + max_wait_ns : INT64_MAX;
  const auto slice = [&] {
    return std::max<std::int64_t>(1, std::min(kTakeoverCheckNs, give_up - MonotonicNanos()));
  };
  for (;;) {
    const std::int64_t done = LoadSequence(*state_);
    const std::int64_t hi = state_->claim_hi.load(std::memory_order_relaxed);
    if (done < hi) {  // an unfinished run: resumed after a restart, or taken over
      const WaitResult r = barrier_.WaitFor(hi, slice());
      if (r.status == WaitStatus::kCheckpoint && r.available < hi &&
          MonotonicNanos() < give_up) {
        continue;
      }
      // Halted or evicted: not even a run in hand (evicted, its slots may be overwritten).
      if (r.status == WaitStatus::kHalted || r.status == WaitStatus::kEvicted ||
          (r.status != WaitStatus::kOk && r.available < hi)) {
        return {.status = r.status};
      }
      return {.first = done + 1, .last = hi, .taken_over = run_taken_over_ || resumed_};
    }
    run_taken_over_ = false;
    if (const std::int64_t now = MonotonicNanos(); now >= takeover_due_ns_) {
      takeover_due_ns_ = now + kTakeoverCheckNs;
      TakeOverDeadMembers();
      if (LoadSequence(*state_) < state_->claim_hi.load(std::memory_order_relaxed)) continue;
    }
    // Nothing in hand: everything up to `work` is someone's. Say so, move the group up to
    // its slowest member, then claim after `work`.
    std::int64_t work = g.work.load(std::memory_order_acquire);
    // SYNC POINT: stored before the claim's CAS (release): whoever sees the claim sees this.
    state_->sequence.store(work, std::memory_order_release);
    next_sample_ = latency::NextSample(work, sample_mask_);
    AdvanceGroup();
    const WaitResult r = barrier_.WaitFor(work + 1, slice());
    // Halted (Halt, a barrier's Alert) or evicted: claim nothing more, even with events waiting
    // (an evicted member no longer holds the producer back: what it claimed could be
    // overwritten under it).
    if (r.status == WaitStatus::kHalted || r.status == WaitStatus::kEvicted) {
      return {.status = r.status};
    }
    if (r.available <= work) {
      if (r.status == WaitStatus::kOk) continue;
      // A slice ended: look for dead members (when due) and wait on, unless the caller's
      // own limit is reached.
      if (r.status == WaitStatus::kCheckpoint && MonotonicNanos() < give_up) continue;
      if (r.status == WaitStatus::kClosed &&
          g.work.load(std::memory_order_acquire) != work) {
        continue;  // someone claimed meanwhile: the stream's end is past what we looked at
      }
      if (r.status == WaitStatus::kClosed || r.status == WaitStatus::kProducerGone ||
          r.status == WaitStatus::kUpstreamGone) {
        // The end: but a member that died with a run in hand must not take its run with it
        // (its events are in: runs are claimed only up to what is available). Look now (not
        // at the next period): its run is ours to finish before we stop.
        TakeOverDeadMembers();
        if (LoadSequence(*state_) < state_->claim_hi.load(std::memory_order_relaxed)) continue;
        AdvanceGroup();
      }
      return {.status = r.status};
    }
    const std::int64_t last = std::min(work + claim_, r.available);
    state_->claim_hi.store(last, std::memory_order_relaxed);  // before the CAS: see takeover
    if (g.work.compare_exchange_strong(work, last, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      barrier_.EndWait();
      return {.first = LoadSequence(*state_) + 1, .last = last};
    }
    state_->claim_hi.store(LoadSequence(*state_), std::memory_order_relaxed);  // lost the race
  }
}

}  // namespace xdisruptor

namespace xdisruptor::internal {

absl::Status LeaveGroup(RingSegment& ring, int member, int group) {
  ConsumerState& c = ring.consumer(static_cast<std::size_t>(member));
  ConsumerState& g = ring.consumer(static_cast<std::size_t>(group));
  ClearOwner(c.owner);
  if (LoadSequence(c) < c.claim_hi.load(std::memory_order_relaxed)) {
    wait::WakeAll(g.notification);
    return absl::OkStatus();  // its run is handed to the next member that looks (as if dead)
  }
  // Dead members with nothing in hand go now (the periodic look may not have run since they
  // died): they must not keep a group with no live member gating the producer. One that died
  // with a run it won stays, holding the group back until a member takes its run over.
  // SYNC POINT: the acquire loads pair with the members' seq_cst fetch_or on joining and the
  // claims' CAS on `work`; the fetch_and (seq_cst, under the registry lock) pairs with
  // GroupMinimum's acquire load of the members, as TakeOverDeadMembers' does.
  const std::int64_t work = g.work.load(std::memory_order_acquire);
  for (std::uint64_t m = g.group_members.load(std::memory_order_acquire); m != 0; m &= m - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(m));
    ConsumerState& d = ring.consumer(i);
    const std::int64_t hi = d.claim_hi.load(std::memory_order_relaxed);
    if (static_cast<int>(i) == member || IsAlive(d.owner) ||
        (LoadSequence(d) < hi && work >= hi)) {
      continue;
    }
    g.group_members.fetch_and(~(std::uint64_t{1} << i), std::memory_order_seq_cst);
    ClearOwner(d.owner);
    StoreStatus(d, ConsumerStatus::kFree);
    wait::WakeAll(d.notification);
  }
  const std::uint64_t left =
      g.group_members.fetch_and(~(std::uint64_t{1} << member), std::memory_order_seq_cst) &
      ~(std::uint64_t{1} << member);
  StoreStatus(c, ConsumerStatus::kFree);
  wait::WakeAll(c.notification);
  if (left == 0 && IsActive(g)) {  // the last member: the group stops gating and goes
    LeaveGating(ring.producer(), static_cast<std::size_t>(group));
    ClearOwner(g.owner);
    StoreStatus(g, ConsumerStatus::kFree);
    wait::WakeAll(g.notification);
  }
  return absl::OkStatus();
}

}  // namespace xdisruptor::internal
