// xdisruptor/ring_segment.h — create, attach, validate and remove a named ring segment.
//
// A RingSegment is this process's mapping of one ring: the header, the producer state, the
// consumer table and the slots. Create/Attach/Remove may be called from any thread; a
// RingSegment is movable, not copyable, and unmaps on destruction (the segment itself stays
// until Remove). Attaching validates everything it reads before use, so a stale, truncated or
// foreign segment yields a clear absl::Status, never a crash.
#ifndef XDISRUPTOR_RING_SEGMENT_H_
#define XDISRUPTOR_RING_SEGMENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/interprocess/mapped_region.hpp"
#include "xdisruptor/layout.h"

namespace xdisruptor {

inline constexpr std::uint32_t kDefaultLatencySampleEvery = 1024;
inline constexpr std::uint32_t kMaxFlightEvents = 1024;

struct RingOptions {
  std::string name{};             // letters, digits, '.', '_', '-'; 1..64 characters
  std::uint64_t capacity = 1024;  // slots, a power of two
  std::uint32_t slot_size = 0;    // bytes, a multiple of 8; 0: 64, or sizeof(T) in Ring<T>
  std::string schema{};           // numpy-style field text; empty for raw bytes
  SequencerKind sequencer = SequencerKind::kSingleProducer;
  std::uint32_t mode = 0600;      // permission bits of the segment, exactly (no umask)
  std::string group{};            // group of the segment (a name or a number); empty: ours
  // Observability (docs/operations.md). The producer stamps the publish time of every Nth
  // sequence (N a power of two; 0: no latency histograms); a default N of 1024 costs one clock
  // read per 1024 events.
  std::uint32_t latency_sample_every = kDefaultLatencySampleEvery;
  // Flight records (flight.h): written when a consumer is evicted or a producer has waited on
  // the full ring this long (zero: only on eviction), into `flight_dir` (empty: the
  // XDISRUPTOR_FLIGHT_DIR environment variable of the writing process, else
  // /tmp/xdisruptor-flight), each with `flight_events` events around the stuck sequence.
  absl::Duration flight_wait = absl::Seconds(1);
  std::string flight_dir{};
  std::uint32_t flight_events = 16;
};

inline constexpr std::uint32_t kDefaultSlotSize = 64;

struct AttachOptions {
  // How long to wait for a creator that is still initialising the segment.
  absl::Duration creation_timeout = absl::Seconds(2);
  // Map the segment read-only: for monitors (stat, ls, metrics) that need only read access
  // to it. Nothing may be written through such a RingSegment (no producer, no consumer).
  bool read_only = false;
};

struct RemoveOptions {
  // Remove even a file that is not a ring, or a ring that other processes still map (they
  // keep working on their mapping; nobody can attach to the name any more).
  bool force = false;
};

// Offsets of every region for a given geometry (deterministic: attach recomputes and compares).
struct SegmentLayout {
  std::uint64_t producer_offset = 0;
  std::uint64_t consumer_table_offset = 0;
  std::uint64_t stamps_offset = 0;
  std::uint64_t availability_offset = 0;
  std::uint64_t slots_offset = 0;
  std::uint64_t segment_size = 0;
};
absl::StatusOr<SegmentLayout> ComputeLayout(std::uint64_t capacity, std::uint32_t slot_size,
                                            SequencerKind kind);

// The geometry of a ring as validated once; a RingSegment is built from it alone.
struct HeaderSnapshot {
  std::uint64_t capacity = 0;
  std::uint32_t slot_size = 0;
  SequencerKind kind = SequencerKind::kSingleProducer;
  std::string schema;
  std::uint32_t latency_sample_every = 0;
  SegmentLayout layout;
};

// Checks a ring or consumer name: letters, digits, '.', '_', '-', 1..64 characters, not all dots.
absl::Status ValidateName(std::string_view name, std::string_view what);

// Validates a complete mapped image of `size` bytes: header, geometry, schema and consumer
// table. Pure: reads only [base, base + size). Attach runs it; the fuzz target feeds it.
absl::Status ValidateImage(const std::byte* base, std::size_t size);

class RingSegment {
 public:
  static absl::StatusOr<RingSegment> Create(const RingOptions& options);
  static absl::StatusOr<RingSegment> Attach(std::string_view name,
                                            const AttachOptions& options = {});
  // Removes the name of a ring. Refuses (FailedPrecondition) a file that is not a ring, and a
  // ring that other processes still map, naming them, unless `force`; processes that map a
  // removed segment keep working on their mapping.
  static absl::Status Remove(std::string_view name, const RemoveOptions& options = {});
  // True when a regular file of that name is in /dev/shm (never opens it).
  static bool Exists(std::string_view name);
  // True when `name` is a regular file that starts with a ring's magic (opened read-only and
  // non-blocking; a file this process may not read is not known to be a ring: false).
  static bool IsRing(std::string_view name);
  // Processes other than this one that map the ring now (from /proc).
  static std::vector<std::int64_t> MappingProcesses(std::string_view name);

