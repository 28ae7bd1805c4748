// xdisruptor/layout.h — the shared-memory layout of a ring, version 4.
//
// Every type here lives inside the segment and is shared by processes that may be built by
// different compilers and languages: standard-layout, trivially destructible, only fixed-width
// integers, fixed char arrays and always-lock-free atomics, no pointers (offsets from the
// segment's base instead). Sizes and hot offsets are pinned by static_asserts below; changing
// any of them is a new layout version.
//
// Segment map (offsets from the base; all of them are also recorded in the header):
//   [0, 4096)                 RingHeaderState: identity, geometry, schema, observability
//                             settings; read-only once made
//   [4096, 6144)              ProducerState: cursor, gating mask, registry lock, the cursor's
//                             notification words, ring status, the latest flight record and
//                             the producer table
//   [6144, 6144 + 64*768)     ConsumerState[64]: one entry per named consumer
//   stamps_offset             StampState[kStampCount]: publish times of sampled sequences
//   availability_offset       int32[capacity] lap marks (multi-producer rings only)
//   slots_offset (4096-aligned) capacity * slot_size bytes of events
//
// Who writes what: the creator writes the header once; the producer writes the cursor; each
// consumer writes its own entry's hot line; registration writes an entry's cold part under the
// registry lock. Code reads and writes these fields through the typed accessors of
// layout_access.h (and process.h for owners), which name each memory order and its partner
// once. See docs/architecture.md for every release/acquire pair.
#ifndef XDISRUPTOR_LAYOUT_H_
#define XDISRUPTOR_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace xdisruptor {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kSpacing = 128;  // two lines: defeats the adjacent-line prefetcher
inline constexpr std::uint64_t kMagic = 0x3152545044534958ull;  // "XISDPTR1" little-endian
inline constexpr std::uint32_t kLayoutVersion = 5;  // 3: latency samples, flight records,
                                                    // wait and full-ring counters; 4: worker
                                                    // groups (docs/worker-groups.md); 5: the
                                                    // registry lock word names pid and start
                                                    // time, origin_epoch

inline constexpr std::size_t kMaxConsumers = 64;  // one bit each in the gating mask
inline constexpr std::size_t kMaxAfter = 8;       // upstream stages one consumer may wait on
inline constexpr std::size_t kMaxNameLength = 64;
inline constexpr std::size_t kMaxSchemaLength = 3072;
inline constexpr std::size_t kMaxProducers = 16;
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 30;
inline constexpr std::uint32_t kMaxSlotSize = 1u << 20;
inline constexpr std::int64_t kInitialSequence = -1;
inline constexpr std::size_t kStampCount = 1024;       // entries of the latency stamp table
inline constexpr std::size_t kLatencyBuckets = 24;     // bucket i: latency <= 2^(i+8) ns
inline constexpr std::size_t kMaxFlightPath = 256;     // bytes of a flight-record path or dir

enum class SequencerKind : std::uint32_t { kSingleProducer = 0, kMultiProducer = 1 };
enum class RingStatus : std::uint32_t { kOpen = 0, kClosed = 1 };
enum class ConsumerStatus : std::uint32_t {
  kFree = 0,     // never used, or left: name and last sequence stay for the inspector
  kJoining = 1,  // claimed under the registry lock, not yet active
  kActive = 2,   // registered; gating if its bit is set in the gating mask
  kEvicted = 3,  // dropped from gating by its stall policy or an operator
};
inline constexpr std::uint32_t kConsumerStatusCount = 4;
enum class StallPolicy : std::uint32_t { kHold = 0, kEvict = 1 };
inline constexpr std::uint32_t kStallPolicyCount = 2;

