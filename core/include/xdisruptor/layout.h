// xdisruptor/layout.h — the shared-memory layout of a ring, version 1.
//
// Every type here lives inside the segment and is shared by processes that may be built by
// different compilers and languages: standard-layout, trivially destructible, only fixed-width
// integers, fixed char arrays and always-lock-free atomics, no pointers (offsets from the
// segment's base instead). Sizes and hot offsets are pinned by static_asserts below; changing
// any of them is a new layout version.
//
// Segment map (offsets from the base; all of them are also recorded in the header):
//   [0, 4096)                 RingHeaderState: identity, geometry, schema; read-only once made
//   [4096, 6144)              ProducerState: cursor, claim, gating mask, notification words,
//                             ring state, producer liveness and a producer table
//   [6144, 6144 + 64*640)     ConsumerState[64]: one entry per named consumer
//   availability_offset       int32[capacity] lap marks (multi-producer rings only)
//   slots_offset (4096-aligned) capacity * slot_size bytes of events
//
// Who writes what: the creator writes the header once; the producer writes the cursor; each
// consumer writes its own entry's hot line; registration writes an entry's cold part under the
// registry lock. See docs/architecture.md for every release/acquire pair.
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
inline constexpr std::uint32_t kLayoutVersion = 1;
inline constexpr std::size_t kMaxConsumers = 64;  // one bit each in the gating mask
inline constexpr std::size_t kMaxAfter = 8;       // upstream stages one consumer may wait on
inline constexpr std::size_t kMaxNameLength = 64;
inline constexpr std::size_t kMaxSchemaLength = 3072;
inline constexpr std::size_t kMaxProducers = 16;
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 30;
inline constexpr std::uint32_t kMaxSlotSize = 1u << 20;
inline constexpr std::int64_t kInitialSequence = -1;

enum class SequencerKind : std::uint32_t { kSingleProducer = 0, kMultiProducer = 1 };
enum class RingStatus : std::uint32_t { kOpen = 0, kClosed = 1 };
enum class ConsumerStatus : std::uint32_t {
  kFree = 0,     // never used, or left: name and last sequence stay for the inspector
  kJoining = 1,  // claimed under the registry lock, not yet active
  kActive = 2,   // registered; gating if its bit is set in the gating mask
  kEvicted = 3,  // dropped from gating by its stall policy (reliability issue)
};
enum class StallPolicy : std::uint32_t { kHold = 0, kEvict = 1 };

// The creator writes every field, then `layout_version` last with release. Read-only after.
struct RingHeaderState {
  std::uint64_t magic;                        // 0
  std::atomic<std::uint32_t> layout_version;  // 8: SYNC POINT, pairs with the attach acquire
  std::uint32_t header_size;                  // 12: sizeof(RingHeaderState)
  std::uint64_t segment_size;                 // 16: bytes the creator sized the segment to
  std::uint64_t capacity;                     // 24: slots, a power of two
  std::uint32_t slot_size;                    // 32: bytes per slot, a multiple of 8
  std::uint32_t sequencer_kind;               // 36: SequencerKind
  std::uint32_t max_consumers;                // 40: kMaxConsumers
  std::uint32_t schema_length;                // 44: bytes used in `schema`
  std::uint64_t schema_hash;                  // 48: FNV-1a 64 of the schema text
  std::uint64_t producer_offset;              // 56
  std::uint64_t consumer_table_offset;        // 64
  std::uint64_t availability_offset;          // 72: 0 for single-producer rings
  std::uint64_t slots_offset;                 // 80
  std::int64_t creator_pid;                   // 88
  std::uint64_t creator_start_time;           // 96: clock ticks since boot (/proc stat field 22)
  std::int64_t created_at_unix_ns;            // 104
  std::uint32_t ring_name_length;             // 112
  std::uint32_t reserved0;                    // 116
  char ring_name[kMaxNameLength];             // 120
  std::uint8_t reserved[1024 - 184];          // 184: room for later header fields
  char schema[kMaxSchemaLength];              // 1024: numpy-style field list, not terminated
};

