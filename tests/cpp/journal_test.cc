// The journal in one process: format round trips, torn tails, corruption, retention, the
// recorder, and a consumer that catches up from the journal onto the live ring.
#include "xdisruptor/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using testing::TempDir;
using testing::TestEvent;

constexpr std::uint32_t kSlot = sizeof(TestEvent);

std::vector<TestEvent> Events(std::int64_t first, std::int64_t count) {
  std::vector<TestEvent> out(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) out[static_cast<std::size_t>(i)].Fill(first + i);
  return out;
}

absl::Status AppendEvents(JournalWriter& w, std::int64_t first, std::int64_t count) {
  const std::vector<TestEvent> events = Events(first, count);
  return w.Append(first, reinterpret_cast<const std::byte*>(events.data()), count);
}

// Reads first..last through spans and checks every event.
std::int64_t ReadAll(JournalReader& r, std::int64_t first, std::int64_t last) {
  std::int64_t good = 0;
  for (std::int64_t s = first; s <= last;) {
    auto span = r.Read(s, 7);
    EXPECT_TRUE(span.ok()) << span.status();
    if (!span.ok() || span->count == 0) break;
    for (std::int64_t i = 0; i < span->count; ++i) {
      const auto* e = reinterpret_cast<const TestEvent*>(span->data + i * kSlot);
      good += e->Verify(s + i);
    }
    s += span->count;
  }
  return good;
}

JournalOptions Options(const TempDir& dir, std::int64_t segment_events = 10) {
  return JournalOptions{.directory = dir.get(), .segment_bytes = segment_events * kSlot};
}

