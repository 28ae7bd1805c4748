#include "xdisruptor/consumer.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/consumer_table.h"
#include "xdisruptor/catch_up.h"
#include "xdisruptor/flight.h"
#include "xdisruptor/internal/gating.h"
#include "xdisruptor/internal/worker_group.h"
#include "internal/registry_lock.h"
#include "xdisruptor/process.h"

namespace xdisruptor {
namespace {

absl::Status ValidateLimit(const RingSegment& ring, std::string_view name, StallPolicy policy,
                           std::int64_t max_lag, std::int64_t max_lag_ns) {
  if (max_lag < 0 || max_lag_ns < 0 || max_lag >= static_cast<std::int64_t>(ring.capacity())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "consumer '%s': max_lag must be from 0 to below the ring's capacity (%d) and the time "
        "limit >= 0; got %d events, %d ns",
        name, ring.capacity(), max_lag, max_lag_ns));
  }
  if ((max_lag != 0 || max_lag_ns != 0) && policy != StallPolicy::kEvict) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "consumer '%s': a slow-consumer limit (max_lag) evicts, so it needs stall policy evict",
        name));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const RingSegment& ring, std::string_view name,
                             const ConsumerOptions& options) {
  if (absl::Status s = ring.CheckWritable("register a consumer"); !s.ok()) return s;
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
  if (!IsNamed(options.stall_policy)) {
    return absl::InvalidArgumentError("unknown stall policy");
  }
  if (!options.group.empty()) {
    if (absl::Status s = ValidateName(options.group, "worker group"); !s.ok()) return s;
    if (options.group == name) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "consumer '%s': a member needs a name of its own, not its group's", name));
    }
    if (options.claim < 1 || options.claim > static_cast<std::int64_t>(ring.capacity())) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "consumer '%s': claim must be from 1 to the ring's capacity (%d); got %d", name,
          ring.capacity(), options.claim));
    }
    if (!options.gating || !options.journal.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "consumer '%s': a worker group member cannot be an observer or catch up from a "
          "journal",
          name));
    }
    for (const std::string& up : options.after) {
      if (up == options.group) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "consumer '%s' cannot run after its own group '%s'", name, options.group));
      }
    }
  }
  if (absl::Status s = ValidateLimit(ring, name, options.stall_policy, options.max_lag,
                                     options.max_lag_ns);
      !s.ok()) {
    return s;
  }
  return ValidateWaitParams(options.wait);
}

// Step 1: what the registration does with the entry it chose.
struct JoinPlan {
  bool fresh = false;        // the entry held another name (or none): nothing of it carries over
  bool resume = false;       // a dead process of this name still gates: go on where it was
  bool was_evicted = false;  // this name was evicted: it joins at the cursor, missing events
  std::int64_t left_at = kInitialSequence;  // where the name's entry stopped
};

absl::StatusOr<JoinPlan> DecideResume(const RingSegment& ring, const ConsumerState& c,
                                      std::size_t index, std::string_view name,
                                      const ConsumerOptions& options) {
  JoinPlan plan;
  if (!internal::NameIs(c, name)) {  // a fresh entry
    plan.fresh = true;
    return plan;
  }
  const ConsumerStatus previous = LoadStatus(c);
  const bool gating = IsGating(ring.producer(), index);
  // A process of this name died while registered: its entry still gates the producer, so
  // every event after its last release is still in the ring. Resume there.
  plan.resume = previous == ConsumerStatus::kActive && gating;
  const std::uint32_t mode = c.observer.load(std::memory_order_relaxed);
  // An observer never held anything back: a new registration of its name is a fresh one.
  if (previous == ConsumerStatus::kActive && !gating && mode == kObserverMode) {
    if (!OwnedByMe(c.owner) && IsAlive(c.owner)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "consumer '%s' is already registered on ring '%s' by live process %d", name,
          ring.name(), LoadOwner(c.owner).pid));
    }
    return plan;
  }
  // An evicted name: events after where it stopped may be gone. It must choose to rejoin.
  // (An active entry that lost its gating bit was being evicted when a process died, or was
  // catching up from a journal.)
  plan.was_evicted = previous == ConsumerStatus::kEvicted ||
                     (previous == ConsumerStatus::kActive && !gating);
  plan.left_at = LoadSequence(c);
  if (previous == ConsumerStatus::kEvicted && !OwnedByMe(c.owner) && IsAlive(c.owner)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "consumer '%s' was evicted from ring '%s' but its process %d still runs; stop it "
        "before registering the name again",
        name, ring.name(), LoadOwner(c.owner).pid));
  }
  if (plan.was_evicted) {
    const std::int64_t now = LoadCursor(ring.producer());
    if (now > plan.left_at && !options.rejoin_at_cursor && options.journal.empty()) {
      return absl::OutOfRangeError(absl::StrFormat(
          "consumer '%s' was evicted from ring '%s' after sequence %d; %d events have been "
          "published since and may be overwritten: register with rejoin_at_cursor to go on "
          "from the cursor, or with a journal to catch up from where it stopped",
          name, ring.name(), plan.left_at, now - plan.left_at));
    }
  }
  return plan;
}

