// xdisruptor/consumer.h — a named consumer's registration and its gating sequence.
//
// Register claims an entry in the ring's consumer table under a name, joins at the cursor
// (the join race closed as docs/architecture.md explains), records the wait strategy and the
// consumers it runs after, and starts gating the producer. The process that registered owns
// the entry until Deregister or destruction; a process that dies leaves an entry that a later
// registration under the same name takes over. Setup calls may come from any thread; the hot
// calls (sequence, Release, barrier) belong to the one thread that consumes.
#ifndef XDISRUPTOR_CONSUMER_H_
#define XDISRUPTOR_CONSUMER_H_

#include <cstdint>
#include <climits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/latency.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/process.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/sequence_barrier.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

// ConsumerOptions::start_at for a consumer that joins after the cursor (the default).
inline constexpr std::int64_t kAtCursor = INT64_MIN;

struct ConsumerOptions {
  std::vector<std::string> after{};  // names of consumers whose releases this one waits for
  WaitParams wait{};
  // kHold: if this consumer's process dies, the producer waits for it (it must see every
  // event; it resumes where it left off when it comes back). kEvict: the producer drops it
  // from gating once it is dead and blocks the ring, and goes on.
  StallPolicy stall_policy = StallPolicy::kHold;
  // An evicted consumer that comes back under its name has missed events; Register refuses
  // (OutOfRange, saying how many) unless this is set, and then joins at the cursor.
  bool rejoin_at_cursor = false;
  // Slow-consumer limit (stall policy kEvict only): a live consumer that lags more than
  // max_lag events while a producer has been blocked on the full ring for longer than
  // max_lag_ns is evicted; it sees kEvicted and may rejoin at the cursor, told exactly how
  // many events it missed. Either may be 0; both 0: no limit. max_lag < capacity.
  std::int64_t max_lag = 0;
  std::int64_t max_lag_ns = 0;
  // Where a fresh registration starts reading (a resumed one goes on where it was): after the
  // cursor (kAtCursor), or at an older sequence still in the ring and protected from the
  // producers (some gating consumer is at or before it): the join with history a late
  // consumer or a journal's catch-up uses. OutOfRange when it is no longer protected (read it
  // elsewhere, or start later); InvalidArgument past the cursor.
  std::int64_t start_at = kAtCursor;
  // false: an observer that never holds the producer back; it may be lapped, and is told so
  // (WaitStatus::kLapped, Python LappedError) exactly when events it had not finished reading
  // were overwritten.
  bool gating = true;
  // A journal directory (journal/; include <xdisruptor/journal.h>): the consumer first reads
  // from `start_at` out of the journal, then joins the ring at the first sequence the journal
  // does not hold, with no gap and no duplicate (catch_up.h). An evicted name that registers
  // again with a journal catches up from where it stopped instead of being refused.
  std::string journal{};
  // Worker groups (docs/worker-groups.md): consumers registered with the same `group` share
  // the stream, each event handled by one live member. The first member makes the group, a
  // stage of its own named `group` that gates the producer, runs after `after` and that
  // other stages may run after; its `after`, stall policy and limits are the first member's.
  // A member takes runs of up to `claim` events at a time (NextRun), at most what is
  // published; a member that dies mid-run has its run handed to another member (the handler
  // sees those sequences again: at least once).
  std::string group{};
  std::int64_t claim = 64;
};

// A run of sequences a worker-group member handles, [first, last], or why there is none.
struct ClaimedRun {
  std::int64_t first = 0;
  std::int64_t last = -1;
  WaitStatus status = WaitStatus::kOk;
  bool taken_over = false;  // the run of a member that died: it may have handled part of it
};

class CatchUpSource;

class Consumer {
 public:
  static absl::StatusOr<Consumer> Register(RingSegment& ring, std::string_view name,
                                           const ConsumerOptions& options = {});

  Consumer(Consumer&& other) noexcept;
  Consumer& operator=(Consumer&& other) noexcept;  // deregisters what this one held
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();

  // Stops gating the producer and frees the entry (name and last sequence stay readable).
  absl::Status Deregister();
  // Lets go of the entry without freeing it, as if this process had died: it keeps gating as
  // a crashed consumer's does (its stall policy decides), and a later registration by this
  // name, from any process (this one too), resumes from its sequence. For an error that must
  // not lose the stream (the bridge's out side, a journal recorder whose write failed).
  void Abandon();

  // The last sequence this consumer released (-1 before its first event after joining at the
  // start of the ring). Hot path; the consuming thread only.
  std::int64_t sequence() const { return state_->sequence.load(std::memory_order_relaxed); }

  // Marks everything up to `sequence` as processed: the producer may overwrite those slots and
  // downstream stages may read them. `events` counts what this batch handled.
  void Release(std::int64_t sequence, std::uint64_t events) {
    // A forked child must not move its parent's position (one relaxed load; process.h).
    if (ForkGeneration() != fork_generation_) [[unlikely]] ForkedUse("a consumer", ring_->name());
    BumpCounter(state_->events, events);  // single writer, relaxed (layout_access.h)
    BumpCounter(state_->batches);
    state_->last_batch.store(events, std::memory_order_relaxed);
    // SYNC POINT: pairs with the producer's gating acquire load (SingleProducerSequencer) and
    // downstream barriers' acquire loads (SequenceBarrier::Available). Weaker, the producer
    // could overwrite a slot this consumer is still reading, or a downstream stage could read
    // a slot before this stage's in-place change.
    state_->sequence.store(sequence, std::memory_order_release);
    // Wakes stages and producers asleep on this consumer's sequence; no syscall when none.
    wait::Notify(state_->notification);
    // Publish -> release latency of the sampled events just released (latency.h).
    if (sequence >= next_sample_) [[unlikely]] RecordSamples(sequence);
  }

