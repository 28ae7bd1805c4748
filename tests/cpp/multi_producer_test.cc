// The multi-producer sequencer across real processes: several producers, one order, nothing
// lost or repeated, each producer's events in its order; tiny rings lapped many times; a
// producer that dies between claim and publish reported instead of hanging everyone.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "internal/producer_table.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::ForkChild;
using testing::ScopedRingName;
using testing::AwaitConsumers;
using testing::WaitChild;

// One event: who published it, its number among that producer's events, and a check word.
struct Tagged {
  std::int64_t producer;
  std::int64_t count;
  std::uint64_t check;
  std::uint64_t pad[5];
  static std::uint64_t Check(std::int64_t p, std::int64_t c) {
    return (static_cast<std::uint64_t>(p) << 48) ^ (static_cast<std::uint64_t>(c) * 0x9E3779B97F4A7C15ull);
  }
};
static_assert(sizeof(Tagged) == 64);

absl::StatusOr<Ring<Tagged>> CreateMulti(const std::string& name, std::uint64_t capacity) {
  return Ring<Tagged>::Create(
      {.name = name, .capacity = capacity, .sequencer = SequencerKind::kMultiProducer});
}


int ProducerProcess(const std::string& name, std::int64_t id, std::int64_t events,
                    std::int64_t batch) {
  auto ring = Ring<Tagged>::Attach(name);
  if (!ring.ok()) return 2;
  auto seq = MultiProducerSequencer::Attach(ring->segment(), {.kind = WaitKind::kYielding});
  if (!seq.ok()) return 4;
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min(batch, events - done);
    const std::int64_t hi = *seq->Next(n);
    for (std::int64_t s = hi - n + 1; s <= hi; ++s, ++done) {
      Tagged& t = (*ring)[s];
      t.producer = id;
      t.count = done;
      t.check = Tagged::Check(id, done);
    }
    seq->Publish(hi - n + 1, hi);
  }
  return 0;
}

// Checks that each producer's events come exactly once and in its order.
struct OrderChecker {
  std::vector<std::int64_t> next_count;
  std::int64_t errors = 0;
  std::int64_t events = 0;
  void on_event(Tagged& t, std::int64_t, bool) {
    if (t.producer < 0 || t.producer >= static_cast<std::int64_t>(next_count.size()) ||
        t.check != Tagged::Check(t.producer, t.count)) {
      ++errors;
      return;
    }
    errors += t.count != next_count[static_cast<std::size_t>(t.producer)];
    next_count[static_cast<std::size_t>(t.producer)] = t.count + 1;
    ++events;
  }
};

int ConsumerProcess(const std::string& name, const std::string& consumer, int producers,
                    std::int64_t per_producer) {
  auto ring = Ring<Tagged>::Attach(name);
  if (!ring.ok()) return 2;
  auto c = Consumer::Register(ring->segment(), consumer, {.wait = {.kind = WaitKind::kYielding}});
  if (!c.ok()) return 3;
  OrderChecker checker{std::vector<std::int64_t>(static_cast<std::size_t>(producers), 0)};
  BatchEventProcessor<Tagged, OrderChecker> processor(*ring, *c, checker);
  // Runs until the test closes the ring after every producer finished.
  if (processor.Run() != WaitStatus::kClosed) return 12;
  if (checker.errors != 0) return 10;
  for (std::int64_t n : checker.next_count) {
    if (n != per_producer) return 11;
  }
  return checker.events == producers * per_producer ? 0 : 13;
}

void RunTopology(std::uint64_t capacity, int producers, std::int64_t per_producer,
                 std::int64_t batch) {
  ScopedRingName name;
  auto ring = CreateMulti(name.get(), capacity);
  ASSERT_TRUE(ring.ok()) << ring.status();
  std::vector<pid_t> consumers;
  for (int c = 0; c < 2; ++c) {
    consumers.push_back(ForkChild([&, c] {
      return ConsumerProcess(name.get(), "reader" + std::to_string(c), producers, per_producer);
    }));
  }
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 2));
  std::vector<pid_t> writers;
  for (int p = 0; p < producers; ++p) {
    writers.push_back(
        ForkChild([&, p] { return ProducerProcess(name.get(), p, per_producer, batch); }));
  }
  for (pid_t w : writers) EXPECT_EQ(WaitChild(w, std::chrono::seconds(240)), 0);
  // Every producer is done: end the stream (any producer of the ring may close it).
  auto closer = MultiProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(closer.ok()) << closer.status();
  closer->Close();
  for (pid_t c : consumers) EXPECT_EQ(WaitChild(c, std::chrono::seconds(240)), 0);
}

TEST(MultiProducerTest, ShouldDeliverEveryEventOnceInProducerOrderWhenThreeProcessesPublish) {
  RunTopology(/*capacity=*/4096, /*producers=*/3, /*per_producer=*/3'000'000, /*batch=*/16);
}

