// JournalReader: maps segments read-only, follows a recorder that appends (Refresh), verifies
// each batch's checksum the first time it is read.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "internal/files.h"
#include "xdisruptor/journal.h"

namespace xdisruptor {

using journal::IndexRecord;
using journal::SegmentHeader;

namespace {

// A segment's data file mapped read-only over its whole capacity, once: views handed out stay
// valid however the file grows, and after retention unlinks it.
struct Mapping {
  const std::byte* base = nullptr;
  std::size_t length = 0;
  ~Mapping() {
    if (base != nullptr) ::munmap(const_cast<std::byte*>(base), length);
  }
};

struct Segment {
  journal::SegmentFiles files;
  std::shared_ptr<Mapping> map;
  std::vector<IndexRecord> records;
  std::vector<bool> verified;
  off_t index_read = 0;             // bytes of the index read so far
  std::int64_t bad_from = INT64_MAX;  // a corrupt batch starts here (a non-last segment)
  std::string bad_why;
  std::int64_t capacity = 0;  // events
  // The data file mapped (its size is read through the path, which a writer that restarted
  // on an empty journal may have given to a new file: never read past the mapped one's end).
  dev_t device = 0;
  ino_t inode = 0;
  bool replaced = false;      // the path now names another file: open the segment again
  bool complete = false;      // a later segment exists and this index was read after that
  std::int64_t last() const { return records.empty() ? files.first - 1 : records.back().last; }
};

}  // namespace

struct JournalReader::State {
  std::string directory;
  std::string schema;
  std::uint32_t slot_size = 0;
  std::string ring_name;
  std::int64_t ring_epoch = 0;  // the newest segment's
  std::vector<Segment> segments;

  absl::Status Corrupt(const std::string& what) const {
    return absl::DataLossError(absl::StrFormat(
        "journal '%s' is corrupt: %s; run `xdisruptor journal verify %s`", directory, what,
        directory));
  }

  // Opens and maps a new segment, checking its header against the journal's.
  absl::StatusOr<Segment> OpenSegment(const journal::SegmentFiles& files) {
    const int fd = ::open(files.data.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return journal::ErrnoStatus(errno, "open", files.data);
    SegmentHeader h{};
    absl::Status s = journal::ReadHeader(fd, files.data, &h);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
    const std::string_view schema_text(h.schema, h.schema_length);
    if (slot_size == 0) {
      schema = std::string(schema_text);
      slot_size = h.slot_size;
      ring_name = std::string(h.ring, strnlen(h.ring, sizeof(h.ring)));
    } else if (schema_text != schema || h.slot_size != slot_size) {
      ::close(fd);
      return Corrupt(absl::StrFormat("segment '%s' holds schema '%s', the others '%s'",
                                     files.data, schema_text, schema));
    }
    ring_epoch = h.ring_epoch;
    if (h.first_sequence != files.first) {
      ::close(fd);
      return Corrupt(absl::StrFormat("segment '%s' says it starts at %d", files.data,
                                     h.first_sequence));
    }
    Segment seg;
    seg.files = files;
    seg.capacity = static_cast<std::int64_t>(h.capacity_bytes / h.slot_size);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int error = errno;
      ::close(fd);
      return journal::ErrnoStatus(error, "stat", files.data);
    }
    seg.device = st.st_dev;
    seg.inode = st.st_ino;
    auto map = std::make_shared<Mapping>();
    map->length = journal::kHeaderSize + h.capacity_bytes;
    void* addr = ::mmap(nullptr, map->length, PROT_READ, MAP_SHARED, fd, 0);
    const int error = errno;
    ::close(fd);
    if (addr == MAP_FAILED) return journal::ErrnoStatus(error, "map", files.data);
    map->base = static_cast<const std::byte*>(addr);
    seg.map = std::move(map);
    return seg;
  }