// Step 2: the entries of the stages named in `after`, and their generations now.
struct Upstreams {
  std::int32_t index[kMaxAfter] = {};
  std::uint32_t generation[kMaxAfter] = {};
};

absl::Status UpstreamNotRegistered(const RingSegment& ring, std::string_view name,
                                   std::string_view upstream) {
  return absl::NotFoundError(absl::StrFormat(
      "consumer '%s' runs after '%s', which is not registered on ring '%s'; start the upstream "
      "stage first",
      name, upstream, ring.name()));
}

absl::StatusOr<Upstreams> ResolveUpstreams(const RingSegment& ring, std::string_view name,
                                           const std::vector<std::string>& after) {
  Upstreams up;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const int entry = internal::FindActive(ring, after[i]);
    if (entry < 0) {
      return UpstreamNotRegistered(ring, name, after[i]);
    }
    up.index[i] = entry;
    up.generation[i] = ring.consumer(entry).generation.load(std::memory_order_relaxed);
  }
  return up;
}

// A resumed stage may find an upstream gone: it drained the stream and left while this stage's
// process was dead. The entry it recorded still names it, with its last sequence, as long as
// no registration took it (its generation): the stage resumes on it as a running stage would
// go on (its barrier reads the upstream's last sequence, then says kClosed or kUpstreamGone).
absl::StatusOr<Upstreams> ResolveResumedUpstreams(const RingSegment& ring,
                                                  const ConsumerState& c, std::string_view name,
                                                  const std::vector<std::string>& after) {
  auto up = ResolveUpstreams(ring, name, after);
  if (up.ok() || up.status().code() != absl::StatusCode::kNotFound) return up;
  Upstreams recorded;
  const std::uint32_t count = std::min<std::uint32_t>(c.after_count, kMaxAfter);
  for (std::size_t i = 0; i < after.size(); ++i) {
    int entry = internal::FindActive(ring, after[i]);
    for (std::uint32_t k = 0; entry < 0 && k < count; ++k) {
      const ConsumerState& u = ring.consumer(static_cast<std::size_t>(c.after[k]));
      if (internal::NameIs(u, after[i]) &&
          u.generation.load(std::memory_order_acquire) == c.after_generation[k]) {
        entry = c.after[k];
      }
    }
    if (entry < 0) {
      return UpstreamNotRegistered(ring, name, after[i]);
    }
    recorded.index[i] = entry;
    recorded.generation[i] = ring.consumer(static_cast<std::size_t>(entry)).generation.load(
        std::memory_order_relaxed);
  }
  return recorded;
}