  SequenceBarrier& barrier() { return barrier_; }
  RingSegment& ring() const { return *ring_; }
  std::string_view name() const { return name_; }
  int index() const { return index_; }
  std::int64_t join_sequence() const;
  bool registered() const { return state_ != nullptr && registered_; }
  // True for an observer (ConsumerOptions::gating false).
  bool observer() const {
    return state_->observer.load(std::memory_order_relaxed) == kObserverMode;
  }
  // True while it reads a journal before joining the ring (ConsumerOptions::journal).
  bool catching_up() const { return catch_up_ != nullptr; }
  CatchUpSource* catch_up() const { return catch_up_.get(); }
  // Joins the ring at `next` (gating from then on) if `next` is still protected there: OK, or
  // OutOfRange (not yet: read more of the journal, its recorder will have written it).
  absl::Status FinishCatchUp(std::int64_t next);
  // Observers: true when events from `first` on may have been overwritten (a producer claimed
  // a lap past them); call after reading them to know whether what was read holds.
  bool Lapped(std::int64_t first) const;
  // True in a forked child of the process that registered (it may not use this consumer).
  bool forked() const { return ForkGeneration() != fork_generation_; }
  // True when this registration took over the entry of a dead process of the same name and
  // goes on from its last released sequence.
  bool resumed() const { return resumed_; }
  // Events this name missed when it rejoined at the cursor after an eviction.
  std::uint64_t missed() const { return LoadCounter(state_->missed); }

  // Counts one handler failure in the entry, where `xdisruptor stat` and the pipeline
  // launcher see it. The consuming thread only (a single writer: no locked instruction).
  void CountHandlerError() { BumpCounter(state_->handler_errors); }
  std::uint64_t handler_errors() const { return LoadCounter(state_->handler_errors); }
  // Events this consumer released since its name registered (resumed: since the first).
  std::uint64_t events() const { return LoadCounter(state_->events); }

  // --- Worker groups (ConsumerOptions::group; docs/worker-groups.md) ----------------------
  // True for a member of a worker group.
  bool member() const { return group_index_ >= 0; }
  std::string group() const;
  // The next run this member handles: its unfinished run first (after a restart, or one it
  // took over from a dead member), else a new claim of up to `claim` published events.
  // Handle it, Release up to `last` (in as many batches as wanted), then call again. Waits
  // like barrier().WaitFor (max_wait_ns > 0: kCheckpoint after that long); kClosed once the
  // stream ended and everything is claimed. Members only; the consuming thread only.
  ClaimedRun NextRun(std::int64_t max_wait_ns = 0);
  // Runs this member took over from members that died.
  std::uint64_t takeovers() const { return LoadCounter(state_->takeovers); }

 private:
  Consumer(RingSegment& ring, int index, std::string name);
  static absl::StatusOr<Consumer> RegisterMember(RingSegment& ring, std::string_view name,
                                                 const ConsumerOptions& options);
  // Worker groups (worker_group.cc): the group stage's sequence moved up to its slowest
  // member; runs of dead members taken over.
  void AdvanceGroup();
  void TakeOverDeadMembers();
  // Records the samples from next_sample_ to `released` (latency.h).
  [[gnu::noinline]] void RecordSamples(std::int64_t released) {
    latency::RecordReleased(*ring_, *state_, next_sample_ - 1, released, sample_mask_);
    next_sample_ = latency::NextSample(released, sample_mask_);
  }

  RingSegment* ring_ = nullptr;
  ConsumerState* state_ = nullptr;
  int index_ = -1;
  std::string name_;
  SequenceBarrier barrier_;
  std::int64_t owner_pid_ = 0;
  std::uint32_t generation_ = 0;  // of the registration this object made
  std::uint32_t fork_generation_ = 0;  // ForkGeneration() of the process that registered
  std::int64_t sample_mask_ = -1;  // latency::SampleMask of the ring's sampling period
  std::int64_t next_sample_ = INT64_MAX;  // the next sampled sequence it will release
  bool registered_ = true;
  bool resumed_ = false;
  // Worker-group members: the group stage's entry, events per claim, when to next look for
  // dead members, and whether the run being handled was taken over.
  int group_index_ = -1;
  std::int64_t claim_ = 64;
  std::int64_t takeover_due_ns_ = 0;
  bool run_taken_over_ = false;
  std::shared_ptr<CatchUpSource> catch_up_;  // while catching up from a journal
};

// Changes the wait strategy of the active consumer `name`, as an operator's tool or a test
// does from another process. It takes effect at that consumer's next wait (a consumer asleep
// in a blocking wait re-reads it within wait::kSafetyNetNs, or at once when woken).
absl::Status RetuneConsumer(RingSegment& ring, std::string_view name, const WaitParams& params);

// Sets the slow-consumer limit of the active consumer `name` (ConsumerOptions::max_lag,
// max_lag_ns; both 0 removes it), as the tool's `limit` command does from any process.
absl::Status LimitConsumer(RingSegment& ring, std::string_view name, std::int64_t max_lag,
                           std::int64_t max_lag_ns);

// Evicts the active consumer `name`: it stops holding the producer back, stages after it see
// kUpstreamGone, and it sees kEvicted at its next wait. An operator's tool calls this; so does
// a producer for a dead consumer whose stall policy is kEvict.
absl::Status EvictConsumer(RingSegment& ring, std::string_view name);

// The entry index of the active consumer called `name`, or NotFound.
absl::StatusOr<int> FindConsumer(const RingSegment& ring, std::string_view name);

// Number of active consumers (the producer may wait for N of them before it starts).
int ActiveConsumerCount(const RingSegment& ring);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_CONSUMER_H_
