#include "xdisruptor/ring_segment.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/segment_file.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/process.h"
#include "xdisruptor/schema.h"

namespace xdisruptor {
namespace bip = boost::interprocess;
namespace {

constexpr std::uint64_t kPage = 4096;

std::uint64_t AlignUp(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

absl::Status ValidateConsumerTable(const std::byte* base) {
  const auto* table = reinterpret_cast<const ConsumerState*>(base + kConsumerTableOffset);
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = table[i];
    const auto status = static_cast<std::uint32_t>(c.status.load(std::memory_order_relaxed));
    if (status >= kConsumerStatusCount ||
        c.name_length > kMaxNameLength || c.after_count > kMaxAfter) {
      return absl::DataLossError(absl::StrFormat(
          "consumer entry %d is corrupt (status %d, name length %d, %d upstreams); remove and "
          "recreate the ring",
          i, status, c.name_length, c.after_count));
    }
    for (std::uint32_t k = 0; k < c.after_count; ++k) {
      if (c.after[k] < 0 || static_cast<std::size_t>(c.after[k]) >= kMaxConsumers) {
        return absl::DataLossError(absl::StrFormat(
            "consumer entry %d runs after entry %d, which does not exist", i, c.after[k]));
      }
    }
  }
  return absl::OkStatus();
}

// The producer block and the gating sequences, read live (acquire) and checked for what no
// run of the library can leave behind; garbage here would hang a producer with nobody to blame.
// Sequences are read before the cursor (which only grows), and a gap wider than any claim
// allows is read again, so a running stream never fails the check.
absl::Status ValidateProducerState(const std::byte* base, std::uint64_t capacity,
                                   SequencerKind kind) {
  const auto& p = *reinterpret_cast<const ProducerState*>(base + kProducerOffset);
  const auto* table = reinterpret_cast<const ConsumerState*>(base + kConsumerTableOffset);
  const auto status = static_cast<std::uint32_t>(p.ring_status.load(std::memory_order_acquire));
  if (status > static_cast<std::uint32_t>(RingStatus::kClosed) ||
      p.registry_lock.load(std::memory_order_relaxed) < 0) {
    return absl::DataLossError(absl::StrFormat(
        "the producer block is corrupt (ring status %d); remove and recreate the ring", status));
  }
  const std::size_t producers = kind == SequencerKind::kSingleProducer ? 1 : kMaxProducers;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    const ProducerEntryState& e = p.producers[i];
    const std::int64_t pid = e.owner.pid.load(std::memory_order_acquire);
    const std::int64_t lo = e.claim_lo.load(std::memory_order_relaxed);
    const std::int64_t hi = e.claim_hi.load(std::memory_order_relaxed);
    if (pid < 0 || (pid != 0 && i >= producers) || lo < -2 || (lo >= 0 && hi < lo)) {
      return absl::DataLossError(absl::StrFormat(
          "producer entry %d is corrupt (pid %d, claim %d..%d); remove and recreate the ring",
          i, pid, lo, hi));
    }
  }
  // How far the cursor may run ahead of a gating consumer: a lap, plus (several producers)
  // a claim per producer waiting for room.
  const std::uint64_t reach = capacity * (1 + (kind == SequencerKind::kSingleProducer ? 0
                                                                                       : kMaxProducers));
  const std::uint64_t mask = p.gating_mask.load(std::memory_order_acquire);
  for (std::uint64_t m = mask; m != 0; m &= m - 1) {
    const ConsumerState& c = table[std::countr_zero(m)];
    // A join from a journal in flight (FinishCatchUp, which takes the bit back if the ring is
    // past it) or left so by a joiner that died: RepairTable clears the latter.
    if (c.observer.load(std::memory_order_relaxed) == kCatchingUpMode) continue;
    std::int64_t sequence = c.sequence.load(std::memory_order_acquire);
    const std::int64_t cursor = p.cursor.load(std::memory_order_acquire);
    if (sequence < kInitialSequence || sequence > cursor) {
      return absl::DataLossError(absl::StrFormat(
          "consumer entry %d is at sequence %d but the cursor is %d; remove and recreate the ring",
          std::countr_zero(m), sequence, cursor));
    }
    if (static_cast<std::uint64_t>(cursor - sequence) > reach &&
        static_cast<std::uint64_t>(cursor - (sequence = c.sequence.load(
                                                 std::memory_order_acquire))) > reach) {
      return absl::DataLossError(absl::StrFormat(
          "the cursor %d is more than a lap past gating consumer entry %d (at %d); the producer "
          "block is corrupt: remove and recreate the ring",
          cursor, std::countr_zero(m), sequence));
    }
  }
  if (p.cursor.load(std::memory_order_acquire) < kInitialSequence) {
    return absl::DataLossError("the ring's cursor is corrupt (below -1); remove and recreate it");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SegmentLayout> ComputeLayout(std::uint64_t capacity, std::uint32_t slot_size,
                                            SequencerKind kind) {
  if (capacity == 0 || (capacity & (capacity - 1)) != 0 || capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "capacity %d is not a power of two between 1 and %d", capacity, kMaxCapacity));
  }
  if (slot_size == 0 || slot_size % 8 != 0 || slot_size > kMaxSlotSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "slot size %d is not a multiple of 8 between 8 and %d bytes", slot_size, kMaxSlotSize));
  }
  if (kind != SequencerKind::kSingleProducer && kind != SequencerKind::kMultiProducer) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown sequencer kind %d", static_cast<std::uint32_t>(kind)));
  }
  SegmentLayout layout;
  layout.producer_offset = kProducerOffset;
  layout.consumer_table_offset = kConsumerTableOffset;
  layout.stamps_offset = kStampTableOffset;
  std::uint64_t end = kStampTableEnd;
  if (kind == SequencerKind::kMultiProducer) {
    layout.availability_offset = end;
    end = AlignUp(end + capacity * sizeof(std::int32_t), kSpacing);
  }
  layout.slots_offset = AlignUp(end, kPage);
  const std::uint64_t slot_bytes = capacity * slot_size;  // both bounded: no overflow
  if (slot_bytes > (std::uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "capacity %d x slot size %d is %d bytes, more than 1 TiB", capacity, slot_size,
        slot_bytes));
  }
  layout.segment_size = layout.slots_offset + slot_bytes;
  return layout;
}