// A resumed entry keeps the upstreams it recorded: refused when asked to run after others
// (it would read events before the new upstream handled them, or wait on the old one).
absl::Status CheckResumedUpstreams(const RingSegment& ring, const ConsumerState& c,
                                   std::string_view name, const std::vector<std::string>& after,
                                   const Upstreams& up) {
  const std::uint32_t count = std::min<std::uint32_t>(c.after_count, kMaxAfter);
  bool same = count == after.size();
  for (std::uint32_t i = 0; same && i < count; ++i) {
    same = std::find(up.index, up.index + count, c.after[i]) != up.index + count;
  }
  if (same) return absl::OkStatus();
  std::string was;
  for (std::uint32_t i = 0; i < count; ++i) {
    was += (i ? ", " : "") +
           internal::EntryName(ring.consumer(static_cast<std::size_t>(c.after[i])));
  }
  std::string asked;
  for (const std::string& a : after) asked += (asked.empty() ? "" : ", ") + a;
  return absl::FailedPreconditionError(absl::StrFormat(
      "consumer '%s' on ring '%s' would resume where its process died, running after [%s], but "
      "was asked to run after [%s]: start it as it was, or evict it (xdisruptor evict %s %s) "
      "and register anew",
      name, ring.name(), was, asked, ring.name(), name));
}

// Step 3: fill in the entry while it is joining; readers look at it only once it is active.
// A resumed stage keeps its position, counters, generation and upstreams.
void FillEntry(ConsumerState& c, std::string_view name, const ConsumerOptions& options,
               const Upstreams& up, const JoinPlan& plan) {
  if (!plan.resume) c.status.store(ConsumerStatus::kJoining, std::memory_order_relaxed);
  if (plan.fresh) {  // the same name is left alone: `stat` may be reading it (no torn name)
    c.name_length = static_cast<std::uint32_t>(name.size());
    std::memset(c.name, 0, sizeof(c.name));
    std::memcpy(c.name, name.data(), name.size());
  }
  StoreOwner(c.owner, CurrentProcess());
  StoreWaitParams(c, options.wait);
  c.stall_policy.store(options.stall_policy, std::memory_order_relaxed);
  c.max_lag.store(options.max_lag, std::memory_order_relaxed);
  c.observer.store(options.gating ? kGatingMode : kObserverMode, std::memory_order_relaxed);
  c.max_lag_ns.store(options.max_lag_ns, std::memory_order_relaxed);
  // A resumed stage keeps its counters, so it keeps the time they count from (events per
  // second divide by it).
  if (plan.resume) return;
  c.registered_at_unix_ns.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
  // Evictions and missed events count for a name across its registrations; an entry taken
  // over by another name starts them at zero.
  if (plan.fresh) {
    c.evictions.store(0, std::memory_order_relaxed);
    c.missed.store(0, std::memory_order_relaxed);
  }
  c.group_role.store(kNoGroup, std::memory_order_relaxed);
  c.group.store(-1, std::memory_order_relaxed);
  c.group_members.store(0, std::memory_order_relaxed);
  c.takeovers.store(0, std::memory_order_relaxed);
  c.after_count = static_cast<std::uint32_t>(options.after.size());
  std::memcpy(c.after, up.index, sizeof(up.index));
  std::memcpy(c.after_generation, up.generation, sizeof(up.generation));
  for (auto* counter : {&c.events, &c.batches, &c.waits, &c.handler_errors, &c.sleeps,
                        &c.wakes, &c.last_batch, &c.latency_count, &c.latency_sum_ns,
                        &c.latency_max_ns}) {
    counter->store(0, std::memory_order_relaxed);
  }
  for (auto& bucket : c.latency_buckets) bucket.store(0, std::memory_order_relaxed);
  c.generation.store(c.generation.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);
}

// Counts what an evicted name skips when it joins again at `joined`: from where it stopped.
void CountMissed(ConsumerState& c, const JoinPlan& plan, std::int64_t joined) {
  if (plan.was_evicted && joined > plan.left_at) {
    BumpCounter(c.missed, static_cast<std::uint64_t>(joined - plan.left_at));
  }
}

