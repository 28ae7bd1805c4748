#include "xdisruptor/consumer.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/reclaim.h"
#include "internal/registry_lock.h"
#include "xdisruptor/process.h"

namespace xdisruptor {
namespace {

constexpr auto kActive = static_cast<std::uint32_t>(ConsumerStatus::kActive);
constexpr auto kJoining = static_cast<std::uint32_t>(ConsumerStatus::kJoining);
constexpr auto kFree = static_cast<std::uint32_t>(ConsumerStatus::kFree);

bool NameIs(const ConsumerState& c, std::string_view name) {
  return c.name_length == name.size() && c.name_length <= kMaxNameLength &&
         std::memcmp(c.name, name.data(), name.size()) == 0;
}

absl::Status ValidateOptions(std::string_view name, const ConsumerOptions& options) {
  if (absl::Status s = ValidateName(name, "consumer"); !s.ok()) return s;
  if (options.after.size() > kMaxAfter) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "consumer '%s' runs after %d consumers; at most %d are allowed", name,
        options.after.size(), kMaxAfter));
  }
  for (std::size_t i = 0; i < options.after.size(); ++i) {
    if (options.after[i] == name) {
      return absl::InvalidArgumentError(
          absl::StrFormat("consumer '%s' cannot run after itself", name));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (options.after[i] == options.after[j]) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "consumer '%s' names '%s' twice in after", name, options.after[i]));
      }
    }
  }
  if (options.stall_policy != StallPolicy::kHold && options.stall_policy != StallPolicy::kEvict) {
    return absl::InvalidArgumentError("unknown stall policy");
  }
  return ValidateWaitParams(options.wait);
}

int FindActive(const RingSegment& ring, std::string_view name) {
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    if (c.status.load(std::memory_order_acquire) == kActive && NameIs(c, name)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// Under the registry lock no registration is in progress, so a joining entry was left by a
// process that died inside Register: stop it gating and free it.
void ReclaimAbandonedJoins(RingSegment& ring) {
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    ConsumerState& c = ring.consumer(i);
    if (c.status.load(std::memory_order_acquire) != kJoining) continue;
    ring.producer().gating_mask.fetch_and(~(std::uint64_t{1} << i), std::memory_order_seq_cst);
    internal::ClearSleeperEverywhere(ring, {.producer = false, .index = static_cast<std::uint32_t>(i)});
    c.pid.store(0, std::memory_order_relaxed);
    c.status.store(kFree, std::memory_order_release);
  }
}

// True when an active consumer runs after entry `index`: handing that entry to another name
// would let the downstream stage read the newcomer's sequence as its upstream's.
bool IsSomeonesUpstream(const RingSegment& ring, std::size_t index) {
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    if (c.status.load(std::memory_order_acquire) != kActive) continue;
    for (std::uint32_t k = 0; k < std::min<std::uint32_t>(c.after_count, kMaxAfter); ++k) {
      if (static_cast<std::size_t>(c.after[k]) == index) return true;
    }
  }
  return false;
}

// Chooses the entry for `name` under the registry lock: its own earlier entry if its owner is
// gone, else the first free one that no active stage runs after.
absl::StatusOr<int> ChooseEntry(RingSegment& ring, std::string_view name) {
  int free_entry = -1;
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring.consumer(i);
    const std::uint32_t status = c.status.load(std::memory_order_acquire);
    if (NameIs(c, name)) {
      if (status == kActive) {
        const std::int64_t pid = c.pid.load(std::memory_order_relaxed);
        if (IsProcessAlive(pid, c.start_time.load(std::memory_order_relaxed))) {
          return absl::AlreadyExistsError(absl::StrFormat(
              "consumer '%s' is already registered on ring '%s' by live process %d; choose "
              "another name or stop that process",
              name, ring.name(), pid));
        }
      }
      // Its own entry: left, or its owner died (perhaps asleep: clear its sleeper bits).
      internal::ClearSleeperEverywhere(ring, {.producer = false, .index = static_cast<std::uint32_t>(i)});
      return static_cast<int>(i);
    }
    if (status == kFree && free_entry < 0 && !IsSomeonesUpstream(ring, i)) {
      free_entry = static_cast<int>(i);
    }
  }
  if (free_entry < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "ring '%s' has no free consumer entry (all %d are taken); deregister a consumer first",
        ring.name(), kMaxConsumers));
  }
  return free_entry;
}

}  // namespace

