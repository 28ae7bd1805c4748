// JournalWriter: appends batches to segments, cuts a torn tail at open, applies retention.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/files.h"
#include "xdisruptor/journal.h"
#include "xdisruptor/schema.h"

namespace xdisruptor {

using journal::IndexRecord;
using journal::SegmentHeader;

struct JournalWriter::State {
  JournalOptions options;
  std::string schema;
  std::uint32_t slot_size = 0;
  std::string ring_name;
  std::int64_t ring_epoch = 0;
  int lock_fd = -1;
  // The segment being written.
  std::int64_t seg_first = 0;
  std::string data_path, index_path;
  int data_fd = -1, index_fd = -1;
  std::int64_t seg_events = 0;
  std::int64_t seg_records = 0;
  std::int64_t seg_capacity = 0;  // events
  bool empty = true;
  std::int64_t first = 0;
  std::int64_t last = -1;
  bool dirty = false;
  std::int64_t cut_bytes = 0;

  ~State() {
    CloseSegment();
    if (lock_fd >= 0) ::close(lock_fd);
  }
  void CloseSegment() {
    if (data_fd >= 0) ::close(data_fd);
    if (index_fd >= 0) ::close(index_fd);
    data_fd = index_fd = -1;
  }
  std::int64_t CapacityEvents() const {
    return std::max<std::int64_t>(1, options.segment_bytes / slot_size);
  }
  absl::Status SyncDirectory() {
    const int fd = ::open(options.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return journal::ErrnoStatus(errno, "open", options.directory);
    const int r = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    return r == 0 ? absl::OkStatus() : journal::ErrnoStatus(error, "sync", options.directory);
  }

  // Starts segment `first` (its files must not exist).
  absl::Status CreateSegment(std::int64_t first_sequence) {
    CloseSegment();
    seg_first = first_sequence;
    data_path = options.directory + "/" + journal::SegmentFileName(first_sequence,
                                                                   journal::kDataSuffix);
    index_path = options.directory + "/" + journal::SegmentFileName(first_sequence,
                                                                    journal::kIndexSuffix);
    seg_capacity = CapacityEvents();
    SegmentHeader h{};
    h.magic = journal::kMagic;
    h.version = journal::kVersion;
    h.header_size = journal::kHeaderSize;
    h.slot_size = slot_size;
    h.schema_length = static_cast<std::uint32_t>(schema.size());
    h.first_sequence = first_sequence;
    h.schema_hash = SchemaHash(schema);
    h.created_unix_ns = absl::ToUnixNanos(absl::Now());
    h.capacity_bytes = static_cast<std::uint64_t>(seg_capacity) * slot_size;
    std::memcpy(h.ring, ring_name.data(), std::min(ring_name.size(), sizeof(h.ring) - 1));
    h.ring_epoch = ring_epoch;
    std::memcpy(h.schema, schema.data(), schema.size());
    h.header_check = journal::HeaderCheck(h);
    // The index first: a data file without one is a segment cut before its first batch.
    index_fd = ::open(index_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (index_fd < 0) return journal::ErrnoStatus(errno, "create", index_path);
    data_fd = ::open(data_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (data_fd < 0) return journal::ErrnoStatus(errno, "create", data_path);
    if (absl::Status s = journal::WriteAt(data_fd, &h, sizeof(h), 0, data_path); !s.ok()) {
      return s;
    }
    seg_events = 0;
    seg_records = 0;
    if (options.fsync != FsyncPolicy::kNone) {
      if (::fdatasync(data_fd) != 0) return journal::ErrnoStatus(errno, "sync", data_path);
      return SyncDirectory();
    }
    return absl::OkStatus();
  }

  // Opens the existing last segment for appending, cutting whatever follows its last valid
  // batch (a recorder killed mid-write).
  absl::Status ResumeSegment(const journal::SegmentFiles& files, const SegmentHeader& h,
                             std::int64_t* last_out) {
    seg_first = files.first;
    data_path = files.data;
    index_path = files.index;
    seg_capacity = static_cast<std::int64_t>(h.capacity_bytes / slot_size);
    data_fd = ::open(data_path.c_str(), O_RDWR | O_CLOEXEC);
    if (data_fd < 0) return journal::ErrnoStatus(errno, "open", data_path);
    index_fd = ::open(index_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (index_fd < 0) return journal::ErrnoStatus(errno, "open", index_path);
    struct stat data_st {}, index_st{};
    if (::fstat(data_fd, &data_st) != 0 || ::fstat(index_fd, &index_st) != 0) {
      return journal::ErrnoStatus(errno, "stat", data_path);
    }
    const auto data_size = static_cast<std::uint64_t>(data_st.st_size);
    std::int64_t expected = files.first;
    std::int64_t records = 0;
    std::vector<std::byte> batch;
    for (off_t off = 0; off + 32 <= index_st.st_size; off += 32) {
      IndexRecord r{};
      auto got = journal::ReadAt(index_fd, &r, sizeof(r), off, index_path);
      if (!got.ok()) return got.status();
      if (*got < sizeof(r) || r.self_check != journal::RecordCheck(r) || r.first != expected ||
          r.last < r.first || r.last - files.first >= seg_capacity) {
        break;
      }
      const std::uint64_t offset =
          journal::kHeaderSize + static_cast<std::uint64_t>(r.first - files.first) * slot_size;
      const std::uint64_t bytes = static_cast<std::uint64_t>(r.last - r.first + 1) * slot_size;
      if (offset + bytes > data_size) break;
      batch.resize(bytes);
      auto read = journal::ReadAt(data_fd, batch.data(), bytes, static_cast<off_t>(offset),
                                  data_path);
      if (!read.ok()) return read.status();
      if (*read < bytes || journal::Checksum(batch.data(), bytes) != r.checksum) break;
      expected = r.last + 1;
      ++records;
    }
    seg_records = records;
    seg_events = expected - files.first;
    const std::uint64_t keep_data =
        journal::kHeaderSize + static_cast<std::uint64_t>(seg_events) * slot_size;
    cut_bytes += static_cast<std::int64_t>(data_size > keep_data ? data_size - keep_data : 0) +
                 static_cast<std::int64_t>(index_st.st_size) - records * 32;
    if (::ftruncate(data_fd, static_cast<off_t>(keep_data)) != 0 ||
        ::ftruncate(index_fd, static_cast<off_t>(records * 32)) != 0) {
      return journal::ErrnoStatus(errno, "cut the torn tail of", data_path);
    }
    *last_out = expected - 1;
    return absl::OkStatus();
  }
};

JournalWriter::JournalWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
JournalWriter::JournalWriter(JournalWriter&&) noexcept = default;
JournalWriter& JournalWriter::operator=(JournalWriter&&) noexcept = default;
JournalWriter::~JournalWriter() = default;

namespace {

std::string SchemaMismatch(std::string_view directory, std::string_view journal_schema,
                           std::uint32_t journal_slot, std::string_view schema,
                           std::uint32_t slot_size) {
  return absl::StrFormat(
      "journal '%s' holds events of schema '%s' (%d-byte slots), not '%s' (%d-byte slots); "
      "use another directory for this stream",
      directory, journal_schema, journal_slot, schema, slot_size);
}

absl::Status ValidateOptions(const JournalOptions& o) {
  if (o.directory.empty()) return absl::InvalidArgumentError("journal: no directory given");
  if (o.segment_bytes < 64 || o.segment_bytes > (1ll << 40)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "journal: segment bytes must be from 64 to 2^40, not %d", o.segment_bytes));
  }
  if (o.retain_bytes < 0 || o.retain_ns < 0 ||
      (o.fsync == FsyncPolicy::kInterval && o.fsync_interval_ns <= 0)) {
    return absl::InvalidArgumentError(
        "journal: retention limits must be >= 0 and an fsync interval > 0");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JournalWriter> JournalWriter::Open(const JournalOptions& options,
                                                  std::string_view schema,
                                                  std::uint32_t slot_size,
                                                  std::string_view ring_name,
                                                  std::int64_t ring_epoch) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (schema.size() > journal::kMaxSchema) {
    return absl::InvalidArgumentError("journal: the schema text is too long");
  }
  auto state = std::make_unique<State>();
  state->options = options;
  state->schema = std::string(schema);
  state->slot_size = slot_size;
  state->ring_name = std::string(ring_name);
  state->ring_epoch = ring_epoch;
  std::error_code ec;
  std::filesystem::create_directories(options.directory, ec);
  if (ec) {
    return journal::ErrnoStatus(ec.value(), "create the journal directory", options.directory);
  }
  // One writer per directory: a lock held for the writer's life (released by the kernel when
  // its process dies, so a restarted recorder takes over at once).
  const std::string lock_path = options.directory + "/.lock";
  state->lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (state->lock_fd < 0) return journal::ErrnoStatus(errno, "open", lock_path);
  if (::flock(state->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    (void)::pread(state->lock_fd, pid, sizeof(pid) - 1, 0);
    return absl::FailedPreconditionError(absl::StrFormat(
        "journal '%s' is being written by another recorder (process %s); one recorder per "
        "directory",
        options.directory, pid));
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(state->lock_fd, 0) == 0) {
    (void)journal::WriteAt(state->lock_fd, me.data(), me.size(), 0, lock_path);
  }
  auto segments = journal::ListSegments(options.directory);
  if (!segments.ok()) return segments.status();
  // A recorder killed while creating its newest segment leaves a torn header and an empty
  // index: that segment never held anything. Drop it first, so the one before it is the
  // newest and is resumed below (dropping it inside the loop once left the one before
  // unresumed, and the journal taken for empty lost its first segment).
  if (!segments->empty() && journal::TornNewSegment(segments->back())) {
    ::unlink(segments->back().data.c_str());
    ::unlink(segments->back().index.c_str());
    segments->pop_back();
  }
  // Every segment must carry our schema; the last one is resumed.
  for (std::size_t i = 0; i < segments->size(); ++i) {
    const journal::SegmentFiles& files = (*segments)[i];
    const int fd = ::open(files.data.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return journal::ErrnoStatus(errno, "open", files.data);
    SegmentHeader h{};
    absl::Status s = journal::ReadHeader(fd, files.data, &h);
    ::close(fd);
    const bool last = i + 1 == segments->size();
    if (!s.ok()) return s;
    if (h.slot_size != slot_size || std::string_view(h.schema, h.schema_length) != schema) {
      return absl::FailedPreconditionError(
          SchemaMismatch(options.directory, std::string_view(h.schema, h.schema_length),
                         h.slot_size, schema, slot_size));
    }
    if (h.first_sequence != files.first) {
      return absl::DataLossError(absl::StrFormat(
          "journal segment '%s' says it starts at %d", files.data, h.first_sequence));
    }
    if (last) {
      std::int64_t seg_last = 0;
      if (absl::Status r = state->ResumeSegment(files, h, &seg_last); !r.ok()) return r;
      state->last = seg_last;
    }
  }
  if (!segments->empty()) {
    state->first = segments->front().first;
    state->empty = state->last < state->first;
    if (state->empty) {  // one segment, cut to nothing: start afresh at the first Append
      state->CloseSegment();
      ::unlink(segments->front().data.c_str());
      ::unlink(segments->front().index.c_str());
    }
  }
  return JournalWriter(std::move(state));
}

bool JournalWriter::empty() const { return state_->empty; }
void JournalWriter::set_ring_epoch(std::int64_t ring_epoch) { state_->ring_epoch = ring_epoch; }
std::int64_t JournalWriter::first() const { return state_->first; }
std::int64_t JournalWriter::last() const { return state_->empty ? state_->first - 1 : state_->last; }
std::int64_t JournalWriter::cut_bytes() const { return state_->cut_bytes; }
bool JournalWriter::dirty() const { return state_->dirty; }

absl::Status JournalWriter::Begin(std::int64_t first) {
  State& st = *state_;
  if (!st.empty) return absl::OkStatus();
  if (absl::Status s = st.CreateSegment(first); !s.ok()) return s;
  st.first = first;
  st.last = first - 1;
  st.empty = false;
  return absl::OkStatus();
}

absl::Status JournalWriter::Append(std::int64_t first, const std::byte* data,
                                   std::int64_t count) {
  State& st = *state_;
  if (count <= 0) return absl::OkStatus();
  if (absl::Status s = Begin(first); !s.ok()) return s;
  // A batch already (partly) journaled, as after a full disk or a restart: skip that part.
  if (first <= st.last) {
    const std::int64_t skip = std::min(count, st.last + 1 - first);
    first += skip;
    data += skip * st.slot_size;
    count -= skip;
    if (count == 0) return absl::OkStatus();
  }
  if (first != st.last + 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "journal '%s' ends at %d; cannot append %d (no gaps)", st.options.directory, st.last,
        first));
  }
  while (count > 0) {
    if (st.seg_events == st.seg_capacity) {
      if (st.options.fsync != FsyncPolicy::kNone && st.dirty) {
        if (absl::Status s = Sync(); !s.ok()) return s;
      }
      if (absl::Status s = st.CreateSegment(first); !s.ok()) return s;
    }
    const std::int64_t n = std::min(count, st.seg_capacity - st.seg_events);
    const std::uint64_t bytes = static_cast<std::uint64_t>(n) * st.slot_size;
    const auto offset = static_cast<off_t>(
        journal::kHeaderSize + static_cast<std::uint64_t>(st.seg_events) * st.slot_size);
    if (absl::Status s = journal::WriteAt(st.data_fd, data, bytes, offset, st.data_path);
        !s.ok()) {
      return s;
    }
    IndexRecord r{first, first + n - 1, journal::Checksum(data, bytes), 0};
    r.self_check = journal::RecordCheck(r);
    if (absl::Status s = journal::WriteAt(st.index_fd, &r, sizeof(r),
                                          static_cast<off_t>(st.seg_records * 32), st.index_path);
        !s.ok()) {
      return s;
    }
    st.seg_events += n;
    ++st.seg_records;
    st.last = first + n - 1;
    st.dirty = true;
    first += n;
    data += bytes;
    count -= n;
  }
  return absl::OkStatus();
}

absl::Status JournalWriter::Sync() {
  State& st = *state_;
  if (st.data_fd < 0 || !st.dirty) return absl::OkStatus();
  if (::fdatasync(st.data_fd) != 0) return journal::ErrnoStatus(errno, "sync", st.data_path);
  if (::fdatasync(st.index_fd) != 0) return journal::ErrnoStatus(errno, "sync", st.index_path);
  st.dirty = false;
  return absl::OkStatus();
}

void JournalWriter::ApplyRetention() {
  State& st = *state_;
  if (st.options.retain_bytes <= 0 && st.options.retain_ns <= 0) return;
  auto segments = journal::ListSegments(st.options.directory);
  if (!segments.ok()) return;
  std::uint64_t total = 0;
  std::vector<std::pair<std::uint64_t, std::int64_t>> sizes;  // bytes, modified (unix ns)
  for (const journal::SegmentFiles& f : *segments) {
    struct stat s {};
    if (::stat(f.data.c_str(), &s) != 0) {
      sizes.push_back({0, 0});
      continue;
    }
    const auto bytes = static_cast<std::uint64_t>(s.st_size);
    total += bytes;
    sizes.push_back({bytes, static_cast<std::int64_t>(s.st_mtim.tv_sec) * 1'000'000'000 +
                                s.st_mtim.tv_nsec});
  }
  const std::int64_t now = absl::ToUnixNanos(absl::Now());
  // Oldest first, never the segment being written.
  for (std::size_t i = 0; i + 1 < segments->size(); ++i) {
    const bool too_big = st.options.retain_bytes > 0 &&
                         total > static_cast<std::uint64_t>(st.options.retain_bytes);
    const bool too_old = st.options.retain_ns > 0 && now - sizes[i].second > st.options.retain_ns;
    if (!too_big && !too_old) break;
    // The index first: a reader that lists the segment then sees no batches, not a corrupt one.
    ::unlink((*segments)[i].index.c_str());
    ::unlink((*segments)[i].data.c_str());
    total -= sizes[i].first;
    st.first = (*segments)[i + 1].first;
  }
}

}  // namespace xdisruptor