TEST(MultiProducerTest, ShouldKeepAvailabilityMarksRightOverManyLapsOfATinyRing) {
  RunTopology(/*capacity=*/4, /*producers=*/2, /*per_producer=*/200'000, /*batch=*/1);
}

// An exception between Next and Publish unwinds the sequencer, which detaches: its claim
// will never be published either. The consumer is told, as after a crash (it waited for ever:
// the detach wiped the evidence).
TEST(MultiProducerTest, ShouldReportTheStallWhenAProducerDetachesWithAClaimUnpublished) {
  ScopedRingName name;
  auto ring = CreateMulti(name.get(), 64);
  ASSERT_TRUE(ring.ok());
  auto consumer = Consumer::Register(ring->segment(), "reader");
  ASSERT_TRUE(consumer.ok());
  auto live = MultiProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(live.ok());
  live->Publish(0, *live->Next(2));
  {
    auto thrown = MultiProducerSequencer::Attach(ring->segment());
    ASSERT_TRUE(thrown.ok());
    (void)*thrown->Next(3);  // 2..4, then the fill throws: the sequencer goes, unpublished
  }
  live->Publish(*live->Next(1));
  consumer->Release(1, 2);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  WaitResult r{};
  do {
    r = consumer->barrier().WaitFor(2, 50'000'000);
  } while (r.status == WaitStatus::kCheckpoint && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(r.status, WaitStatus::kProducerStalled);
  // Its entry is kept as the evidence, not handed to the next producer...
  auto next = MultiProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(internal::HasStalledProducer(ring->segment(), 3));
  // Told, the consumer leaves; the producers go on past the hole's next lap (its slots are
  // theirs once its writer is found dead).
  ASSERT_TRUE(consumer->Deregister().ok());
  for (int i = 0; i < 70; ++i) next->Publish(next->Next());
  EXPECT_EQ(next->cursor(), 75);
}

TEST(MultiProducerTest, ShouldReportTheStallWhenAProducerDiesBetweenClaimAndPublish) {
  ScopedRingName name;
  auto ring = CreateMulti(name.get(), 64);
  ASSERT_TRUE(ring.ok());
  auto consumer = Consumer::Register(ring->segment(), "reader",
                                     {.wait = {.kind = WaitKind::kBlocking}});
  ASSERT_TRUE(consumer.ok());
  auto live = MultiProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(live.ok());
  live->Publish(0, *live->Next(2));  // 0..1 published
  const pid_t doomed = ForkChild([&] {
    auto r = Ring<Tagged>::Attach(name.get());
    if (!r.ok()) return 2;
    auto seq = MultiProducerSequencer::Attach(r->segment());
    if (!seq.ok()) return 4;
    (void)*seq->Next(3);  // claims 2..4 and dies before publishing them
    ::_exit(0);
  });
  ASSERT_EQ(WaitChild(doomed), 0);
  live->Publish(*live->Next(1));  // 5 is published, but 2..4 never will be
  WaitResult r = consumer->barrier().WaitFor(0);
  EXPECT_EQ(r.status, WaitStatus::kOk);
  EXPECT_EQ(r.available, 1);  // contiguous only: stops before the hole
  consumer->Release(1, 2);
  const auto start = std::chrono::steady_clock::now();
  r = consumer->barrier().WaitFor(2);
  EXPECT_EQ(r.status, WaitStatus::kProducerStalled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(internal::HasStalledProducer(ring->segment(), 2));
  EXPECT_FALSE(internal::HasStalledProducer(ring->segment(), 5));  // published by the live one
  // Told, the consumer leaves. Producers go on past the hole's next lap: nobody will publish
  // 2..4 and nobody reads them, so claims of their slots (66..68) do not wait for them for
  // ever (they did, at full CPU).
  ASSERT_TRUE(consumer->Deregister().ok());
  const pid_t goes_on = ForkChild([&] {
    auto again = Ring<Tagged>::Attach(name.get());
    if (!again.ok()) return 2;
    auto seq = MultiProducerSequencer::Attach(again->segment());
    if (!seq.ok()) return 4;
    for (int i = 0; i < 200; ++i) seq->Publish(seq->Next());
    return 0;
  });
  EXPECT_EQ(WaitChild(goes_on, std::chrono::seconds(30)), 0);
  EXPECT_EQ(live->cursor(), 205);
}

TEST(MultiProducerTest, ShouldRefuseTheWrongSequencerForTheRing) {
  ScopedRingName single;
  auto sp = RingSegment::Create({.name = single.get(), .capacity = 8});
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(MultiProducerSequencer::Attach(*sp).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ScopedRingName multi;
  auto mp = RingSegment::Create(
      {.name = multi.get(), .capacity = 8, .sequencer = SequencerKind::kMultiProducer});
  ASSERT_TRUE(mp.ok());
  EXPECT_EQ(SingleProducerSequencer::Attach(*mp).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Many producers of one process each take an entry of the producer table, up to 16.
  std::vector<MultiProducerSequencer> producers;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    auto p = MultiProducerSequencer::Attach(*mp);
    ASSERT_TRUE(p.ok()) << p.status();
    producers.push_back(*std::move(p));
  }
  EXPECT_EQ(MultiProducerSequencer::Attach(*mp).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(MultiProducerTest, ShouldGateEveryProducerOnTheSlowestConsumer) {
  ScopedRingName name;
  auto ring = CreateMulti(name.get(), 8);
  ASSERT_TRUE(ring.ok());
  auto consumer = Consumer::Register(ring->segment(), "slow");
  ASSERT_TRUE(consumer.ok());
  auto a = MultiProducerSequencer::Attach(ring->segment());
  auto b = MultiProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->TryNext(5).ok());
  ASSERT_TRUE(b->TryNext(3).ok());
  EXPECT_FALSE(a->TryNext(1).ok());  // 8 claimed, none consumed
  EXPECT_EQ(b->RemainingCapacity(), 0);
  a->Publish(0, 4);
  b->Publish(5, 7);
  EXPECT_EQ(consumer->barrier().WaitFor(0).available, 7);
  consumer->Release(3, 4);
  EXPECT_EQ(*a->TryNext(4), 11);
  // Full again: a bounded claim gives up after its limit instead of claiming and waiting.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(b->NextFor(1, 20'000'000).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(a->cursor(), 11);  // nothing was claimed by the failed attempt
}

}  // namespace
}  // namespace xdisruptor
