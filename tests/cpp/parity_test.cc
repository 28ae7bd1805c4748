// Disruptor parity: the scenarios of the LMAX Disruptor's own test suite (SequencerTest,
// RingBufferTest, SequenceBarrierTest, BatchEventProcessorTest, LifecycleAwareTest,
// MaxBatchSizeEventProcessorTest, RewindBatchEventProcessorTest, BatchingTest, EventPollerTest,
// dsl/DisruptorTest), written again on our API with the same expected values. A Disruptor
// "gating sequence" is a registered consumer here; a NoOpEventProcessor (gating at the cursor)
// is an observer. docs/disruptor-parity.md maps each scenario to its test here and says where
// we differ on purpose.
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <cstdio>
#include <cstring>
#include <latch>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using namespace std::chrono_literals;

// The reference's StubEvent: a value and a string.
struct StubEvent {
  std::int64_t value;
  char text[56];

  std::string str() const { return std::string(text, strnlen(text, sizeof(text))); }
  void set(std::string_view s) {
    std::memset(text, 0, sizeof(text));
    if (!s.empty()) std::memcpy(text, s.data(), std::min(s.size(), sizeof(text) - 1));
  }
};

template <typename S>
constexpr SequencerKind KindOf() {
  return std::is_same_v<S, SingleProducerSequencer> ? SequencerKind::kSingleProducer
                                                     : SequencerKind::kMultiProducer;
}

Ring<StubEvent> MakeRing(const ScopedRingName& name, std::uint64_t capacity, SequencerKind kind) {
  auto ring = Ring<StubEvent>::Create({.name = name.get(), .capacity = capacity, .sequencer = kind});
  EXPECT_TRUE(ring.ok()) << ring.status();
  return *std::move(ring);
}

template <typename S>
S Attach(Ring<StubEvent>& ring, WaitKind wait = WaitKind::kBlocking) {
  auto producer = S::Attach(ring.segment(), {.kind = wait});
  EXPECT_TRUE(producer.ok()) << producer.status();
  return *std::move(producer);
}

Consumer Register(Ring<StubEvent>& ring, std::string_view name, ConsumerOptions options = {}) {
  auto consumer = Consumer::Register(ring.segment(), name, options);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  return *std::move(consumer);
}

// ---------------------------------------------------------------- SequencerTest [S+M], 16 slots

template <typename S>
class SequencerParity : public ::testing::Test {
 protected:
  SequencerParity() : ring_(MakeRing(name_, 16, KindOf<S>())) {}
  ScopedRingName name_;
  Ring<StubEvent> ring_;
};
using Sequencers = ::testing::Types<SingleProducerSequencer, MultiProducerSequencer>;
TYPED_TEST_SUITE(SequencerParity, Sequencers);

TYPED_TEST(SequencerParity, ShouldStartWithInitialValue) {
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_EQ(s.Next(), 0);
}

TYPED_TEST(SequencerParity, ShouldBatchClaim) {
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_EQ(*s.Next(4), 3);
}

TYPED_TEST(SequencerParity, ShouldIndicateHasAvailableCapacity) {
  Consumer gating = Register(this->ring_, "gating");
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_TRUE(s.HasAvailableCapacity(1));
  EXPECT_TRUE(s.HasAvailableCapacity(16));
  EXPECT_FALSE(s.HasAvailableCapacity(17));
  s.Publish(s.Next());
  EXPECT_TRUE(s.HasAvailableCapacity(15));
  EXPECT_FALSE(s.HasAvailableCapacity(16));
}

TYPED_TEST(SequencerParity, ShouldIndicateNoAvailableCapacity) {
  Consumer gating = Register(this->ring_, "gating");
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_EQ(*s.Next(16), 15);
  s.Publish(0, 15);
  EXPECT_FALSE(s.HasAvailableCapacity(1));
}

TYPED_TEST(SequencerParity, ShouldHoldUpPublisherWhenBufferIsFull) {
  Consumer gating = Register(this->ring_, "gating");
  std::latch waiting(1), done(1);
  RingSegment& segment = this->ring_.segment();
  std::thread publisher([&] {
    auto s = Attach<TypeParam>(this->ring_);
    s.Publish(0, *s.Next(16));
    EXPECT_EQ(HighestPublished(segment, 0, LoadCursor(segment.producer())), 15);
    waiting.count_down();
    s.Publish(s.Next());  // blocks: the ring is full and the gating consumer is at -1
    done.count_down();
  });
  waiting.wait();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(HighestPublished(segment, 15, LoadCursor(segment.producer())), 15);
  gating.Release(0, 1);  // the gating sequence moves to 0
  done.wait();
  publisher.join();
  EXPECT_EQ(HighestPublished(segment, 15, LoadCursor(segment.producer())), 16);
}

TYPED_TEST(SequencerParity, ShouldThrowInsufficientCapacityExceptionWhenSequencerIsFull) {
  Consumer gating = Register(this->ring_, "gating");
  auto s = Attach<TypeParam>(this->ring_);
  for (int i = 0; i < 16; ++i) s.Next();
  EXPECT_EQ(s.TryNext().status().code(), absl::StatusCode::kResourceExhausted);
}

TYPED_TEST(SequencerParity, ShouldCalculateRemainingCapacity) {
  Consumer gating = Register(this->ring_, "gating");
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_EQ(s.RemainingCapacity(), 16);
  for (int i = 1; i < 16; ++i) {
    s.Next();
    EXPECT_EQ(s.RemainingCapacity(), 16 - i);
  }
}

TYPED_TEST(SequencerParity, ShouldNotBeAvailableUntilPublished) {
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_EQ(*s.Next(6), 5);
  for (int i = 0; i <= 5; ++i) EXPECT_FALSE(IsAvailable(this->ring_.segment(), i)) << i;
  s.Publish(0, 5);
  for (int i = 0; i <= 5; ++i) EXPECT_TRUE(IsAvailable(this->ring_.segment(), i)) << i;
  EXPECT_FALSE(IsAvailable(this->ring_.segment(), 6));
}

// shouldNotifyWaitStrategyOnPublish(Batch): one wake-up per publish call, also for a range.
// Our blocking wait counts wake-ups in the ring (the futex word moves once per wake).
TYPED_TEST(SequencerParity, ShouldNotifyWaitStrategyOnPublishBatch) {
  Consumer sleeper = Register(this->ring_, "sleeper", {.wait = {.kind = WaitKind::kBlocking}});
  NotificationState& n = this->ring_.segment().producer().cursor_notification;
  auto s = Attach<TypeParam>(this->ring_);
  std::thread waiter([&] { EXPECT_EQ(sleeper.barrier().WaitFor(0).status, WaitStatus::kOk); });
  while (n.consumer_sleepers.load() == 0) std::this_thread::sleep_for(1ms);
  const std::uint32_t before = n.futex_word.load();
  EXPECT_EQ(*s.Next(4), 3);
  s.Publish(0, 3);
  waiter.join();
  EXPECT_EQ(n.futex_word.load() - before, 1u);
}

TYPED_TEST(SequencerParity, ShouldWaitOnPublication) {
  Consumer reader = Register(this->ring_, "reader");
  auto s = Attach<TypeParam>(this->ring_);
  EXPECT_EQ(*s.Next(10), 9);
  for (int i = 0; i <= 3; ++i) s.Publish(i);
  EXPECT_EQ(reader.barrier().Available(), 3);
  for (int i = 4; i <= 9; ++i) s.Publish(i);
  EXPECT_EQ(reader.barrier().Available(), 9);
}

TYPED_TEST(SequencerParity, ShouldTryNext) {
  Consumer gating = Register(this->ring_, "gating");
  auto s = Attach<TypeParam>(this->ring_);
  for (int i = 0; i < 16; ++i) {
    auto seq = s.TryNext();
    ASSERT_TRUE(seq.ok()) << i;
    s.Publish(*seq);
  }
  EXPECT_EQ(s.TryNext().status().code(), absl::StatusCode::kResourceExhausted);
}

TYPED_TEST(SequencerParity, ShouldClaimSpecificSequence) {
  auto s = Attach<TypeParam>(this->ring_);
  s.ClaimSequence(14);
  s.Publish(14);
  EXPECT_EQ(s.Next(), 15);
}