TEST(JournalFormatTest, ShouldReadBackEveryEventAcrossSegments) {
  TempDir dir;
  auto w = JournalWriter::Open(Options(dir), "<i8:sequence", kSlot, "ring");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(w->empty());
  ASSERT_TRUE(AppendEvents(*w, 100, 3).ok());
  ASSERT_TRUE(AppendEvents(*w, 103, 25).ok());  // spans three segments of 10
  ASSERT_TRUE(AppendEvents(*w, 128, 1).ok());
  EXPECT_EQ(w->first(), 100);
  EXPECT_EQ(w->last(), 128);
  auto r = JournalReader::Open(dir.get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first(), 100);
  EXPECT_EQ(r->last(), 128);
  EXPECT_EQ(r->segments(), 3u);
  EXPECT_EQ(r->schema(), "<i8:sequence");
  EXPECT_EQ(r->slot_size(), kSlot);
  EXPECT_EQ(r->ring_name(), "ring");
  EXPECT_EQ(ReadAll(*r, 100, 128), 29);
  auto span = r->Read(105, 100);  // within one segment: 105..109
  ASSERT_TRUE(span.ok());
  EXPECT_EQ(span->count, 5);
  EXPECT_EQ(r->Read(129, 1)->count, 0);  // past the end: nothing yet
  EXPECT_EQ(r->Read(99, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(r->Verify().ok());
  // A gap is refused; an overlap (a retried batch) skips what is already there.
  EXPECT_EQ(AppendEvents(*w, 131, 1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(AppendEvents(*w, 127, 4).ok());
  EXPECT_EQ(w->last(), 130);
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(r->last(), 130);
  EXPECT_EQ(ReadAll(*r, 100, 130), 31);
}

// A recorder that made its first segment and died before writing a batch leaves a journal cut
// to nothing; the next writer unlinks it and makes the segment anew under the same name. A
// reader that mapped the first file must read the second's batches from the second (through
// the old mapping they lay past its end: SIGBUS).
TEST(JournalFormatTest, ShouldFollowASegmentMadeAnewUnderItsName) {
  TempDir dir;
  std::optional<JournalReader> r;
  {
    auto w = JournalWriter::Open(Options(dir, 1000), "<i8:sequence", kSlot, "ring");
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(w->Begin(0).ok());  // the header, no batch
    auto opened = JournalReader::Open(dir.get());
    ASSERT_TRUE(opened.ok()) << opened.status();
    r.emplace(*std::move(opened));
    EXPECT_EQ(r->last(), -1);
  }
  auto w = JournalWriter::Open(Options(dir, 1000), "<i8:sequence", kSlot, "ring");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(w->empty());
  ASSERT_TRUE(AppendEvents(*w, 0, 300).ok());  // 300 events: pages past the old file's end
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(r->last(), 299);
  EXPECT_EQ(ReadAll(*r, 0, 299), 300);
  EXPECT_TRUE(r->Verify().ok());
}

TEST(JournalFormatTest, ShouldCutATornTailAtOpen) {
  TempDir dir;
  {
    auto w = JournalWriter::Open(Options(dir, 100), "", kSlot, "ring");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(AppendEvents(*w, 0, 5).ok());
    ASSERT_TRUE(AppendEvents(*w, 5, 5).ok());
  }
  // A recorder killed mid-batch: half a batch of data and half an index record.
  const std::string data = dir / journal::SegmentFileName(0, journal::kDataSuffix);
  const std::string index = dir / journal::SegmentFileName(0, journal::kIndexSuffix);
  {
    std::ofstream(data, std::ios::app | std::ios::binary) << std::string(100, 'x');
    std::ofstream(index, std::ios::app | std::ios::binary) << std::string(20, 'y');
  }
  auto r = JournalReader::Open(dir.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->last(), 9);  // readers ignore the tail
  auto w = JournalWriter::Open(Options(dir, 100), "", kSlot, "ring");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->last(), 9);
  EXPECT_EQ(w->cut_bytes(), 120);
  EXPECT_EQ(std::filesystem::file_size(data), journal::kHeaderSize + 10 * kSlot);
  ASSERT_TRUE(AppendEvents(*w, 10, 2).ok());
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(ReadAll(*r, 0, 11), 12);
}

// A recorder killed between creating a new segment's files and writing its header leaves
// both empty. The segment before it is then the newest: it is resumed, and nothing older is
// touched (reopening once took the journal for empty and deleted its first segment).
TEST(JournalFormatTest, ShouldDropANewestSegmentCutBeforeItsHeaderAndResumeTheOneBefore) {
  for (const std::size_t header_bytes : {std::size_t{0}, std::size_t{100}}) {
    TempDir dir;
    {
      auto w = JournalWriter::Open(Options(dir), "", kSlot, "ring");
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE(AppendEvents(*w, 0, 27).ok());  // segments 0, 10, 20
    }
    // The roll to segment 30, killed before (or while) writing its header.
    const std::string data = dir / journal::SegmentFileName(30, journal::kDataSuffix);
    const std::string index = dir / journal::SegmentFileName(30, journal::kIndexSuffix);
    std::ofstream(index, std::ios::binary).flush();
    std::ofstream(data, std::ios::binary) << std::string(header_bytes, '\0');
    auto r = JournalReader::Open(dir.get());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->last(), 26);  // readers stop before a segment still being created
    auto w = JournalWriter::Open(Options(dir), "", kSlot, "ring");
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_FALSE(w->empty());
    EXPECT_EQ(w->first(), 0);
    EXPECT_EQ(w->last(), 26);
    EXPECT_FALSE(std::filesystem::exists(data));
    EXPECT_TRUE(std::filesystem::exists(dir / journal::SegmentFileName(0, journal::kDataSuffix)));
    ASSERT_TRUE(AppendEvents(*w, 27, 10).ok());  // fills 20's segment and makes 30 anew
    ASSERT_TRUE(r->Refresh().ok());
    EXPECT_EQ(r->first(), 0);
    EXPECT_EQ(ReadAll(*r, 0, 36), 37);
    EXPECT_TRUE(r->Verify().ok());
  }
}

TEST(JournalFormatTest, ShouldNameTheFirstBadSequenceOfACorruptSegment) {
  TempDir dir;
  {
    auto w = JournalWriter::Open(Options(dir, 10), "", kSlot, "ring");
    ASSERT_TRUE(w.ok());
    for (int b = 0; b < 6; ++b) ASSERT_TRUE(AppendEvents(*w, b * 5, 5).ok());
  }
  // Flip a byte of event 13 (segment 10..19, batch 10..14).
  const std::string data = dir / journal::SegmentFileName(10, journal::kDataSuffix);
  {
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(journal::kHeaderSize + 3 * kSlot + 9);
    f.put('\x55');
  }
  auto r = JournalReader::Open(dir.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(*r, 0, 9), 10);  // before it: fine
  auto bad = r->Read(12, 5);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("first bad sequence is 10"), std::string::npos)
      << bad.status();
  const absl::Status verified = r->Verify();
  EXPECT_EQ(verified.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(verified.message().find("first bad sequence is 10"), std::string::npos) << verified;
  auto after = r->Read(15, 5);  // the batch after the bad one reads fine
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->count, 5);
  // A damaged header: DataLoss at open, never a crash.
  {
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  EXPECT_EQ(JournalReader::Open(dir.get()).status().code(), absl::StatusCode::kDataLoss);
}

TEST(JournalFormatTest, ShouldRefuseAnotherSchemaAndASecondWriter) {
  TempDir dir;
  auto w = JournalWriter::Open(Options(dir), "<i8:a", kSlot, "ring");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(AppendEvents(*w, 0, 1).ok());
  auto second = JournalWriter::Open(Options(dir), "<i8:a", kSlot, "ring");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another recorder"), std::string::npos);
  w = absl::InternalError("closed");  // releases the lock
  auto other = JournalWriter::Open(Options(dir), "<f8:b", kSlot, "ring");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("<i8:a"), std::string::npos) << other.status();
  EXPECT_NE(other.status().message().find("<f8:b"), std::string::npos) << other.status();
}

TEST(JournalFormatTest, ShouldRemoveTheOldestSegmentsBeyondTheRetentionLimit) {
  TempDir dir;
  JournalOptions o = Options(dir, 10);
  o.retain_bytes = 3 * (journal::kHeaderSize + 10 * kSlot);
  auto w = JournalWriter::Open(o, "", kSlot, "ring");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(AppendEvents(*w, 0, 20).ok());
  auto r = JournalReader::Open(dir.get());
  ASSERT_TRUE(r.ok());
  auto old = r->Read(0, 10);  // a reader holding segment 0 keeps reading it
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(AppendEvents(*w, 20, 40).ok());  // 6 segments
  w->ApplyRetention();
  EXPECT_EQ(w->first(), 30);
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(r->first(), 30);
  EXPECT_EQ(r->segments(), 3u);
  EXPECT_EQ(r->Read(5, 1).status().code(), absl::StatusCode::kOutOfRange);
  for (std::int64_t i = 0; i < old->count; ++i) {
    EXPECT_TRUE(reinterpret_cast<const TestEvent*>(old->data + i * kSlot)->Verify(i));
  }
  EXPECT_EQ(ReadAll(*r, 30, 59), 30);
}

TEST(JournalFormatTest, ShouldParseFsyncPolicies) {
  JournalOptions o;
  ASSERT_TRUE(ParseFsync("every:250", o).ok());
  EXPECT_EQ(o.fsync, FsyncPolicy::kInterval);
  EXPECT_EQ(o.fsync_interval_ns, 250'000'000);
  ASSERT_TRUE(ParseFsync("batch", o).ok());
  EXPECT_EQ(o.fsync, FsyncPolicy::kBatch);
  for (std::string_view bad : {"every:", "every:0", "every:x", "sometimes"}) {
    EXPECT_EQ(ParseFsync(bad, o).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// The recorder in a thread beside a producer: every event in the journal once, in order, and
// never released before it is written.
TEST(JournalRecorderTest, ShouldJournalEveryEventBeforeReleasingIt) {
  for (FsyncPolicy policy : {FsyncPolicy::kNone, FsyncPolicy::kBatch}) {
    ScopedRingName name;
    TempDir dir;
    auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
    ASSERT_TRUE(ring.ok());
    JournalOptions o = Options(dir, 1000);
    o.fsync = policy;
    auto recorder = JournalRecorder::Start(ring->segment(), o);
    ASSERT_TRUE(recorder.ok()) << recorder.status();
    std::atomic<bool> behind{false};
    std::thread run([&] { EXPECT_EQ(recorder->Run(), WaitStatus::kClosed); });
    constexpr std::int64_t kEvents = 5000;
    auto p = SingleProducerSequencer::Attach(ring->segment());
    ASSERT_TRUE(p.ok());
    for (std::int64_t s = 0; s < kEvents; ++s) {
      const std::int64_t seq = p->Next();
      (*ring)[seq].Fill(seq);
      p->Publish(seq);
      if (s % 500 == 0) {
        // Whatever the recorder released is in the journal.
        const std::int64_t released = Stats(ring->segment()).consumers.at(0).sequence;
        auto r = JournalReader::Open(dir.get());
        if (released >= 0 && (!r.ok() || r->last() < released)) behind = true;
      }
    }
    p->Close();
    run.join();
    EXPECT_FALSE(behind.load());
    auto r = JournalReader::Open(dir.get());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first(), 0);
    EXPECT_EQ(r->last(), kEvents - 1);
    EXPECT_EQ(ReadAll(*r, 0, kEvents - 1), kEvents);
    EXPECT_EQ(recorder->recorded(), kEvents);
  }
}

TEST(JournalRecorderTest, ShouldOpenForReadersAtOnceAndRecordOnlyWhatItsUpstreamReleased) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  for (std::int64_t s = 0; s < 3; ++s) p->Publish(p->Next());
  auto upstream = Consumer::Register(ring->segment(), "upstream", {.start_at = 3});
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  JournalOptions o = Options(dir, 1000);
  o.after = {"upstream"};
  auto recorder = JournalRecorder::Start(ring->segment(), o);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  // Before any event: a reader opens it, empty, starting where the recorder starts.
  auto r = JournalReader::Open(dir.get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first(), 3);
  EXPECT_EQ(r->last(), 2);
  std::thread run([&] { EXPECT_EQ(recorder->Run(), WaitStatus::kClosed); });
  for (std::int64_t s = 3; s < 13; ++s) {
    const std::int64_t seq = p->Next();
    (*ring)[seq].Fill(seq);
    p->Publish(seq);
  }
  // The recorder runs after `upstream`: nothing past what upstream released reaches the disk.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(r->last(), 2);
  upstream->Release(7, 5);
  for (int i = 0; i < 500 && r->last() < 7; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(r->Refresh().ok());
  }
  EXPECT_EQ(r->last(), 7);
  upstream->Release(12, 5);
  p->Close();
  run.join();
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(r->last(), 12);
  EXPECT_EQ(ReadAll(*r, 3, 12), 10);
}

struct Collect {
  std::vector<std::int64_t> seen;
  std::int64_t bad = 0;
  void on_event(TestEvent& e, std::int64_t s, bool) {
    seen.push_back(s);
    bad += !e.Verify(s);
  }
};

// A consumer registered at sequence 0 long after the ring lapped: the journal, then the ring,
// every event once, while the producer keeps publishing.
TEST(JournalCatchUpTest, ShouldReadTheJournalThenTheRingWithNoGapAndNoDuplicate) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto recorder = JournalRecorder::Start(ring->segment(), Options(dir, 300));
  ASSERT_TRUE(recorder.ok());
  std::thread record([&] { recorder->Run(); });
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  testing::PublishEach(*ring, *p, 2000);  // many laps: 0..1935 are gone from the ring
  auto late = Consumer::Register(ring->segment(), "late", {.start_at = 0, .journal = dir.get()});
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(late->catching_up());
  auto stats = Stats(ring->segment());
  EXPECT_TRUE(std::any_of(stats.consumers.begin(), stats.consumers.end(),
                          [](const ConsumerStats& c) { return c.name == "late" && !c.gating; }));
  Collect collect;
  BatchEventProcessor<TestEvent, Collect> processor(*ring, *late, collect);
  std::thread consume([&] { processor.Run(); });
  testing::PublishEach(*ring, *p, 3000);  // the producer goes on while it catches up
  p->Close();
  consume.join();
  record.join();
  ASSERT_EQ(collect.seen.size(), 5000u);
  for (std::int64_t i = 0; i < 5000; ++i) ASSERT_EQ(collect.seen[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(collect.bad, 0);
  EXPECT_FALSE(late->catching_up());  // it joined the ring
}

// A process killed inside FinishCatchUp, after it took the gating bit at a position the ring
// is long past and before it gave it back: the producer must not wait on it for ever, nor
// attaches fail as if the ring were corrupt, nor the name resume in the ring there (those
// slots were overwritten); it catches up again from the journal.
TEST(JournalCatchUpTest, ShouldCatchUpAgainWhenKilledHalfwayThroughTheJoinOntoTheRing) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto recorder = JournalRecorder::Start(ring->segment(), Options(dir, 300));
  ASSERT_TRUE(recorder.ok());
  std::thread record([&] { recorder->Run(); });
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  std::int64_t published = 0;
  auto publish = [&](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i, ++published) {
      const absl::StatusOr<std::int64_t> s = p->NextFor(1, 20'000'000'000);
      ASSERT_TRUE(s.ok()) << "the producer is held at " << published << ": " << s.status();
      (*ring)[*s].Fill(*s);
      p->Publish(*s);
    }
  };
  publish(2000);
  {
    auto late = Consumer::Register(ring->segment(), "late", {.start_at = 0, .journal = dir.get()});
    ASSERT_TRUE(late.ok() && late->catching_up());
    // FinishCatchUp(1000) as far as a SIGKILL lets it get (the position, then the gating bit),
    // by a process that is gone (no pid reaches 2^22; this one lets go without leaving).
    const auto index = static_cast<std::size_t>(late->index());
    ConsumerState& c = ring->segment().consumer(index);
    c.sequence.store(999);
    JoinGating(ring->segment().producer(), index);
    StoreOwner(c.owner, ProcessIdentity{.pid = std::int64_t{1} << 22, .start_time = 1});
    late->Abandon();
  }
  EXPECT_TRUE(RingSegment::Attach(name.get()).ok());  // not taken for a corrupt ring
  publish(1000);  // the producer's blocked wait clears the half-made join
  auto back = Consumer::Register(ring->segment(), "late", {.journal = dir.get()});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->catching_up());
  EXPECT_EQ(back->sequence(), 999);
  Collect collect;
  BatchEventProcessor<TestEvent, Collect> processor(*ring, *back, collect);
  std::thread consume([&] { processor.Run(); });
  publish(1000);
  p->Close();
  consume.join();
  record.join();
  ASSERT_EQ(collect.seen.size(), 3000u);
  for (std::int64_t i = 0; i < 3000; ++i) {
    ASSERT_EQ(collect.seen[static_cast<std::size_t>(i)], 1000 + i);
  }
  EXPECT_EQ(collect.bad, 0);
}

// A ring made again under its name starts its sequences anew: a journal of the life before
// names other events by the same numbers. Catching up from it delivered them as this life's
// (then joined the ring past what it skipped), and a recorder went on appending this life
// after the other's.
TEST(JournalCatchUpTest, ShouldRefuseAJournalOfAnotherLifeOfTheRing) {
  ScopedRingName name;
  TempDir dir;
  auto publish = [](Ring<TestEvent>& ring, std::int64_t n) {
    auto p = SingleProducerSequencer::Attach(ring.segment());
    ASSERT_TRUE(p.ok());
    testing::PublishEach(ring, *p, n);
    p->Close();
  };
  {
    auto before = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
    ASSERT_TRUE(before.ok());
    auto recorder = JournalRecorder::Start(before->segment(), Options(dir, 300));
    ASSERT_TRUE(recorder.ok());
    std::thread record([&] { recorder->Run(); });
    publish(*before, 100);
    record.join();
    ASSERT_TRUE(recorder->consumer().Deregister().ok());
  }
  ASSERT_TRUE(RingSegment::Remove(name.get()).ok());
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  for (std::int64_t s = 0; s < 150; ++s) p->Publish(p->Next());  // past the journal's end
  const auto late = Consumer::Register(ring->segment(), "late", {.start_at = 0, .journal = dir.get()});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition) << late.status();
  EXPECT_NE(late.status().message().find("another life of ring"), std::string_view::npos)
      << late.status();
  const auto again = JournalRecorder::Start(ring->segment(), Options(dir, 300));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  EXPECT_NE(again.status().message().find("record into a new directory"), std::string_view::npos);
}

