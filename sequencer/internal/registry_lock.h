// internal/registry_lock.h — serialises registrations and producer attaches across processes.
//
// A word in the producer state holds the pid and start time of the process inside the critical
// section (registry_lock.cc packs them). Held for microseconds (a table scan and a few
// stores), never on the data path. A holder that dies inside is detected by its pid and start
// time (IsProcessAlive: a reused pid is not the holder) and the lock taken over; nothing is
// guessed from time alone. Not re-entrant; threads of one process exclude each other too.
#ifndef XDISRUPTOR_SEQUENCER_INTERNAL_REGISTRY_LOCK_H_
#define XDISRUPTOR_SEQUENCER_INTERNAL_REGISTRY_LOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "xdisruptor/layout.h"

namespace xdisruptor::internal {

class RegistryLock {
 public:
  explicit RegistryLock(ProducerState& producer) : word_(&producer.registry_lock) {}
  RegistryLock(const RegistryLock&) = delete;
  RegistryLock& operator=(const RegistryLock&) = delete;
  ~RegistryLock() {
    // SYNC POINT: pairs with the acquire CAS of the next holder; the entry it writes is seen.
    if (held_) word_->store(0, std::memory_order_release);
  }

  // Takes the lock, or fails after about 5 s held by a live process.
  absl::Status Acquire();

 private:
  std::atomic<std::int64_t>* word_;
  bool held_ = false;
};

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_SEQUENCER_INTERNAL_REGISTRY_LOCK_H_