// Step 4: join at the cursor without being lapped (the Disruptor's addGatingSequences race;
// docs/architecture.md, join protocol). Returns the sequence it joined at. A multi-producer
// ring's cursor is its claim counter: a consumer joins after every sequence claimed so far.
std::int64_t JoinAtCursor(RingSegment& ring, std::size_t index, const JoinPlan& plan,
                          bool gating) {
  ConsumerState& c = ring.consumer(index);
  ProducerState& p = ring.producer();
  // 1. start from a cursor value the producer has certainly reached. Release: a downstream
  //    barrier that reads this sequence also sees the generation bumped in FillEntry (so it
  //    never mistakes the newcomer for the upstream it knew).
  c.sequence.store(LoadCursor(p), std::memory_order_release);
  std::int64_t joined = c.sequence.load(std::memory_order_relaxed);
  if (gating) {
    // 2. become gating (JoinGating's seq_cst RMW pairs with the producer's StoreLoad fence
    //    #1): either the producer sees this bit (and, through the RMW, the sequence above) or
    //    the cursor load below sees every cursor store the producer made before its fence,
    //    which bounds how far it may claim; without seq_cst both could miss each other.
    JoinGating(p, index);
    // 3. re-read the cursor and start there: every slot after it is protected by this entry.
    joined = p.cursor.load(std::memory_order_seq_cst);
    // SYNC POINT: pairs with the producer's gating acquire load (MinimumGating).
    c.sequence.store(joined, std::memory_order_release);
  }
  c.join_sequence.store(joined, std::memory_order_relaxed);
  CountMissed(c, plan, joined);
  return joined;
}

// Step 4': join at an older sequence `start` (reads from it on), if it is still protected:
// store the position, become gating, then look at how far the producers may write
// (WriteFrontier, pairing with RefreshGating's frontier store and fence #2): below
// start + capacity, no producer can overwrite `start` before it sees this entry. Otherwise
// leave again: OutOfRange. An observer only needs `start` not yet overwritten.
absl::StatusOr<std::int64_t> JoinWithHistory(RingSegment& ring, std::size_t index,
                                             std::string_view name, const JoinPlan& plan,
                                             std::int64_t start, bool gating) {
  ConsumerState& c = ring.consumer(index);
  ProducerState& p = ring.producer();
  const auto lap = static_cast<std::int64_t>(ring.capacity());
  if (start < 0 || start > LoadCursor(p) + 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "consumer '%s' cannot start at %d: ring '%s' is at %d (start at most one past it)", name,
        start, ring.name(), LoadCursor(p)));
  }
  c.sequence.store(start - 1, std::memory_order_release);
  if (gating) JoinGating(p, index);
  const std::int64_t frontier = gating ? internal::WriteFrontier(ring)
                                       : internal::ClaimFrontier(ring);
  if (frontier >= start + lap) {
    if (gating) LeaveGating(p, index);
    return absl::OutOfRangeError(absl::StrFormat(
        "consumer '%s' cannot start at %d on ring '%s': events from there are no longer "
        "protected (producers may write up to %d, a lap past %d); start at %d or later, or read "
        "the older events elsewhere (a journal)",
        name, start, ring.name(), frontier, frontier - lap, frontier - lap + 1));
  }
  c.join_sequence.store(start - 1, std::memory_order_relaxed);
  CountMissed(c, plan, start - 1);
  return start - 1;
}

}  // namespace

namespace {

CatchUpOpener& Opener() {
  static CatchUpOpener opener = nullptr;
  return opener;
}

// Step 4'': a consumer that catches up from a journal: registered, not gating, positioned just
// before `from` (its processor reads the journal, then FinishCatchUp joins the ring).
void JoinCatchingUp(ConsumerState& c, std::int64_t from) {
  c.observer.store(kCatchingUpMode, std::memory_order_relaxed);
  c.sequence.store(from - 1, std::memory_order_release);
  c.join_sequence.store(from - 1, std::memory_order_relaxed);
}

}  // namespace

void InstallCatchUpOpener(CatchUpOpener opener) { Opener() = opener; }
CatchUpOpener InstalledCatchUpOpener() { return Opener(); }