// An in-place stage (an enricher) restarted with a journal: its handler writes into each
// event. Journal batches are mapped read-only; it writes into a copy (it used to fault) and the
// journal stays as recorded. (Here it starts once everything is recorded: a recorder not
// running after an in-place stage would record its writes half done.)
TEST(JournalCatchUpTest, ShouldLetAStageThatWritesInPlaceCatchUp) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto recorder = JournalRecorder::Start(ring->segment(), Options(dir, 300));
  ASSERT_TRUE(recorder.ok());
  std::thread record([&] { recorder->Run(); });
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  testing::PublishEach(*ring, *p, 600);
  p->Close();
  record.join();
  struct Marks {
    std::vector<std::int64_t> seen;
    std::int64_t bad = 0;
    void on_event(TestEvent& e, std::int64_t s, bool) {
      bad += !e.Verify(s);
      e.stage_mark = 7;  // in place
      bad += e.stage_mark != 7;
      seen.push_back(s);
    }
  } marks;
  auto late = Consumer::Register(ring->segment(), "enricher", {.start_at = 0, .journal = dir.get()});
  ASSERT_TRUE(late.ok()) << late.status();
  BatchEventProcessor<TestEvent, Marks> processor(*ring, *late, marks);
  EXPECT_EQ(processor.Run(), WaitStatus::kClosed);
  ASSERT_EQ(marks.seen.size(), 600u);
  EXPECT_EQ(marks.seen.back(), 599);
  EXPECT_EQ(marks.bad, 0);
  auto journal = JournalReader::Open(dir.get());
  ASSERT_TRUE(journal.ok());
  EXPECT_TRUE(journal->Verify().ok());  // as recorded
  EXPECT_EQ(ReadAll(*journal, 0, 599), 600);
}