// The creator writes every field, then `layout_version` last with release. Read-only after.
struct RingHeaderState {
  std::uint64_t magic;                        // 0
  std::atomic<std::uint32_t> layout_version;  // 8: SYNC POINT, pairs with the attach acquire
  std::uint32_t header_size;                  // 12: sizeof(RingHeaderState)
  std::uint64_t segment_size;                 // 16: bytes the creator sized the segment to
  std::uint64_t capacity;                     // 24: slots, a power of two
  std::uint32_t slot_size;                    // 32: bytes per slot, a multiple of 8
  SequencerKind sequencer_kind;               // 36
  std::uint32_t max_consumers;                // 40: kMaxConsumers
  std::uint32_t schema_length;                // 44: bytes used in `schema`
  std::uint64_t schema_hash;                  // 48: FNV-1a 64 of the schema text
  std::uint64_t producer_offset;              // 56
  std::uint64_t consumer_table_offset;        // 64
  std::uint64_t availability_offset;          // 72: 0 for single-producer rings
  std::uint64_t slots_offset;                 // 80
  std::int64_t creator_pid;                   // 88: shown by `stat`
  std::uint64_t creator_start_time;           // 96: clock ticks since boot (/proc stat field 22)
  std::int64_t created_at_unix_ns;            // 104: shown by `stat`
  std::uint32_t ring_name_length;             // 112
  std::uint32_t reserved_116;                 // 116
  char ring_name[kMaxNameLength];             // 120
  // Observability (docs/operations.md), chosen at creation. The producer stamps the publish
  // time of every sequence that is a multiple of latency_sample_every (a power of two; 0:
  // none) in the stamp table; consumers turn the stamps they release into their histogram.
  std::uint32_t latency_sample_every;         // 184
  std::uint32_t flight_events;                // 188: events a flight record decodes
  std::uint64_t stamps_offset;                // 192: the stamp table (kStampCount entries)
  std::int64_t flight_wait_ns;                // 200: full-ring wait that writes a record; 0 off
  std::uint32_t flight_dir_length;            // 208
  std::uint32_t reserved_212;                 // 212
  char flight_dir[kMaxFlightPath];            // 216: where records go (empty: see flight.h)
  std::uint8_t reserved_472[1024 - 472];      // 472: room for later header fields
  char schema[kMaxSchemaLength];              // 1024: numpy-style field list, not terminated
};

// A futex word and who sleeps on it: one bit per consumer entry, one per producer entry. A
// publisher bumps the word and wakes only when a bit is set, so nobody pays a syscall while
// nobody sleeps. Bits, not a count: the bit of a process that died asleep is cleared when its
// entry is taken over, so a crash cannot leave every later publish paying for a wake-up.
struct alignas(kSpacing) NotificationState {
  std::atomic<std::uint32_t> futex_word;         // 0
  std::atomic<std::uint32_t> producer_sleepers;  // 4: bit p: producer entry p sleeps here
  std::atomic<std::uint64_t> consumer_sleepers;  // 8: bit i: consumer entry i sleeps here
  std::uint8_t reserved_16[kSpacing - 16];
};

// Which process holds an entry: pid (0: nobody) and its start time, so a reused pid is not
// taken for the dead holder. Read and written through process.h only (LoadOwner/StoreOwner).
struct OwnerState {
  std::atomic<std::int64_t> pid;          // 0: SYNC POINT, stored last with release
  std::atomic<std::uint64_t> start_time;  // 8
};

// ConsumerState::observer values.
inline constexpr std::uint32_t kGatingMode = 0;
inline constexpr std::uint32_t kObserverMode = 1;
inline constexpr std::uint32_t kCatchingUpMode = 2;
inline constexpr std::uint32_t kMemberMode = 3;  // a worker group's member: the group gates

// ConsumerState::group_role values (worker groups, docs/worker-groups.md).
inline constexpr std::uint32_t kNoGroup = 0;
inline constexpr std::uint32_t kGroupStage = 1;   // the group as one stage: it gates, stages
                                                  // run after it, members move its sequence
inline constexpr std::uint32_t kGroupMember = 2;  // one worker: claims runs of sequences