absl::StatusOr<Consumer> Consumer::Register(RingSegment& ring, std::string_view name,
                                            const ConsumerOptions& options) {
  if (absl::Status s = ValidateOptions(ring, name, options); !s.ok()) return s;
  std::shared_ptr<CatchUpSource> source;
  if (!options.journal.empty()) {
    if (!options.gating) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "consumer '%s': an observer cannot catch up from a journal (it would never join)",
          name));
    }
    if (Opener() == nullptr) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "consumer '%s' asks for journal '%s', but this program has no journal support: "
          "include <xdisruptor/journal.h> and link xdisruptor::journal",
          name, options.journal));
    }
    auto opened = Opener()(ring, options.journal);
    if (!opened.ok()) return opened.status();
    source = std::move(*opened);
  }
  internal::RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  internal::RepairTable(ring);
  if (!options.group.empty()) return RegisterMember(ring, name, options);
  auto chosen = internal::ChooseEntry(ring, name);
  if (!chosen.ok()) return chosen.status();
  const auto index = static_cast<std::size_t>(*chosen);
  ConsumerState& c = ring.consumer(index);
  auto plan = DecideResume(ring, c, index, name, options);
  if (!plan.ok()) return plan.status();
  auto upstreams = plan->resume ? ResolveResumedUpstreams(ring, c, name, options.after)
                                : ResolveUpstreams(ring, name, options.after);
  if (!upstreams.ok()) return upstreams.status();
  if (plan->resume) {
    if (absl::Status s = CheckResumedUpstreams(ring, c, name, options.after, *upstreams);
        !s.ok()) {
      return s;
    }
  }
  // With a journal: a fresh name from start_at, an evicted (or dead catching-up) one from where
  // it stopped; a resumed one (still gating) goes on in the ring.
  std::int64_t catch_from = kAtCursor;
  if (source != nullptr && !plan->resume) {
    catch_from = plan->was_evicted ? plan->left_at + 1 : options.start_at;
    if (catch_from == kAtCursor) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "consumer '%s': a journal is for catching up; say where to start (start_at)", name));
    }
    if (catch_from < 0 || catch_from > LoadCursor(ring.producer()) + 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "consumer '%s' cannot start at %d: ring '%s' is at %d", name, catch_from,
          ring.name(), LoadCursor(ring.producer())));
    }
  }
  FillEntry(c, name, options, *upstreams, *plan);
  if (catch_from != kAtCursor) {
    JoinCatchingUp(c, catch_from);
  } else if (!plan->resume) {
    if (options.start_at == kAtCursor) {
      JoinAtCursor(ring, index, *plan, options.gating);
    } else if (auto joined = JoinWithHistory(ring, index, name, *plan, options.start_at,
                                             options.gating);
               !joined.ok()) {
      StoreStatus(c, ConsumerStatus::kFree);  // not joined: the entry goes back
      return joined.status();
    }
  }
  // SYNC POINT: pairs with LoadStatus' acquire (FindActive, barriers, the inspector): the
  // entry is complete. A resumed entry keeps its generation, so stages after it go on too.
  StoreStatus(c, ConsumerStatus::kActive);
  Consumer consumer(ring, *chosen, std::string(name));
  consumer.resumed_ = plan->resume;
  if (catch_from != kAtCursor) consumer.catch_up_ = std::move(source);
  return consumer;
}