  RingSegment(RingSegment&&) noexcept = default;
  RingSegment& operator=(RingSegment&&) noexcept = default;
  RingSegment(const RingSegment&) = delete;
  RingSegment& operator=(const RingSegment&) = delete;

  std::string_view name() const { return name_; }
  std::uint64_t capacity() const { return capacity_; }
  std::uint32_t slot_size() const { return slot_size_; }
  SequencerKind sequencer_kind() const { return kind_; }
  std::string_view schema() const { return schema_; }
  // Mapped read-only (AttachOptions::read_only): only loads are allowed.
  bool read_only() const { return read_only_; }
  // FailedPrecondition when mapped read-only: `action` ("register a consumer") needs writes.
  absl::Status CheckWritable(std::string_view action) const;

  RingHeaderState& header() const { return *reinterpret_cast<RingHeaderState*>(base_); }
  ProducerState& producer() const { return *producer_; }
  ConsumerState& consumer(std::size_t index) const { return consumers_[index]; }

  // The slot that holds `sequence`. Hot path: one mask, one multiply, no checks.
  std::byte* slot(std::int64_t sequence) const {
    return slots_ + (static_cast<std::uint64_t>(sequence) & mask_) * slot_size_;
  }
  std::span<std::byte> slot_bytes(std::int64_t sequence) const {
    return {slot(sequence), slot_size_};
  }

  // Multi-producer rings: the availability marks, one int32 per slot (null for a single
  // producer). Read and written through Availability (internal/availability.h) only.
  std::atomic<std::int32_t>* availability_marks() const { return availability_; }
  int index_shift() const { return index_shift_; }  // log2(capacity)
  bool multi_producer() const { return availability_ != nullptr; }

  // The latency stamp table (latency.h) and its sampling period (0: no sampling).
  StampState* stamps() const { return stamps_; }
  std::uint32_t latency_sample_every() const { return latency_sample_every_; }

 private:
  RingSegment(boost::interprocess::mapped_region region, std::string name,
              const HeaderSnapshot& validated);

  boost::interprocess::mapped_region region_;
  std::string name_;
  std::string schema_;
  std::byte* base_ = nullptr;
  ProducerState* producer_ = nullptr;
  ConsumerState* consumers_ = nullptr;
  std::byte* slots_ = nullptr;
  std::atomic<std::int32_t>* availability_ = nullptr;
  StampState* stamps_ = nullptr;
  std::uint32_t latency_sample_every_ = 0;
  int index_shift_ = 0;
  std::uint64_t capacity_ = 0;
  std::uint64_t mask_ = 0;
  std::uint32_t slot_size_ = 0;
  SequencerKind kind_ = SequencerKind::kSingleProducer;
  bool read_only_ = false;
};

}  // namespace xdisruptor

#endif  // XDISRUPTOR_RING_SEGMENT_H_