absl::StatusOr<Consumer> Consumer::Register(RingSegment& ring, std::string_view name,
                                            const ConsumerOptions& options) {
  if (absl::Status s = ValidateOptions(name, options); !s.ok()) return s;
  internal::RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;

  ReclaimAbandonedJoins(ring);
  auto chosen = ChooseEntry(ring, name);
  if (!chosen.ok()) return chosen.status();
  const int index = *chosen;
  ConsumerState& c = ring.consumer(static_cast<std::size_t>(index));
  std::atomic<std::int64_t>& cursor =
      ring.multi_producer() ? ring.producer().claim : ring.producer().cursor;
  const std::uint32_t previous = c.status.load(std::memory_order_acquire);
  // A process of this name died while registered: its entry still gates the producer, so
  // every event after its last release is still in the ring. Resume there.
  const std::uint64_t bit = std::uint64_t{1} << index;
  const bool gating = (ring.producer().gating_mask.load(std::memory_order_acquire) & bit) != 0;
  const bool resume = previous == kActive && NameIs(c, name) && gating;
  // An evicted name: events after where it stopped may be gone. It must choose to rejoin.
  // (An active entry that lost its gating bit was being evicted when a process died.)
  const bool was_evicted =
      NameIs(c, name) && (previous == static_cast<std::uint32_t>(ConsumerStatus::kEvicted) ||
                          (previous == kActive && !gating));
  if (was_evicted && previous == static_cast<std::uint32_t>(ConsumerStatus::kEvicted)) {
    const std::int64_t old_pid = c.pid.load(std::memory_order_relaxed);
    if (old_pid != ::getpid() &&
        IsProcessAlive(old_pid, c.start_time.load(std::memory_order_relaxed))) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "consumer '%s' was evicted from ring '%s' but its process %d still runs; stop it "
          "before registering the name again",
          name, ring.name(), old_pid));
    }
  }
  const std::int64_t left_at = c.sequence.load(std::memory_order_acquire);
  if (was_evicted) {
    const std::int64_t now = cursor.load(std::memory_order_acquire);
    const std::uint64_t missed = now > left_at ? static_cast<std::uint64_t>(now - left_at) : 0;
    if (missed > 0 && !options.rejoin_at_cursor) {
      return absl::OutOfRangeError(absl::StrFormat(
          "consumer '%s' was evicted from ring '%s' after sequence %d; %d events have been "
          "published since and may be overwritten: register with rejoin_at_cursor to go on "
          "from the cursor",
          name, ring.name(), left_at, missed));
    }
  }
  std::int32_t after[kMaxAfter] = {};
  std::uint32_t after_generation[kMaxAfter] = {};
  for (std::size_t i = 0; i < options.after.size(); ++i) {
    const int up = FindActive(ring, options.after[i]);
    if (up < 0) {
      return absl::NotFoundError(absl::StrFormat(
          "consumer '%s' runs after '%s', which is not registered on ring '%s'; start the "
          "upstream stage first",
          name, options.after[i], ring.name()));
    }
    after[i] = up;
    after_generation[i] = ring.consumer(up).generation.load(std::memory_order_relaxed);
  }

  // Fill in the entry while it is joining; readers look at it only once it is active.
  const ProcessIdentity self = CurrentProcess();
  if (!resume) c.status.store(kJoining, std::memory_order_relaxed);
  c.name_length = static_cast<std::uint32_t>(name.size());
  std::memset(c.name, 0, sizeof(c.name));
  std::memcpy(c.name, name.data(), name.size());
  c.pid.store(self.pid, std::memory_order_relaxed);
  c.start_time.store(self.start_time, std::memory_order_relaxed);
  if (!resume) {  // a resumed stage keeps the upstreams (and generations) it had
    c.after_count = static_cast<std::uint32_t>(options.after.size());
    std::memcpy(c.after, after, sizeof(after));
    std::memcpy(c.after_generation, after_generation, sizeof(after_generation));
  }
  StoreWaitParams(c, options.wait);
  c.stall_policy.store(static_cast<std::uint32_t>(options.stall_policy),
                       std::memory_order_relaxed);
  c.registered_at_unix_ns.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
  if (resume) {
    // Same logical consumer, same position, same generation: stages after it go on too.
    c.status.store(kActive, std::memory_order_release);
    Consumer consumer(ring, index, std::string(name));
    consumer.resumed_ = true;
    return consumer;
  }
  c.events.store(0, std::memory_order_relaxed);
  c.batches.store(0, std::memory_order_relaxed);
  c.waits.store(0, std::memory_order_relaxed);
  c.handler_errors.store(0, std::memory_order_relaxed);
  c.generation.store(c.generation.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);

  // Join at the cursor without being lapped (the Disruptor's addGatingSequences race):
  // 1. start from a cursor value the producer has certainly published;
  // (A multi-producer ring's "cursor" is its claim counter: a consumer joins after every
  // sequence claimed so far, published or not.)
  //    Release: a downstream barrier that reads this sequence also sees the generation bumped
  //    above (so it never mistakes the newcomer for the upstream it knew).
  c.sequence.store(cursor.load(std::memory_order_acquire), std::memory_order_release);
  // 2. become gating. SYNC POINT (StoreLoad, seq_cst): pairs with the producer's seq_cst
  //    fence before it loads the mask. Either the producer sees this bit (and, through the
  //    RMW's release, the sequence above) or this thread's cursor load below sees every
  //    cursor store the producer made before its fence, which bounds how far it may claim;
  //    without seq_cst both could miss each other and the producer could lap the new entry.
  ring.producer().gating_mask.fetch_or(bit, std::memory_order_seq_cst);
  // 3. re-read the cursor and start there: every slot after it is protected by this entry.
  const std::int64_t joined = cursor.load(std::memory_order_seq_cst);
  // SYNC POINT: pairs with the producer's gating acquire load.
  c.sequence.store(joined, std::memory_order_release);
  c.join_sequence.store(joined, std::memory_order_relaxed);
  if (was_evicted && joined > left_at) {
    // Exactly what it skips: from where it stopped to where it now starts.
    c.missed.store(c.missed.load(std::memory_order_relaxed) +
                       static_cast<std::uint64_t>(joined - left_at),
                   std::memory_order_relaxed);
  }
  // SYNC POINT: pairs with FindActive / inspector acquire loads of the status.
  c.status.store(kActive, std::memory_order_release);
  return Consumer(ring, index, std::string(name));
}

