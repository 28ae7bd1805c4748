// Observability across real processes: per-hop latency histograms (the producer stamps
// sampled publishes, each consumer records publish -> release), flight records on eviction
// and on a producer blocked too long, the sleep/wake and full-ring counters `stat` and the
// metrics endpoint show.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"
#include "xdisruptor/flight.h"
#include "xdisruptor/metrics.h"
#include "xdisruptor/internal/availability.h"
#include "xdisruptor/stats.h"

namespace xdisruptor {
namespace {

using testing::AwaitConsumers;
using testing::ForkChild;
using testing::ScopedRingName;
using testing::TempDir;
using testing::WaitChild;

constexpr char kSchema[] = "<i8:seq,<f8:price,S8:symbol";

struct Quote {
  std::int64_t seq;
  double price;
  char symbol[8];
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Fill(RingSegment& ring, std::int64_t s) {
  Quote q{.seq = s, .price = static_cast<double>(s) / 2, .symbol = "ABC"};
  std::memcpy(ring.slot(s), &q, sizeof(q));
}

// Publishes `events` quotes one at a time, `gap` apart, then closes the ring.
int Produce(const std::string& name, std::int64_t events, std::chrono::microseconds gap) {
  auto ring = RingSegment::Attach(name);
  if (!ring.ok()) return 2;
  auto producer = SingleProducerSequencer::Attach(*ring, {.kind = WaitKind::kYielding});
  if (!producer.ok()) return 3;
  for (std::int64_t i = 0; i < events; ++i) {
    const std::int64_t s = producer->Next();
    Fill(*ring, s);
    producer->Publish(s);
    if (gap.count() > 0) std::this_thread::sleep_for(gap);
  }
  producer->Close();
  return 0;
}

// A consumer process: takes batches until the stream closes, sleeping `pause` per batch;
// then stays registered (so `stat` shows it) until killed.
int Drain(const std::string& name, const std::string& consumer_name, ConsumerOptions options,
          std::chrono::microseconds pause) {
  auto ring = RingSegment::Attach(name);
  if (!ring.ok()) return 2;
  auto consumer = Consumer::Register(*ring, consumer_name, options);
  if (!consumer.ok()) return 3;
  for (std::int64_t next = consumer->sequence() + 1;;) {
    const WaitResult r = consumer->barrier().WaitFor(next);
    if (r.status == WaitStatus::kClosed) {
      ::pause();
      return 0;
    }
    if (r.status != WaitStatus::kOk) return 10;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    consumer->Release(r.available, static_cast<std::uint64_t>(r.available - next + 1));
    next = r.available + 1;
  }
}

// Waits until every consumer released `last`, keeps the stats of that moment in `stats`, then
// ends the consumer processes; true when they all got there (a consumer that failed exits
// early with its code instead).
bool AwaitAll(const RingSegment& ring, std::int64_t last, std::initializer_list<pid_t> children,
              RingStats* stats) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    *stats = Stats(ring);
    done = true;
    for (const ConsumerStats& c : stats->consumers) done = done && c.sequence >= last;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  bool lingered = true;
  for (pid_t child : children) {
    ::kill(child, SIGTERM);
    lingered = WaitChild(child) == 128 + SIGTERM && lingered;
  }
  return done && lingered;
}

const ConsumerStats* Find(const RingStats& st, std::string_view name) {
  for (const ConsumerStats& c : st.consumers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TEST(ObservabilityTest, ShouldShowEachStagesPublishToReleaseLatencyWhenStagesRunInProcesses) {
  ScopedRingName name;
  constexpr std::int64_t kEvents = 2000;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 64, .schema = kSchema,
                                   .latency_sample_every = 16});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const pid_t slow = ForkChild(
      [&] { return Drain(name.get(), "slow", {}, std::chrono::microseconds(1000)); });
  ASSERT_TRUE(AwaitConsumers(*ring, 1));
  const pid_t fast = ForkChild([&] { return Drain(name.get(), "fast", {}, {}); });
  ASSERT_TRUE(AwaitConsumers(*ring, 2));
  const pid_t after = ForkChild(
      [&] { return Drain(name.get(), "after_slow", {.after = {"slow"}}, {}); });
  ASSERT_TRUE(AwaitConsumers(*ring, 3));
  const pid_t producer = ForkChild([&] { return Produce(name.get(), kEvents, {}); });
  EXPECT_EQ(WaitChild(producer), 0);
  RingStats st;
  ASSERT_TRUE(AwaitAll(*ring, kEvents - 1, {slow, fast, after}, &st));

  EXPECT_EQ(st.latency_sample_every, 16u);
  const ConsumerStats* s = Find(st, "slow");
  const ConsumerStats* f = Find(st, "fast");
  const ConsumerStats* a = Find(st, "after_slow");
  ASSERT_TRUE(s && f && a);
  // Every 16th of 2000 sequences, each released once by each stage.
  for (const ConsumerStats* c : {s, f, a}) EXPECT_EQ(c->latency.count, kEvents / 16) << c->name;
  EXPECT_GE(s->latency.QuantileNs(0.5), 1e6);  // the 1 ms it sleeps per batch shows
  EXPECT_GE(static_cast<double>(s->latency.max_ns), 1e6);
  EXPECT_GE(a->latency.sum_ns, s->latency.sum_ns);  // after it: released later, every sample
  EXPECT_LT(f->latency.QuantileNs(0.5), s->latency.QuantileNs(0.5));
  const std::string json = StatsJson(st);
  EXPECT_NE(json.find("\"latency\": {\"samples\": 125, \"p50_s\": "), std::string::npos) << json;
}

TEST(ObservabilityTest, ShouldStampSamplesOfEveryProducerWhenAMultiProducerRingIsFed) {
  ScopedRingName name;
  constexpr std::int64_t kPerProducer = 3000;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 128,
                                   .sequencer = SequencerKind::kMultiProducer,
                                   .latency_sample_every = 8});
  ASSERT_TRUE(ring.ok());
  const pid_t c = ForkChild([&] { return Drain(name.get(), "c", {}, {}); });
  ASSERT_TRUE(AwaitConsumers(*ring, 1));
  std::vector<pid_t> producers;
  for (int p = 0; p < 2; ++p) {
    producers.push_back(ForkChild([&] {
      auto r = RingSegment::Attach(name.get());
      if (!r.ok()) return 2;
      auto producer = MultiProducerSequencer::Attach(*r, {.kind = WaitKind::kYielding});
      if (!producer.ok()) return 3;
      for (std::int64_t i = 0; i < kPerProducer; i += 3) {  // claims of 3: samples mid-claim
        const std::int64_t hi = *producer->Next(3);
        producer->Publish(hi - 2, hi);
      }
      return 0;
    }));
  }
  for (pid_t p : producers) EXPECT_EQ(WaitChild(p), 0);
  RingStats st;
  ASSERT_TRUE(AwaitAll(*ring, 2 * kPerProducer - 1, {c}, &st));
  ASSERT_EQ(st.consumers.size(), 1u);
  EXPECT_EQ(st.consumers[0].latency.count, 2 * kPerProducer / 8);  // every 8th, both producers'
}