TYPED_TEST(SequencerParity, ShouldNotAllowBulkNextOrTryNextOfZeroOrLess) {
  auto s = Attach<TypeParam>(this->ring_);
  for (std::int64_t n : {-1, 0}) {
    EXPECT_EQ(s.Next(n).status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_EQ(s.TryNext(n).status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TYPED_TEST(SequencerParity, SequencesBecomeAvailableAfterAPublish) {
  auto s = Attach<TypeParam>(this->ring_);
  const std::int64_t seq = s.Next();
  EXPECT_FALSE(IsAvailable(this->ring_.segment(), seq));
  s.Publish(seq);
  EXPECT_TRUE(IsAvailable(this->ring_.segment(), seq));
}

TYPED_TEST(SequencerParity, SequencesBecomeUnavailableAfterWrapping) {
  auto s = Attach<TypeParam>(this->ring_);
  s.Publish(s.Next());
  EXPECT_TRUE(IsAvailable(this->ring_.segment(), 0));
  for (int i = 0; i < 16; ++i) s.Publish(s.Next());
  EXPECT_FALSE(IsAvailable(this->ring_.segment(), 0));
}

#ifndef NDEBUG
TEST(SequencerParityDeathTest, ShouldAbortIfTwoThreadsClaimOnASingleProducer) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kSingleProducer);
  EXPECT_DEATH(
      {
        auto s = Attach<SingleProducerSequencer>(ring);
        std::thread([&] { s.Next(); }).join();
        s.Next();
      },
      "thread");
  // The death test's child runs this test again (style threadsafe) and made its own ring,
  // named with its own pid, that its abort left behind.
  testing::RemoveRingsOfDeadTestProcesses(
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
}
#endif

// ------------------------------------------------------------------------- RingBufferTest

void SetValue(StubEvent& e, std::int64_t, std::int64_t value, std::string_view text) {
  e.value = value;
  e.set(text);
}

TEST(RingBufferParity, ShouldClaimAndGet) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 32, SequencerKind::kMultiProducer);
  Consumer reader = Register(ring, "reader");
  auto p = Attach<MultiProducerSequencer>(ring);
  EXPECT_EQ(LoadCursor(ring.segment().producer()), -1);
  PublishEvent(ring, p, SetValue, std::int64_t{2701}, std::string_view());
  EXPECT_EQ(reader.barrier().WaitFor(0).available, 0);
  EXPECT_EQ(ring[0].value, 2701);
  EXPECT_EQ(ring[0].str(), "");
  EXPECT_EQ(LoadCursor(ring.segment().producer()), 0);
}

TEST(RingBufferParity, ShouldClaimAndGetInSeparateThread) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 32, SequencerKind::kMultiProducer);
  Consumer reader = Register(ring, "reader");
  std::latch started(1);
  std::int64_t seen = -1;
  std::thread waiter([&] {
    started.count_down();
    EXPECT_EQ(reader.barrier().WaitFor(0).available, 0);
    seen = ring[0].value;
  });
  started.wait();
  auto p = Attach<MultiProducerSequencer>(ring);
  PublishEvent(ring, p, SetValue, std::int64_t{2701}, std::string_view());
  waiter.join();
  EXPECT_EQ(seen, 2701);
}

TEST(RingBufferParity, ShouldClaimAndGetMultipleMessages) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 32, SequencerKind::kMultiProducer);
  Consumer reader = Register(ring, "reader");
  auto p = Attach<MultiProducerSequencer>(ring);
  for (std::int64_t i = 0; i < 32; ++i) PublishEvent(ring, p, SetValue, i, std::string_view());
  EXPECT_EQ(reader.barrier().WaitFor(31).available, 31);
  for (std::int64_t i = 0; i < 32; ++i) EXPECT_EQ(ring[i].value, i);
}

// The reference gates on a NoOpEventProcessor (at the cursor): an observer here.
TEST(RingBufferParity, ShouldWrap) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 32, SequencerKind::kMultiProducer);
  Consumer observer = Register(ring, "observer", {.gating = false});
  auto p = Attach<MultiProducerSequencer>(ring);
  for (std::int64_t i = 0; i < 32 + 1000; ++i) {
    PublishEvent(ring, p, SetValue, i, std::string_view());
  }
  EXPECT_EQ(HighestPublished(ring.segment(), 1000, 1031), 1031);
  for (std::int64_t i = 1000; i < 1032; ++i) EXPECT_EQ(ring[i].value, i);
  EXPECT_EQ(observer.barrier().WaitFor(1000).status, WaitStatus::kOk);
}

TEST(RingBufferParity, ShouldPreventWrapping) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 4, SequencerKind::kMultiProducer);
  Consumer gating = Register(ring, "gating");
  auto p = Attach<MultiProducerSequencer>(ring);
  for (std::int64_t i = 0; i < 4; ++i) {
    PublishEvent(ring, p, SetValue, i, std::string_view(std::to_string(i)));
  }
  EXPECT_FALSE(TryPublishEvent(ring, p, SetValue, std::int64_t{3}, std::string_view("3")));
}

TEST(RingBufferParity, ShouldThrowExceptionIfBufferIsFull) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 32, SequencerKind::kMultiProducer);
  Consumer gating = Register(ring, "gating");
  auto p = Attach<MultiProducerSequencer>(ring);
  for (int i = 0; i < 32; ++i) {
    auto s = p.TryNext();
    ASSERT_TRUE(s.ok());
    p.Publish(*s);
  }
  EXPECT_EQ(p.TryNext().status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(RingBufferParity, ShouldPreventPublishersOvertakingEventProcessorWrapPoint) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kMultiProducer);
  Consumer processor = Register(ring, "processor");
  std::latch sixteen(16);
  std::atomic<bool> complete{false};
  std::thread publisher([&] {
    auto p = Attach<MultiProducerSequencer>(ring);
    for (std::int64_t i = 0; i <= 16; ++i) {
      PublishEvent(ring, p, SetValue, i, std::string_view());
      if (i < 16) sixteen.count_down();
    }
    complete = true;
  });
  sixteen.wait();
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(complete.load());
  EXPECT_EQ(processor.barrier().WaitFor(0).status, WaitStatus::kOk);
  processor.Release(0, 1);
  publisher.join();
  EXPECT_TRUE(complete.load());
}

// Translators on a single-producer ring of 4 with nobody gating: publish, then try, with the
// same arguments; the slots say what each wrote ("arguments-sequence").
class TranslatorParity : public ::testing::Test {
 protected:
  TranslatorParity()
      : ring_(MakeRing(name_, 4, SequencerKind::kSingleProducer)),
        p_(Attach<SingleProducerSequencer>(ring_)) {
    for (int i = 0; i < 4; ++i) ring_[i].set("");
  }
  std::vector<std::string> Slots() {
    std::vector<std::string> out;
    for (int i = 0; i < 4; ++i) out.push_back(ring_[i].str());
    return out;
  }
  bool Empty() { return Slots() == std::vector<std::string>(4, ""); }

  ScopedRingName name_;
  Ring<StubEvent> ring_;
  SingleProducerSequencer p_;
};

auto Joined = [](StubEvent& e, std::int64_t seq, auto... args) {
  std::string s;
  ((s += args), ...);
  e.set(absl::StrFormat("%s-%d", s, seq));
};
auto SeqOnly = [](StubEvent& e, std::int64_t seq) { e.set(std::to_string(seq)); };

TEST_F(TranslatorParity, ShouldPublishEventWithZeroToFourArguments) {
  PublishEvent(ring_, p_, SeqOnly);
  EXPECT_TRUE(TryPublishEvent(ring_, p_, SeqOnly));
  EXPECT_EQ(Slots(), (std::vector<std::string>{"0", "1", "", ""}));
  using S = std::string;
  // Each arity on a fresh ring, as the reference's tests each have one.
  auto check = [](auto publish, std::string_view first, std::string_view second) {
    ScopedRingName name;
    Ring<StubEvent> ring = MakeRing(name, 4, SequencerKind::kSingleProducer);
    auto p = Attach<SingleProducerSequencer>(ring);
    publish(ring, p);
    EXPECT_EQ(ring[0].str(), first);
    EXPECT_EQ(ring[1].str(), second);
  };
  check([](auto& r, auto& p) {
    PublishEvent(r, p, Joined, S("Foo"));
    EXPECT_TRUE(TryPublishEvent(r, p, Joined, S("Foo")));
  }, "Foo-0", "Foo-1");
  check([](auto& r, auto& p) {
    PublishEvent(r, p, Joined, S("Foo"), S("Bar"));
    EXPECT_TRUE(TryPublishEvent(r, p, Joined, S("Foo"), S("Bar")));
  }, "FooBar-0", "FooBar-1");
  check([](auto& r, auto& p) {
    PublishEvent(r, p, Joined, S("Foo"), S("Bar"), S("Baz"));
    EXPECT_TRUE(TryPublishEvent(r, p, Joined, S("Foo"), S("Bar"), S("Baz")));
  }, "FooBarBaz-0", "FooBarBaz-1");
  check([](auto& r, auto& p) {
    PublishEvent(r, p, Joined, S("Foo"), S("Bar"), S("Baz"), S("Bam"));
    EXPECT_TRUE(TryPublishEvent(r, p, Joined, S("Foo"), S("Bar"), S("Baz"), S("Bam")));
  }, "FooBarBazBam-0", "FooBarBazBam-1");
}