// Under the registry lock: the group stage (made by the first member, with the member's
// `after`, stall policy and limits, joined as any stage joins), then the member's own entry.
absl::StatusOr<Consumer> Consumer::RegisterMember(RingSegment& ring, std::string_view name,
                                                  const ConsumerOptions& options) {
  const std::string& group = options.group;
  int g = internal::FindActive(ring, group);
  if (g >= 0 && ring.consumer(static_cast<std::size_t>(g)).group_role.load(
                    std::memory_order_relaxed) != kGroupStage) {
    return absl::AlreadyExistsError(absl::StrFormat(
        "'%s' on ring '%s' is a consumer, not a worker group; choose another group name",
        group, ring.name()));
  }
  // The first member makes the group; if the member itself is then refused, the group goes
  // again (a group with no member would hold the producer for ever).
  bool made = false;
  auto refuse = [&](absl::Status why) {
    if (made) {
      ConsumerState& gc = ring.consumer(static_cast<std::size_t>(g));
      LeaveGating(ring.producer(), static_cast<std::size_t>(g));
      ClearOwner(gc.owner);
      StoreStatus(gc, ConsumerStatus::kFree);
      wait::WakeAll(gc.notification);
    }
    return why;
  };
  if (g < 0) {
    auto chosen = internal::ChooseEntry(ring, group);
    if (!chosen.ok()) return chosen.status();
    ConsumerState& gc = ring.consumer(static_cast<std::size_t>(*chosen));
    auto plan = DecideResume(ring, gc, static_cast<std::size_t>(*chosen), group, options);
    if (!plan.ok()) return plan.status();
    auto upstreams = ResolveUpstreams(ring, group, options.after);
    if (!upstreams.ok()) return upstreams.status();
    if (plan->resume) {
      if (absl::Status s = CheckResumedUpstreams(ring, gc, group, options.after, *upstreams);
          !s.ok()) {
        return s;
      }
    }
    FillEntry(gc, group, options, *upstreams, *plan);
    if (!plan->resume) {
      gc.group_role.store(kGroupStage, std::memory_order_relaxed);
      gc.group_members.store(0, std::memory_order_relaxed);
      if (options.start_at == kAtCursor) {
        JoinAtCursor(ring, static_cast<std::size_t>(*chosen), *plan, true);
      } else if (auto joined = JoinWithHistory(ring, static_cast<std::size_t>(*chosen), group,
                                               *plan, options.start_at, true);
                 !joined.ok()) {
        StoreStatus(gc, ConsumerStatus::kFree);
        return joined.status();
      }
      gc.work.store(LoadSequence(gc), std::memory_order_release);
    }
    StoreStatus(gc, ConsumerStatus::kActive);
    g = *chosen;
    made = !plan->resume;
  }
  ConsumerState& gc = ring.consumer(static_cast<std::size_t>(g));
  auto chosen = internal::ChooseEntry(ring, name);
  if (!chosen.ok()) return refuse(chosen.status());
  const auto index = static_cast<std::size_t>(*chosen);
  ConsumerState& c = ring.consumer(index);
  const std::uint64_t bit = std::uint64_t{1} << index;
  // Resume: this name's entry is still a member of this group (its process died before
  // anyone took its run over): go on with its unfinished run.
  JoinPlan plan;
  plan.fresh = !internal::NameIs(c, name);
  plan.resume = internal::NameIs(c, name) && LoadStatus(c) == ConsumerStatus::kActive &&
                c.group_role.load(std::memory_order_relaxed) == kGroupMember &&
                c.group.load(std::memory_order_relaxed) == g &&
                (gc.group_members.load(std::memory_order_acquire) & bit) != 0;
  if (!plan.resume && internal::NameIs(c, name) && LoadStatus(c) == ConsumerStatus::kActive &&
      c.group_role.load(std::memory_order_relaxed) != kGroupMember) {
    // An entry of this name that is not a member (a dead plain consumer): not ours to take.
    return refuse(absl::AlreadyExistsError(absl::StrFormat(
        "consumer '%s' on ring '%s' is not a member of group '%s'", name, ring.name(), group)));
  }
  Upstreams up;  // the members wait on what the group runs after
  for (std::uint32_t k = 0; k < std::min<std::uint32_t>(gc.after_count, kMaxAfter); ++k) {
    up.index[k] = gc.after[k];
    up.generation[k] = gc.after_generation[k];
  }
  ConsumerOptions member = options;
  member.after.assign(std::min<std::uint32_t>(gc.after_count, kMaxAfter), std::string());
  FillEntry(c, name, member, up, plan);
  c.observer.store(kMemberMode, std::memory_order_relaxed);
  if (!plan.resume) {
    c.group_role.store(kGroupMember, std::memory_order_relaxed);
    c.group.store(g, std::memory_order_relaxed);
    // Nothing of its own yet: everything up to the claims so far is someone else's.
    const std::int64_t at = gc.work.load(std::memory_order_acquire);
    c.claim_hi.store(at, std::memory_order_relaxed);
    c.sequence.store(at, std::memory_order_release);
    c.join_sequence.store(at, std::memory_order_relaxed);
    gc.group_members.fetch_or(bit, std::memory_order_seq_cst);
  }
  StoreOwner(gc.owner, CurrentProcess());  // the group's owner: a live member, for `stat`
  StoreStatus(c, ConsumerStatus::kActive);
  Consumer consumer(ring, *chosen, std::string(name));
  consumer.resumed_ = plan.resume;
  consumer.group_index_ = g;
  consumer.claim_ = options.claim;
  return consumer;
}