TEST(ObservabilityTest, ShouldRecordNoLatencyWhenSamplingIsOff) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 64, .latency_sample_every = 0});
  ASSERT_TRUE(ring.ok());
  const pid_t c = ForkChild([&] { return Drain(name.get(), "c", {}, {}); });
  ASSERT_TRUE(AwaitConsumers(*ring, 1));
  EXPECT_EQ(Produce(name.get(), 5000, {}), 0);
  RingStats st;
  ASSERT_TRUE(AwaitAll(*ring, 4999, {c}, &st));
  ASSERT_EQ(st.consumers.size(), 1u);
  EXPECT_EQ(st.consumers[0].events, 5000u);
  EXPECT_EQ(st.consumers[0].latency.count, 0u);
}

TEST(ObservabilityTest, ShouldRefuseASamplingPeriodThatIsNotAPowerOfTwo) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .latency_sample_every = 24});
  ASSERT_EQ(ring.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ring.status().message().find("latency_sample_every 24"), std::string_view::npos);
  auto events = RingSegment::Create({.name = name.get(), .flight_events = 5000});
  EXPECT_EQ(events.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ObservabilityTest, ShouldWriteAFlightRecordWhenAProducerWaitsLongerThanTheThreshold) {
  ScopedRingName name;
  TempDir dir;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16, .schema = kSchema,
                                   .flight_wait = absl::Milliseconds(200),
                                   .flight_dir = dir.get(), .flight_events = 8});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto stuck = Consumer::Register(*ring, "stuck");  // here: takes 5 events, then nothing
  ASSERT_TRUE(stuck.ok());
  const pid_t producer = ForkChild([&] {
    auto r = RingSegment::Attach(name.get());
    if (!r.ok()) return 2;
    auto p = SingleProducerSequencer::Attach(*r, {.kind = WaitKind::kBlocking});
    if (!p.ok()) return 3;
    for (int i = 0; i < 21; ++i) {  // the last 5 once the consumer released 0..4
      const std::int64_t s = p->Next();
      Fill(*r, s);
      p->Publish(s);
    }
    // Full. Wait 1.5 s, past the 200 ms threshold.
    return p->NextFor(1, 1'500'000'000).status().code() == absl::StatusCode::kDeadlineExceeded
               ? 0 : 10;
  });
  const WaitResult r = stuck->barrier().WaitFor(4);
  ASSERT_EQ(r.status, WaitStatus::kOk);
  stuck->Release(4, 5);
  ASSERT_EQ(WaitChild(producer), 0);

  const RingStats st = Stats(*ring);
  ASSERT_EQ(st.flight.count, 1u);
  EXPECT_EQ(st.flight.path.rfind(dir.get() + "/" + name.get() + ".", 0), 0u) << st.flight.path;
  EXPECT_GE(st.full_waits, 1u);
  EXPECT_GE(st.full_wait_ns, 1'000'000'000u);
  const std::string record = ReadFile(st.flight.path);
  EXPECT_NE(record.find("\"reason\": \"producer-blocked\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"stuck_sequence\": 5"), std::string::npos) << record;
  EXPECT_NE(record.find("\"name\": \"stuck\""), std::string::npos);
  EXPECT_NE(record.find("\"wait\": \"yielding\""), std::string::npos);  // its strategy
  // 8 events from sequence 5 on (1..4 were overwritten by 17..20), decoded with the schema.
  EXPECT_NE(record.find("\"events\": [{\"sequence\": 5, \"event\": {\"seq\": 5, \"price\": 2.5, "
                        "\"symbol\": \"ABC\"}}"),
            std::string::npos)
      << record;
  EXPECT_NE(record.find("{\"sequence\": 12, "), std::string::npos);
  EXPECT_EQ(record.find("{\"sequence\": 13, "), std::string::npos);
  EXPECT_NE(StatsJson(st).find("\"latest_flight_record\": \"" + st.flight.path + "\""),
            std::string::npos);
}

TEST(ObservabilityTest, ShouldWriteAFlightRecordWhenAProducerEvictsASlowConsumer) {
  ScopedRingName name;
  TempDir dir;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16, .schema = kSchema,
                                   .flight_wait = absl::ZeroDuration(),
                                   .flight_dir = dir.get()});
  ASSERT_TRUE(ring.ok());
  const pid_t laggard = ForkChild([&] {
    auto r = RingSegment::Attach(name.get());
    if (!r.ok()) return 2;
    auto c = Consumer::Register(*r, "laggard",
                                {.stall_policy = StallPolicy::kEvict, .max_lag = 8,
                                 .max_lag_ns = 100'000'000});
    if (!c.ok()) return 3;
    ::pause();  // reads nothing until killed
    return 0;
  });
  ASSERT_TRUE(AwaitConsumers(*ring, 1));
  EXPECT_EQ(Produce(name.get(), 100, {}), 0);  // returns once the laggard is evicted
  ::kill(laggard, SIGKILL);
  WaitChild(laggard);
  const RingStats st = Stats(*ring);
  ASSERT_EQ(st.flight.count, 1u);
  const std::string record = ReadFile(st.flight.path);
  EXPECT_NE(record.find("\"reason\": \"eviction\""), std::string::npos) << record;
  EXPECT_NE(record.find("laggard (at -1, beyond its slow-consumer limit)"), std::string::npos)
      << record;
  EXPECT_NE(record.find("\"stuck_sequence\": 0"), std::string::npos);
  EXPECT_NE(record.find("{\"sequence\": 0, \"event\": {\"seq\": 0, \"price\": 0, "),
            std::string::npos)
      << record;
}