using Strings = std::vector<std::string>;
using Translator = std::function<void(StubEvent&, std::int64_t)>;
auto CallTranslator = [](StubEvent& e, std::int64_t seq, const Translator& t) { t(e, seq); };

TEST_F(TranslatorParity, ShouldPublishEventsFromAnArrayOfTranslators) {
  std::vector<Translator> ts(2, SeqOnly);
  ASSERT_TRUE(PublishEvents(ring_, p_, CallTranslator, {}, std::span(ts)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, CallTranslator, {}, std::span(ts)).ok());
  EXPECT_EQ(Slots(), (Strings{"0", "1", "2", "3"}));
}

TEST_F(TranslatorParity, ShouldPublishEventsWithBatchSizeOfOne) {
  std::vector<Translator> ts(3, SeqOnly);
  ASSERT_TRUE(PublishEvents(ring_, p_, CallTranslator, {0, 1}, std::span(ts)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, CallTranslator, {0, 1}, std::span(ts)).ok());
  EXPECT_EQ(Slots(), (Strings{"0", "1", "", ""}));
}

TEST_F(TranslatorParity, ShouldPublishEventsWithinBatch) {
  std::vector<Translator> ts(3, SeqOnly);
  ASSERT_TRUE(PublishEvents(ring_, p_, CallTranslator, {1, 2}, std::span(ts)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, CallTranslator, {1, 2}, std::span(ts)).ok());
  EXPECT_EQ(Slots(), (Strings{"0", "1", "2", "3"}));
}

TEST_F(TranslatorParity, ShouldPublishEventsOneTwoThreeAndFourArgs) {
  Strings foo(2, "Foo"), bar(2, "Bar"), baz(2, "Baz"), bam(2, "Bam");
  ASSERT_TRUE(PublishEvents(ring_, p_, Joined, {}, std::span(foo)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, Joined, {}, std::span(foo)).ok());
  EXPECT_EQ(Slots(), (Strings{"Foo-0", "Foo-1", "Foo-2", "Foo-3"}));
  ASSERT_TRUE(PublishEvents(ring_, p_, Joined, {}, std::span(foo), std::span(bar)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, Joined, {}, std::span(foo), std::span(bar)).ok());
  EXPECT_EQ(Slots(), (Strings{"FooBar-4", "FooBar-5", "FooBar-6", "FooBar-7"}));
  // (no gating consumer: the ring laps, as the reference's does)
  ASSERT_TRUE(PublishEvents(ring_, p_, Joined, {}, std::span(foo), std::span(bar),
                            std::span(baz)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, Joined, {}, std::span(foo), std::span(bar),
                               std::span(baz)).ok());
  EXPECT_EQ(Slots(), (Strings{"FooBarBaz-8", "FooBarBaz-9", "FooBarBaz-10", "FooBarBaz-11"}));
  ASSERT_TRUE(PublishEvents(ring_, p_, Joined, {}, std::span(foo), std::span(bar),
                            std::span(baz), std::span(bam)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, Joined, {}, std::span(foo), std::span(bar),
                               std::span(baz), std::span(bam)).ok());
  EXPECT_EQ(Slots(), (Strings{"FooBarBazBam-12", "FooBarBazBam-13", "FooBarBazBam-14",
                              "FooBarBazBam-15"}));
}

TEST_F(TranslatorParity, ShouldPublishEventsTwoArgWithBatchSizeOfOneAndWithinBatch) {
  Strings foo{"Foo0", "Foo1"}, bar{"Bar0", "Bar1"}, foo2{"Foo2", "Foo3"}, bar2{"Bar2", "Bar3"};
  ASSERT_TRUE(PublishEvents(ring_, p_, Joined, {0, 1}, std::span(foo), std::span(bar)).ok());
  ASSERT_TRUE(TryPublishEvents(ring_, p_, Joined, {0, 1}, std::span(foo2), std::span(bar2)).ok());
  EXPECT_EQ(Slots(), (Strings{"Foo0Bar0-0", "Foo2Bar2-1", "", ""}));

  ScopedRingName name;
  Ring<StubEvent> fresh = MakeRing(name, 4, SequencerKind::kSingleProducer);
  for (int i = 0; i < 4; ++i) fresh[i].set("");
  auto p = Attach<SingleProducerSequencer>(fresh);
  Strings f{"Foo0", "Foo1", "Foo2"}, b{"Bar0", "Bar1", "Bar2"};
  Strings f2{"Foo3", "Foo4", "Foo5"}, b2{"Bar3", "Bar4", "Bar5"};
  ASSERT_TRUE(PublishEvents(fresh, p, Joined, {1, 2}, std::span(f), std::span(b)).ok());
  ASSERT_TRUE(TryPublishEvents(fresh, p, Joined, {1, 2}, std::span(f2), std::span(b2)).ok());
  EXPECT_EQ(fresh[0].str(), "Foo1Bar1-0");
  EXPECT_EQ(fresh[1].str(), "Foo2Bar2-1");
  EXPECT_EQ(fresh[2].str(), "Foo4Bar4-2");
  EXPECT_EQ(fresh[3].str(), "Foo5Bar5-3");
}

// The validation table (#14, #18, #22, #26, #30, #33-#72): for every arity and both publish
// and try, a batch of size 0, negative, starting negative, running past the arrays, or larger
// than the ring is InvalidArgument and publishes nothing.
TEST_F(TranslatorParity, ShouldNotPublishEventsForAnInvalidBatch) {
  struct Range {
    std::int64_t first, count;
    std::size_t length;
  };
  const std::vector<Range> ranges = {
      {1, 0, 4}, {1, 3, 3}, {1, 3, 2}, {1, -1, 4}, {-1, 2, 4}, {0, -1, 5} /* 5 > ring */};
  for (const Range& r : ranges) {
    for (bool try_publish : {false, true}) {
      Strings a(r.length, "Foo");
      std::vector<Translator> ts(r.length, SeqOnly);
      const BatchRange range{r.first, r.count};
      auto check = [&](const absl::StatusOr<std::int64_t>& result, int arity) {
        EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
            << "first " << r.first << " count " << r.count << " length " << r.length
            << " arity " << arity << (try_publish ? " try" : " publish");
      };
      auto run = [&](auto&&... spans) {
        return try_publish ? TryPublishEvents(ring_, p_, Joined, range, spans...)
                           : PublishEvents(ring_, p_, Joined, range, spans...);
      };
      check(try_publish ? TryPublishEvents(ring_, p_, CallTranslator, range, std::span(ts))
                        : PublishEvents(ring_, p_, CallTranslator, range, std::span(ts)),
            0);
      check(run(std::span(a)), 1);
      check(run(std::span(a), std::span(a)), 2);
      check(run(std::span(a), std::span(a), std::span(a)), 3);
      check(run(std::span(a), std::span(a), std::span(a), std::span(a)), 4);
      EXPECT_TRUE(Empty());
      EXPECT_EQ(p_.cursor(), -1);
    }
  }
}

TEST(RingBufferParity, ShouldAddAndRemoveSequences) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kSingleProducer);
  Consumer three = Register(ring, "three");
  Consumer seven = Register(ring, "seven");
  auto p = Attach<SingleProducerSequencer>(ring);
  for (int i = 0; i < 10; ++i) p.Publish(p.Next());
  three.Release(3, 4);
  seven.Release(7, 8);
  EXPECT_EQ(MinimumGatingSequence(ring.segment()), 3);
  ASSERT_TRUE(three.Deregister().ok());
  EXPECT_EQ(MinimumGatingSequence(ring.segment()), 7);
}

// ------------------------------------------------------------------ SequenceBarrierTest
// Dependent sequences are upstream consumers (the barrier of a consumer `after` them).

