// `xdisruptor journal ...`: record a ring into a journal directory, replay a journal into a
// ring, describe and verify a journal (docs/journal.md).
#include "journal_cli.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/files.h"
#include "xdisruptor/journal.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(std::string, name, "",
          "journal record: the recorder's consumer name (default journal); bridge out: its "
          "consumer name (default bridge); bridge in: its durable JetStream consumer (default "
          "bridge-in)");
ABSL_FLAG(std::string, fsync, "none", "journal record: none, batch or every:MS");
ABSL_FLAG(int64_t, segment_bytes, 256ll << 20, "journal record: data bytes per segment");
ABSL_FLAG(int64_t, retain_bytes, 0, "journal record: keep at most this many bytes (0: all)");
ABSL_FLAG(double, retain_seconds, 0, "journal record: remove segments older than this (0: "
                                     "keep)");
ABSL_FLAG(std::string, stall_policy, "hold", "journal record: the recorder's stall policy");
ABSL_FLAG(std::vector<std::string>, after, {},
          "journal record: consumers the recorder runs after (comma-separated): the journal "
          "holds events as they left them");
ABSL_FLAG(int64_t, from, -1, "journal replay: first sequence (default: the journal's first)");
ABSL_FLAG(int64_t, to, -1, "journal replay: last sequence (default: the journal's last)");
ABSL_FLAG(double, rate, 0, "journal replay: events per second (0: as fast as the ring allows)");
ABSL_FLAG(bool, create, false,
          "journal replay, bridge in: create the ring with the journal's (stream's) schema");
ABSL_FLAG(int64_t, capacity, 65536, "journal replay, bridge in --create: the ring's capacity");
ABSL_FLAG(bool, close, true, "journal replay: end the ring's stream when done (--noclose: "
                             "leave it open)");

namespace xdisruptor::tool {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "xdisruptor: %s\n", std::string(s.message()).c_str());
  return 1;
}

std::string Json(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      out += absl::StrFormat("\\u%04x", static_cast<int>(ch));
      continue;
    }
    out += ch;
  }
  return out + "\"";
}

std::atomic<JournalRecorder*> g_recorder{nullptr};
void StopRecording(int) {
  if (JournalRecorder* r = g_recorder.load()) r->Halt();  // atomics and a futex wake only
}

}  // namespace

int JournalRecord(const std::string& ring_name, const std::string& directory) {
  JournalOptions options{.directory = directory,
                         .name = absl::GetFlag(FLAGS_name).empty() ? std::string("journal")
                                                                    : absl::GetFlag(FLAGS_name),
                         .segment_bytes = absl::GetFlag(FLAGS_segment_bytes),
                         .retain_bytes = absl::GetFlag(FLAGS_retain_bytes),
                         .retain_ns = static_cast<std::int64_t>(
                             absl::GetFlag(FLAGS_retain_seconds) * 1e9)};
  if (absl::Status s = ParseFsync(absl::GetFlag(FLAGS_fsync), options); !s.ok()) return Fail(s);
  auto policy = ParseEnum<StallPolicy>(absl::GetFlag(FLAGS_stall_policy));
  if (!policy.ok()) return Fail(policy.status());
  options.stall_policy = *policy;
  options.after = absl::GetFlag(FLAGS_after);
  auto ring = RingSegment::Attach(ring_name);
  if (!ring.ok()) return Fail(ring.status());
  auto recorder = JournalRecorder::Start(*ring, options);
  if (!recorder.ok()) return Fail(recorder.status());
  std::printf("recording ring %s into %s from sequence %" PRId64 "\n", ring_name.c_str(),
              directory.c_str(), recorder->consumer().sequence() + 1);
  std::fflush(stdout);
  g_recorder.store(&*recorder);
  struct sigaction sa {};
  sa.sa_handler = StopRecording;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  const WaitStatus why = recorder->Run();
  g_recorder.store(nullptr);
  std::printf("recorded %" PRId64 " events; the journal ends at %" PRId64 " (%s)\n",
              recorder->recorded(), recorder->writer().last(),
              std::string(WaitStatusName(why)).c_str());
  const bool ok = why == WaitStatus::kClosed || why == WaitStatus::kHalted;
  // A recorder that failed (a write error) keeps its entry, as one that crashed: the ring
  // holds what it did not record, and a restart goes on without a gap.
  if (ok) {
    (void)recorder->consumer().Deregister();
  } else {
    recorder->consumer().Abandon();
  }
  return ok ? 0 : 1;
}