// Registers `consumer` and has an operator evict it (a flight record is written).
void RegisterAndEvict(RingSegment& ring, const std::string& consumer) {
  auto c = Consumer::Register(ring, consumer);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(EvictConsumer(ring, consumer).ok());
}

TEST(ObservabilityTest, ShouldWriteAFlightRecordWhenAnOperatorEvicts) {
  ScopedRingName name;
  TempDir dir;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16, .flight_dir = dir.get()});
  ASSERT_TRUE(ring.ok());
  RegisterAndEvict(*ring, "victim");
  const FlightRecordInfo info = LatestFlightRecord(*ring);
  ASSERT_EQ(info.count, 1u);
  const std::string record = ReadFile(info.path);
  EXPECT_NE(record.find("victim evicted by an operator"), std::string::npos) << record;
  EXPECT_NE(record.find("\"events\": []"), std::string::npos);  // nothing published yet
}

TEST(ObservabilityTest, ShouldKeepTheFlightRecordCountWhenAWriterDiedMidRecord) {
  ScopedRingName name;
  TempDir dir;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16, .flight_dir = dir.get()});
  ASSERT_TRUE(ring.ok());
  RegisterAndEvict(*ring, "victim");
  ASSERT_EQ(LatestFlightRecord(*ring).count, 1u);
  // A writer killed inside the seqlock leaves its version odd: the path is not whole, but the
  // count (a Prometheus counter) must not fall to zero.
  ring->producer().flight.version.fetch_add(1);
  const FlightRecordInfo torn = LatestFlightRecord(*ring);
  EXPECT_EQ(torn.count, 1u);
  EXPECT_TRUE(torn.path.empty());
  // The next record overtakes the dead writer.
  RegisterAndEvict(*ring, "second");
  const FlightRecordInfo next = LatestFlightRecord(*ring);
  EXPECT_EQ(next.count, 2u);
  EXPECT_NE(ReadFile(next.path).find("second evicted by an operator"), std::string::npos);
}