class BarrierParity : public ::testing::Test {
 protected:
  BarrierParity()
      : ring_(MakeRing(name_, 64, SequencerKind::kMultiProducer)),
        upstream_{Register(ring_, "u1"), Register(ring_, "u2"), Register(ring_, "u3")},
        reader_(Register(ring_, "reader", {.after = {"u1", "u2", "u3"},
                                           .wait = {.kind = WaitKind::kBusySpin}})),
        p_(Attach<MultiProducerSequencer>(ring_)) {}
  void Fill(int n) {
    for (std::int64_t i = 0; i < n; ++i) PublishEvent(ring_, p_, SetValue, i, std::string_view());
  }
  void MoveUpstreams(std::int64_t to) {
    for (Consumer& u : upstream_) u.Release(to, static_cast<std::uint64_t>(to - u.sequence()));
  }
  ScopedRingName name_;
  Ring<StubEvent> ring_;
  Consumer upstream_[3];
  Consumer reader_;
  MultiProducerSequencer p_;
};

TEST_F(BarrierParity, ShouldWaitForWorkCompleteWhereCompleteWorkThresholdIsAhead) {
  Fill(11);  // (the reference moves dependents past the cursor; ours release what exists)
  upstream_[0].Release(10, 11);
  upstream_[1].Release(9, 10);
  upstream_[2].Release(10, 11);
  EXPECT_GE(reader_.barrier().WaitFor(9).available, 9);
}

TEST_F(BarrierParity, ShouldWaitForWorkCompleteWhereAllWorkersAreBlockedOnRingBuffer) {
  Fill(10);
  MoveUpstreams(9);
  std::thread worker([&] {
    PublishEvent(ring_, p_, SetValue, std::int64_t{10}, std::string_view());
    MoveUpstreams(10);
  });
  const WaitResult r = reader_.barrier().WaitFor(10);
  worker.join();
  EXPECT_EQ(r.status, WaitStatus::kOk);
  EXPECT_GE(r.available, 10);
}

TEST_F(BarrierParity, ShouldInterruptDuringBusySpin) {
  Fill(10);
  MoveUpstreams(8);
  std::atomic<bool> waiting{false};
  WaitResult r{};
  std::thread waiter([&] {
    waiting = true;
    r = reader_.barrier().WaitFor(9);
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(10ms);
  reader_.barrier().Alert();
  waiter.join();
  EXPECT_EQ(r.status, WaitStatus::kHalted);  // the reference's AlertException
}

TEST_F(BarrierParity, ShouldWaitForWorkCompleteWhereCompleteWorkThresholdIsBehind) {
  Fill(10);
  MoveUpstreams(8);
  std::thread([&] { MoveUpstreams(9); }).join();
  EXPECT_GE(reader_.barrier().WaitFor(9).available, 9);
}

TEST_F(BarrierParity, ShouldSetAndClearAlertStatus) {
  EXPECT_FALSE(reader_.barrier().alerted());
  reader_.barrier().Alert();
  EXPECT_TRUE(reader_.barrier().alerted());
  reader_.barrier().ClearAlert();
  EXPECT_FALSE(reader_.barrier().alerted());
}

// ------------------------------------------------------------- BatchEventProcessorTest

class ProcessorParity : public ::testing::Test {
 protected:
  ProcessorParity()
      : ring_(MakeRing(name_, 16, SequencerKind::kMultiProducer)),
        consumer_(Register(ring_, "processor")),
        p_(Attach<MultiProducerSequencer>(ring_)) {}
  void PublishOne() { p_.Publish(p_.Next()); }
  ScopedRingName name_;
  Ring<StubEvent> ring_;
  Consumer consumer_;
  MultiProducerSequencer p_;
};

struct LatchHandler {
  std::latch* latch;
  void on_event(StubEvent&, std::int64_t, bool) { latch->count_down(); }
};

TEST_F(ProcessorParity, ShouldCallMethodsInLifecycleOrderForBatch) {
  std::latch three(3);
  LatchHandler handler{&three};
  BatchEventProcessor<StubEvent, LatchHandler> processor(ring_, consumer_, handler);
  for (int i = 0; i < 3; ++i) PublishOne();
  std::thread t([&] { processor.Run(); });
  three.wait();
  processor.Halt();
  t.join();
}

struct ThrowingHandler {
  void on_event(StubEvent&, std::int64_t, bool) { throw std::runtime_error("npe"); }
};

template <typename T>
struct CountingExceptionHandler : ExceptionHandler<T> {
  std::atomic<int> events{0}, starts{0}, shutdowns{0};
  std::mutex mu;  // stages of a pipeline call it from their threads
  std::string last_what;
  std::string last() {
    std::lock_guard lock(mu);
    return last_what;
  }
  ErrorAction HandleEventError(const std::exception& e, std::int64_t, T&) override {
    {
      std::lock_guard lock(mu);
      last_what = e.what();
    }
    ++events;
    return ErrorAction::kSkip;
  }
  void HandleStartError(const std::exception&) override { ++starts; }
  void HandleShutdownError(const std::exception&) override { ++shutdowns; }
};

TEST_F(ProcessorParity, ShouldCallExceptionHandlerOnUncaughtException) {
  ThrowingHandler handler;
  CountingExceptionHandler<StubEvent> exceptions;
  BatchEventProcessor<StubEvent, ThrowingHandler> processor(ring_, consumer_, handler);
  processor.SetExceptionHandler(exceptions);
  std::thread t([&] { processor.Run(); });
  PublishOne();
  while (exceptions.events == 0) std::this_thread::sleep_for(1ms);
  processor.Halt();
  t.join();
  EXPECT_EQ(exceptions.events, 1);
  EXPECT_EQ(consumer_.sequence(), 0);  // skipped, as the reference's handler does
}

// The loopback handler publishes one event into the same ring for each event that does not
// end its batch: the batches are [3, 2, 1].
TEST_F(ProcessorParity, ReportAccurateBatchSizesAtBatchStartTime) {
  struct Loopback {
    MultiProducerSequencer* p;
    std::latch* six;
    std::vector<std::int64_t> sizes;
    void on_batch_start(std::int64_t size, std::int64_t) { sizes.push_back(size); }
    void on_event(StubEvent&, std::int64_t, bool end_of_batch) {
      if (!end_of_batch) p->Publish(p->Next());
      six->count_down();
    }
  };
  std::latch six(6);
  Loopback handler{&p_, &six, {}};
  for (int i = 0; i < 3; ++i) PublishOne();
  BatchEventProcessor<StubEvent, Loopback> processor(ring_, consumer_, handler);
  std::thread t([&] { processor.Run(); });
  six.wait();
  processor.Halt();
  t.join();
  EXPECT_EQ(handler.sizes, (std::vector<std::int64_t>{3, 2, 1}));
}

struct LifecycleCounter {
  std::atomic<int> starts{0}, shutdowns{0};
  void on_start() { ++starts; }
  void on_shutdown() { ++shutdowns; }
  void on_event(StubEvent&, std::int64_t, bool) {}
};

TEST_F(ProcessorParity, ShouldAlwaysHalt) {
  {  // halted before the thread starts
    LifecycleCounter h;
    BatchEventProcessor<StubEvent, LifecycleCounter> processor(ring_, consumer_, h);
    processor.Halt();
    std::thread(&BatchEventProcessor<StubEvent, LifecycleCounter>::Run, &processor).join();
    EXPECT_EQ(h.starts, 1);
    EXPECT_EQ(h.shutdowns, 1);
  }
  for (int yield = 0; yield < 2; ++yield) {  // started then halted at once, or after a yield
    for (int i = 0; i < 1000; ++i) {
      LifecycleCounter h;
      BatchEventProcessor<StubEvent, LifecycleCounter> processor(ring_, consumer_, h);
      std::thread t([&] { processor.Run(); });
      if (yield) std::this_thread::yield();
      processor.Halt();
      t.join();
      ASSERT_EQ(h.starts, 1) << i;
      ASSERT_EQ(h.shutdowns, 1) << i;
    }
  }
}

// The reference's barrier alternately reports nothing available; ours times out between the
// events: a batch is never announced with size 0.
TEST(ProcessorParityTimeouts, ShouldNotPassZeroSizeToBatchStartAware) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kMultiProducer);
  Consumer consumer = Register(
      ring, "processor", {.wait = {.kind = WaitKind::kBlocking, .timeout_ns = 5'000'000}});
  struct Sizes {
    std::map<std::int64_t, int> sizes;
    std::atomic<int> events{0};
    void on_batch_start(std::int64_t size, std::int64_t) { ++sizes[size]; }
    void on_event(StubEvent&, std::int64_t, bool) { ++events; }
    void on_timeout(std::int64_t) {}
  } handler;
  BatchEventProcessor<StubEvent, Sizes> processor(ring, consumer, handler);
  std::thread t([&] { processor.Run(); });
  auto p = Attach<MultiProducerSequencer>(ring);
  for (int i = 0; i < 3; ++i) {
    const std::int64_t s = p.Next();
    std::this_thread::sleep_for(30ms);
    p.Publish(s);
  }
  while (handler.events < 3) std::this_thread::sleep_for(1ms);
  processor.Halt();
  t.join();
  EXPECT_FALSE(handler.sizes.empty());
  EXPECT_EQ(handler.sizes.count(0), 0u);
}