namespace {

template <typename Producer>
int ReplayWith(RingSegment& ring, Producer& producer, JournalReader& reader, std::int64_t from,
               std::int64_t to) {
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::int64_t chunk = std::max<std::int64_t>(1, static_cast<std::int64_t>(ring.capacity()) / 4);
  const std::uint32_t slot = reader.slot_size();
  const std::int64_t start = MonotonicNanos();
  std::int64_t done = 0;
  for (std::int64_t s = from; s <= to;) {
    auto span = reader.Read(s, std::min(chunk, to - s + 1));
    if (!span.ok()) return Fail(span.status());
    if (span->count == 0) break;
    if (rate > 0) {  // pace by the clock: the n-th event leaves at n / rate seconds
      const std::int64_t due = start + static_cast<std::int64_t>(static_cast<double>(done) / rate * 1e9);
      for (std::int64_t now = MonotonicNanos(); now < due; now = MonotonicNanos()) {
        timespec pause{0, std::min<long>(1'000'000, static_cast<long>(due - now))};
        ::nanosleep(&pause, nullptr);
      }
    }
    const std::int64_t n = rate > 0 ? std::min<std::int64_t>(span->count, std::max<std::int64_t>(
                                                                     1, static_cast<std::int64_t>(rate / 1000)))
                                    : span->count;
    auto hi = producer.Next(n);
    if (!hi.ok()) return Fail(hi.status());
    for (std::int64_t i = 0; i < n; ++i) {
      std::memcpy(ring.slot(*hi - n + 1 + i), span->data + i * slot, slot);
    }
    producer.Publish(*hi - n + 1, *hi);
    s += n;
    done += n;
  }
  if (absl::GetFlag(FLAGS_close)) {
    // Closing ends the stream for every producer: not while others still publish into it.
    std::string others;
    for (const ProducerStats& p : Stats(ring).producers) {
      if (p.alive && p.pid != ::getpid()) {
        others += absl::StrFormat("%s%d", others.empty() ? "" : ", ", p.pid);
      }
    }
    if (others.empty()) {
      producer.Close();
    } else {
      std::fprintf(stderr, "xdisruptor: left ring %s's stream open: other producers (pid %s) "
                   "still publish into it, and closing it would end their stream too\n",
                   std::string(ring.name()).c_str(), others.c_str());
    }
  }
  std::printf("replayed %" PRId64 " events (%" PRId64 "..%" PRId64 ") into ring %s\n", done, from,
              from + done - 1, std::string(ring.name()).c_str());
  return 0;
}

}  // namespace

int JournalReplay(const std::string& directory, const std::string& ring_name) {
  auto reader = JournalReader::Open(directory);
  if (!reader.ok()) return Fail(reader.status());
  // The range first: a refused replay makes no ring (--create), which would then exist.
  const std::int64_t from = absl::GetFlag(FLAGS_from) >= 0 ? absl::GetFlag(FLAGS_from)
                                                           : reader->first();
  const std::int64_t to = absl::GetFlag(FLAGS_to) >= 0 ? absl::GetFlag(FLAGS_to) : reader->last();
  if (from < reader->first() || to > reader->last() || from > to + 1) {
    return Fail(absl::OutOfRangeError(absl::StrFormat(
        "journal '%s' holds %d..%d; cannot replay %d..%d", directory, reader->first(),
        reader->last(), from, to)));
  }
  std::optional<RingSegment> ring;
  if (absl::GetFlag(FLAGS_create)) {
    auto created = RingSegment::Create(
        {.name = ring_name,
         .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity)),
         .slot_size = reader->slot_size(),
         .schema = reader->schema()});
    if (!created.ok()) return Fail(created.status());
    ring.emplace(*std::move(created));
  } else {
    auto attached = RingSegment::Attach(ring_name);
    if (!attached.ok()) return Fail(attached.status());
    ring.emplace(*std::move(attached));
  }
  if (ring->schema() != reader->schema() || ring->slot_size() != reader->slot_size()) {
    return Fail(absl::FailedPreconditionError(absl::StrFormat(
        "journal '%s' holds events of schema '%s' (%d-byte slots), but ring '%s' carries '%s' "
        "(%d-byte slots): refusing to replay",
        directory, reader->schema(), reader->slot_size(), ring_name, ring->schema(),
        ring->slot_size())));
  }
  if (ring->sequencer_kind() == SequencerKind::kMultiProducer) {
    auto producer = MultiProducerSequencer::Attach(*ring);
    if (!producer.ok()) return Fail(producer.status());
    return ReplayWith(*ring, *producer, *reader, from, to);
  }
  auto producer = SingleProducerSequencer::Attach(*ring);
  if (!producer.ok()) return Fail(producer.status());
  return ReplayWith(*ring, *producer, *reader, from, to);
}

