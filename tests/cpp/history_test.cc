// Joins with history and observers across real processes: a producer child publishing as fast
// as it may, consumers joining at older sequences while it runs, observers that are lapped.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::AwaitConsumers;
using testing::ForkChild;
using testing::ScopedRingName;
using testing::TestEvent;
using testing::WaitChild;

constexpr std::int64_t kCapacity = 256;

// Publishes TestEvents flat out (batches of 16) until `events` exist, then closes the ring.
template <typename Sequencer>
int ProduceFlatOut(const std::string& name, std::int64_t events) {
  auto ring = Ring<TestEvent>::Attach(name);
  if (!ring.ok()) return 2;
  auto producer = Sequencer::Attach(ring->segment(), {.kind = WaitKind::kYielding});
  if (!producer.ok()) return 3;
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min<std::int64_t>(16, events - done);
    const std::int64_t hi = *producer->Next(n);
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) (*ring)[s].Fill(s);
    producer->Publish(hi - n + 1, hi);
    done += n;
  }
  producer->Close();
  return 0;
}

// A gating consumer child that reads to the end of the stream (it keeps the producer honest:
// the frontier moves with it).
int Anchor(const std::string& name) {
  auto ring = Ring<TestEvent>::Attach(name);
  if (!ring.ok()) return 2;
  auto consumer = Consumer::Register(ring->segment(), "anchor", {.wait = {.kind = WaitKind::kYielding}});
  if (!consumer.ok()) return 3;
  struct Counter {
    std::int64_t bad = 0;
    void on_event(TestEvent& e, std::int64_t s, bool) { bad += !e.Verify(s); }
  } counter;
  BatchEventProcessor<TestEvent, Counter> processor(*ring, *consumer, counter);
  return processor.Run() == WaitStatus::kClosed && counter.bad == 0 ? 0 : 10;
}

struct JoinTally {
  int joined = 0;
  int refused = 0;
  std::int64_t bad = 0;
};

// Joins at start (gating), reads `count` events from it checking each, and leaves.
void JoinAndRead(Ring<TestEvent>& ring, std::int64_t start, std::int64_t count, JoinTally& t) {
  auto joiner = Consumer::Register(ring.segment(), "joiner",
                                   {.wait = {.kind = WaitKind::kYielding}, .start_at = start});
  if (!joiner.ok()) {
    ASSERT_EQ(joiner.status().code(), absl::StatusCode::kOutOfRange) << joiner.status();
    ++t.refused;
    return;
  }
  ++t.joined;
  EXPECT_EQ(joiner->sequence(), start - 1);
  for (std::int64_t s = start; s < start + count;) {
    const WaitResult r = joiner->barrier().WaitFor(s);
    if (r.status == WaitStatus::kClosed) break;
    ASSERT_EQ(r.status, WaitStatus::kOk);
    const std::int64_t hi = std::min(r.available, start + count - 1);
    for (; s <= hi; ++s) t.bad += !ring[s].Verify(s);
    joiner->Release(hi, static_cast<std::uint64_t>(hi - start + 1));
  }
  ASSERT_TRUE(joiner->Deregister().ok());
}

template <typename Sequencer>
void JoinWithHistoryUnderLoad(SequencerKind kind) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create(
      {.name = name.get(), .capacity = kCapacity, .sequencer = kind});
  ASSERT_TRUE(ring.ok()) << ring.status();
  constexpr std::int64_t kEvents = 3'000'000;
  const pid_t anchor = ForkChild([&] { return Anchor(name.get()); });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  const pid_t producer =
      ForkChild([&] { return ProduceFlatOut<Sequencer>(name.get(), kEvents); });
  JoinTally tally;
  // Starts at the slowest gating sequence's next event (always protected: the producer's
  // frontier is at most a lap past it) and a little before it (protected or refused, racing
  // the producer): never a joined consumer that reads an overwritten event.
  for (int round = 0; LoadCursor(ring->segment().producer()) < kEvents - 4 * kCapacity;
       ++round) {
    const std::int64_t minimum = MinimumGatingSequence(ring->segment());
    const std::int64_t back = std::vector<std::int64_t>{0, 1, 7, 64, 200}[round % 5];
    const std::int64_t start = std::max<std::int64_t>(0, minimum + 1 - back);
    JoinAndRead(*ring, start, 2 * kCapacity, tally);
    if (::testing::Test::HasFatalFailure()) break;
  }
  EXPECT_EQ(WaitChild(producer), 0);
  EXPECT_EQ(WaitChild(anchor), 0);
  EXPECT_EQ(tally.bad, 0);
  EXPECT_GT(tally.joined, 0);
  std::printf("join with history under load: %d joined, %d refused (not protected)\n",
              tally.joined, tally.refused);
}