// ------------------------------------------------------------------ LifecycleAwareTest

TEST_F(ProcessorParity, ShouldNotifyOfBatchProcessorLifecycle) {
  LifecycleCounter h;
  BatchEventProcessor<StubEvent, LifecycleCounter> processor(ring_, consumer_, h);
  std::thread t([&] { processor.Run(); });
  while (h.starts == 0) std::this_thread::sleep_for(1ms);
  processor.Halt();
  t.join();
  EXPECT_EQ(h.starts, 1);
  EXPECT_EQ(h.shutdowns, 1);
}

// ---------------------------------------------------------- MaxBatchSizeEventProcessorTest

TEST(MaxBatchSizeParity, ShouldLimitTheBatchAndAnnounceSizeAndQueueDepth) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kSingleProducer);
  Consumer consumer = Register(ring, "processor");
  struct Recorder {
    std::latch* five;
    std::vector<std::vector<std::int64_t>> batches;
    std::vector<std::int64_t> sizes, depths;
    void on_batch_start(std::int64_t size, std::int64_t depth) {
      batches.emplace_back();
      sizes.push_back(size);
      depths.push_back(depth);
    }
    void on_event(StubEvent&, std::int64_t s, bool) {
      batches.back().push_back(s);
      five->count_down();
    }
  };
  std::latch five(5);
  Recorder handler{&five, {}, {}, {}};
  BatchEventProcessor<StubEvent, Recorder> processor(ring, consumer, handler, {.max_batch = 3});
  std::thread t([&] { processor.Run(); });
  auto p = Attach<SingleProducerSequencer>(ring);
  for (int i = 0; i < 5; ++i) p.Next();
  p.Publish(4);  // one publish makes 0..4 visible at once
  five.wait();
  processor.Halt();
  t.join();
  EXPECT_EQ(handler.batches, (std::vector<std::vector<std::int64_t>>{{0, 1, 2}, {3, 4}}));
  EXPECT_EQ(handler.sizes, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(handler.depths, (std::vector<std::int64_t>{5, 2}));
}

// Not in the Disruptor (its batches are uncapped unless asked): a processor that names no cap
// takes at most half the ring at once, and one that asks for the ring's
// capacity or more is uncapped.
TEST(MaxBatchSizeParity, ShouldCapAtHalfTheRingByDefaultAndNotAtAllWhenAskedForAWholeRing) {
  EXPECT_EQ(DefaultMaxBatch(1), 1);
  EXPECT_EQ(DefaultMaxBatch(16), 8);
  EXPECT_EQ(DefaultMaxBatch(8192), 4096);
  EXPECT_EQ(DefaultMaxBatch(1 << 20), 1 << 19);
  for (const std::int64_t max_batch :
       {std::int64_t{0}, std::int64_t{16}, std::int64_t{1000}, INT64_MAX}) {
    ScopedRingName name;
    Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kSingleProducer);
    Consumer consumer = Register(ring, "processor");
    struct Recorder {
      std::latch* all;
      std::vector<std::int64_t> sizes, depths;
      void on_batch_start(std::int64_t size, std::int64_t depth) {
        sizes.push_back(size);
        depths.push_back(depth);
      }
      void on_event(StubEvent&, std::int64_t, bool) { all->count_down(); }
    };
    std::latch all(16);
    Recorder handler{&all, {}, {}};
    BatchEventProcessor<StubEvent, Recorder> processor(ring, consumer, handler,
                                                       {.max_batch = max_batch});
    auto p = Attach<SingleProducerSequencer>(ring);
    for (int i = 0; i < 16; ++i) p.Next();
    p.Publish(15);  // a whole ring ready before the processor starts
    std::thread t([&] { processor.Run(); });
    all.wait();
    processor.Halt();
    t.join();
    if (max_batch == 0) {
      EXPECT_EQ(handler.sizes, (std::vector<std::int64_t>{8, 8}));
      EXPECT_EQ(handler.depths, (std::vector<std::int64_t>{16, 8}));
    } else {
      EXPECT_EQ(handler.sizes, (std::vector<std::int64_t>{16})) << max_batch;
      EXPECT_EQ(handler.depths, (std::vector<std::int64_t>{16})) << max_batch;
    }
  }
}

// --------------------------------------------------------- RewindBatchEventProcessorTest

struct RewindRule {
  std::int64_t sequence;
  int times;
  int failed = 0;
};

struct RewindingHandler {
  std::vector<RewindRule> rules;
  std::int64_t exit_value;
  std::int64_t non_rewindable = -1;
  std::function<void()> halt{};
  std::vector<std::int64_t> values{};

  void on_event(StubEvent& e, std::int64_t s, bool) {
    if (s == non_rewindable) throw std::runtime_error("not rewindable");
    for (RewindRule& r : rules) {
      if (r.sequence == s && r.failed < r.times) {
        ++r.failed;
        throw RewindableError("rewind");
      }
    }
    values.push_back(e.value);
    if (s == exit_value) halt();
  }
};

// event(a, b): a..b in order; the expected lists concatenate them.
std::vector<std::int64_t> Events(std::initializer_list<std::pair<std::int64_t, std::int64_t>> ranges) {
  std::vector<std::int64_t> out;
  for (auto [a, b] : ranges) {
    for (std::int64_t i = a; i <= b; ++i) out.push_back(i);
  }
  return out;
}

struct CountingRewind : RewindStrategy {
  int count = 0;
  bool Rewind(const RewindableError&, int) override {
    ++count;
    return true;
  }
};

struct RewindCase {
  std::string name;
  std::int64_t entries;
  std::vector<RewindRule> rules;
  std::int64_t exit_value;
  std::vector<std::int64_t> expected;
  std::int64_t non_rewindable = -1;
};

class RewindParity : public ::testing::TestWithParam<RewindCase> {};

// Fills `entries` events (value = sequence) into a fresh multi-producer ring of 2048 and runs
// the processor on this thread until the handler halts it at exit_value.
std::vector<std::int64_t> RunRewind(const RewindCase& c, RewindStrategy* strategy,
                                    ExceptionHandler<StubEvent>* exceptions = nullptr) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 2048, SequencerKind::kMultiProducer);
  Consumer consumer = Register(ring, "rewinder");
  auto p = Attach<MultiProducerSequencer>(ring);
  for (std::int64_t i = 0; i < c.entries; ++i) {
    PublishEvent(ring, p, SetValue, i, std::string_view());
  }
  RewindingHandler handler{c.rules, c.exit_value, c.non_rewindable};
  BatchEventProcessor<StubEvent, RewindingHandler> processor(ring, consumer, handler);
  handler.halt = [&processor] { processor.Halt(); };
  AlwaysRewind always;
  processor.SetRewindStrategy(strategy != nullptr ? *strategy : always);
  if (exceptions != nullptr) processor.SetExceptionHandler(*exceptions);
  EXPECT_EQ(processor.Run(), WaitStatus::kHalted);
  return handler.values;
}