Consumer::Consumer(RingSegment& ring, int index, std::string name)
    : ring_(&ring),
      state_(&ring.consumer(static_cast<std::size_t>(index))),
      index_(index),
      name_(std::move(name)),
      barrier_(ring, state_),
      owner_pid_(::getpid()),
      generation_(state_->generation.load(std::memory_order_relaxed)) {}

Consumer::Consumer(Consumer&& other) noexcept : registered_(false) {
  *this = std::move(other);
}

Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this == &other) return *this;
  if (registered_) Deregister().IgnoreError();
  ring_ = other.ring_;
  state_ = other.state_;
  index_ = other.index_;
  name_ = std::move(other.name_);
  barrier_ = std::move(other.barrier_);
  owner_pid_ = other.owner_pid_;
  generation_ = other.generation_;
  resumed_ = other.resumed_;
  registered_ = std::exchange(other.registered_, false);
  return *this;
}

Consumer::~Consumer() {
  if (registered_) Deregister().IgnoreError();
}

std::uint64_t Consumer::missed() const {
  return state_->missed.load(std::memory_order_relaxed);
}

std::uint64_t Consumer::handler_errors() const {
  return state_->handler_errors.load(std::memory_order_relaxed);
}

absl::Status EvictConsumer(RingSegment& ring, std::string_view name) {
  internal::RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  const int index = FindActive(ring, name);
  if (index < 0) {
    return absl::NotFoundError(
        absl::StrFormat("no consumer named '%s' is registered on ring '%s'", name, ring.name()));
  }
  internal::EvictEntry(ring, static_cast<std::size_t>(index));
  return absl::OkStatus();
}

std::int64_t Consumer::join_sequence() const {
  return state_->join_sequence.load(std::memory_order_relaxed);
}

absl::Status Consumer::Deregister() {
  if (!registered_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("consumer '%s' is not registered", name_));
  }
  if (owner_pid_ != ::getpid()) {
    // A forked child holds a copy of its parent's registration: it is not its to end.
    registered_ = false;
    return absl::FailedPreconditionError(absl::StrFormat(
        "consumer '%s' was registered by process %d; only that process can deregister it",
        name_, owner_pid_));
  }
  internal::RegistryLock lock(ring_->producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  registered_ = false;
  if (state_->status.load(std::memory_order_acquire) != kActive ||
      state_->pid.load(std::memory_order_relaxed) != owner_pid_ ||
      state_->generation.load(std::memory_order_relaxed) != generation_) {
    return absl::OkStatus();  // evicted (or taken over) meanwhile: nothing of ours is left
  }
  // Stop gating first: from here the producer may overwrite what this consumer left unread.
  ring_->producer().gating_mask.fetch_and(~(std::uint64_t{1} << index_),
                                          std::memory_order_seq_cst);
  state_->pid.store(0, std::memory_order_relaxed);
  // SYNC POINT: pairs with downstream barriers' acquire load in UpstreamGone.
  state_->status.store(kFree, std::memory_order_release);
  wait::WakeAll(state_->notification);  // sleepers downstream must notice it left
  return absl::OkStatus();
}