// One producer process: a single-producer ring uses entry 0, a multi-producer ring up to 16.
struct alignas(kCacheLine) ProducerEntryState {
  OwnerState owner;                     // 0
  // Multi-producer: the claimed, not yet published range (stall detection). Single producer:
  // claim_hi is its highest claim, stored at every claim before the slots are written, so a
  // non-gating observer can tell whether what it read was overwritten.
  std::atomic<std::int64_t> claim_lo;   // 16
  std::atomic<std::int64_t> claim_hi;   // 24
  std::atomic<std::uint32_t> wait_kind;  // 32: its full-ring WaitKind, for `stat`
  std::uint32_t reserved_36;             // 36
  // How far this producer may write without reading the gating sequences again: its claims
  // so far, or the slowest gating sequence at its last look plus the capacity. Stored before
  // its second look at the gating mask (gating.h), so a consumer joining at an older sequence
  // either is seen or sees how far it may already have gone.
  std::atomic<std::int64_t> frontier;    // 40
  // Claims that found the ring full and waited, and the nanoseconds they waited (relaxed:
  // counters for the inspector, written by this producer only).
  std::atomic<std::uint64_t> full_waits;    // 48
  std::atomic<std::uint64_t> full_wait_ns;  // 56
};

// The latest flight record (flight.h), for `stat`: a seqlock, since any process may write one.
// `version` is odd while a writer fills the rest; writers take it from even to odd by CAS.
struct FlightRecordState {
  std::atomic<std::uint32_t> version;      // 0
  std::atomic<std::uint32_t> count;        // 4: records written for this ring
  std::atomic<std::int64_t> at_unix_ns;    // 8
  std::atomic<std::uint32_t> path_length;  // 16
  std::uint32_t reserved_20;               // 20
  char path[kMaxFlightPath];               // 24
};

struct ProducerState {
  // The cursor. Single producer: the published sequence; SYNC POINT, its release store after
  // writing the slots pairs with every barrier's acquire load. Multi-producer: the highest
  // claimed sequence (fetch-add), as in the Disruptor; what is published is read from the
  // availability marks (sequencer/include/xdisruptor/internal/availability.h).
  alignas(kSpacing) std::atomic<std::int64_t> cursor;  // 0
  std::uint8_t reserved_8[2 * kSpacing - 8];           // 8 (128..255: the v1 claim line)
  // Bit i set: consumer entry i gates the producer. Written on join/leave under the registry
  // lock (seq_cst RMW), read by the producer after its StoreLoad fence.
  alignas(kSpacing) std::atomic<std::uint64_t> gating_mask;  // 256
  // pid of the process holding the registry lock (0: free); stolen only from a dead holder.
  std::atomic<std::int64_t> registry_lock;  // 264
  std::uint8_t reserved_272[kSpacing - 16];
  NotificationState cursor_notification;   // 384: consumers waiting for the cursor
  std::uint8_t reserved_512[kSpacing];     // 512 (producers sleep on the lagging consumer's)
  alignas(kSpacing) std::atomic<RingStatus> ring_status;  // 640
  std::uint32_t reserved_644;                             // 644
  std::atomic<std::int64_t> closed_at_sequence;           // 648: the cursor when closed
  FlightRecordState flight;                               // 656
  // A ring fed by a bridge's in side (bridge/): the epoch (creation time) of the source ring
  // whose stream it carries, so a restarted bridge knows which life of the source its cursor
  // counts. 0: none (a ring fed by its own producers, or made before this field).
  std::atomic<std::int64_t> origin_epoch;                 // 936
  std::uint8_t reserved_944[1024 - 944];
  ProducerEntryState producers[kMaxProducers];  // 1024
};

