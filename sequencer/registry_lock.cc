#include "internal/registry_lock.h"

#include <sched.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/process.h"

namespace xdisruptor::internal {

absl::Status RegistryLock::Acquire() {
  const std::int64_t self = ::getpid();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  for (std::uint64_t attempt = 1;; ++attempt) {
    std::int64_t holder = 0;
    // SYNC POINT: acquire pairs with the previous holder's release in ~RegistryLock.
    if (word_->compare_exchange_strong(holder, self, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      held_ = true;
      return absl::OkStatus();
    }
    if (holder != self && !IsAlive(ProcessIdentity{.pid = holder})) {
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
          holder));
    }
    if (attempt < 100) {
      sched_yield();
    } else {
      ::usleep(100);
    }
  }
}

}  // namespace xdisruptor::internal