// A recorder started late: the journal begins after `start_at`, but the ring still holds it
// (a stage holds the producer back). The consumer joins the ring there instead of failing
// with missed events, which it would not have without a journal.
TEST(JournalCatchUpTest, ShouldJoinTheRingForAStartOlderThanTheJournalThatTheRingStillHolds) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto anchor = Consumer::Register(ring->segment(), "anchor");  // reads nothing: holds 0..
  ASSERT_TRUE(anchor.ok());
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  testing::PublishEach(*ring, *p, 10);  // 0..9
  auto recorder = JournalRecorder::Start(ring->segment(), Options(dir, 300));  // from 10 on
  ASSERT_TRUE(recorder.ok());
  std::thread record([&] { recorder->Run(); });
  testing::PublishEach(*ring, *p, 20);  // 10..29
  p->Close();
  record.join();
  auto late = Consumer::Register(ring->segment(), "late", {.start_at = 0, .journal = dir.get()});
  ASSERT_TRUE(late.ok()) << late.status();
  Collect collect;
  BatchEventProcessor<TestEvent, Collect> processor(*ring, *late, collect);
  EXPECT_EQ(processor.Run(), WaitStatus::kClosed);
  ASSERT_EQ(collect.seen.size(), 30u);
  EXPECT_EQ(collect.seen.front(), 0);
  EXPECT_EQ(collect.seen.back(), 29);
  EXPECT_EQ(collect.bad, 0);
}