absl::Status ValidateName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s name '%s' must have 1 to %d characters", what, name, kMaxNameLength));
  }
  bool all_dots = true;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s name '%s' may hold only letters, digits, '.', '_' and '-'", what, name));
    }
    all_dots = all_dots && c == '.';
  }
  if (all_dots) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s name '%s' cannot be only dots", what, name));
  }
  return absl::OkStatus();
}

namespace {

// The observability settings a header may hold (RingOptions documents them).
absl::Status ValidateObservability(std::uint32_t sample_every, std::uint32_t flight_events,
                                   std::size_t flight_dir_length) {
  if ((sample_every & (sample_every - 1)) != 0 || sample_every > (1u << 30)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "latency_sample_every %d is not 0 (off) or a power of two up to 2^30", sample_every));
  }
  if (flight_events > kMaxFlightEvents) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "flight_events %d is more than %d", flight_events, kMaxFlightEvents));
  }
  if (flight_dir_length >= kMaxFlightPath) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "flight_dir is %d bytes; at most %d", flight_dir_length, kMaxFlightPath - 1));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HeaderSnapshot> ValidateAndSnapshot(const std::byte* base, std::size_t size) {
  if (size < sizeof(RingHeaderState)) {
    return absl::DataLossError(absl::StrFormat(
        "segment is %d bytes, smaller than a ring header (%d); it is truncated or not an "
        "xdisruptor ring",
        size, sizeof(RingHeaderState)));
  }
  // Validate a private copy: another process may write the header while we look at it, and
  // what we check must be what we use.
  alignas(RingHeaderState) std::byte copy[sizeof(RingHeaderState)];
  std::memcpy(copy, base, sizeof(copy));
  const auto& h = *reinterpret_cast<const RingHeaderState*>(copy);
  if (h.magic != kMagic) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "segment is not an xdisruptor ring (magic %#x, expected %#x)", h.magic, kMagic));
  }
  // SYNC POINT: pairs with the creator's release store of the version, written last.
  const std::uint32_t version = h.layout_version.load(std::memory_order_acquire);
  if (version != kLayoutVersion || h.header_size != sizeof(RingHeaderState)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ring has layout version %d (header %d bytes); this library reads version %d (header "
        "%d bytes): rebuild the producer and consumers against one release",
        version, h.header_size, kLayoutVersion, sizeof(RingHeaderState)));
  }
  if (h.max_consumers != kMaxConsumers) {
    return absl::DataLossError(
        absl::StrFormat("ring header claims %d consumer entries, expected %d", h.max_consumers,
                        kMaxConsumers));
  }
  auto layout = ComputeLayout(h.capacity, h.slot_size, h.sequencer_kind);
  if (!layout.ok()) {
    return absl::DataLossError(
        absl::StrCat("ring header is corrupt: ", layout.status().message()));
  }
  if (h.producer_offset != layout->producer_offset ||
      h.consumer_table_offset != layout->consumer_table_offset ||
      h.availability_offset != layout->availability_offset ||
      h.stamps_offset != layout->stamps_offset || h.slots_offset != layout->slots_offset ||
      h.segment_size != layout->segment_size) {
    return absl::DataLossError(
        "ring header is corrupt: its region offsets do not match its capacity and slot size");
  }
  if (size < h.segment_size) {
    return absl::DataLossError(absl::StrFormat(
        "segment is %d bytes but its header needs %d; it was truncated: remove and recreate it",
        size, h.segment_size));
  }
  if (h.schema_length > kMaxSchemaLength || h.ring_name_length > kMaxNameLength) {
    return absl::DataLossError("ring header is corrupt: schema or name length out of range");
  }
  const std::string_view schema(h.schema, h.schema_length);
  if (SchemaHash(schema) != h.schema_hash) {
    return absl::DataLossError("ring header is corrupt: the schema text does not match its hash");
  }
  auto parsed = ParseSchema(schema);
  if (!parsed.ok()) {
    return absl::DataLossError(
        absl::StrCat("ring header holds an invalid schema: ", parsed.status().message()));
  }
  if (parsed->itemsize > h.slot_size) {
    return absl::DataLossError(absl::StrFormat(
        "ring header is corrupt: its schema needs %d bytes but slots have %d", parsed->itemsize,
        h.slot_size));
  }
  if (absl::Status s = ValidateObservability(h.latency_sample_every, h.flight_events,
                                             h.flight_dir_length);
      !s.ok()) {
    return absl::DataLossError(absl::StrCat("ring header is corrupt: ", s.message()));
  }
  if (absl::Status s = ValidateConsumerTable(base); !s.ok()) return s;
  if (absl::Status s = ValidateProducerState(base, h.capacity, h.sequencer_kind); !s.ok()) {
    return s;
  }
  HeaderSnapshot snapshot;
  snapshot.capacity = h.capacity;
  snapshot.slot_size = h.slot_size;
  snapshot.kind = h.sequencer_kind;
  snapshot.schema = std::string(schema);
  snapshot.latency_sample_every = h.latency_sample_every;
  snapshot.layout = *layout;
  return snapshot;
}

