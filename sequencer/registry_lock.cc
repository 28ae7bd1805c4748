#include "internal/registry_lock.h"

#include <sched.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/process.h"

namespace xdisruptor::internal {

namespace {

// The lock word: the holder's pid (below 2^22, Linux's largest pid_max) and, above it, the
// low 41 bits of its start time (clock ticks since boot: 698 years at 100 Hz), so a pid the
// kernel reused after the holder died is not taken for the holder. Positive (63 bits).
constexpr int kPidBits = 22;
constexpr std::uint64_t kPidMask = (std::uint64_t{1} << kPidBits) - 1;
constexpr std::uint64_t kStartMask = (std::uint64_t{1} << 41) - 1;

std::int64_t LockWord(const ProcessIdentity& who) {
  return static_cast<std::int64_t>((static_cast<std::uint64_t>(who.pid) & kPidMask) |
                                   ((who.start_time & kStartMask) << kPidBits));
}

ProcessIdentity Holder(std::int64_t word) {
  const auto w = static_cast<std::uint64_t>(word);
  return ProcessIdentity{.pid = static_cast<std::int64_t>(w & kPidMask),
                         .start_time = w >> kPidBits};
}

}  // namespace

absl::Status RegistryLock::Acquire() {
  const std::int64_t self = LockWord(CurrentProcess());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  for (std::uint64_t attempt = 1;; ++attempt) {
    std::int64_t holder = 0;
    // SYNC POINT: acquire pairs with the previous holder's release in ~RegistryLock.
    if (word_->compare_exchange_strong(holder, self, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      held_ = true;
      return absl::OkStatus();
    }
    if (holder != self && !IsAlive(Holder(holder))) {
      // The holder died inside; take over from exactly that pid (another taker may win).
      if (word_->compare_exchange_strong(holder, self, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        held_ = true;
        return absl::OkStatus();
      }
      continue;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "the ring's registry lock has been held by live process %d for 5 s; is it stopped "
          "in a debugger?",
          Holder(holder).pid));
    }
    if (attempt < 100) {
      sched_yield();
    } else {
      ::usleep(100);
    }
  }
}

}  // namespace xdisruptor::internal
