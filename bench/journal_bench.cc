// journal_bench — what the journal costs, each figure against a baseline measured in the same
// run (runs alternate; the report gives medians, min and max, and the ratio of the medians).
//
//   write  The recorder's events/s: a producer thread publishes 64-byte events into a ring
//          (batches of 256, yielding wait) and the recorder (blocking wait) appends them to a
//          journal in DIR; timed from the first publish until the recorder has written the
//          last event. Baseline: a plain sequential write() of the same number of bytes from
//          a buffer filled once, into a file in the same DIR, in chunks of the recorder's mean
//          batch in the run just before (so both make as many write calls), each followed by
//          fdatasync when the policy is `batch`. With fsync none also the hand-rolled
//          recorder a user would write instead (a consumer of the same ring that write()s
//          each batch of slots; no format), which shows what reading the bytes out of the
//          ring (written by the producer on another core) costs. For each DIR of
//          --dirs and each policy of --fsync.
//   ring   The live ring's 1->1 throughput (producer and consumer threads, both yielding; the
//          consumer checks every event) without a recorder, and with one attached recording
//          into each DIR (fsync none).
//
//   journal_bench --events=4000000 --sync_events=200000 --runs=5
//                 --dirs=build/release/journal-bench,/dev/shm --json=results.json
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/journal.h"
#include "xdisruptor/journal_format.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(int64_t, events, 4'000'000, "events per run (write with fsync none, and ring)");
ABSL_FLAG(int64_t, sync_events, 1'000'000, "events per run with fsync batch");
ABSL_FLAG(int64_t, capacity, 65536, "ring slots");
ABSL_FLAG(int64_t, chunk, 256, "events per producer batch");
ABSL_FLAG(std::vector<std::string>, dirs, {"/dev/shm"},
          "directories to journal into (each gets a temporary subdirectory)");
ABSL_FLAG(std::vector<std::string>, fsync, std::vector<std::string>({"none", "batch"}),
          "fsync policies of the write figures");
ABSL_FLAG(std::vector<std::string>, sections, std::vector<std::string>({"write", "append", "ring"}),
          "which figures: write, append, ring");
ABSL_FLAG(int, runs, 5, "runs of each side");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");