void Consumer::Abandon() {
  if (!registered_ || owner_pid_ != ::getpid()) {
    registered_ = false;
    return;
  }
  registered_ = false;
  internal::RegistryLock lock(ring_->producer());
  if (!lock.Acquire().ok()) return;  // the owner stays this process: it counts dead at exit
  // Only an entry still ours (not evicted, taken over or registered again meanwhile).
  if (IsActive(*state_) && LoadOwner(state_->owner).pid == owner_pid_ &&
      state_->generation.load(std::memory_order_relaxed) == generation_) {
    StoreOwner(state_->owner, ProcessIdentity{.pid = kNoSuchPid});
  }
}

absl::Status Consumer::FinishCatchUp(std::int64_t next) {
  if (catch_up_ == nullptr) return absl::OkStatus();
  internal::RegistryLock lock(ring_->producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  ConsumerState& c = *state_;
  ProducerState& p = ring_->producer();
  if (const std::int64_t cursor = LoadCursor(p); next > cursor + 1) {
    // A journal past the ring's cursor holds another stream (a journal without the ring's
    // life recorded: written before it was; journal.h, ring_epoch).
    return absl::FailedPreconditionError(absl::StrFormat(
        "consumer '%s' read the journal up to %d, but ring '%s' is at %d: the journal holds "
        "another stream or another life of the ring",
        name_, next - 1, ring_->name(), cursor));
  }
  // As JoinWithHistory: the position first, then the gating bit, then how far producers may
  // write (the frontier protocol, gating.h).
  c.sequence.store(next - 1, std::memory_order_release);
  JoinGating(p, static_cast<std::size_t>(index_));
  const std::int64_t frontier = internal::WriteFrontier(*ring_);
  if (frontier >= next + static_cast<std::int64_t>(ring_->capacity())) {
    LeaveGating(p, static_cast<std::size_t>(index_));
    return absl::OutOfRangeError(absl::StrFormat(
        "consumer '%s' cannot join ring '%s' at %d yet: producers may write up to %d", name_,
        ring_->name(), next, frontier));
  }
  c.observer.store(kGatingMode, std::memory_order_relaxed);
  catch_up_.reset();
  return absl::OkStatus();
}

Consumer::Consumer(RingSegment& ring, int index, std::string name)
    : ring_(&ring),
      state_(&ring.consumer(static_cast<std::size_t>(index))),
      index_(index),
      name_(std::move(name)),
      barrier_(ring, state_),
      owner_pid_(::getpid()),
      generation_(state_->generation.load(std::memory_order_relaxed)),
      fork_generation_(ForkGeneration()),
      sample_mask_(latency::SampleMask(ring.latency_sample_every())),
      next_sample_(latency::NextSample(state_->sequence.load(std::memory_order_relaxed),
                                       sample_mask_)) {}

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
  fork_generation_ = other.fork_generation_;
  sample_mask_ = other.sample_mask_;
  next_sample_ = other.next_sample_;
  resumed_ = other.resumed_;
  group_index_ = other.group_index_;
  claim_ = other.claim_;
  takeover_due_ns_ = other.takeover_due_ns_;
  run_taken_over_ = other.run_taken_over_;
  catch_up_ = std::move(other.catch_up_);
  registered_ = std::exchange(other.registered_, false);
  return *this;
}