  // Reads the index records appended since the last look; a record that is not complete and
  // consistent ends what counts (the writer appends, so only the tail can be torn).
  absl::Status ReadIndex(Segment& seg, bool newest) {
    const int fd = ::open(seg.files.index.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return absl::OkStatus();  // removed by retention, or not yet there
      return journal::ErrnoStatus(errno, "open", seg.files.index);
    }
    struct stat data_st {};
    const bool have_size = ::stat(seg.files.data.c_str(), &data_st) == 0 &&
                           data_st.st_dev == seg.device && data_st.st_ino == seg.inode;
    if (!have_size && data_st.st_ino != 0 && seg.records.empty()) {
      // A writer restarted on a journal cut to nothing made the segment anew: this mapping is
      // of the unlinked file (reading the new file's batches through it would fault).
      seg.replaced = true;
      ::close(fd);
      return absl::OkStatus();
    }
    for (;;) {
      IndexRecord r{};
      auto got = journal::ReadAt(fd, &r, sizeof(r), seg.index_read, seg.files.index);
      if (!got.ok()) {
        ::close(fd);
        return got.status();
      }
      if (*got < sizeof(r)) break;
      const std::int64_t expected = seg.last() + 1;
      const std::uint64_t end =
          journal::kHeaderSize + static_cast<std::uint64_t>(r.last + 1 - seg.files.first) *
                                     slot_size;
      const bool valid = r.self_check == journal::RecordCheck(r) && r.first == expected &&
                         r.last >= r.first && r.last - seg.files.first < seg.capacity &&
                         have_size && end <= static_cast<std::uint64_t>(data_st.st_size);
      if (!valid) {
        if (!newest && seg.bad_from == INT64_MAX) {
          seg.bad_from = expected;
          seg.bad_why = absl::StrFormat("the index of segment '%s' is damaged after %d",
                                        seg.files.index, expected - 1);
        }
        break;
      }
      seg.records.push_back(r);
      seg.verified.push_back(false);
      seg.index_read += static_cast<off_t>(sizeof(r));
    }
    ::close(fd);
    return absl::OkStatus();
  }

  std::int64_t First() const {
    return segments.empty() ? 0 : segments.front().files.first;
  }
  std::int64_t Last() const {
    return segments.empty() ? -1 : segments.back().last();
  }