TEST_P(RewindParity, ShouldDeliverExactlyTheReferenceSequence) {
  EXPECT_EQ(RunRewind(GetParam(), nullptr), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Reference, RewindParity,
    ::testing::Values(
        RewindCase{"RewindOnFirstEventOfBatchSizeOfOne", 1, {{0, 1}}, 0, Events({{0, 0}})},
        RewindCase{"RewindOnFirstEventOfBatch", 10, {{0, 1}}, 9, Events({{0, 9}})},
        RewindCase{"RewindOnEventInMiddleOfBatch", 10, {{8, 1}}, 9, Events({{0, 7}, {0, 9}})},
        RewindCase{"RewindOnLastEventOfBatch", 10, {{9, 1}}, 9, Events({{0, 8}, {0, 9}})},
        RewindCase{"RunBatchCompleteOnLastEventOfBatch", 10, {{4, 1}}, 9,
                   Events({{0, 3}, {0, 9}})},
        RewindCase{"RewindMultipleTimes", 10, {{8, 3}}, 9,
                   Events({{0, 7}, {0, 7}, {0, 7}, {0, 9}})},
        RewindCase{"RewindMultipleTimesOnLastEventInBatch", 10, {{9, 3}}, 9,
                   Events({{0, 8}, {0, 8}, {0, 8}, {0, 9}})},
        RewindCase{"RewindMultipleTimesInSameBatch", 10, {{5, 3}, {7, 3}}, 9,
                   Events({{0, 4}, {0, 4}, {0, 4}, {0, 6}, {0, 6}, {0, 6}, {0, 9}})},
        RewindCase{"RewindMultipleTimesOnBatchOfOne", 1, {{0, 3}}, 0, Events({{0, 0}})},
        RewindCase{"ProcessUpToMaxBatchSizeForEachGivenBatch", 30, {}, 29,
                   Events({{0, 9}, {10, 19}, {20, 29}})},
        RewindCase{"OnlyRewindBatch", 30, {{15, 3}}, 29,
                   Events({{0, 14}, {0, 14}, {0, 14}, {0, 29}})}),
    [](const ::testing::TestParamInfo<RewindCase>& c) { return c.param.name; });

TEST(RewindParityStrategies, ShouldFallOverWhenNonRewindableExceptionIsThrown) {
  CountingExceptionHandler<StubEvent> exceptions;
  const auto values =
      RunRewind({"", 10, {}, 9, {}, /*non_rewindable=*/8}, nullptr, &exceptions);
  EXPECT_EQ(exceptions.last(), "not rewindable");
  EXPECT_EQ(values, Events({{0, 7}, {9, 9}}));
}

TEST(RewindParityStrategies, ShouldInvokeRewindPauseStrategyOnRewind) {
  CountingRewind counting;
  EXPECT_EQ(RunRewind({"", 30, {{15, 3}}, 29, {}}, &counting),
            Events({{0, 14}, {0, 14}, {0, 14}, {0, 29}}));
  EXPECT_EQ(counting.count, 3);
}

TEST(RewindParityStrategies, ShouldNotInvokeRewindPauseStrategyWhenNoRewindsOccur) {
  CountingRewind counting;
  EXPECT_EQ(RunRewind({"", 30, {{-1, -1}}, 29, {}}, &counting), Events({{0, 29}}));
  EXPECT_EQ(counting.count, 0);
}

TEST(RewindParityStrategies, ShouldCopeWithTheNanosecondRewindPauseStrategy) {
  RewindUpTo pausing(1'000'000, 1000);  // always rewind, pausing 1000 ns
  EXPECT_EQ(RunRewind({"", 30, {{15, 3}}, 29, {}}, &pausing),
            Events({{0, 14}, {0, 14}, {0, 14}, {0, 29}}));
}

// EventuallyGiveUpBatchRewindStrategy(3): the third failure gives up (RewindUpTo(2)); the
// exception handler skips the event, and the rest of the batch is a batch of its own.
TEST(RewindParityStrategies, ShouldGiveUpWhenUsingTheGiveUpRewindStrategy) {
  RewindUpTo give_up(2);
  CountingExceptionHandler<StubEvent> exceptions;
  EXPECT_EQ(RunRewind({"", 30, {{15, 99}, {25, 99}}, 29, {}}, &give_up, &exceptions),
            Events({{0, 14}, {0, 14}, {0, 14}, {16, 24}, {16, 24}, {16, 24}, {26, 29}}));
  EXPECT_EQ(exceptions.events, 2);
}

// ------------------------------------------------------------------------- BatchingTest
// Two parallel stages of a pipeline, each owning every other event, flush on end of batch
// (or every 10): the last event each sees ends a batch.

struct ParallelHandler {
  std::int64_t mask, ordinal;
  std::int64_t event_count = 0, temp = 0, batch_count = 0;
  std::atomic<std::int64_t> published{-1}, processed{-1};
  void on_event(StubEvent& e, std::int64_t s, bool end_of_batch) {
    if ((s & mask) == ordinal) {
      ++event_count;
      temp = e.value;
    }
    if (end_of_batch || ++batch_count >= 10) {
      published = temp;
      batch_count = 0;
    }
    processed = s;
  }
};

template <typename S>
class BatchingParity : public ::testing::Test {};
TYPED_TEST_SUITE(BatchingParity, Sequencers);

TYPED_TEST(BatchingParity, ShouldBatch) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 2048, KindOf<TypeParam>());
  ParallelHandler h1{1, 0}, h2{1, 1};
  Pipeline<StubEvent> pipeline(ring);
  const StageOptions sleeping{.wait = {.kind = WaitKind::kSleeping}};
  pipeline.handle_events_with(Stage("h1", h1, sleeping), Stage("h2", h2, sleeping));
  ASSERT_TRUE(pipeline.Start().ok());
  auto p = Attach<TypeParam>(ring);
  for (std::int64_t i = 0; i < 10000; ++i) {
    PublishEvent(ring, p, [](StubEvent& e, std::int64_t s) { e.value = s; });
  }
  while (h1.processed != 9999 || h2.processed != 9999) std::this_thread::sleep_for(1ms);
  pipeline.Halt();
  pipeline.Join();
  EXPECT_EQ(h1.published, 9998);
  EXPECT_EQ(h1.event_count, 5000);
  EXPECT_EQ(h2.published, 9999);
  EXPECT_EQ(h2.event_count, 5000);
}

// ----------------------------------------------------------------------- EventPollerTest

TEST(EventPollerParity, ShouldPollForEvents) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kSingleProducer);
  Consumer gate = Register(ring, "gate");  // the reference's gating sequence
  Consumer polling = Register(ring, "poller", {.after = {"gate"}});
  EventPoller<StubEvent> poller(ring, polling);
  auto stop_after_one = [](StubEvent&, std::int64_t, bool) { return false; };
  auto p = Attach<SingleProducerSequencer>(ring);
  EXPECT_EQ(poller.Poll(stop_after_one), PollState::kIdle);
  p.Publish(p.Next());
  EXPECT_EQ(poller.Poll(stop_after_one), PollState::kGating);
  gate.Release(0, 1);
  EXPECT_EQ(poller.Poll(stop_after_one), PollState::kProcessing);
}

TEST(EventPollerParity, ShouldSuccessfullyPollWhenBufferIsFull) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 4, SequencerKind::kMultiProducer);
  Consumer polling = Register(ring, "poller");
  EventPoller<StubEvent> poller(ring, polling);
  auto p = Attach<MultiProducerSequencer>(ring, WaitKind::kSleeping);
  for (std::int64_t i = 1; i <= 4; ++i) PublishEvent(ring, p, SetValue, i, std::string_view());
  EXPECT_FALSE(p.HasAvailableCapacity(1));  // full
  std::vector<std::int64_t> seen;
  EXPECT_EQ(poller.Poll([&](StubEvent& e, std::int64_t, bool end_of_batch) {
    seen.push_back(e.value);
    return !end_of_batch;
  }),
            PollState::kProcessing);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3, 4}));
}

// --------------------------------------------------------------------- dsl/DisruptorTest
// Ring of 4, one producer, blocking waits. DelayedHandler releases one event per
// ProcessEvent(), as the reference's DelayedEventHandler.

struct DelayedHandler {
  std::atomic<int> credits{0};
  std::atomic<bool> started{false};
  std::atomic<bool> stop{false};
  void on_start() { started = true; }
  void on_event(StubEvent&, std::int64_t, bool) {
    for (;;) {
      int c = credits.load();
      if (stop) return;
      if (c > 0 && credits.compare_exchange_weak(c, c - 1)) return;
      std::this_thread::yield();
    }
  }
  void ProcessEvent() { ++credits; }
  void AwaitStart() {
    while (!started) std::this_thread::sleep_for(1ms);
  }
};

struct CountingHandler {
  std::atomic<int> events{0};
  void on_event(StubEvent&, std::int64_t, bool) { ++events; }
  bool Reached(int n, std::chrono::milliseconds within = 2000ms) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (events < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    return events >= n;
  }
};

class DslParity : public ::testing::Test {
 protected:
  DslParity()
      : ring_(MakeRing(name_, 4, SequencerKind::kSingleProducer)), pipeline_(ring_) {}
  ~DslParity() override {
    for (DelayedHandler* d : delayed_) d->stop = true;
    pipeline_.Halt();
    pipeline_.Join();
  }
  // Publishes one event (starting the pipeline the first time, and waiting for the delayed
  // handlers to start), as the reference's fixture does.
  void PublishEventStarting() {
    if (!started_) {
      ASSERT_TRUE(pipeline_.Start().ok());
      started_ = true;
      for (DelayedHandler* d : delayed_) d->AwaitStart();
      producer_.emplace(Attach<SingleProducerSequencer>(ring_));
    }
    producer_->Publish(producer_->Next());
  }
  // ensureTwoEventsProcessedAccordingToDependencies: two events; the counter sees nothing
  // until each dependency in turn processes both.
  void EnsureTwoEventsProcessedAccordingToDependencies(CountingHandler& counter,
                                                       std::vector<DelayedHandler*> deps) {
    PublishEventStarting();
    PublishEventStarting();
    for (DelayedHandler* d : deps) {
      std::this_thread::sleep_for(10ms);
      EXPECT_EQ(counter.events, 0);
      d->ProcessEvent();
      d->ProcessEvent();
    }
    EXPECT_TRUE(counter.Reached(2));
  }
  DelayedHandler& Delayed() {
    delayed_.push_back(&owned_.emplace_back());
    return *delayed_.back();
  }

