// xdisruptor/waitstrategies/blocking.h — sleep in the kernel on a futex word in the segment
// until the sequence one waits for moves; the publisher wakes sleepers, and makes no system
// call when nobody sleeps.
//
// Every sequence that others wait on (the cursor, each consumer's sequence) has a
// NotificationState beside it: a futex word and a bit per sleeper. The protocol (Dekker):
//   waiter:    set its sleeper bit (seq_cst RMW: full fence #1); v = futex_word (acquire);
//              if its bit is gone already, return (a publisher collected it: see below);
//              re-check the sequence (seq_cst) and the stop conditions; if still short,
//              futex_wait(futex_word, v, safety-net timeout); clear its bit.
//   publisher: store the sequence (release); full fence #2; if any sleeper bit is set:
//              collect the bits (exchange with 0), and if it got any: futex_word += 1
//              (release), futex_wake(all).
// Collecting the bits means one wake per sleep: publishes that follow, before the woken
// waiter has run and perhaps set its bit again, find no bits and make no system call. (Without
// it three producers made ~11 futex_wake calls per consumer sleep.) A waiter whose bit was
// collected after it set it either read the old word (then the bump makes its futex_wait return
// at once) or read the bumped one, and then sees its bit gone (the exchange precedes the bump's
// release) and does not sleep.
// Status changes that end a wait (ring closed, halt, upstream left) are stored before a
// WakeAll bump; a waiter whose acquire load of the word sees the bump also sees the change.
// Fence #1 and fence #2 make it impossible for both sides to miss each other: either the
// publisher sees the waiter's count (and bumps the word, so the futex_wait returns at once or
// is woken), or the waiter's re-check sees the new sequence and does not sleep. The futex is
// not FUTEX_PRIVATE: sleepers and wakers are different processes. A wait also times out after
// a safety net (kSafetyNetNs), so a crashed publisher cannot leave a waiter asleep forever.
// Any thread may call these; they allocate nothing.
#ifndef XDISRUPTOR_WAITSTRATEGIES_BLOCKING_H_
#define XDISRUPTOR_WAITSTRATEGIES_BLOCKING_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "xdisruptor/layout.h"
#include "xdisruptor/layout_access.h"

namespace xdisruptor::wait {

inline constexpr std::int64_t kSafetyNetNs = 50'000'000;  // 50 ms

// Who sleeps: a consumer entry or a producer entry (its bit in NotificationState).
struct Sleeper {
  bool producer = false;
  std::uint32_t index = 0;
};

// What a blocking waiter sleeps on: the sequence that holds it back, the value it needs, the
// notification words beside that sequence, who sleeps, and the conditions that end the wait
// early (each optional). `sequence == nullptr`: nothing holds it back now.
struct BlockTarget {
  const std::atomic<std::int64_t>* sequence = nullptr;
  std::int64_t needed = 0;
  NotificationState* notification = nullptr;
  Sleeper sleeper{};
  const ProducerState* ring = nullptr;            // stop when the ring is closed
  const ConsumerState* must_stay_active = nullptr;  // stop when this entry is no longer active
  const std::atomic<bool>* alert = nullptr;                   // stop when set
  // Multi-producer rings: also short until this availability mark holds `mark_value`.
  const std::atomic<std::int32_t>* mark = nullptr;
  std::int32_t mark_value = 0;
};

// True once the awaited sequence is there (and, with a mark, published).
inline bool Reached(const BlockTarget& t, std::memory_order order) {
  return t.sequence->load(order) >= t.needed &&
         (t.mark == nullptr || t.mark->load(order) == t.mark_value);
}

// Counters of this process's blocking waits, for tests and the inspector.
struct BlockingStats {
  std::atomic<std::uint64_t> blocks{0};         // sleeper bits set (BlockOn calls)
  std::atomic<std::uint64_t> sleeps{0};         // futex waits entered
  std::atomic<std::uint64_t> wakes{0};          // wakes by Notify (bits collected)
  std::atomic<std::uint64_t> safety_timeouts{0};  // ended by the safety net, not a wake
  std::atomic<std::uint64_t> lost_wakeups{0};   // safety net expired though the sequence had
                                                // moved and nobody bumped the word
};
inline BlockingStats& Stats() {
  static BlockingStats stats;
  return stats;
}

inline void FutexWakeAll(std::atomic<std::uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

// Returns true if woken (or the word had already changed), false on timeout.
inline bool FutexWait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                      std::int64_t timeout_ns) {
  const timespec timeout{static_cast<time_t>(timeout_ns / 1000000000),
                         static_cast<long>(timeout_ns % 1000000000)};
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT,
                            expected, &timeout, nullptr, 0);
  return rc == 0 || errno != ETIMEDOUT;
}

// Wakes every sleeper on `n`, whether or not one is counted (halts, closes, retunes).
inline void WakeAll(NotificationState& n) {
  // Release: a woken waiter that reads the new word also sees what preceded the wake.
  n.futex_word.fetch_add(1, std::memory_order_release);
  FutexWakeAll(&n.futex_word);
}