// One named consumer. The hot line is written only by the consumer itself, once per batch.
struct alignas(kSpacing) ConsumerState {
  // SYNC POINT: the release store of `sequence` after a batch pairs with the producer's gating
  // acquire load (it may then overwrite those slots) and with downstream barriers' acquire
  // loads (they may then read the slots and every in-place change this stage made).
  std::atomic<std::int64_t> sequence;  // 0
  std::atomic<std::uint64_t> events;   // 8: counters, relaxed, for the inspector
  std::atomic<std::uint64_t> batches;  // 16
  std::atomic<std::uint64_t> waits;    // 24
  std::atomic<std::uint64_t> sleeps;   // 32: futex sleeps of its waits (blocking kinds)
  std::atomic<std::uint64_t> wakes;    // 40: of those, ended by a publisher's wake-up
  std::atomic<std::uint64_t> last_batch;  // 48: events of its last release
  std::uint8_t reserved_56[8];            // 56
  // Worker groups. A group stage: `work` is the highest sequence any member claimed (members
  // CAS it forward by a run at a time), `group_members` one bit per member entry (changed
  // under the registry lock). A member: `takeovers` counts claims it took from dead members.
  std::atomic<std::int64_t> work;            // 64
  std::atomic<std::uint64_t> group_members;  // 72
  std::atomic<std::uint64_t> takeovers;      // 80
  std::uint8_t reserved_88[kSpacing - 88];
  NotificationState notification;  // 128: stages waiting on this one (blocking waits)
  // Cold part, 256..639: written under the registry lock while the entry is joining.
  std::atomic<ConsumerStatus> status;     // 256
  std::atomic<std::uint32_t> generation;  // 260: bumped by every registration
  std::uint32_t name_length;              // 264
  std::uint32_t after_count;              // 268
  char name[kMaxNameLength];              // 272
  OwnerState owner;                       // 336
  std::int32_t after[kMaxAfter];          // 352: indices of the entries this one runs after
  std::uint32_t after_generation[kMaxAfter];  // 384: each upstream's generation at join
  // Wait strategy (WaitParams, wait_strategy.h: LoadWaitParams / StoreWaitParams), re-read by
  // the consumer's barrier while it waits, so a retune from another process takes effect at
  // its next wait.
  std::atomic<std::uint32_t> wait_kind;              // 416
  std::atomic<std::uint32_t> wait_spin_tries;        // 420
  std::atomic<std::uint32_t> wait_yield_tries;       // 424
  std::atomic<std::uint32_t> wait_config_version;    // 428: bumped by every retune
  std::atomic<std::uint32_t> wait_fallback_kind;     // 432: phased backoff's last phase
  std::uint32_t reserved_436;                        // 436
  std::atomic<std::int64_t> wait_sleep_ceiling_ns;   // 440
  std::atomic<std::int64_t> wait_timeout_ns;         // 448
  std::atomic<std::int64_t> wait_phase_spin_ns;      // 456
  std::atomic<std::int64_t> wait_phase_yield_ns;     // 464
  std::atomic<StallPolicy> stall_policy;             // 472
  // 476: 0 gates; kObserverMode: does not gate (may be lapped); kCatchingUpMode: reads a
  // journal and does not gate yet (catch_up.h)
  std::atomic<std::uint32_t> observer;
  // Slow-consumer limit (stall policy kEvict): a live consumer lagging more than max_lag
  // events while the producer has been blocked by it longer than max_lag_ns is evicted.
  std::atomic<std::int64_t> max_lag;                 // 480: 0 with max_lag_ns 0: no limit
  std::atomic<std::int64_t> max_lag_ns;              // 488
  std::atomic<std::int64_t> join_sequence;           // 496
  std::atomic<std::int64_t> registered_at_unix_ns;   // 504
  std::atomic<std::uint64_t> evictions;              // 512
  std::atomic<std::uint64_t> missed;                 // 520
  // Handler failures (a processor's error policy counted them: skipped events, retried
  // batches, the failure that stopped the stage). Relaxed: a counter for the inspector.
  std::atomic<std::uint64_t> handler_errors;         // 528
  // Publish -> release latency of the sampled sequences it released (latency.h): counts per
  // power-of-two bucket, total, sum and maximum. Written by the consumer only, relaxed.
  std::atomic<std::uint64_t> latency_buckets[kLatencyBuckets];  // 536
  std::atomic<std::uint64_t> latency_count;                     // 728
  std::atomic<std::uint64_t> latency_sum_ns;                    // 736
  std::atomic<std::uint64_t> latency_max_ns;                    // 744
  // A member: the last sequence of the run it claimed (its `sequence` + 1 .. claim_hi is
  // unfinished while sequence < claim_hi), stored before it claims, so a member that takes
  // over from a dead one knows what to redo.
  std::atomic<std::int64_t> claim_hi;                           // 752
  std::atomic<std::int32_t> group;       // 760: a member: its group stage's entry; else -1
  std::atomic<std::uint32_t> group_role;  // 764: kNoGroup, kGroupStage, kGroupMember
};