namespace {

using namespace xdisruptor;

struct alignas(64) Event {
  std::uint64_t w[8];
};
static_assert(sizeof(Event) == 64);
constexpr std::uint64_t kTag = 0x9E3779B97F4A7C15ull;

void FillEvent(Event* e, std::uint64_t s) {
  e->w[0] = s;
  for (int j = 1; j < 7; ++j) e->w[j] = s * 31 + j;
  e->w[7] = s ^ kTag;
}

double Now() { return static_cast<double>(MonotonicNanos()) * 1e-9; }

void Die(const absl::Status& s) {
  std::fprintf(stderr, "journal_bench: %s\n", std::string(s.message()).c_str());
  std::exit(1);
}

struct Series {
  std::vector<double> rates;
  double Median() const {
    std::vector<double> v = rates;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  double Min() const { return rates.empty() ? 0 : *std::min_element(rates.begin(), rates.end()); }
  double Max() const { return rates.empty() ? 0 : *std::max_element(rates.begin(), rates.end()); }
  std::string Json() const {
    return absl::StrFormat("{\"median\": %.0f, \"min\": %.0f, \"max\": %.0f}", Median(), Min(),
                           Max());
  }
};

std::string TempDirIn(const std::string& parent) {
  std::string templ = parent + "/xdjbench-XXXXXX";
  std::filesystem::create_directories(parent);
  if (::mkdtemp(templ.data()) == nullptr) Die(absl::InternalError("mkdtemp in " + parent));
  return templ;
}

// A producer thread publishing `events` events in chunks, then closing the stream.
std::thread StartProducer(Ring<Event>& ring, std::int64_t events, std::int64_t chunk) {
  auto producer = SingleProducerSequencer::Attach(ring.segment(),
                                                  WaitParams{.kind = WaitKind::kYielding});
  if (!producer.ok()) Die(producer.status());
  return std::thread([&ring, events, chunk, p = *std::move(producer)]() mutable {
    const Ring<Event>::Slots slots = ring.slots();
    for (std::int64_t done = 0; done < events; done += chunk) {
      const std::int64_t take = std::min(chunk, events - done);
      const std::int64_t hi = *p.Next(take);
      for (std::int64_t s = hi - take + 1; s <= hi; ++s) {
        FillEvent(&slots[s], static_cast<std::uint64_t>(s));
      }
      p.Publish(hi - take + 1, hi);
    }
    p.Close();
  });
}

JournalOptions Journal(const std::string& directory, const std::string& fsync) {
  JournalOptions o{.directory = directory, .name = "journal"};
  if (absl::Status s = ParseFsync(fsync, o); !s.ok()) Die(s);
  return o;
}

// Events/s of the recorder writing `events` events into a fresh journal under `parent`;
// also its mean batch (events per append).
double RecorderRun(const std::string& parent, const std::string& fsync, std::int64_t events,
                   double* mean_batch) {
  const std::string dir = TempDirIn(parent);
  const std::string name = absl::StrFormat("xdjbench-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create(
      {.name = name, .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity))});
  if (!ring.ok()) Die(ring.status());
  auto recorder = JournalRecorder::Start(ring->segment(), Journal(dir + "/j", fsync));
  if (!recorder.ok()) Die(recorder.status());
  const double t0 = Now();
  std::thread producer = StartProducer(*ring, events, absl::GetFlag(FLAGS_chunk));
  const WaitStatus why = recorder->Run();
  const double t1 = Now();
  producer.join();
  if (why != WaitStatus::kClosed || recorder->recorded() != events) {
    Die(absl::InternalError(absl::StrFormat("recorder ended %s after %d of %d events",
                                            WaitStatusName(why), recorder->recorded(), events)));
  }
  const RingStats stats = Stats(ring->segment());
  *mean_batch = static_cast<double>(events) /
                static_cast<double>(std::max<std::uint64_t>(1, stats.consumers.at(0).batches));
  // The journal must hold every event intact.
  auto reader = JournalReader::Open(dir + "/j");
  if (!reader.ok()) Die(reader.status());
  if (reader->last() != events - 1) Die(absl::InternalError("the journal is short"));
  auto last = reader->Read(events - 1, 1);
  if (!last.ok() || reinterpret_cast<const Event*>(last->data)->w[0] !=
                        static_cast<std::uint64_t>(events - 1)) {
    Die(absl::InternalError("the journal's last event is wrong"));
  }
  recorder->consumer().Deregister().IgnoreError();
  RingSegment::Remove(name).IgnoreError();
  std::filesystem::remove_all(dir);
  return static_cast<double>(events) / (t1 - t0);
}

// Events/s of a plain sequential write() of the same bytes in chunks of `chunk` events.
double PlainWriteRun(const std::string& parent, const std::string& fsync, std::int64_t events,
                     std::int64_t chunk) {
  const std::string dir = TempDirIn(parent);
  std::vector<Event> buffer(static_cast<std::size_t>(chunk));
  for (std::int64_t i = 0; i < chunk; ++i) FillEvent(&buffer[static_cast<std::size_t>(i)], i);
  const std::string path = dir + "/plain.bin";
  const double t0 = Now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die(absl::InternalError("open " + path));
  for (std::int64_t done = 0; done < events; done += chunk) {
    const std::size_t bytes = static_cast<std::size_t>(std::min(chunk, events - done)) * 64;
    if (::write(fd, buffer.data(), bytes) != static_cast<ssize_t>(bytes)) {
      Die(absl::InternalError("write " + path));
    }
    if (fsync == "batch" && ::fdatasync(fd) != 0) Die(absl::InternalError("fdatasync " + path));
  }
  ::close(fd);
  const double t1 = Now();
  std::filesystem::remove_all(dir);
  return static_cast<double>(events) / (t1 - t0);
}