absl::Status ValidateImage(const std::byte* base, std::size_t size) {
  return ValidateAndSnapshot(base, size).status();
}

RingSegment::RingSegment(bip::mapped_region region, std::string name,
                         const HeaderSnapshot& validated)
    : region_(std::move(region)), name_(std::move(name)), schema_(validated.schema) {
  // Everything here comes from the validated copy, never from a second read of the segment
  // (a hostile writer could change the header between validation and use).
  base_ = static_cast<std::byte*>(region_.get_address());
  producer_ = reinterpret_cast<ProducerState*>(base_ + kProducerOffset);
  consumers_ = reinterpret_cast<ConsumerState*>(base_ + kConsumerTableOffset);
  slots_ = base_ + validated.layout.slots_offset;
  capacity_ = validated.capacity;
  mask_ = capacity_ - 1;
  index_shift_ = std::countr_zero(capacity_);
  if (validated.layout.availability_offset != 0) {
    availability_ = reinterpret_cast<std::atomic<std::int32_t>*>(
        base_ + validated.layout.availability_offset);
  }
  slot_size_ = validated.slot_size;
  kind_ = validated.kind;
  stamps_ = reinterpret_cast<StampState*>(base_ + validated.layout.stamps_offset);
  latency_sample_every_ = validated.latency_sample_every;
}