// A ring `bridge in` feeds learns the source's life with its first batch (origin_epoch); the
// recorder may have started before (a pipeline starts its stages first). Segments made after
// carry the source's life; catching up from the journal is accepted either way.
TEST(JournalCatchUpTest, ShouldAcceptTheJournalOfABridgeFedRingRecordedAcrossItsFirstBatch) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto recorder = JournalRecorder::Start(ring->segment(), Options(dir, 10));
  ASSERT_TRUE(recorder.ok());
  std::thread record([&] { recorder->Run(); });
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  constexpr std::int64_t kSource = 1'700'000'000'000'000'000;
  StoreOriginEpoch(ring->segment().producer(), kSource);  // as bridge in, before its first batch
  testing::PublishEach(*ring, *p, 30);  // 0..29
  p->Close();
  record.join();
  auto journal = JournalReader::Open(dir.get());
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(journal->ring_epoch(), kSource);
  auto late = Consumer::Register(ring->segment(), "late", {.start_at = 0, .journal = dir.get()});
  ASSERT_TRUE(late.ok()) << late.status();
  Collect collect;
  BatchEventProcessor<TestEvent, Collect> processor(*ring, *late, collect);
  EXPECT_EQ(processor.Run(), WaitStatus::kClosed);
  EXPECT_EQ(collect.seen.size(), 30u);
}