// Events/s of the hand-rolled recorder a user would write instead: a consumer of the same
// ring (blocking wait) that write()s each available batch of ring slots to a file and releases
// it; no format, checksum or index.
double HandRecorderRun(const std::string& parent, std::int64_t events) {
  const std::string dir = TempDirIn(parent);
  const std::string name = absl::StrFormat("xdjbench-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create(
      {.name = name, .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity))});
  if (!ring.ok()) Die(ring.status());
  auto consumer = Consumer::Register(ring->segment(), "hand",
                                     {.wait = {.kind = WaitKind::kBlocking}});
  if (!consumer.ok()) Die(consumer.status());
  const std::string path = dir + "/hand.bin";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die(absl::InternalError("open " + path));
  const auto capacity = static_cast<std::int64_t>(ring->capacity());
  const double t0 = Now();
  std::thread producer = StartProducer(*ring, events, absl::GetFlag(FLAGS_chunk));
  std::int64_t next = 0;
  for (;;) {
    const WaitResult r = consumer->barrier().WaitFor(next);
    consumer->barrier().EndWait();
    if (r.status != WaitStatus::kOk) break;
    for (std::int64_t s = next; s <= r.available;) {
      const std::int64_t end = std::min(r.available, s + (capacity - (s & (capacity - 1))) - 1);
      const auto bytes = static_cast<std::size_t>(end - s + 1) * sizeof(Event);
      if (::write(fd, &(*ring)[s], bytes) != static_cast<ssize_t>(bytes)) {
        Die(absl::InternalError("write " + path));
      }
      s = end + 1;
    }
    consumer->Release(r.available, static_cast<std::uint64_t>(r.available - next + 1));
    next = r.available + 1;
  }
  const double t1 = Now();
  producer.join();
  ::close(fd);
  if (next != events) Die(absl::InternalError("the hand-rolled recorder missed events"));
  (void)consumer->Deregister();
  RingSegment::Remove(name).IgnoreError();
  std::filesystem::remove_all(dir);
  return static_cast<double>(events) / (t1 - t0);
}

// The format alone: JournalWriter::Append of a cache-hot buffer in batches of `chunk`, and
// (*checksum_rate) the checksum over the same bytes; against plain write() of that buffer.
double AppendRun(const std::string& parent, std::int64_t events, std::int64_t chunk,
                 double* checksum_rate) {
  const std::string dir = TempDirIn(parent);
  std::vector<Event> buffer(static_cast<std::size_t>(chunk));
  for (std::int64_t i = 0; i < chunk; ++i) FillEvent(&buffer[static_cast<std::size_t>(i)], i);
  const auto* bytes = reinterpret_cast<const std::byte*>(buffer.data());
  auto writer = JournalWriter::Open({.directory = dir + "/j"}, "V64:event", 64, "bench");
  if (!writer.ok()) Die(writer.status());
  const double t0 = Now();
  for (std::int64_t done = 0; done < events; done += chunk) {
    if (absl::Status s = writer->Append(done, bytes, std::min(chunk, events - done)); !s.ok()) {
      Die(s);
    }
  }
  const double t1 = Now();
  volatile std::uint64_t sink = 0;
  for (std::int64_t done = 0; done < events; done += chunk) {
    sink = sink + journal::Checksum(bytes, static_cast<std::size_t>(chunk) * 64);
  }
  *checksum_rate = static_cast<double>(events) / (Now() - t1);
  std::filesystem::remove_all(dir);
  return static_cast<double>(events) / (t1 - t0);
}

struct Checker {
  std::uint64_t errors = 0;
  std::uint64_t events = 0;
  void on_event(const Event& e, std::int64_t s, bool) {
    errors += (e.w[0] != static_cast<std::uint64_t>(s)) | (e.w[7] != (e.w[0] ^ kTag));
    ++events;
  }
};