absl::StatusOr<RingSegment> RingSegment::Create(const RingOptions& requested) {
  RingOptions options = requested;
  if (options.slot_size == 0) options.slot_size = kDefaultSlotSize;
  if (absl::Status s = ValidateName(options.name, "ring"); !s.ok()) return s;
  auto layout = ComputeLayout(options.capacity, options.slot_size, options.sequencer);
  if (!layout.ok()) return layout.status();
  auto schema = ParseSchema(options.schema);
  if (!schema.ok()) return schema.status();
  if (schema->itemsize > options.slot_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "schema needs %d bytes per event but the slot size is %d; raise slot_size",
        schema->itemsize, options.slot_size));
  }
  if (absl::Status s = ValidateObservability(options.latency_sample_every,
                                             options.flight_events, options.flight_dir.size());
      !s.ok()) {
    return s;
  }
  if (options.flight_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("flight_wait must not be negative (zero: off)");
  }
  if (options.mode > 0777) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mode %o is not a set of permission bits (0..0777)", options.mode));
  }
  auto file = internal::CreateSegmentFile(options.name, layout->segment_size, options.mode,
                                          options.group);
  if (!file.ok()) return file.status();
  auto mapped = internal::MapSegmentFile(*file, /*read_only=*/false, options.name);
  if (!mapped.ok()) {
    ::unlink(internal::SegmentPath(options.name).c_str());
    return mapped.status();
  }
  bip::mapped_region region = *std::move(mapped);

  // A fresh segment is zero-filled: fill in what is not zero, then the version last.
  auto* base = static_cast<std::byte*>(region.get_address());
  auto& h = *reinterpret_cast<RingHeaderState*>(base);
  h.magic = kMagic;
  h.header_size = sizeof(RingHeaderState);
  h.segment_size = layout->segment_size;
  h.capacity = options.capacity;
  h.slot_size = options.slot_size;
  h.sequencer_kind = options.sequencer;
  h.max_consumers = kMaxConsumers;
  h.schema_length = static_cast<std::uint32_t>(options.schema.size());
  std::memcpy(h.schema, options.schema.data(), options.schema.size());
  h.schema_hash = SchemaHash(options.schema);
  h.producer_offset = layout->producer_offset;
  h.consumer_table_offset = layout->consumer_table_offset;
  h.availability_offset = layout->availability_offset;
  h.slots_offset = layout->slots_offset;
  h.stamps_offset = layout->stamps_offset;
  h.latency_sample_every = options.latency_sample_every;
  h.flight_events = options.flight_events;
  h.flight_wait_ns = absl::ToInt64Nanoseconds(options.flight_wait);
  h.flight_dir_length = static_cast<std::uint32_t>(options.flight_dir.size());
  std::memcpy(h.flight_dir, options.flight_dir.data(), options.flight_dir.size());
  const ProcessIdentity self = CurrentProcess();
  h.creator_pid = self.pid;
  h.creator_start_time = self.start_time;
  h.created_at_unix_ns = absl::ToUnixNanos(absl::Now());
  h.ring_name_length = static_cast<std::uint32_t>(options.name.size());
  std::memcpy(h.ring_name, options.name.data(), options.name.size());

  auto& p = *reinterpret_cast<ProducerState*>(base + layout->producer_offset);
  p.cursor.store(kInitialSequence, std::memory_order_relaxed);
  p.closed_at_sequence.store(kInitialSequence, std::memory_order_relaxed);
  auto* consumers = reinterpret_cast<ConsumerState*>(base + layout->consumer_table_offset);
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    consumers[i].sequence.store(kInitialSequence, std::memory_order_relaxed);
    consumers[i].join_sequence.store(kInitialSequence, std::memory_order_relaxed);
  }
  auto* stamps = reinterpret_cast<StampState*>(base + layout->stamps_offset);
  for (std::size_t i = 0; i < kStampCount; ++i) {
    stamps[i].sequence.store(kInitialSequence, std::memory_order_relaxed);  // nothing stamped
  }
  if (layout->availability_offset != 0) {
    auto* marks = reinterpret_cast<std::atomic<std::int32_t>*>(base + layout->availability_offset);
    for (std::uint64_t i = 0; i < options.capacity; ++i) {
      marks[i].store(-1, std::memory_order_relaxed);  // no lap published yet
    }
  }
  // SYNC POINT: pairs with ValidateImage's acquire load; every field above is visible to an
  // opener that sees the version.
  h.layout_version.store(kLayoutVersion, std::memory_order_release);
  HeaderSnapshot snapshot;
  snapshot.capacity = options.capacity;
  snapshot.slot_size = options.slot_size;
  snapshot.kind = options.sequencer;
  snapshot.schema = options.schema;
  snapshot.latency_sample_every = options.latency_sample_every;
  snapshot.layout = *layout;
  return RingSegment(std::move(region), options.name, snapshot);
}