int JournalStat(const std::string& directory, bool json) {
  auto reader = JournalReader::Open(directory);
  if (!reader.ok()) return Fail(reader.status());
  auto segments = journal::ListSegments(directory);
  if (!segments.ok()) return Fail(segments.status());
  // The rate: events over the time from the first segment's creation to the last write.
  std::int64_t created = 0, modified = 0;
  std::uint64_t file_bytes = 0;
  for (std::size_t i = 0; i < segments->size(); ++i) {
    struct stat st {};
    if (::stat((*segments)[i].data.c_str(), &st) != 0) continue;
    file_bytes += static_cast<std::uint64_t>(st.st_size);
    const std::int64_t m = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    modified = std::max(modified, m);
    if (i == 0) {
      journal::SegmentHeader h{};
      const int fd = ::open((*segments)[i].data.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0 && journal::ReadHeader(fd, (*segments)[i].data, &h).ok()) created = h.created_unix_ns;
      if (fd >= 0) ::close(fd);
    }
  }
  const std::int64_t events = std::max<std::int64_t>(0, reader->last() - reader->first() + 1);
  const double seconds = static_cast<double>(modified - created) / 1e9;
  const double rate = seconds > 0 ? static_cast<double>(events) / seconds : 0;
  if (json) {
    std::printf(
        "{\"directory\": %s, \"ring\": %s, \"schema\": %s, \"slot_size\": %u, "
        "\"first\": %" PRId64 ", \"last\": %" PRId64 ", \"events\": %" PRId64
        ", \"segments\": %zu, \"bytes\": %" PRIu64 ", \"rate\": %.1f}\n",
        Json(directory).c_str(), Json(reader->ring_name()).c_str(), Json(reader->schema()).c_str(),
        reader->slot_size(), reader->first(), reader->last(), events, reader->segments(),
        file_bytes, rate);
    return 0;
  }
  std::printf("journal %s (recorded from ring %s)\n", directory.c_str(),
              reader->ring_name().c_str());
  std::printf("schema  %s (%u-byte events)\n", reader->schema().c_str(), reader->slot_size());
  std::printf("events  %" PRId64 " (%" PRId64 "..%" PRId64 ")\n", events, reader->first(),
              reader->last());
  std::printf("files   %zu segments, %" PRIu64 " bytes\n", reader->segments(), file_bytes);
  std::printf("rate    %.0f events/s while recorded\n", rate);
  return 0;
}

int JournalVerify(const std::string& directory) {
  auto reader = JournalReader::Open(directory);
  if (!reader.ok()) return Fail(reader.status());
  if (absl::Status s = reader->Verify(); !s.ok()) return Fail(s);
  std::printf("ok: %" PRId64 " events (%" PRId64 "..%" PRId64 ") in %zu segments, every batch "
              "checksum verified\n",
              std::max<std::int64_t>(0, reader->last() - reader->first() + 1), reader->first(),
              reader->last(), reader->segments());
  return 0;
}

}  // namespace xdisruptor::tool