// Events/s from the producer to a checking consumer; with a recorder into `parent` when it is
// not empty.
double RingRun(const std::string& parent, std::int64_t events) {
  const std::string name = absl::StrFormat("xdjbench-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create(
      {.name = name, .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity))});
  if (!ring.ok()) Die(ring.status());
  std::string dir;
  std::optional<JournalRecorder> recorder;
  std::thread recording;
  if (!parent.empty()) {
    dir = TempDirIn(parent);
    auto started = JournalRecorder::Start(ring->segment(), Journal(dir + "/j", "none"));
    if (!started.ok()) Die(started.status());
    recorder.emplace(*std::move(started));
    recording = std::thread([&] { (void)recorder->Run(); });
  }
  auto consumer = Consumer::Register(ring->segment(), "check",
                                     {.wait = {.kind = WaitKind::kYielding}});
  if (!consumer.ok()) Die(consumer.status());
  Checker checker;
  const double t0 = Now();
  std::thread producer = StartProducer(*ring, events, absl::GetFlag(FLAGS_chunk));
  BatchEventProcessor<Event, Checker> processor(*ring, *consumer, checker);
  const WaitStatus why = processor.Run();
  const double t1 = Now();
  producer.join();
  if (recording.joinable()) recording.join();
  if (why != WaitStatus::kClosed || checker.errors != 0 ||
      checker.events != static_cast<std::uint64_t>(events) ||
      (recorder && recorder->recorded() != events)) {
    Die(absl::InternalError("ring run: an event was lost or torn"));
  }
  if (recorder) recorder->consumer().Deregister().IgnoreError();
  (void)consumer->Deregister();
  RingSegment::Remove(name).IgnoreError();
  if (!dir.empty()) std::filesystem::remove_all(dir);
  return static_cast<double>(events) / (t1 - t0);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int runs = absl::GetFlag(FLAGS_runs);
  const std::vector<std::string> sections = absl::GetFlag(FLAGS_sections);
  const auto wants = [&](std::string_view s) {
    return std::find(sections.begin(), sections.end(), s) != sections.end();
  };
  std::vector<std::string> json;
  std::printf("journal_bench: 64-byte events, ring of %" PRId64 ", chunks of %" PRId64
              ", %ld cores, %d runs of each side\n",
              absl::GetFlag(FLAGS_capacity), absl::GetFlag(FLAGS_chunk),
              sysconf(_SC_NPROCESSORS_ONLN), runs);
  if (wants("write")) {
    for (const std::string& parent : absl::GetFlag(FLAGS_dirs)) {
      for (const std::string& fsync : absl::GetFlag(FLAGS_fsync)) {
        const std::int64_t events = fsync == "none" ? absl::GetFlag(FLAGS_events)
                                                    : absl::GetFlag(FLAGS_sync_events);
        Series plain, hand, rec;
        double batch = 0;
        for (int r = 0; r < runs; ++r) {
          if (fsync == "none") hand.rates.push_back(HandRecorderRun(parent, events));
          rec.rates.push_back(RecorderRun(parent, fsync, events, &batch));
          // The baseline writes (and syncs) as often as the recorder just did.
          const std::int64_t chunk = std::max<std::int64_t>(1, std::llround(batch));
          plain.rates.push_back(PlainWriteRun(parent, fsync, events, chunk));
        }
        const double ratio = rec.Median() / plain.Median();
        std::printf(
            "write %s fsync %s, %" PRId64 " events:\n"
            "  plain write()  median %.2fM/s (min %.2f, max %.2f)\n"
            "  recorder       median %.2fM/s (min %.2f, max %.2f), mean batch %.0f\n"
            "  ratio recorder/plain = %.2f\n",
            parent.c_str(), fsync.c_str(), events, plain.Median() / 1e6, plain.Min() / 1e6,
            plain.Max() / 1e6, rec.Median() / 1e6, rec.Min() / 1e6, rec.Max() / 1e6, batch,
            ratio);
        if (!hand.rates.empty()) {
          std::printf(
              "  hand-rolled ring-to-file consumer median %.2fM/s (min %.2f, max %.2f)\n"
              "  ratio recorder/hand-rolled = %.2f, hand-rolled/plain = %.2f\n",
              hand.Median() / 1e6, hand.Min() / 1e6, hand.Max() / 1e6,
              rec.Median() / hand.Median(), hand.Median() / plain.Median());
        }
        std::fflush(stdout);
        json.push_back(absl::StrFormat(
            "{\"figure\": \"write\", \"dir\": \"%s\", \"fsync\": \"%s\", \"events\": %d, "
            "\"plain\": %s, \"recorder\": %s, \"hand\": %s, \"mean_batch\": %.0f, "
            "\"ratio\": %.3f}",
            parent, fsync, events, plain.Json(), rec.Json(), hand.Json(), batch, ratio));
      }
    }
  }
  if (wants("append")) {
    const std::int64_t events = absl::GetFlag(FLAGS_events);
    const std::int64_t chunk = 16384;
    for (const std::string& parent : absl::GetFlag(FLAGS_dirs)) {
      Series plain, append, checksum;
      for (int r = 0; r < runs; ++r) {
        plain.rates.push_back(PlainWriteRun(parent, "none", events, chunk));
        double c = 0;
        append.rates.push_back(AppendRun(parent, events, chunk, &c));
        checksum.rates.push_back(c);
      }
      std::printf(
          "append %s (JournalWriter::Append of a cache-hot buffer, batches of %" PRId64 "):\n"
          "  plain write()  median %.2fM/s\n  Append         median %.2fM/s, ratio %.2f\n"
          "  the checksum alone over the same bytes: median %.0fM/s\n",
          parent.c_str(), chunk, plain.Median() / 1e6, append.Median() / 1e6,
          append.Median() / plain.Median(), checksum.Median() / 1e6);
      json.push_back(absl::StrFormat(
          "{\"figure\": \"append\", \"dir\": \"%s\", \"events\": %d, \"plain\": %s, "
          "\"append\": %s, \"checksum\": %s}",
          parent, events, plain.Json(), append.Json(), checksum.Json()));
    }
  }
  if (wants("ring")) {
    const std::int64_t events = absl::GetFlag(FLAGS_events);
    std::vector<std::string> parents = {""};
    for (const std::string& d : absl::GetFlag(FLAGS_dirs)) parents.push_back(d);
    std::vector<Series> series(parents.size());
    for (int r = 0; r < runs; ++r) {
      for (std::size_t i = 0; i < parents.size(); ++i) {
        series[i].rates.push_back(RingRun(parents[i], events));
      }
    }
    std::printf("ring 1->1 (producer and consumer yielding, recorder blocking), %" PRId64
                " events:\n",
                events);
    std::string rows;
    for (std::size_t i = 0; i < parents.size(); ++i) {
      const double ratio = series[i].Median() / series[0].Median();
      std::printf("  %-34s median %.2fM/s (min %.2f, max %.2f), ratio to none %.2f\n",
                  parents[i].empty() ? "no recorder" : ("recorder into " + parents[i]).c_str(),
                  series[i].Median() / 1e6, series[i].Min() / 1e6, series[i].Max() / 1e6, ratio);
      rows += absl::StrFormat("%s{\"recorder\": \"%s\", \"rate\": %s, \"ratio\": %.3f}",
                              i ? ", " : "", parents[i].empty() ? "none" : parents[i],
                              series[i].Json(), ratio);
    }
    json.push_back(absl::StrFormat("{\"figure\": \"ring\", \"events\": %d, \"rows\": [%s]}",
                                   events, rows));
  }
  const std::string path = absl::GetFlag(FLAGS_json);
  if (!path.empty()) {
    if (FILE* f = std::fopen(path.c_str(), "w")) {
      std::fprintf(f, "[\n");
      for (std::size_t i = 0; i < json.size(); ++i) {
        std::fprintf(f, " %s%s\n", json[i].c_str(), i + 1 < json.size() ? "," : "");
      }
      std::fprintf(f, "]\n");
      std::fclose(f);
    }
  }
  return 0;
}
