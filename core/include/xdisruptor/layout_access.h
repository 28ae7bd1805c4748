// xdisruptor/layout_access.h — typed accessors for the shared fields of layout.h.
//
// Every read or write of a shared field outside the hot loops' own code goes through one of
// these, so each memory order and the operation it pairs with is decided (and commented) once,
// as Aeron's log buffer descriptor does. Call sites see enums, never integers. Liveness of an
// entry's owner is in process.h; wait parameters in wait_strategy.h; multi-producer
// availability in sequencer/include/xdisruptor/internal/availability.h. Any thread of any
// process may call these; none allocates or makes a system call.
#ifndef XDISRUPTOR_LAYOUT_ACCESS_H_
#define XDISRUPTOR_LAYOUT_ACCESS_H_

#include <atomic>
#include <cstdint>

#include "xdisruptor/layout.h"

namespace xdisruptor {

// --- The cursor: published (single producer) or claimed (multi-producer) -------------------

// SYNC POINT: acquire pairs with the single producer's release store in Publish (and with the
// multi-producer's seq_cst fetch-add): slots up to it are written (single) or claimed (multi).
inline std::int64_t LoadCursor(const ProducerState& p) {
  return p.cursor.load(std::memory_order_acquire);
}

// --- Ring status (open / closed) ------------------------------------------------------------

// SYNC POINT: acquire pairs with SetRingStatus' release: a consumer that sees kClosed then reads
// the final cursor.
inline bool IsClosed(const ProducerState& p) {
  return p.ring_status.load(std::memory_order_acquire) == RingStatus::kClosed;
}
// Release: everything stored before (the last publish, closed_at_sequence) is seen by IsClosed.
inline void SetRingStatus(ProducerState& p, RingStatus status) {
  p.ring_status.store(status, std::memory_order_release);
}
// Marks the end of the stream at the current cursor.
inline void CloseRing(ProducerState& p) {
  p.closed_at_sequence.store(p.cursor.load(std::memory_order_acquire), std::memory_order_relaxed);
  SetRingStatus(p, RingStatus::kClosed);
}

// --- Origin: the source ring's life a bridge carries into this ring ------------------------

// SYNC POINT: acquire pairs with StoreOriginEpoch's release (a bridge's in side marks the far
// ring it attached to before it publishes into it; another in side reads it before it does).
inline std::int64_t LoadOriginEpoch(const ProducerState& p) {
  return p.origin_epoch.load(std::memory_order_acquire);
}
inline void StoreOriginEpoch(ProducerState& p, std::int64_t epoch) {
  p.origin_epoch.store(epoch, std::memory_order_release);
}

// --- Gating: which consumer entries hold the producer back ----------------------------------

inline constexpr std::uint64_t EntryBit(std::size_t index) { return std::uint64_t{1} << index; }

// Acquire pairs with JoinGating's seq_cst RMW: a set bit's sequence (stored before) is seen.
inline std::uint64_t LoadGatingMask(const ProducerState& p) {
  return p.gating_mask.load(std::memory_order_acquire);
}
inline bool IsGating(const ProducerState& p, std::size_t index) {
  return (LoadGatingMask(p) & EntryBit(index)) != 0;
}
// SYNC POINT (StoreLoad, seq_cst): pairs with the producer's seq_cst fence before it loads the
// mask (RefreshGating). Under the registry lock only. See docs/architecture.md, join protocol.
inline void JoinGating(ProducerState& p, std::size_t index) {
  p.gating_mask.fetch_or(EntryBit(index), std::memory_order_seq_cst);
}
// seq_cst RMW: from here the producer may overwrite what the entry left unread.
inline void LeaveGating(ProducerState& p, std::size_t index) {
  p.gating_mask.fetch_and(~EntryBit(index), std::memory_order_seq_cst);
}

// --- A consumer entry's status and policy ---------------------------------------------------

// SYNC POINT: acquire pairs with StoreStatus' release: an entry seen active (or evicted) has
// its name, owner, `after` list and generation complete.
inline ConsumerStatus LoadStatus(const ConsumerState& c) {
  return c.status.load(std::memory_order_acquire);
}
inline void StoreStatus(ConsumerState& c, ConsumerStatus status) {
  c.status.store(status, std::memory_order_release);
}
inline bool IsActive(const ConsumerState& c) { return LoadStatus(c) == ConsumerStatus::kActive; }
inline bool IsEvicted(const ConsumerState& c) { return LoadStatus(c) == ConsumerStatus::kEvicted; }

// Relaxed: written under the registry lock, read by the producer deciding an eviction (which
// re-checks under the lock).
inline StallPolicy LoadStallPolicy(const ConsumerState& c) {
  return c.stall_policy.load(std::memory_order_relaxed);
}

// Acquire pairs with the release store of `sequence` in Consumer::Release and registration.
inline std::int64_t LoadSequence(const ConsumerState& c) {
  return c.sequence.load(std::memory_order_acquire);
}

// Single-writer counters (the entry's own consumer): a load and a store, no locked
// instruction; relaxed, they carry no data.
inline void BumpCounter(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
inline std::uint64_t LoadCounter(const std::atomic<std::uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

}  // namespace xdisruptor

#endif  // XDISRUPTOR_LAYOUT_ACCESS_H_