WaitParams LoadWaitParams(const ConsumerState& entry) {
  // Relaxed: each field is independent tuning; a retune half-seen by one wait is harmless and
  // the next wait sees all of it (the version is bumped last, with release).
  auto kind_of = [](std::uint32_t raw, WaitKind otherwise) {
    return raw < kWaitKindCount ? static_cast<WaitKind>(raw) : otherwise;
  };
  WaitParams p;
  p.kind = kind_of(entry.wait_kind.load(std::memory_order_relaxed), WaitKind::kYielding);
  p.spin_tries = entry.wait_spin_tries.load(std::memory_order_relaxed);
  p.yield_tries = entry.wait_yield_tries.load(std::memory_order_relaxed);
  p.sleep_ceiling_ns = std::clamp<std::int64_t>(
      entry.wait_sleep_ceiling_ns.load(std::memory_order_relaxed), 0, 1'000'000'000);
  p.timeout_ns = std::max<std::int64_t>(entry.wait_timeout_ns.load(std::memory_order_relaxed), 0);
  p.phase_spin_ns =
      std::max<std::int64_t>(entry.wait_phase_spin_ns.load(std::memory_order_relaxed), 0);
  p.phase_yield_ns =
      std::max<std::int64_t>(entry.wait_phase_yield_ns.load(std::memory_order_relaxed), 0);
  p.fallback_kind =
      kind_of(entry.wait_fallback_kind.load(std::memory_order_relaxed), WaitKind::kBlocking);
  if (p.fallback_kind != WaitKind::kSleeping) p.fallback_kind = WaitKind::kBlocking;
  if (p.kind == WaitKind::kTimeoutBlocking && p.timeout_ns == 0) p.kind = WaitKind::kBlocking;
  return p;
}

void StoreWaitParams(ConsumerState& entry, const WaitParams& params) {
  entry.wait_kind.store(static_cast<std::uint32_t>(params.kind), std::memory_order_relaxed);
  entry.wait_spin_tries.store(params.spin_tries, std::memory_order_relaxed);
  entry.wait_yield_tries.store(params.yield_tries, std::memory_order_relaxed);
  entry.wait_sleep_ceiling_ns.store(params.sleep_ceiling_ns, std::memory_order_relaxed);
  entry.wait_timeout_ns.store(params.timeout_ns, std::memory_order_relaxed);
  entry.wait_phase_spin_ns.store(params.phase_spin_ns, std::memory_order_relaxed);
  entry.wait_phase_yield_ns.store(params.phase_yield_ns, std::memory_order_relaxed);
  entry.wait_fallback_kind.store(static_cast<std::uint32_t>(params.fallback_kind),
                                 std::memory_order_relaxed);
  // SYNC POINT: pairs with the barrier's acquire load of the version: a barrier that sees the
  // new version reads the new parameters.
  entry.wait_config_version.fetch_add(1, std::memory_order_release);
}

absl::Status RetuneConsumer(RingSegment& ring, std::string_view name, const WaitParams& params) {
  if (absl::Status s = ValidateWaitParams(params); !s.ok()) return s;
  internal::RegistryLock lock(ring.producer());  // not racing a registration of the entry
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  const int index = FindActive(ring, name);
  if (index < 0) {
    return absl::NotFoundError(
        absl::StrFormat("no consumer named '%s' is registered on ring '%s'", name, ring.name()));
  }
  ConsumerState& entry = ring.consumer(static_cast<std::size_t>(index));
  StoreWaitParams(entry, params);
  // A consumer asleep re-reads its strategy now rather than at the safety net: wake whatever
  // it may sleep on, the cursor or one of its upstreams.
  wait::WakeAll(ring.producer().cursor_notification);
  for (std::uint32_t k = 0; k < std::min<std::uint32_t>(entry.after_count, kMaxAfter); ++k) {
    const auto up = static_cast<std::size_t>(entry.after[k]);
    if (up < kMaxConsumers) wait::WakeAll(ring.consumer(up).notification);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> FindConsumer(const RingSegment& ring, std::string_view name) {
  const int index = FindActive(ring, name);
  if (index < 0) {
    return absl::NotFoundError(
        absl::StrFormat("no consumer named '%s' is registered on ring '%s'", name, ring.name()));
  }
  return index;
}

int ActiveConsumerCount(const RingSegment& ring) {
  int count = 0;
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    count += ring.consumer(i).status.load(std::memory_order_acquire) == kActive;
  }
  return count;
}

}  // namespace xdisruptor