TEST(JournalCatchUpTest, ShouldLetAnEvictedConsumerCatchUpInsteadOfMissingEvents) {
  ScopedRingName name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto recorder = JournalRecorder::Start(ring->segment(), Options(dir, 1000));
  ASSERT_TRUE(recorder.ok());
  std::thread record([&] { recorder->Run(); });
  auto slow = Consumer::Register(ring->segment(), "slow", {.stall_policy = StallPolicy::kEvict});
  ASSERT_TRUE(slow.ok());
  auto p = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 10; ++i) {
    const std::int64_t s = p->Next();
    (*ring)[s].Fill(s);
    p->Publish(s);
  }
  slow->Release(4, 5);  // it read 0..4
  ASSERT_TRUE(EvictConsumer(ring->segment(), "slow").ok());
  ASSERT_TRUE(slow->Deregister().ok());
  for (int i = 0; i < 500; ++i) {
    const std::int64_t s = p->Next();
    (*ring)[s].Fill(s);
    p->Publish(s);
  }
  // Without a journal: refused (events were missed); with it: from 5 on, nothing missed.
  EXPECT_EQ(Consumer::Register(ring->segment(), "slow").status().code(),
            absl::StatusCode::kOutOfRange);
  auto back = Consumer::Register(ring->segment(), "slow", {.journal = dir.get()});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->sequence(), 4);
  EXPECT_EQ(back->missed(), 0u);
  p->Close();
  Collect collect;
  BatchEventProcessor<TestEvent, Collect> processor(*ring, *back, collect);
  EXPECT_EQ(processor.Run(), WaitStatus::kClosed);
  record.join();
  ASSERT_EQ(collect.seen.size(), 505u);
  EXPECT_EQ(collect.seen.front(), 5);
  EXPECT_EQ(collect.seen.back(), 509);
  EXPECT_EQ(collect.bad, 0);
}