TEST(ObservabilityTest, ShouldCountAScanLappedByTheProducersAsPublished) {
  // Stats reads the cursor, then scans the marks from a lap back; producers may publish the
  // next lap of those slots in between. Made here without a race: a cursor read a lap ago.
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 8,
                                   .sequencer = SequencerKind::kMultiProducer});
  ASSERT_TRUE(ring.ok());
  auto producer = MultiProducerSequencer::Attach(*ring);
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 8; ++i) producer->Publish(producer->Next());
  const std::int64_t read_then = producer->cursor();  // 7
  for (int i = 0; i < 3; ++i) producer->Publish(producer->Next());  // 8..10 overwrite 0..2
  const internal::Availability availability(*ring);
  EXPECT_EQ(availability.HighestPublishedLapped(0, read_then), 7);  // was -1: a count drop
  EXPECT_EQ(availability.HighestPublished(0, read_then), -1);  // a barrier's exact question
  // A claim not yet published still stops the scan.
  const std::int64_t claimed = producer->Next();  // 11, in the slot of 3
  EXPECT_EQ(availability.HighestPublishedLapped(8, claimed), 10);
  producer->Publish(claimed);
  EXPECT_EQ(Stats(*ring).published, 11);
}

TEST(ObservabilityTest, ShouldNeverExportAHistogramCountBelowItsLastBucket) {
  // The buckets are read before the count, and a handler may finish in between.
  RingSnapshot snapshot;
  snapshot.name = "r";
  snapshot.readable = true;
  ConsumerStats c;
  c.name = "c";
  c.latency.buckets[0] = 2;
  c.latency.buckets[3] = 3;
  c.latency.count = 4;  // one sample counted in its bucket, not yet in the count
  snapshot.stats.consumers.push_back(c);
  for (const MetricFamilyData& f : MetricFamilies({snapshot})) {
    if (f.type != MetricType::kHistogram) continue;
    ASSERT_EQ(f.points.size(), 1u);
    EXPECT_EQ(f.points[0].buckets.back().second, 5u);
    EXPECT_EQ(f.points[0].count, 5u);
    return;
  }
  FAIL() << "no histogram family";
}