  // Checks the batch's bytes against its index record (once).
  bool VerifyRecord(Segment& seg, std::size_t k) {
    if (seg.verified[k]) return true;
    const IndexRecord& r = seg.records[k];
    const std::byte* p = seg.map->base + journal::kHeaderSize +
                         static_cast<std::uint64_t>(r.first - seg.files.first) * slot_size;
    const std::uint64_t bytes = static_cast<std::uint64_t>(r.last - r.first + 1) * slot_size;
    if (journal::Checksum(p, bytes) != r.checksum) return false;
    seg.verified[k] = true;
    return true;
  }
};

JournalReader::JournalReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
JournalReader::JournalReader(JournalReader&&) noexcept = default;
JournalReader& JournalReader::operator=(JournalReader&&) noexcept = default;
JournalReader::~JournalReader() = default;

absl::StatusOr<JournalReader> JournalReader::Open(std::string_view directory) {
  auto state = std::make_unique<State>();
  state->directory = std::string(directory);
  JournalReader reader(std::move(state));
  if (absl::Status s = reader.Refresh(); !s.ok()) return s;
  if (reader.state_->segments.empty()) {
    return absl::NotFoundError(absl::StrFormat(
        "'%s' holds no journal (no segment files); record one with `xdisruptor journal record`",
        directory));
  }
  return reader;
}

absl::Status JournalReader::Refresh() {
  State& st = *state_;
  for (int pass = 0;; ++pass) {
    auto listed = journal::ListSegments(st.directory);
    if (!listed.ok()) return listed.status();
    // Segments retention removed (at the front) are forgotten; views of them stay valid.
    while (!st.segments.empty() &&
           std::none_of(listed->begin(), listed->end(), [&](const journal::SegmentFiles& f) {
             return f.first == st.segments.front().files.first;
           })) {
      st.segments.erase(st.segments.begin());
    }
    const std::size_t known = st.segments.size();
    for (std::size_t i = 0; i < listed->size(); ++i) {
      const journal::SegmentFiles& files = (*listed)[i];
      if (!st.segments.empty() && files.first <= st.segments.back().files.first) continue;
      auto seg = st.OpenSegment(files);
      if (!seg.ok()) {
        // The newest segment may be being created right now (no complete header yet).
        if (i + 1 == listed->size() && seg.status().code() == absl::StatusCode::kDataLoss) break;
        return seg.status();
      }
      st.segments.push_back(*std::move(seg));
    }
    // A segment is complete once a later one exists: its writer finished it first.
    for (std::size_t i = 0; i < st.segments.size(); ++i) {
      Segment& seg = st.segments[i];
      if (seg.complete) continue;
      const bool newest = i + 1 == st.segments.size();
      if (absl::Status s = st.ReadIndex(seg, newest); !s.ok()) return s;
      if (seg.replaced) {
        auto fresh = st.OpenSegment(seg.files);
        if (!fresh.ok()) {
          if (newest && fresh.status().code() == absl::StatusCode::kDataLoss) continue;
          return fresh.status();
        }
        seg = *std::move(fresh);
        if (absl::Status s = st.ReadIndex(seg, newest); !s.ok()) return s;
      }
      seg.complete = !newest;
    }
    // A directory listing may miss a file made while it ran and show a later one (readdir
    // while the writer rolls over): a gap before a segment this pass added is taken back and
    // the directory listed again. A gap still there after that is the journal's own, for
    // Verify to report.
    std::size_t gap = 0;
    for (std::size_t i = known > 0 ? known - 1 : 0; i + 1 < st.segments.size(); ++i) {
      if (st.segments[i + 1].files.first != st.segments[i].last() + 1) {
        gap = i + 1;
        break;
      }
    }
    if (gap == 0 || pass == 2) return absl::OkStatus();
    st.segments.erase(st.segments.begin() + static_cast<std::ptrdiff_t>(gap),
                      st.segments.end());
  }
}

const std::string& JournalReader::directory() const { return state_->directory; }
const std::string& JournalReader::schema() const { return state_->schema; }
std::uint32_t JournalReader::slot_size() const { return state_->slot_size; }
const std::string& JournalReader::ring_name() const { return state_->ring_name; }
std::int64_t JournalReader::ring_epoch() const { return state_->ring_epoch; }
std::int64_t JournalReader::first() const { return state_->First(); }
std::int64_t JournalReader::last() const { return state_->Last(); }
std::size_t JournalReader::segments() const { return state_->segments.size(); }
std::uint64_t JournalReader::bytes() const {
  if (state_->segments.empty()) return 0;
  return static_cast<std::uint64_t>(last() - first() + 1) * state_->slot_size;
}

absl::StatusOr<JournalSpan> JournalReader::Read(std::int64_t from, std::int64_t max) {
  State& st = *state_;
  if (max < 1) return absl::InvalidArgumentError("journal: read at least one event");
  if (st.segments.empty() || from > st.Last()) return JournalSpan{nullptr, from, 0, {}};
  if (from < st.First()) {
    return absl::OutOfRangeError(absl::StrFormat(
        "journal '%s' starts at %d; %d is older (retention removed it, or it was never "
        "recorded)",
        st.directory, st.First(), from));
  }
  auto seg_it = std::upper_bound(st.segments.begin(), st.segments.end(), from,
                                 [](std::int64_t s, const Segment& seg) {
                                   return s < seg.files.first;
                                 });
  Segment& seg = *std::prev(seg_it);
  if (from > seg.last()) {
    // Past a damaged index in the middle of the journal.
    return st.Corrupt(seg.bad_why.empty()
                          ? absl::StrFormat("no batch holds %d", from)
                          : seg.bad_why);
  }
  auto rec_it = std::upper_bound(seg.records.begin(), seg.records.end(), from,
                                 [](std::int64_t s, const IndexRecord& r) { return s < r.first; });
  std::size_t k = static_cast<std::size_t>(std::prev(rec_it) - seg.records.begin());
  const std::int64_t want = std::min(seg.last(), from + max - 1);
  std::int64_t end = from - 1;
  for (; k < seg.records.size() && seg.records[k].first <= want; ++k) {
    if (!st.VerifyRecord(seg, k)) {
      if (end < from) {
        return st.Corrupt(absl::StrFormat(
            "batch %d..%d of segment '%s' fails its checksum (the first bad sequence is %d)",
            seg.records[k].first, seg.records[k].last, seg.files.data, seg.records[k].first));
      }
      break;
    }
    end = std::min(want, seg.records[k].last);
  }
  return JournalSpan{seg.map->base + journal::kHeaderSize +
                         static_cast<std::uint64_t>(from - seg.files.first) * st.slot_size,
                     from, end - from + 1, seg.map};
}

absl::Status JournalReader::Verify() {
  State& st = *state_;
  if (absl::Status s = Refresh(); !s.ok()) return s;
  for (std::size_t i = 0; i < st.segments.size(); ++i) {
    Segment& seg = st.segments[i];
    for (std::size_t k = 0; k < seg.records.size(); ++k) {
      if (!st.VerifyRecord(seg, k)) {
        return st.Corrupt(absl::StrFormat(
            "batch %d..%d of segment '%s' fails its checksum: the first bad sequence is %d",
            seg.records[k].first, seg.records[k].last, seg.files.data, seg.records[k].first));
      }
    }
    if (seg.bad_from != INT64_MAX) {
      return st.Corrupt(absl::StrFormat("%s: the first bad sequence is %d", seg.bad_why,
                                        seg.bad_from));
    }
    if (i + 1 < st.segments.size() && st.segments[i + 1].files.first != seg.last() + 1) {
      return st.Corrupt(absl::StrFormat(
          "segment '%s' ends at %d but the next starts at %d: the first bad sequence is %d",
          seg.files.data, seg.last(), st.segments[i + 1].files.first, seg.last() + 1));
    }
  }
  return absl::OkStatus();
}

}  // namespace xdisruptor