// A futex word and who sleeps on it: one bit per consumer entry, one per producer entry. A
// publisher bumps the word and wakes only when a bit is set, so nobody pays a syscall while
// nobody sleeps. Bits, not a count: the bit of a process that died asleep is cleared when its
// entry is taken over, so a crash cannot leave every later publish paying for a wake-up.
struct alignas(kSpacing) NotificationState {
  std::atomic<std::uint32_t> futex_word;
  std::atomic<std::uint32_t> producer_sleepers;  // bit p: producer entry p sleeps here
  std::atomic<std::uint64_t> consumer_sleepers;  // bit i: consumer entry i sleeps here
  std::uint8_t reserved[kSpacing - 16];
};

// One producer process's liveness record (multi-producer rings use several).
struct alignas(kCacheLine) ProducerEntryState {
  std::atomic<std::int64_t> pid;  // 0 when free
  std::atomic<std::uint64_t> start_time;
  std::atomic<std::int64_t> claim_lo;  // claimed, not yet published range (multi-producer)
  std::atomic<std::int64_t> claim_hi;
  std::uint8_t reserved[kCacheLine - 32];
};

struct ProducerState {
  // The producer's published sequence. SYNC POINT: its release store after writing the slots
  // pairs with every barrier's acquire load; a consumer never reads a slot past it.
  alignas(kSpacing) std::atomic<std::int64_t> cursor;
  std::uint8_t pad_cursor[kSpacing - 8];
  // Multi-producer claim counter (fetch-add); unused by the single-producer sequencer.
  alignas(kSpacing) std::atomic<std::int64_t> claim;
  std::uint8_t pad_claim[kSpacing - 8];
  // Bit i set: consumer entry i gates the producer. Written on join/leave under the registry
  // lock (seq_cst RMW), read by the producer after its StoreLoad fence.
  alignas(kSpacing) std::atomic<std::uint64_t> gating_mask;
  // pid of the process holding the registry lock (0: free); stolen only from a dead holder.
  std::atomic<std::int64_t> registry_lock;
  std::uint8_t pad_gating[kSpacing - 16];
  NotificationState cursor_notification;  // consumers waiting for the cursor
  NotificationState gating_notification;  // producers waiting for the slowest consumer
  // Control line: ring status and the single producer's identity and wait strategy.
  alignas(kSpacing) std::atomic<std::uint32_t> ring_status;  // RingStatus
  std::atomic<std::uint32_t> producer_wait_kind;
  std::atomic<std::int64_t> producer_pid;  // 0: no producer attached
  std::atomic<std::uint64_t> producer_start_time;
  std::atomic<std::uint64_t> producer_generation;  // bumped by every attach
  std::atomic<std::int64_t> closed_at_sequence;    // cursor when closed
  std::uint8_t pad_control[kSpacing - 40];
  std::uint8_t reserved[1024 - 6 * kSpacing];
  ProducerEntryState producers[kMaxProducers];
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
  std::uint8_t pad_hot[kSpacing - 32];
  NotificationState notification;  // 128: stages waiting on this one (blocking waits)
  // Cold part, 256..639: written under the registry lock while the entry is joining.
  std::atomic<std::uint32_t> status;      // 256: ConsumerStatus
  std::atomic<std::uint32_t> generation;  // 260: bumped by every registration
  std::uint32_t name_length;              // 264
  std::uint32_t after_count;              // 268
  char name[kMaxNameLength];              // 272
  std::atomic<std::int64_t> pid;          // 336
  std::atomic<std::uint64_t> start_time;  // 344
  std::int32_t after[kMaxAfter];          // 352: indices of the entries this one runs after
  std::uint32_t after_generation[kMaxAfter];  // 384: each upstream's generation at join
  // Wait strategy (WaitParams), re-read by the consumer's barrier while it waits, so a retune
  // written from another process takes effect at its next wait.
  std::atomic<std::uint32_t> wait_kind;              // 416
  std::atomic<std::uint32_t> wait_spin_tries;        // 420
  std::atomic<std::uint32_t> wait_yield_tries;       // 424
  std::atomic<std::uint32_t> wait_config_version;    // 428: bumped by every retune
  std::atomic<std::uint32_t> wait_fallback_kind;     // 432: phased backoff's last phase
  std::uint32_t reserved1;                           // 436
  std::atomic<std::int64_t> wait_sleep_ceiling_ns;   // 440
  std::atomic<std::int64_t> wait_timeout_ns;         // 448
  std::atomic<std::int64_t> wait_phase_spin_ns;      // 456
  std::atomic<std::int64_t> wait_phase_yield_ns;     // 464
  std::atomic<std::uint32_t> stall_policy;           // 472: StallPolicy
  std::uint32_t reserved2;                           // 476
  std::atomic<std::int64_t> max_lag;                 // 480: slow-consumer limit, 0 = none
  std::atomic<std::int64_t> max_lag_ns;              // 488
  std::atomic<std::int64_t> join_sequence;           // 496
  std::atomic<std::int64_t> registered_at_unix_ns;   // 504
  std::atomic<std::uint64_t> evictions;              // 512
  std::atomic<std::uint64_t> missed;                 // 520
  // Handler failures (a processor's error policy counted them: skipped events, retried
  // batches, the failure that stopped the stage). Relaxed: a counter for the inspector.
  std::atomic<std::uint64_t> handler_errors;         // 528
  std::uint8_t reserved[640 - 536];                  // 536
};