absl::StatusOr<RingSegment> RingSegment::Attach(std::string_view name,
                                                const AttachOptions& options) {
  if (absl::Status s = ValidateName(name, "ring"); !s.ok()) return s;
  auto file = internal::OpenSegmentFile(name, options.read_only, "attach to");
  if (!file.ok()) return file.status();
  const absl::Time deadline = absl::Now() + options.creation_timeout;
  for (;;) {
    struct stat st{};
    if (::fstat(file->get(), &st) != 0) {
      return absl::InternalError(absl::StrFormat("cannot stat ring '%s'", name));
    }
    if (static_cast<std::uint64_t>(st.st_size) >= sizeof(RingHeaderState)) {
      auto region = internal::MapSegmentFile(*file, options.read_only, name);
      if (!region.ok()) return region.status();
      const auto* base = static_cast<const std::byte*>(region->get_address());
      const auto& h = *reinterpret_cast<const RingHeaderState*>(base);
      // A creator still filling the header has not written the version yet (and may not
      // have written the magic either); a non-zero foreign magic is final at once.
      const std::uint64_t magic = h.magic;
      if (h.layout_version.load(std::memory_order_acquire) != 0 ||
          (magic != 0 && magic != kMagic)) {
        auto snapshot = ValidateAndSnapshot(base, region->get_size());
        if (!snapshot.ok()) {
          const absl::Status& s = snapshot.status();
          return absl::Status(s.code(), absl::StrFormat("ring '%s': %s", name, s.message()));
        }
        RingSegment ring(*std::move(region), std::string(name), *snapshot);
        ring.read_only_ = options.read_only;
        return ring;
      }
    }
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrFormat(
          "ring '%s' exists but its creator has not finished it after %s (it may have died "
          "while creating it); retry, or remove it and create it again",
          name, absl::FormatDuration(options.creation_timeout)));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

namespace {

// The live processes other than this one registered in ring `name`: its active consumers
// and its producers (an evicted entry keeps its last owner after it left). Empty when the
// ring cannot be read.
std::vector<std::int64_t> RegisteredProcesses(std::string_view name) {
  std::vector<std::int64_t> pids;
  auto ring = RingSegment::Attach(name, {.read_only = true});
  if (!ring.ok()) return pids;
  const std::int64_t self = ::getpid();
  auto add = [&](const OwnerState& owner) {
    const ProcessIdentity who = LoadOwner(owner);
    if (who.pid > 0 && who.pid != self && IsAlive(who) &&
        std::find(pids.begin(), pids.end(), who.pid) == pids.end()) {
      pids.push_back(who.pid);
    }
  };
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const ConsumerState& c = ring->consumer(i);
    if (IsActive(c) || LoadStatus(c) == ConsumerStatus::kJoining) add(c.owner);
  }
  for (const ProducerEntryState& p : ring->producer().producers) add(p.owner);
  return pids;
}

}  // namespace