Consumer::~Consumer() {
  if (registered_) Deregister().IgnoreError();
}

bool Consumer::Lapped(std::int64_t first) const {
  // Acquire: a claim that overwrote what this observer read is seen (the producer stores its
  // claim before writing the slots; see SingleProducerSequencer::Claimed).
  std::atomic_thread_fence(std::memory_order_acquire);
  return internal::ClaimFrontier(*ring_) - static_cast<std::int64_t>(ring_->capacity()) >= first;
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
  if (!IsActive(*state_) || LoadOwner(state_->owner).pid != owner_pid_ ||
      state_->generation.load(std::memory_order_relaxed) != generation_) {
    return absl::OkStatus();  // evicted (or taken over) meanwhile: nothing of ours is left
  }
  if (group_index_ >= 0) return internal::LeaveGroup(*ring_, index_, group_index_);
  // Stop gating first: from here the producer may overwrite what this consumer left unread.
  LeaveGating(ring_->producer(), static_cast<std::size_t>(index_));
  ClearOwner(state_->owner);
  // SYNC POINT (StoreStatus' release): pairs with downstream barriers' UpstreamGone.
  StoreStatus(*state_, ConsumerStatus::kFree);
  wait::WakeAll(state_->notification);  // sleepers downstream must notice it left
  return absl::OkStatus();
}

absl::Status LimitConsumer(RingSegment& ring, std::string_view name, std::int64_t max_lag,
                           std::int64_t max_lag_ns) {
  if (absl::Status s = ring.CheckWritable("limit a consumer"); !s.ok()) return s;
  internal::RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  auto index = internal::FindActiveOrNotFound(ring, name);
  if (!index.ok()) return index.status();
  ConsumerState& c = ring.consumer(static_cast<std::size_t>(*index));
  if (absl::Status s = ValidateLimit(ring, name, LoadStallPolicy(c), max_lag, max_lag_ns);
      !s.ok()) {
    return s;
  }
  c.max_lag.store(max_lag, std::memory_order_relaxed);
  c.max_lag_ns.store(max_lag_ns, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status EvictConsumer(RingSegment& ring, std::string_view name) {
  if (absl::Status s = ring.CheckWritable("evict a consumer"); !s.ok()) return s;
  internal::RegistryLock lock(ring.producer());
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  auto index = internal::FindActiveOrNotFound(ring, name);
  if (!index.ok()) return index.status();
  // The record first, while the events it held are still there (flight.h); a record that
  // cannot be written does not stop the eviction.
  const std::int64_t stuck = LoadSequence(ring.consumer(static_cast<std::size_t>(*index))) + 1;
  (void)WriteFlightRecord(
      ring, kFlightEviction,
      absl::StrFormat("%s evicted by an operator (pid %d)", name, ::getpid()), stuck);
  internal::EvictEntry(ring, static_cast<std::size_t>(*index));
  return absl::OkStatus();
}

absl::Status RetuneConsumer(RingSegment& ring, std::string_view name, const WaitParams& params) {
  if (absl::Status s = ValidateWaitParams(params); !s.ok()) return s;
  if (absl::Status s = ring.CheckWritable("retune a consumer"); !s.ok()) return s;
  internal::RegistryLock lock(ring.producer());  // not racing a registration of the entry
  if (absl::Status s = lock.Acquire(); !s.ok()) return s;
  auto index = internal::FindActiveOrNotFound(ring, name);
  if (!index.ok()) return index.status();
  ConsumerState& entry = ring.consumer(static_cast<std::size_t>(*index));
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
  return internal::FindActiveOrNotFound(ring, name);
}

int ActiveConsumerCount(const RingSegment& ring) {
  int count = 0;
  for (std::size_t i = 0; i < kMaxConsumers; ++i) count += IsActive(ring.consumer(i));
  return count;
}

}  // namespace xdisruptor
