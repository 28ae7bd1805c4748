// JournalRecorder: a named consumer that appends each batch to the journal before releasing
// it; and the catch-up source that lets a consumer read the journal before joining the ring.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "xdisruptor/journal.h"
#include "xdisruptor/process.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

namespace {

// Which life of the ring a journal records: its creation time, or, for a ring a bridge feeds
// (which carries the source's sequences), the source ring's.
std::int64_t RingEpoch(const RingSegment& ring) {
  const std::int64_t origin = LoadOriginEpoch(ring.producer());
  return origin != 0 ? origin : ring.header().created_at_unix_ns;
}

}  // namespace

struct JournalRecorder::State {
  RingSegment* ring = nullptr;
  JournalOptions options;
  std::optional<JournalWriter> writer;
  std::optional<Consumer> consumer;
  std::atomic<bool> halted{false};
  std::int64_t recorded = 0;
  std::int64_t last_sync_ns = 0;
  std::int64_t last_retention_ns = 0;
  std::vector<std::byte> copy;  // the batch being written, read out of the ring

  // Evicted (an operator, while the disk was full, say): the ring no longer waits for the
  // recorder, so the slots it has not written may hold later events already. Acquire: pairs
  // with the eviction, as EventPoller's check after its read.
  bool Evicted() {
    std::atomic_thread_fence(std::memory_order_acquire);
    return consumer->barrier().evicted();
  }

  // Appends, waiting out a full disk (holding the ring: nothing is dropped). False if halted
  // or evicted meanwhile, or on another error (reported).
  bool AppendHolding(std::int64_t first, const std::byte* data, std::int64_t count) {
    bool told = false;
    // Stamped into segments made from here on: a ring a bridge feeds knows the source's life
    // only once its first batch came.
    writer->set_ring_epoch(RingEpoch(*ring));
    for (;;) {
      if (Evicted()) {  // never write what may be another lap's events under these numbers
        std::fprintf(stderr, "xdisruptor journal: evicted from ring '%s' at %lld; not recording "
                     "what the ring may have overwritten since\n",
                     std::string(ring->name()).c_str(), static_cast<long long>(first - 1));
        return false;
      }
      const absl::Status s = writer->Append(first, data, count);
      if (s.ok()) {
        if (told) {
          std::fprintf(stderr, "xdisruptor journal '%s': there is room again; recording\n",
                       options.directory.c_str());
        }
        return true;
      }
      if (s.code() != absl::StatusCode::kResourceExhausted) {
        std::fprintf(stderr, "xdisruptor journal: %s\n", std::string(s.message()).c_str());
        return false;
      }
      if (!told) {
        std::fprintf(stderr,
                     "xdisruptor journal: %s; holding ring '%s' at %lld until there is room "
                     "(nothing is dropped)\n",
                     std::string(s.message()).c_str(), std::string(ring->name()).c_str(),
                     static_cast<long long>(first - 1));
        told = true;
      }
      for (int i = 0; i < 20 && !halted.load(std::memory_order_relaxed); ++i) {
        timespec pause{0, 5'000'000};
        ::nanosleep(&pause, nullptr);
      }
      if (halted.load(std::memory_order_relaxed)) return false;
    }
  }

  // On the way out (and when idle): durable now, unless the policy is never to sync.
  void SyncUnlessNone() {
    if (options.fsync != FsyncPolicy::kNone) (void)writer->Sync();
  }

  absl::Status SyncIfDue(bool batch_end) {
    const std::int64_t now = MonotonicNanos();
    if (options.fsync == FsyncPolicy::kBatch && batch_end) return writer->Sync();
    if (options.fsync == FsyncPolicy::kInterval && writer->dirty() &&
        now - last_sync_ns >= options.fsync_interval_ns) {
      last_sync_ns = now;
      return writer->Sync();
    }
    return absl::OkStatus();
  }
};

JournalRecorder::JournalRecorder(std::unique_ptr<State> state) : state_(std::move(state)) {}
JournalRecorder::JournalRecorder(JournalRecorder&&) noexcept = default;
JournalRecorder& JournalRecorder::operator=(JournalRecorder&&) noexcept = default;
JournalRecorder::~JournalRecorder() = default;