// One sampled publish: the sequence and when it was published (steady clock, ns). A seqlock
// of one writer: `sequence` is -1 while the entry is rewritten (latency.h).
struct StampState {
  std::atomic<std::int64_t> sequence;    // 0
  std::atomic<std::int64_t> publish_ns;  // 8
};

inline constexpr std::uint64_t kProducerOffset = sizeof(RingHeaderState);
inline constexpr std::uint64_t kConsumerTableOffset = kProducerOffset + 2048;
inline constexpr std::uint64_t kConsumerStateSize = 768;
inline constexpr std::uint64_t kConsumerTableEnd =
    kConsumerTableOffset + kMaxConsumers * kConsumerStateSize;
inline constexpr std::uint64_t kStampTableOffset = kConsumerTableEnd;
inline constexpr std::uint64_t kStampTableEnd = kStampTableOffset + kStampCount * 16;

// --- The layout is an ABI: pin it. Every field's offset, so another language (or another
// compiler) can read the segment from this table alone. ----------------------------------
template <typename T>
inline constexpr bool kSharedSafe =
    std::is_standard_layout_v<T> && std::is_trivially_destructible_v<T>;

static_assert(kSharedSafe<RingHeaderState> && kSharedSafe<ProducerState> &&
              kSharedSafe<FlightRecordState> && kSharedSafe<StampState> &&
              kSharedSafe<ConsumerState> && kSharedSafe<NotificationState> &&
              kSharedSafe<ProducerEntryState> && kSharedSafe<OwnerState>);
static_assert(std::atomic<std::int64_t>::is_always_lock_free &&
              std::atomic<std::uint64_t>::is_always_lock_free &&
              std::atomic<std::uint32_t>::is_always_lock_free &&
              std::atomic<std::int32_t>::is_always_lock_free &&
              std::atomic<ConsumerStatus>::is_always_lock_free &&
              std::atomic<StallPolicy>::is_always_lock_free &&
              std::atomic<RingStatus>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::int64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4 &&
              sizeof(std::atomic<std::int32_t>) == 4 && sizeof(std::atomic<ConsumerStatus>) == 4 &&
              sizeof(std::atomic<StallPolicy>) == 4 && sizeof(std::atomic<RingStatus>) == 4);