inline constexpr std::uint64_t kProducerOffset = sizeof(RingHeaderState);
inline constexpr std::uint64_t kConsumerTableOffset = kProducerOffset + 2048;
inline constexpr std::uint64_t kConsumerStateSize = 640;
inline constexpr std::uint64_t kConsumerTableEnd =
    kConsumerTableOffset + kMaxConsumers * kConsumerStateSize;

// --- The layout is an ABI: pin it. ---------------------------------------------------------
template <typename T>
inline constexpr bool kSharedSafe =
    std::is_standard_layout_v<T> && std::is_trivially_destructible_v<T>;

static_assert(kSharedSafe<RingHeaderState> && kSharedSafe<ProducerState> &&
              kSharedSafe<ConsumerState> && kSharedSafe<NotificationState>);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::int32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::int64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4);
static_assert(sizeof(std::atomic<std::int32_t>) == 4);  // availability marks: int32 per slot

static_assert(sizeof(RingHeaderState) == 4096);
static_assert(offsetof(RingHeaderState, layout_version) == 8);
static_assert(offsetof(RingHeaderState, capacity) == 24);
static_assert(offsetof(RingHeaderState, ring_name) == 120);
static_assert(offsetof(RingHeaderState, schema) == 1024);

static_assert(sizeof(NotificationState) == kSpacing);
static_assert(sizeof(ProducerEntryState) == kCacheLine);
static_assert(sizeof(ProducerState) == 2048);
static_assert(offsetof(ProducerState, cursor) == 0);
static_assert(offsetof(ProducerState, claim) == 128);
static_assert(offsetof(ProducerState, gating_mask) == 256);
static_assert(offsetof(ProducerState, cursor_notification) == 384);
static_assert(offsetof(ProducerState, gating_notification) == 512);
static_assert(offsetof(ProducerState, ring_status) == 640);
static_assert(offsetof(ProducerState, producers) == 1024);
static_assert(alignof(ProducerState) == kSpacing);

static_assert(sizeof(ConsumerState) == kConsumerStateSize);
static_assert(alignof(ConsumerState) == kSpacing);
static_assert(offsetof(ConsumerState, sequence) == 0);
static_assert(offsetof(ConsumerState, notification) == 128);
static_assert(offsetof(ConsumerState, status) == 256);
static_assert(offsetof(ConsumerState, name) == 272);
static_assert(offsetof(ConsumerState, after) == 352);
static_assert(offsetof(ConsumerState, after_generation) == 384);
static_assert(offsetof(ConsumerState, wait_kind) == 416);
static_assert(offsetof(ConsumerState, wait_phase_yield_ns) == 464);
static_assert(offsetof(ConsumerState, missed) == 520);
static_assert(kMaxConsumers <= 64, "the gating mask is one 64-bit word");

}  // namespace xdisruptor

#endif  // XDISRUPTOR_LAYOUT_H_
