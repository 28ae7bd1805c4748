// xdisruptor/journal.h — a ring with no bottom: record every event to disk, read or replay it,
// and let a late or evicted consumer catch up from the journal onto the live ring.
//
//   auto recorder = JournalRecorder::Start(ring, {.directory = "/var/lib/ticks"});
//   recorder->Run();                                    // until the stream ends or Halt()
//
//   auto reader = JournalReader::Open("/var/lib/ticks");
//   for (std::int64_t s = reader->first(); s <= reader->last();) {
//     auto span = reader->Read(s, 4096);               // zero-copy, within one segment
//     ... span->data, span->count ...;  s += span->count;
//   }
//
//   // A consumer that starts at sequence 1000 even though the ring has moved on:
//   Consumer::Register(ring, "late", {.start_at = 1000, .journal = "/var/lib/ticks"});
//
// The format is journal_format.h; docs/journal.md explains the guarantees and the catch-up.
#ifndef XDISRUPTOR_JOURNAL_H_
#define XDISRUPTOR_JOURNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/catch_up.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/journal_format.h"
#include "xdisruptor/names.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_status.h"

namespace xdisruptor {

// When the recorder makes what it wrote durable.
enum class FsyncPolicy : std::uint32_t {
  kNone,      // the page cache writes it back (fastest; lost only if the machine goes down)
  kBatch,     // fdatasync before each batch is released
  kInterval,  // fdatasync every fsync_interval_ns (and when idle)
};
template <>
struct EnumNames<FsyncPolicy> {
  static constexpr std::string_view kWhat = "fsync policy";
  static constexpr NameTable<FsyncPolicy, 3> kTable{{
      {FsyncPolicy::kNone, "none"},
      {FsyncPolicy::kBatch, "batch"},
      {FsyncPolicy::kInterval, "every"},
  }};
};

struct JournalOptions {
  std::string directory{};
  std::string name = "journal";  // the recorder's consumer name
  FsyncPolicy fsync = FsyncPolicy::kNone;
  std::int64_t fsync_interval_ns = 0;                // kInterval
  std::int64_t segment_bytes = 256ll << 20;          // data bytes per segment (rounded)
  std::int64_t retain_bytes = 0;                     // > 0: remove oldest segments beyond it
  std::int64_t retain_ns = 0;                        // > 0: remove segments older than this
  StallPolicy stall_policy = StallPolicy::kHold;     // the recorder's (hold: never skips)
  // Consumers the recorder runs after: the journal then holds events as they left them.
  std::vector<std::string> after{};
  WaitParams wait{.kind = WaitKind::kBlocking};
};
// Parses "none", "batch" or "every:MS" into options.fsync / fsync_interval_ns.
absl::Status ParseFsync(std::string_view text, JournalOptions& options);

// One contiguous run of journaled events (zero-copy: the segment's mapping). `keep_alive`
// holds the mapping for as long as a caller (a numpy array) needs it.
struct JournalSpan {
  const std::byte* data = nullptr;
  std::int64_t first = 0;
  std::int64_t count = 0;
  std::shared_ptr<const void> keep_alive{};
};

// Reads a journal directory, also while a recorder appends to it (Refresh()). Not thread-safe.
class JournalReader {
 public:
  // NotFound (no directory or no segment), DataLoss (a corrupt header or index), or the
  // reader, positioned on everything valid now.
  static absl::StatusOr<JournalReader> Open(std::string_view directory);
  JournalReader(JournalReader&&) noexcept;
  JournalReader& operator=(JournalReader&&) noexcept;
  ~JournalReader();

  const std::string& directory() const;
  const std::string& schema() const;
  std::uint32_t slot_size() const;
  const std::string& ring_name() const;
  // Which life of the ring it records (RingEpoch when it was written; 0 for journals written
  // before this was recorded).
  std::int64_t ring_epoch() const;
  std::int64_t first() const;  // first() > last() when it holds no event yet
  std::int64_t last() const;
  std::size_t segments() const;
  std::uint64_t bytes() const;  // data bytes of the valid events

  // Sees segments and batches written since (and segments retention removed).
  absl::Status Refresh();
  // Up to `max` events from `from` on, within one segment, checksums verified. count 0 when
  // `from` is past last(); OutOfRange before first(); DataLoss when a checksum fails.
  absl::StatusOr<JournalSpan> Read(std::int64_t from, std::int64_t max);
  // Checks every batch of every segment: OK, or DataLoss naming the first bad sequence.
  absl::Status Verify();

 private:
  struct State;
  explicit JournalReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Appends batches to a journal directory: the recorder's writer. One per directory (a lock
// file says who writes). Not thread-safe.
class JournalWriter {
 public:
  // Creates the directory (and its first segment at the first Append) or opens an existing
  // journal of the same schema and slot size (else FailedPrecondition naming both schemas),
  // cutting a torn tail. FailedPrecondition when another live writer holds it.
  static absl::StatusOr<JournalWriter> Open(const JournalOptions& options,
                                            std::string_view schema, std::uint32_t slot_size,
                                            std::string_view ring_name,
                                            std::int64_t ring_epoch = 0);
  JournalWriter(JournalWriter&&) noexcept;
  JournalWriter& operator=(JournalWriter&&) noexcept;
  ~JournalWriter();

  bool empty() const;
  std::int64_t first() const;
  std::int64_t last() const;  // the last sequence journaled (first() - 1 when empty)
  // The ring's life stamped into segments made from now on (a ring a bridge feeds learns the
  // source's only with its first batch).
  void set_ring_epoch(std::int64_t ring_epoch);
  std::int64_t cut_bytes() const;  // torn-tail bytes cut at open

  // Creates the first segment at `first` if the journal is empty, so that readers can open it
  // (first() == first, last() == first - 1) before the first event; a no-op otherwise.
  absl::Status Begin(std::int64_t first);

  // Appends `count` events from `first` (the next sequence: last() + 1, or anything on an
  // empty journal) at `data`. ResourceExhausted when the disk is full (nothing is lost: call
  // again with the same batch); Internal for other I/O errors.
  absl::Status Append(std::int64_t first, const std::byte* data, std::int64_t count);
  // Makes everything appended durable (fdatasync of the open segment's files).
  absl::Status Sync();
  bool dirty() const;
  // Removes the oldest segments beyond the retention limits (never the one being written).
  void ApplyRetention();

 private:
  struct State;
  explicit JournalWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A named consumer of a ring that appends what it reads to a journal and releases each batch
// only once it is written (and synced, by the fsync policy): everything the ring has released
// to it is in the journal. Restarted by name it goes on exactly where the journal ends.
class JournalRecorder {
 public:
  static absl::StatusOr<JournalRecorder> Start(RingSegment& ring, const JournalOptions& options);
  JournalRecorder(JournalRecorder&&) noexcept;
  JournalRecorder& operator=(JournalRecorder&&) noexcept;
  ~JournalRecorder();

  // Records until the stream ends (kClosed), Halt() (kHalted), or the consumer is evicted;
  // a full disk is reported on stderr and waited out, holding the ring.
  WaitStatus Run();
  // Any thread (async-signal-safe).
  void Halt();
  std::int64_t recorded() const;  // events appended by this recorder
  Consumer& consumer();
  JournalWriter& writer();

 private:
  struct State;
  explicit JournalRecorder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

namespace internal {
// Makes Consumer::Register understand ConsumerOptions::journal (catch_up.h).
bool InstallJournalCatchUp();
inline const bool kJournalCatchUpInstalled = InstallJournalCatchUp();
}  // namespace internal

}  // namespace xdisruptor

#endif  // XDISRUPTOR_JOURNAL_H_