TEST(JournalCatchUpTest, ShouldRefuseAJournalOfAnotherSchemaAndReportEventsNoLongerAnywhere) {
  ScopedRingName name, other_name;
  TempDir dir;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64, .schema = "<i8:a,V56:rest"});
  ASSERT_TRUE(ring.ok()) << ring.status();
  {
    auto w = JournalWriter::Open(Options(dir), "<i8:b,V56:rest", kSlot, "x");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(AppendEvents(*w, 0, 1).ok());
  }
  auto refused = Consumer::Register(ring->segment(), "c", {.start_at = 0, .journal = dir.get()});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("<i8:a"), std::string::npos);
  EXPECT_NE(refused.status().message().find("<i8:b"), std::string::npos);
  // A journal with no recorder behind it ends at 0; the ring moved far past: missed events.
  TempDir stale;
  {
    auto w = JournalWriter::Open(Options(stale), "<i8:a,V56:rest", kSlot, "x");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(AppendEvents(*w, 0, 1).ok());
  }
  auto p = SingleProducerSequencer::Attach(ring->segment());
  for (int i = 0; i < 200; ++i) p->Publish(p->Next());
  auto c = Consumer::Register(ring->segment(), "c", {.start_at = 0, .journal = stale.get()});
  ASSERT_TRUE(c.ok()) << c.status();
  Collect collect;
  BatchEventProcessor<TestEvent, Collect> processor(*ring, *c, collect);
  // (it waits kCatchUpGiveUpNs for the journal to grow before it gives up)
  EXPECT_EQ(processor.Run(), WaitStatus::kMissedEvents);
  EXPECT_EQ(collect.seen, std::vector<std::int64_t>{0});
  ASSERT_TRUE(processor.failure().has_value());
  EXPECT_NE(processor.failure()->what.find("recorder"), std::string::npos);
}

}  // namespace
}  // namespace xdisruptor