namespace {

// FailedPrecondition when the journal at `directory` (`reader`) records another life of the
// ring: its sequences name other events.
absl::Status CheckSameLife(const JournalReader& reader, const RingSegment& ring,
                           std::string_view directory, std::string_view what) {
  const std::int64_t epoch = reader.ring_epoch();
  // Either of the ring's: a ring a bridge feeds has its own creation time until its first
  // batch tells it the source's (a recorder may have made a segment before).
  if (epoch == 0 || epoch == ring.header().created_at_unix_ns ||
      epoch == LoadOriginEpoch(ring.producer())) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "journal '%s' records another life of ring '%s' (made at %s, this one at %s): its "
      "sequences name other events; %s",
      directory, ring.name(), absl::FormatTime(absl::FromUnixNanos(epoch), absl::UTCTimeZone()),
      absl::FormatTime(absl::FromUnixNanos(RingEpoch(ring)), absl::UTCTimeZone()), what));
}

}  // namespace

absl::StatusOr<JournalRecorder> JournalRecorder::Start(RingSegment& ring,
                                                       const JournalOptions& options) {
  auto state = std::make_unique<State>();
  state->ring = &ring;
  state->options = options;
  auto writer = JournalWriter::Open(options, ring.schema(), ring.slot_size(), ring.name(),
                                    RingEpoch(ring));
  if (!writer.ok()) return writer.status();
  if (!writer->empty()) {
    auto reader = JournalReader::Open(options.directory);
    if (!reader.ok()) return reader.status();
    if (absl::Status s = CheckSameLife(*reader, ring, options.directory,
                                       "record into a new directory");
        !s.ok()) {
      return s;
    }
  }
  state->writer.emplace(*std::move(writer));
  const JournalWriter& w = *state->writer;
  ConsumerOptions co{
      .after = options.after, .wait = options.wait, .stall_policy = options.stall_policy};
  const std::int64_t cursor = LoadCursor(ring.producer());
  if (!w.empty()) {
    if (w.last() > cursor) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "journal '%s' ends at %d, past ring '%s''s cursor %d: it holds another stream (or an "
          "earlier life of this ring); record into a new directory",
          options.directory, w.last(), ring.name(), cursor));
    }
    co.start_at = w.last() + 1;  // go on exactly where the journal ends
  }
  auto consumer = Consumer::Register(ring, options.name, co);
  if (!consumer.ok()) {
    if (consumer.status().code() == absl::StatusCode::kOutOfRange && !w.empty()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "journal '%s' ends at %d, but ring '%s' no longer holds %d (the recorder was not "
          "running): the journal cannot go on without a gap; record into a new directory "
          "(%s)",
          options.directory, w.last(), ring.name(), w.last() + 1,
          std::string(consumer.status().message())));
    }
    return consumer.status();
  }
  if (consumer->resumed() && !w.empty() && consumer->sequence() > w.last()) {
    return absl::DataLossError(absl::StrFormat(
        "journal '%s' ends at %d but its recorder '%s' had released up to %d: events %d..%d "
        "were lost (a machine crash with fsync none?); record into a new directory",
        options.directory, w.last(), options.name, consumer->sequence(), w.last() + 1,
        consumer->sequence()));
  }
  // The journal opens for readers from here on, even before the first event.
  if (absl::Status s = state->writer->Begin(consumer->sequence() + 1); !s.ok()) return s;
  state->consumer.emplace(*std::move(consumer));
  state->last_sync_ns = MonotonicNanos();
  return JournalRecorder(std::move(state));
}