TEST(ObservabilityTest, ShouldCountSleepsAndWakesOfABlockingConsumer) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  const pid_t c = ForkChild([&] {
    return Drain(name.get(), "sleeper", {.wait = {.kind = WaitKind::kBlocking}}, {});
  });
  ASSERT_TRUE(AwaitConsumers(*ring, 1));
  EXPECT_EQ(Produce(name.get(), 40, std::chrono::microseconds(2000)), 0);
  RingStats st;
  ASSERT_TRUE(AwaitAll(*ring, 39, {c}, &st));
  ASSERT_EQ(st.consumers.size(), 1u);
  EXPECT_GT(st.consumers[0].sleeps, 10u);  // 2 ms apart: most waits end asleep
  EXPECT_GT(st.consumers[0].wakes, 10u);
  EXPECT_LE(st.consumers[0].wakes, st.consumers[0].sleeps);
  EXPECT_GE(st.consumers[0].last_batch, 1u);
}

TEST(ObservabilityTest, ShouldDecodeEveryFieldKindWhenWritingAnEventAsJson) {
  auto schema = ParseSchema("<i8:seq,<f8:px,S4:sym,(2,)<i4:lv,b1:ok,<U2:u,<c8:z,V3:pad,>u2:be");
  ASSERT_TRUE(schema.ok()) << schema.status();
  std::vector<std::byte> e(schema->itemsize);
  auto put = [&](std::size_t at, const auto& v) { std::memcpy(e.data() + at, &v, sizeof(v)); };
  put(0, std::int64_t{-7});
  put(8, 1.25);
  std::memcpy(e.data() + 16, "AB", 2);
  put(20, std::int32_t{3});
  put(24, std::int32_t{-4});
  e[28] = std::byte{1};
  put(29, std::uint32_t{'h'});
  put(33, std::uint32_t{'i'});
  put(37, 0.5f);
  put(41, -2.0f);
  e[45] = std::byte{0xab};
  e[48] = std::byte{0x01};  // big-endian 0x0102
  e[49] = std::byte{0x02};
  EXPECT_EQ(EventJson(*schema, e),
            "{\"seq\": -7, \"px\": 1.25, \"sym\": \"AB\", \"lv\": [3, -4], \"ok\": true, "
            "\"u\": \"hi\", \"z\": [0.5, -2], \"pad\": \"ab0000\", \"be\": 258}");
  auto raw = ParseSchema("");
  ASSERT_TRUE(raw.ok());
  const std::byte two[2] = {std::byte{0x0f}, std::byte{0xa0}};
  EXPECT_EQ(EventJson(*raw, two), "{\"bytes\": \"0fa0\"}");
}

}  // namespace
}  // namespace xdisruptor