  ScopedRingName name_;
  Ring<StubEvent> ring_;
  std::deque<DelayedHandler> owned_;
  std::vector<DelayedHandler*> delayed_;
  Pipeline<StubEvent> pipeline_;
  std::optional<SingleProducerSequencer> producer_;
  bool started_ = false;
};

TEST_F(DslParity, ShouldProcessMessagesPublishedBeforeStartIsCalled) {
  CountingHandler counter;
  pipeline_.handle_events_with(Stage("counter", counter));
  auto p = Attach<SingleProducerSequencer>(ring_);
  p.Publish(p.Next());  // before Start(): the stage gates from when it was added
  ASSERT_TRUE(pipeline_.Start().ok());
  p.Publish(p.Next());
  EXPECT_TRUE(counter.Reached(2, 5000ms));
}

TEST_F(DslParity, ShouldBatchOfEvents) {
  CountingHandler counter;
  pipeline_.handle_events_with(Stage("counter", counter));
  ASSERT_TRUE(pipeline_.Start().ok());
  auto p = Attach<SingleProducerSequencer>(ring_);
  std::vector<std::string> args{"a", "b"};
  ASSERT_TRUE(PublishEvents(ring_, p, [](StubEvent& e, std::int64_t, const std::string& s) {
                e.set(s);
              }, {}, std::span(args)).ok());
  EXPECT_TRUE(counter.Reached(2, 5000ms));
}

TEST_F(DslParity, ShouldHandleEventsWithRewindableEventHandlers) {
  struct FailsOnce {
    std::atomic<int> events{0};
    bool failed = false;
    void on_event(StubEvent&, std::int64_t, bool) {
      if (!failed) {
        failed = true;
        throw RewindableError("once");
      }
      ++events;
    }
  } handler;
  AlwaysRewind always;
  pipeline_.handle_events_with(Stage("rewinding", handler));
  pipeline_.SetRewindStrategy("rewinding", always);
  ASSERT_TRUE(pipeline_.Start().ok());
  auto p = Attach<SingleProducerSequencer>(ring_);
  p.Publish(*p.Next(2));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (handler.events < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(handler.events, 2);
}

// Added after publishing: the stages join at the cursor (sequence 5), as the reference's.
TEST_F(DslParity, ShouldSetSequenceForHandlerIfAddedAfterPublish) {
  auto p = Attach<SingleProducerSequencer>(ring_);
  for (int i = 0; i < 6; ++i) p.Publish(p.Next());  // nobody gates yet: the ring of 4 laps
  CountingHandler h1, h2, h3;
  pipeline_.handle_events_with(Stage("h1", h1), Stage("h2", h2), Stage("h3", h3));
  int stages = 0;
  for (const ConsumerStats& c : Stats(ring_.segment()).consumers) {
    if (c.state == ConsumerStatus::kActive) {
      EXPECT_EQ(c.sequence, 5) << c.name;
      ++stages;
    }
  }
  EXPECT_EQ(stages, 3);
}

TEST_F(DslParity, ShouldMakeEntriesAvailableToFirstHandlersImmediately) {
  CountingHandler counter;
  DelayedHandler& delayed = Delayed();
  pipeline_.handle_events_with(Stage("delayed", delayed), Stage("counter", counter));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {});
  delayed.ProcessEvent();
  delayed.ProcessEvent();
}

TEST_F(DslParity, ShouldWaitUntilAllFirstEventProcessorsProcessEventBeforeMakingItAvailable) {
  CountingHandler counter;
  DelayedHandler& delayed = Delayed();
  pipeline_.handle_events_with(Stage("delayed", delayed)).then(Stage("counter", counter));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {&delayed});
}

TEST_F(DslParity, ShouldAllowSpecifyingSpecificEventProcessorsToWaitFor) {
  CountingHandler counter;
  DelayedHandler& d1 = Delayed();
  DelayedHandler& d2 = Delayed();
  pipeline_.handle_events_with(Stage("d1", d1), Stage("d2", d2));
  pipeline_.after("d1", "d2").handle_events_with(Stage("counter", counter));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {&d1, &d2});
}

TEST_F(DslParity, ShouldWaitOnAllProducersJoinedByAnd) {
  CountingHandler counter;
  DelayedHandler& d1 = Delayed();
  DelayedHandler& d2 = Delayed();
  pipeline_.handle_events_with(Stage("d1", d1));
  const StageGroup<StubEvent> g2 = pipeline_.handle_events_with(Stage("d2", d2));
  std::vector<std::string> both{"d1"};
  both.insert(both.end(), g2.names().begin(), g2.names().end());
  pipeline_.after(both[0], both[1]).handle_events_with(Stage("counter", counter));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {&d1, &d2});
}

TEST_F(DslParity, ShouldThrowExceptionIfHandlerIsNotAlreadyConsuming) {
  CountingHandler counter;
  PipelineOptions quick{.register_timeout_ns = 50'000'000};
  Pipeline<StubEvent> other(ring_, quick);
  other.after("nobody").handle_events_with(Stage("counter2", counter));
  const absl::Status s = other.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nobody"), absl::string_view::npos) << s;
}