absl::Status RingSegment::Remove(std::string_view name, const RemoveOptions& options) {
  if (absl::Status s = ValidateName(name, "ring"); !s.ok()) return s;
  auto file = internal::OpenSegmentFile(name, /*read_only=*/true, "remove");
  if (!file.ok()) {
    if (file.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrFormat("no ring named '%s' to remove", name));
    }
    // Not a regular file: a ring is never anything else. Refuse unless forced; a symbolic
    // link or FIFO is removed by name then (unlink never follows or opens it).
    if (!options.force || file.status().code() != absl::StatusCode::kFailedPrecondition) {
      return file.status();
    }
  } else if (!options.force) {
    if (const std::uint64_t magic = internal::ReadMagic(*file); magic != kMagic) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s is not an xdisruptor ring (magic %#x); not removed (force removal to remove it "
          "anyway)",
          internal::SegmentPath(name), magic));
    }
    std::vector<std::int64_t> pids = internal::MappingProcesses(name);
    // /proc shows another user's mappings to root only: the ring's own tables name the
    // processes registered in it (consumers, producers), alive or not, whoever runs this.
    for (const std::int64_t pid : RegisteredProcesses(name)) {
      if (std::find(pids.begin(), pids.end(), pid) == pids.end()) pids.push_back(pid);
    }
    if (!pids.empty()) {
      std::string list;
      for (std::int64_t pid : pids) list += absl::StrFormat("%s%d", list.empty() ? "" : ", ", pid);
      return absl::FailedPreconditionError(absl::StrFormat(
          "ring '%s' is still mapped by process%s %s; stop them first, or force the removal "
          "(they keep working on their mapping, but nobody can attach to the name again)",
          name, pids.size() == 1 ? "" : "es", list));
    }
  }
  if (::unlink(internal::SegmentPath(name).c_str()) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrFormat("no ring named '%s' to remove", name));
    }
    return absl::PermissionDeniedError(absl::StrFormat(
        "cannot remove ring '%s': %s (removing needs write access to /dev/shm and, with its "
        "sticky bit, to own the ring)",
        name, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status RingSegment::CheckWritable(std::string_view action) const {
  if (!read_only_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "ring '%s' is attached read-only; attach it read-write to %s", name_, action));
}

bool RingSegment::Exists(std::string_view name) {
  if (!ValidateName(name, "ring").ok()) return false;
  struct stat st{};
  return ::lstat(internal::SegmentPath(name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool RingSegment::IsRing(std::string_view name) {
  if (!ValidateName(name, "ring").ok()) return false;
  auto file = internal::OpenSegmentFile(name, /*read_only=*/true, "inspect");
  return file.ok() && internal::ReadMagic(*file) == kMagic;
}

std::vector<std::int64_t> RingSegment::MappingProcesses(std::string_view name) {
  return internal::MappingProcesses(name);
}

}  // namespace xdisruptor