#define XD_PIN(type, field, offset) (offsetof(type, field) == (offset))
namespace layout_pins {
using H = RingHeaderState;
using N = NotificationState;
using O = OwnerState;
using E = ProducerEntryState;
using P = ProducerState;
using C = ConsumerState;
static_assert(sizeof(H) == 4096 && XD_PIN(H, magic, 0) && XD_PIN(H, layout_version, 8));
static_assert(XD_PIN(H, header_size, 12) && XD_PIN(H, segment_size, 16) &&
              XD_PIN(H, capacity, 24) && XD_PIN(H, slot_size, 32) &&
              XD_PIN(H, sequencer_kind, 36) && XD_PIN(H, max_consumers, 40));
static_assert(XD_PIN(H, schema_length, 44) && XD_PIN(H, schema_hash, 48));
static_assert(XD_PIN(H, producer_offset, 56) && XD_PIN(H, consumer_table_offset, 64) &&
              XD_PIN(H, availability_offset, 72) && XD_PIN(H, slots_offset, 80));
static_assert(XD_PIN(H, creator_pid, 88) && XD_PIN(H, creator_start_time, 96) &&
              XD_PIN(H, created_at_unix_ns, 104) && XD_PIN(H, ring_name_length, 112) &&
              XD_PIN(H, ring_name, 120) && XD_PIN(H, schema, 1024));
static_assert(XD_PIN(H, latency_sample_every, 184) && XD_PIN(H, flight_events, 188) &&
              XD_PIN(H, stamps_offset, 192) && XD_PIN(H, flight_wait_ns, 200) &&
              XD_PIN(H, flight_dir_length, 208) && XD_PIN(H, flight_dir, 216));
static_assert(sizeof(N) == kSpacing && XD_PIN(N, futex_word, 0) &&
              XD_PIN(N, producer_sleepers, 4) && XD_PIN(N, consumer_sleepers, 8));
static_assert(sizeof(O) == 16 && XD_PIN(O, pid, 0) && XD_PIN(O, start_time, 8));
static_assert(sizeof(E) == kCacheLine && XD_PIN(E, owner, 0) && XD_PIN(E, claim_lo, 16) &&
              XD_PIN(E, claim_hi, 24) && XD_PIN(E, wait_kind, 32) && XD_PIN(E, frontier, 40) &&
              XD_PIN(E, full_waits, 48) && XD_PIN(E, full_wait_ns, 56));
using F = FlightRecordState;
static_assert(sizeof(F) == 280 && XD_PIN(F, version, 0) && XD_PIN(F, count, 4) &&
              XD_PIN(F, at_unix_ns, 8) && XD_PIN(F, path_length, 16) && XD_PIN(F, path, 24));
static_assert(sizeof(StampState) == 16);
static_assert(sizeof(P) == 2048 && alignof(P) == kSpacing && XD_PIN(P, cursor, 0));
static_assert(XD_PIN(P, gating_mask, 256) && XD_PIN(P, registry_lock, 264) &&
              XD_PIN(P, cursor_notification, 384) && XD_PIN(P, ring_status, 640) &&
              XD_PIN(P, closed_at_sequence, 648) && XD_PIN(P, flight, 656) &&
              XD_PIN(P, origin_epoch, 936) &&
              XD_PIN(P, producers, 1024));
static_assert(sizeof(C) == kConsumerStateSize && alignof(C) == kSpacing);
static_assert(XD_PIN(C, sequence, 0) && XD_PIN(C, events, 8) && XD_PIN(C, batches, 16) &&
              XD_PIN(C, waits, 24) && XD_PIN(C, sleeps, 32) && XD_PIN(C, wakes, 40) &&
              XD_PIN(C, last_batch, 48) && XD_PIN(C, notification, 128));
static_assert(XD_PIN(C, status, 256) && XD_PIN(C, generation, 260) &&
              XD_PIN(C, name_length, 264) && XD_PIN(C, after_count, 268) &&
              XD_PIN(C, name, 272) && XD_PIN(C, owner, 336) && XD_PIN(C, after, 352));
static_assert(XD_PIN(C, after_generation, 384) && XD_PIN(C, wait_kind, 416));
static_assert(XD_PIN(C, wait_spin_tries, 420) && XD_PIN(C, wait_yield_tries, 424) &&
              XD_PIN(C, wait_config_version, 428) && XD_PIN(C, wait_fallback_kind, 432));
static_assert(XD_PIN(C, wait_sleep_ceiling_ns, 440) && XD_PIN(C, wait_timeout_ns, 448) &&
              XD_PIN(C, wait_phase_spin_ns, 456) && XD_PIN(C, wait_phase_yield_ns, 464) &&
              XD_PIN(C, stall_policy, 472) && XD_PIN(C, observer, 476) &&
              XD_PIN(C, max_lag, 480) && XD_PIN(C, max_lag_ns, 488));
static_assert(XD_PIN(C, join_sequence, 496) && XD_PIN(C, registered_at_unix_ns, 504) &&
              XD_PIN(C, evictions, 512) && XD_PIN(C, missed, 520) &&
              XD_PIN(C, handler_errors, 528) && XD_PIN(C, latency_buckets, 536) &&
              XD_PIN(C, latency_count, 728) && XD_PIN(C, latency_sum_ns, 736) &&
              XD_PIN(C, latency_max_ns, 744));
static_assert(XD_PIN(C, work, 64) && XD_PIN(C, group_members, 72) && XD_PIN(C, takeovers, 80) &&
              XD_PIN(C, claim_hi, 752) && XD_PIN(C, group, 760) && XD_PIN(C, group_role, 764));
}  // namespace layout_pins
#undef XD_PIN
static_assert(kMaxConsumers <= 64, "the gating mask is one 64-bit word");
static_assert(kMaxProducers <= 32, "producer sleeper bits are one 32-bit word");

}  // namespace xdisruptor

#endif  // XDISRUPTOR_LAYOUT_H_