WaitStatus JournalRecorder::Run() {
  State& st = *state_;
  Consumer& c = *st.consumer;
  SequenceBarrier& barrier = c.barrier();
  const std::int64_t capacity = static_cast<std::int64_t>(st.ring->capacity());
  // The interval policy also syncs when idle: waits return at least that often.
  const std::int64_t slice = st.options.fsync == FsyncPolicy::kInterval
                                 ? st.options.fsync_interval_ns
                                 : 100'000'000;
  std::int64_t next = c.sequence() + 1;
  for (;;) {
    if (st.halted.load(std::memory_order_acquire)) {
      st.SyncUnlessNone();
      return WaitStatus::kHalted;
    }
    const WaitResult r = barrier.WaitFor(next, slice);
    if (r.status == WaitStatus::kCheckpoint || r.status == WaitStatus::kTimeout) {
      st.SyncUnlessNone();
      if (MonotonicNanos() - st.last_retention_ns > 1'000'000'000) {
        st.writer->ApplyRetention();
        st.last_retention_ns = MonotonicNanos();
      }
      continue;
    }
    barrier.EndWait();
    if (r.status != WaitStatus::kOk) {
      st.SyncUnlessNone();
      return r.status;
    }
    const std::int64_t hi = r.available;
    // The batch in runs of adjacent slots (it may wrap the ring's end).
    for (std::int64_t s = next; s <= hi;) {
      const std::int64_t run_end = std::min(hi, s + (capacity - (s & (capacity - 1))) - 1);
      // A copy first: the eviction check in AppendHolding then comes after the read, so what
      // is written is known to be this lap's (evicted during the read, the copy may not be).
      const auto bytes = static_cast<std::size_t>(run_end - s + 1) * st.ring->slot_size();
      st.copy.resize(bytes);
      std::memcpy(st.copy.data(), st.ring->slot(s), bytes);
      if (!st.AppendHolding(s, st.copy.data(), run_end - s + 1)) {
        st.SyncUnlessNone();
        return st.halted.load() ? WaitStatus::kHalted
               : st.Evicted()   ? WaitStatus::kEvicted
                                : WaitStatus::kHandlerFailed;
      }
      s = run_end + 1;
    }
    if (absl::Status s = st.SyncIfDue(true); !s.ok()) {
      std::fprintf(stderr, "xdisruptor journal: %s\n", std::string(s.message()).c_str());
      return WaitStatus::kHandlerFailed;
    }
    st.recorded += hi - next + 1;
    c.Release(hi, static_cast<std::uint64_t>(hi - next + 1));
    next = hi + 1;
    if (MonotonicNanos() - st.last_retention_ns > 1'000'000'000) {
      st.writer->ApplyRetention();
      st.last_retention_ns = MonotonicNanos();
    }
  }
}

void JournalRecorder::Halt() {
  state_->halted.store(true, std::memory_order_release);
  state_->consumer->barrier().Alert();
}

std::int64_t JournalRecorder::recorded() const { return state_->recorded; }
Consumer& JournalRecorder::consumer() { return *state_->consumer; }
JournalWriter& JournalRecorder::writer() { return *state_->writer; }

namespace {

// A journal as the source a consumer catches up from.
class JournalCatchUp final : public CatchUpSource {
 public:
  explicit JournalCatchUp(JournalReader reader) : reader_(std::move(reader)) {}
  absl::StatusOr<CatchUpBatch> Read(std::int64_t next, std::int64_t max) override {
    if (next > reader_.last()) {
      if (absl::Status s = reader_.Refresh(); !s.ok()) return s;
    }
    auto span = reader_.Read(next, max);
    if (!span.ok()) return span.status();
    return CatchUpBatch{span->data, span->count, span->keep_alive};
  }
  std::int64_t Last() override {
    (void)reader_.Refresh();
    return reader_.last();
  }

 private:
  JournalReader reader_;
};

absl::StatusOr<std::unique_ptr<CatchUpSource>> OpenJournalCatchUp(const RingSegment& ring,
                                                                  std::string_view path) {
  auto reader = JournalReader::Open(path);
  if (!reader.ok()) return reader.status();
  if (reader->schema() != ring.schema() || reader->slot_size() != ring.slot_size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "journal '%s' holds events of schema '%s' (%d-byte slots), but ring '%s' carries '%s' "
        "(%d-byte slots)",
        path, reader->schema(), reader->slot_size(), ring.name(), ring.schema(),
        ring.slot_size()));
  }
  // After the schema: a journal of another schema is first of all that.
  if (absl::Status s = CheckSameLife(*reader, ring, path,
                                     "catch up from a journal of this ring's life");
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<CatchUpSource>(new JournalCatchUp(*std::move(reader)));
}

}  // namespace

namespace internal {
bool InstallJournalCatchUp() {
  InstallCatchUpOpener(&OpenJournalCatchUp);
  return true;
}
}  // namespace internal

}  // namespace xdisruptor