// Publisher side: call right after the release store of the sequence `n` stands beside.
inline void Notify(NotificationState& n) {
  // SYNC POINT (StoreLoad, full fence #2): orders the caller's store of the sequence before the
  // load of the sleeper count; pairs with fence #1 in BlockOn. Without it the count could be
  // read before the store is visible while a waiter re-checks the old sequence: a lost wake-up.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::uint64_t consumers = n.consumer_sleepers.load(std::memory_order_relaxed);
  std::uint32_t producers = n.producer_sleepers.load(std::memory_order_relaxed);
  if ((consumers | producers) != 0) [[unlikely]] {
    // Collect the bits: a publisher that collects none leaves the wake to the one that did.
    // A mask read as empty needs no exchange: a bit set after fence #2 belongs to a waiter
    // whose re-check sees our sequence. acq_rel: the bump below is ordered after the exchange.
    if (consumers != 0) consumers = n.consumer_sleepers.exchange(0, std::memory_order_acq_rel);
    if (producers != 0) producers = n.producer_sleepers.exchange(0, std::memory_order_acq_rel);
    if ((consumers | producers) != 0) {
      Stats().wakes.fetch_add(1, std::memory_order_relaxed);
      WakeAll(n);
    }
  }
}

// True while nothing that ends the wait has happened (see BlockTarget).
inline bool StillShort(const BlockTarget& t) {
  // seq_cst: when the publisher missed our sleeper bit, this load follows its fence #2 in the
  // single total order and so sees its store (see the protocol above).
  if (Reached(t, std::memory_order_seq_cst)) return false;
  if (t.ring != nullptr && IsClosed(*t.ring)) return false;
  if (t.must_stay_active != nullptr && !IsActive(*t.must_stay_active)) return false;
  return t.alert == nullptr || !t.alert->load(std::memory_order_relaxed);
}

// True while `who`'s bit is set in `n`.
inline bool SleeperBitSet(const NotificationState& n, Sleeper who, std::memory_order order) {
  return who.producer
             ? (n.producer_sleepers.load(order) & (std::uint32_t{1} << who.index)) != 0
             : (n.consumer_sleepers.load(order) & (std::uint64_t{1} << who.index)) != 0;
}

// Clears a sleeper's bit from `n`: for the entry of a process that died asleep.
inline void ClearSleeper(NotificationState& n, Sleeper who) {
  if (who.producer) {
    n.producer_sleepers.fetch_and(~(std::uint32_t{1} << who.index), std::memory_order_relaxed);
  } else {
    n.consumer_sleepers.fetch_and(~(std::uint64_t{1} << who.index), std::memory_order_relaxed);
  }
}

// What one BlockOn did: returned without sleeping, slept until woken, or slept to its budget.
enum class SleepOutcome { kNoSleep, kWoken, kTimedOut };

// Waiter side: sleeps until `target` may have reached what is needed, a wake, or `max_sleep_ns`.
inline SleepOutcome BlockOn(const BlockTarget& target, std::int64_t max_sleep_ns) {
  NotificationState& n = *target.notification;
  // SYNC POINT (full fence #1): the seq_cst RMW that sets our bit is ordered before the
  // re-check below; pairs with fence #2 in Notify.
  if (target.sleeper.producer) {
    n.producer_sleepers.fetch_or(std::uint32_t{1} << target.sleeper.index,
                                 std::memory_order_seq_cst);
  } else {
    n.consumer_sleepers.fetch_or(std::uint64_t{1} << target.sleeper.index,
                                 std::memory_order_seq_cst);
  }
  Stats().blocks.fetch_add(1, std::memory_order_relaxed);
  // Acquire pairs with WakeAll's release bump (and what was stored before it).
  const std::uint32_t word = n.futex_word.load(std::memory_order_acquire);
  // A publisher collected our bit since we set it: it bumps (or has bumped) the word for us.
  // If we read the bumped word the exchange is visible here: return, the caller re-checks.
  // If we read the old word, sleeping would return at once anyway.
  if (!SleeperBitSet(n, target.sleeper, std::memory_order_acquire)) return SleepOutcome::kNoSleep;
  SleepOutcome outcome = SleepOutcome::kNoSleep;
  if (StillShort(target)) {
    Stats().sleeps.fetch_add(1, std::memory_order_relaxed);
    outcome = SleepOutcome::kWoken;
    if (!FutexWait(&n.futex_word, word, max_sleep_ns)) {
      outcome = SleepOutcome::kTimedOut;
      Stats().safety_timeouts.fetch_add(1, std::memory_order_relaxed);
      if (n.futex_word.load(std::memory_order_acquire) == word &&
          Reached(target, std::memory_order_acquire)) {
        Stats().lost_wakeups.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  ClearSleeper(n, target.sleeper);
  return outcome;
}

}  // namespace xdisruptor::wait

#endif  // XDISRUPTOR_WAITSTRATEGIES_BLOCKING_H_