// A producer that claimed and wrote slots past the cursor and went away without publishing
// them (detached, or died) leaves them half the next lap: a successor attaching must not make
// a join at a sequence those slots held look safe.
TEST(JoinWithHistoryTest, ShouldRefuseAStartWhoseSlotAGoneProducerClaimedPastTheCursor) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 8});
  ASSERT_TRUE(ring.ok());
  {
    auto gone = SingleProducerSequencer::Attach(ring->segment());
    ASSERT_TRUE(gone.ok());
    for (std::int64_t s = 0; s <= 100; ++s) {
      (*ring)[s].Fill(s);
      gone->Publish(gone->Next());
    }
    const std::int64_t hi = *gone->Next(4);  // 101..104: the slots of 93..96
    for (std::int64_t s = hi - 3; s <= hi; ++s) (*ring)[s].Fill(s);
    ASSERT_TRUE(gone->Detach().ok());  // never published
  }
  {
    // A successor that publishes one (101) and detaches must not take the rest with it.
    auto successor = SingleProducerSequencer::Attach(ring->segment());
    ASSERT_TRUE(successor.ok());
    (*ring)[101].Fill(101);
    successor->Publish(successor->Next());
    ASSERT_TRUE(successor->Detach().ok());
  }
  auto successor = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(successor.ok());
  EXPECT_EQ(Consumer::Register(ring->segment(), "late", {.start_at = 95}).status().code(),
            absl::StatusCode::kOutOfRange);  // 95's slot holds 103
  auto intact = Consumer::Register(ring->segment(), "intact", {.start_at = 97});
  ASSERT_TRUE(intact.ok()) << intact.status();
  const WaitResult r = intact->barrier().WaitFor(97);
  ASSERT_EQ(r.status, WaitStatus::kOk);
  EXPECT_EQ(r.available, 101);
  for (std::int64_t s = 97; s <= 101; ++s) EXPECT_TRUE((*ring)[s].Verify(s)) << s;
}

TEST(JoinWithHistoryTest, ShouldReadIntactEventsFromAnOlderSequenceWhileOneProducerRunsFlatOut) {
  JoinWithHistoryUnderLoad<SingleProducerSequencer>(SequencerKind::kSingleProducer);
}

TEST(JoinWithHistoryTest, ShouldReadIntactEventsFromAnOlderSequenceWhileProducersRunFlatOut) {
  JoinWithHistoryUnderLoad<MultiProducerSequencer>(SequencerKind::kMultiProducer);
}

// A slow observer on a ring nobody gates: lapped again and again, and every event it read
// intact except in the batch it was told about (the batch handed out last, not released).
template <typename Sequencer>
void ObserverLappedUnderLoad(SequencerKind kind) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create(
      {.name = name.get(), .capacity = 64, .sequencer = kind});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const pid_t producer =
      ForkChild([&] { return ProduceFlatOut<Sequencer>(name.get(), 4'000'000); });
  struct Checker {
    std::int64_t bad = 0;
    std::int64_t bad_before_batch = 0;
    std::int64_t batch_last = -1;
    std::int64_t next = 0;
    void on_batch_start(std::int64_t size, std::int64_t) {
      bad_before_batch = bad;
      batch_last = next + size - 1;
    }
    void on_event(TestEvent& e, std::int64_t s, bool end_of_batch) {
      bad += s != next || !e.Verify(s);
      next = s + 1;
      if (end_of_batch) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  int laps = 0;
  int closed = 0;
  std::int64_t unreported_bad = 0;
  while (closed == 0) {
    auto observer = Consumer::Register(ring->segment(), "observer",
                                       {.wait = {.kind = WaitKind::kYielding}, .gating = false});
    ASSERT_TRUE(observer.ok()) << observer.status();
    ASSERT_TRUE(observer->observer());
    Checker checker{.next = observer->sequence() + 1};
    BatchEventProcessor<TestEvent, Checker> processor(*ring, *observer, checker,
                                                      {.max_batch = 8});
    const WaitStatus why = processor.Run();
    if (why == WaitStatus::kLapped) {
      ++laps;
      const bool last_released = observer->sequence() >= checker.batch_last;
      unreported_bad += last_released ? checker.bad : checker.bad_before_batch;
    } else {
      ASSERT_EQ(why, WaitStatus::kClosed);
      unreported_bad += checker.bad;
      ++closed;
    }
    ASSERT_TRUE(observer->Deregister().ok());
  }
  EXPECT_EQ(WaitChild(producer), 0);
  EXPECT_EQ(unreported_bad, 0) << "an observer read overwritten events and was not told";
  EXPECT_GT(laps, 0);
  std::printf("observer under load: lapped %d times, no unreported damage\n", laps);
}

TEST(ObserverTest, ShouldBeToldEveryTimeItIsLappedByOneProducer) {
  ObserverLappedUnderLoad<SingleProducerSequencer>(SequencerKind::kSingleProducer);
}

TEST(ObserverTest, ShouldBeToldEveryTimeItIsLappedByManyProducers) {
  ObserverLappedUnderLoad<MultiProducerSequencer>(SequencerKind::kMultiProducer);
}

}  // namespace
}  // namespace xdisruptor