TEST_F(DslParity, ShouldSupportADefaultExceptionHandlerForExistingAndNewStages) {
  ThrowingHandler t1, t2;
  CountingExceptionHandler<StubEvent> exceptions;
  pipeline_.handle_events_with(Stage("before", t1));  // added before the default is set
  pipeline_.SetDefaultExceptionHandler(exceptions);
  pipeline_.handle_events_with(Stage("after", t2));
  PublishEventStarting();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (exceptions.events < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(exceptions.events, 2);
  EXPECT_EQ(exceptions.last(), "npe");
}

TEST_F(DslParity, ShouldBeAbleToOverrideTheExceptionHandlerForAStage) {
  ThrowingHandler t;
  CountingExceptionHandler<StubEvent> fallback, own;
  pipeline_.handle_events_with(Stage("thrower", t));
  pipeline_.SetDefaultExceptionHandler(fallback);
  pipeline_.SetExceptionHandler("thrower", own);
  PublishEventStarting();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (own.events < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(own.events, 1);
  EXPECT_EQ(fallback.events, 0);
}

// The same for a worker pool, by the pool's name: each member takes it.
TEST_F(DslParity, ShouldOverrideTheExceptionHandlerForAWorkerPoolByItsName) {
  ThrowingHandler t1, t2;
  CountingExceptionHandler<StubEvent> fallback, own;
  pipeline_.handle_events_with_worker_pool("pool", std::vector<ThrowingHandler*>{&t1, &t2},
                                           {.claim = 1});
  pipeline_.SetDefaultExceptionHandler(fallback);
  pipeline_.SetExceptionHandler("pool", own);
  ASSERT_TRUE(pipeline_.error().ok()) << pipeline_.error();
  PublishEventStarting();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (own.events + fallback.events < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(own.events, 1);
  EXPECT_EQ(fallback.events, 0);
}

TEST_F(DslParity, ShouldBlockProducerUntilAllEventProcessorsHaveAdvanced) {
  DelayedHandler& delayed = Delayed();
  pipeline_.handle_events_with(Stage("delayed", delayed));
  ASSERT_TRUE(pipeline_.Start().ok());
  started_ = true;
  delayed.AwaitStart();
  std::atomic<int> published{0};
  std::atomic<bool> running{true};
  std::thread publisher([&] {
    auto p = Attach<SingleProducerSequencer>(ring_);
    while (running) {
      auto s = p.NextFor(1, 10'000'000);  // (in slices, to see `running` go false)
      if (!s.ok()) continue;
      p.Publish(*s);
      ++published;
    }
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(published, 4);  // the ring of 4 is full; the stage has not moved
  for (int i = 0; i < 5; ++i) delayed.ProcessEvent();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (published < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(published, 5);
  running = false;
  delayed.stop = true;
  publisher.join();
}

TEST_F(DslParity, ShouldRefuseToStartTwiceAndStagesAddedAfterStart) {
  CountingHandler counter, late;
  pipeline_.handle_events_with(Stage("counter", counter));
  ASSERT_TRUE(pipeline_.Start().ok());
  EXPECT_EQ(pipeline_.Start().code(), absl::StatusCode::kFailedPrecondition);
  pipeline_.handle_events_with(Stage("late", late));
  EXPECT_EQ(pipeline_.error().code(), absl::StatusCode::kFailedPrecondition);
  for (const ConsumerStats& c : Stats(ring_.segment()).consumers) EXPECT_NE(c.name, "late");
}

// Custom processors (EventProcessorFactory): one over a stage's consumer, as a dependency and
// as a dependent.
struct CustomProcessor {
  Ring<StubEvent>* ring;
  Consumer* consumer;
  CountingHandler* counter;
  DelayedHandler* delayed;
  std::unique_ptr<BatchEventProcessor<StubEvent, CountingHandler>> counting;
  std::unique_ptr<BatchEventProcessor<StubEvent, DelayedHandler>> delaying;
  WaitStatus Run() { return counting ? counting->Run() : delaying->Run(); }
  void Halt() {
    if (counting) counting->Halt();
    if (delaying) delaying->Halt();
  }
};

auto CustomFactory(CountingHandler* counter, DelayedHandler* delayed) {
  return [counter, delayed](Ring<StubEvent>& ring, Consumer& consumer) {
    auto p = std::make_unique<CustomProcessor>(
        CustomProcessor{&ring, &consumer, counter, delayed, nullptr, nullptr});
    if (counter != nullptr) {
      p->counting = std::make_unique<BatchEventProcessor<StubEvent, CountingHandler>>(
          ring, consumer, *counter);
    } else {
      p->delaying = std::make_unique<BatchEventProcessor<StubEvent, DelayedHandler>>(
          ring, consumer, *delayed);
    }
    return p;
  };
}

TEST_F(DslParity, ShouldSupportCustomProcessorsAsDependencies) {
  CountingHandler counter;
  DelayedHandler& delayed = Delayed();
  pipeline_.handle_events_with(CustomStage("custom", CustomFactory(nullptr, &delayed)))
      .then(Stage("counter", counter));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {&delayed});
}

TEST_F(DslParity, ShouldSupportHandlersAsDependenciesToCustomProcessors) {
  CountingHandler counter;
  DelayedHandler& delayed = Delayed();
  pipeline_.handle_events_with(Stage("delayed", delayed))
      .then(CustomStage("custom", CustomFactory(&counter, nullptr)));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {&delayed});
}

TEST_F(DslParity, ShouldSupportCustomProcessorsAndHandlersAsDependencies) {
  CountingHandler counter;
  DelayedHandler& d1 = Delayed();
  DelayedHandler& d2 = Delayed();
  pipeline_.handle_events_with(Stage("d1", d1));
  pipeline_.after("d1").handle_events_with(CustomStage("custom", CustomFactory(nullptr, &d2)));
  pipeline_.after("d1", "custom").handle_events_with(Stage("counter", counter));
  EnsureTwoEventsProcessedAccordingToDependencies(counter, {&d1, &d2});
}

// SequenceReportingCallbackTest: a handler releases its sequence from inside the batch, and
// the producer may reuse those slots before the batch ends.
TEST(SequenceCallbackParity, ShouldReportProgressByUpdatingSequenceViaCallback) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 16, SequencerKind::kSingleProducer);
  Consumer consumer = Register(ring, "reporting");
  struct Reporting {
    std::optional<SequenceCallback> callback;
    std::latch* on_end;
    std::latch* go_on;
    void set_sequence_callback(SequenceCallback cb) { callback = cb; }
    void on_event(StubEvent&, std::int64_t s, bool end_of_batch) {
      callback->Release(s);
      if (!end_of_batch) {
        on_end->count_down();
        go_on->wait();
      }
    }
  };
  std::latch on_end(1), go_on(1);
  Reporting handler{std::nullopt, &on_end, &go_on};
  BatchEventProcessor<StubEvent, Reporting> processor(ring, consumer, handler);
  std::thread t([&] { processor.Run(); });
  EXPECT_EQ(consumer.sequence(), -1);
  auto p = Attach<SingleProducerSequencer>(ring);
  p.Publish(*p.Next(2));
  on_end.wait();
  EXPECT_EQ(consumer.sequence(), 0);  // released in the middle of the batch
  go_on.count_down();
  while (consumer.sequence() != 1) std::this_thread::sleep_for(1ms);
  processor.Halt();
  t.join();
}

// -------------------------------------------------- join with history and observers (ours)

TEST(HistoryParity, ShouldJoinAtAProtectedOlderSequenceAndRefuseAnUnprotectedOne) {
  ScopedRingName name;
  Ring<StubEvent> ring = MakeRing(name, 8, SequencerKind::kSingleProducer);
  Consumer anchor = Register(ring, "anchor");
  auto p = Attach<SingleProducerSequencer>(ring);
  for (std::int64_t i = 0; i < 6; ++i) PublishEvent(ring, p, SetValue, i, std::string_view());
  // anchor at -1 protects 0..: join at 2 and read 2..5
  auto late = Consumer::Register(ring.segment(), "late", {.start_at = 2});
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->sequence(), 1);
  EXPECT_EQ(late->join_sequence(), 1);
  EXPECT_EQ(late->barrier().WaitFor(2).available, 5);
  // past the cursor + 1: InvalidArgument; the cursor + 1 itself: fine
  EXPECT_EQ(Consumer::Register(ring.segment(), "future", {.start_at = 7}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Consumer::Register(ring.segment(), "next", {.start_at = 6}).ok());
  // the anchor moves on to 5 and the producer sees it (its next claim past the lap): 0..5
  // are no longer protected
  anchor.Release(5, 6);
  ASSERT_TRUE(late->Deregister().ok());
  for (std::int64_t i = 6; i < 14; ++i) PublishEvent(ring, p, SetValue, i, std::string_view());
  const int before = ActiveConsumerCount(ring.segment());
  auto old = Consumer::Register(ring.segment(), "old", {.start_at = 3});
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange) << old.status();
  EXPECT_EQ(ActiveConsumerCount(ring.segment()), before);  // the entry went back
  EXPECT_TRUE(Consumer::Register(ring.segment(), "old", {.start_at = 6}).ok());
}

TEST(HistoryParity, ShouldTellAnObserverExactlyWhenItIsLapped) {
  for (SequencerKind kind : {SequencerKind::kSingleProducer, SequencerKind::kMultiProducer}) {
    ScopedRingName name;
    Ring<StubEvent> ring = MakeRing(name, 8, kind);
    Consumer observer = Register(ring, "observer", {.gating = false});
    ASSERT_TRUE(observer.observer());
    auto publish = [&](int n) {
      if (kind == SequencerKind::kSingleProducer) {
        auto p = Attach<SingleProducerSequencer>(ring);
        for (int i = 0; i < n; ++i) PublishEvent(ring, p, SeqOnly);
        ASSERT_TRUE(p.Detach().ok());
      } else {
        auto p = Attach<MultiProducerSequencer>(ring);
        for (int i = 0; i < n; ++i) PublishEvent(ring, p, SeqOnly);
        ASSERT_TRUE(p.Detach().ok());
      }
    };
    publish(8);  // a whole lap: nothing overwritten yet
    EXPECT_FALSE(observer.Lapped(0));
    EventPoller<StubEvent> poller(ring, observer);
    int seen = 0;
    EXPECT_EQ(poller.Poll([&](StubEvent&, std::int64_t, bool) { return ++seen < 3; }),
              PollState::kProcessing);
    EXPECT_EQ(seen, 3);  // 0..2 read and released
    publish(3);          // 8..10 overwrite 0..2 only
    EXPECT_FALSE(observer.Lapped(3));
    publish(1);  // 11 overwrites 3, the next it would read
    EXPECT_TRUE(observer.Lapped(3));
    EXPECT_EQ(poller.Poll([](StubEvent&, std::int64_t, bool) { return true; }),
              PollState::kLapped);
    EXPECT_EQ(observer.barrier().WaitFor(3).status,
              kind == SequencerKind::kMultiProducer ? WaitStatus::kLapped : WaitStatus::kOk);
    struct Nothing {
      void on_event(StubEvent&, std::int64_t, bool) { ADD_FAILURE() << "handed a lapped batch"; }
    } nothing;
    BatchEventProcessor<StubEvent, Nothing> processor(ring, observer, nothing);
    EXPECT_EQ(processor.Run(), WaitStatus::kLapped);
    EXPECT_EQ(observer.sequence(), 2);
  }
}

}  // namespace
}  // namespace xdisruptor
