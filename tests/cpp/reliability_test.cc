// Crashes and restarts across real processes: consumers resume by name, evict-policy
// consumers are dropped when they die, evicted names must choose to rejoin, a dead producer is
// reported once everything it published was delivered.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"
#include "xdisruptor/stats.h"

namespace xdisruptor {
namespace {

using testing::ForkChild;
using testing::ScopedRingName;
using testing::TestEvent;
using testing::AwaitConsumers;
using testing::WaitChild;


void PublishRange(Ring<TestEvent>& ring, SingleProducerSequencer& producer, std::int64_t n) {
  const std::int64_t hi = *producer.Next(n);
  for (std::int64_t s = hi - n + 1; s <= hi; ++s) ring[s].Fill(s);
  producer.Publish(hi - n + 1, hi);
}

// A consumer process that releases up to `stop_at` and then waits to be killed.
pid_t ConsumeThenHang(const std::string& ring_name, const std::string& name, StallPolicy policy,
                      std::int64_t stop_at) {
  return ForkChild([=] {
    auto ring = Ring<TestEvent>::Attach(ring_name);
    if (!ring.ok()) return 2;
    auto c = Consumer::Register(ring->segment(), name,
                                {.wait = {.kind = WaitKind::kBlocking}, .stall_policy = policy});
    if (!c.ok()) return 3;
    for (std::int64_t next = 0; next <= stop_at;) {
      const WaitResult r = c->barrier().WaitFor(next);
      if (r.status != WaitStatus::kOk) return 12;
      const std::int64_t last = std::min(r.available, stop_at);
      for (std::int64_t s = next; s <= last; ++s) {
        if (!(*ring)[s].Verify(s)) return 10;
      }
      c->Release(last, static_cast<std::uint64_t>(last - next + 1));
      next = last + 1;
    }
    ::pause();
    return 0;
  });
}

TEST(ReliabilityTest, ShouldResumeWhereItLeftOffWhenAHoldConsumerRestarts) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  const pid_t child = ConsumeThenHang(name.get(), "durable", StallPolicy::kHold, 29);
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  PublishRange(*ring, *producer, 50);
  while (ring->segment().consumer(0).sequence.load() < 29) std::this_thread::yield();
  const std::int64_t registered_at = Stats(ring->segment()).consumers.at(0).registered_at_unix_ns;
  ::kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
  // The dead consumer still holds the producer: a lap after its position is out of reach.
  EXPECT_FALSE(producer->TryNext(64 - 20 + 1).ok());
  PublishRange(*ring, *producer, 40);  // 50..89 fit: 89 - 64 = 25 <= 29
  {
    // Restarted as a stage after another, it may not resume an entry that ran after none: it
    // would read events before that stage handled them.
    auto up = Consumer::Register(ring->segment(), "up");
    ASSERT_TRUE(up.ok());
    const auto moved = Consumer::Register(ring->segment(), "durable", {.after = {"up"}});
    EXPECT_EQ(moved.status().code(), absl::StatusCode::kFailedPrecondition) << moved.status();
    EXPECT_NE(moved.status().message().find("running after [], but was asked to run after [up]"),
              std::string_view::npos)
        << moved.status();
  }
  auto again = Consumer::Register(ring->segment(), "durable");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->resumed());
  EXPECT_EQ(again->sequence(), 29);
  // Its counters go on, so the time they count from does too (events per second divide by
  // it: a new time would make a day's events look like a second's).
  EXPECT_EQ(Stats(ring->segment()).consumers.at(0).registered_at_unix_ns, registered_at);
  const WaitResult r = again->barrier().WaitFor(30);
  ASSERT_EQ(r.status, WaitStatus::kOk);
  EXPECT_EQ(r.available, 89);
  for (std::int64_t s = 30; s <= 89; ++s) EXPECT_TRUE((*ring)[s].Verify(s)) << s;
}

TEST(ReliabilityTest, ShouldEvictADeadEvictConsumerAndLetTheProducerGoOn) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = WaitKind::kBlocking});
  ASSERT_TRUE(producer.ok());
  const pid_t child = ConsumeThenHang(name.get(), "optional", StallPolicy::kEvict, 4);
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  PublishRange(*ring, *producer, 10);
  while (ring->segment().consumer(0).sequence.load() < 4) std::this_thread::yield();
  ::kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 25; ++i) PublishRange(*ring, *producer, 4);  // far past a lap
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  const ConsumerState& entry = ring->segment().consumer(0);
  EXPECT_EQ(LoadStatus(entry), ConsumerStatus::kEvicted);
  EXPECT_EQ(entry.evictions.load(), 1u);
  EXPECT_EQ(ring->segment().producer().gating_mask.load(), 0u);

  auto refused = Consumer::Register(ring->segment(), "optional");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(refused.status().message().find("105 events"), absl::string_view::npos)
      << refused.status();
  auto rejoined = Consumer::Register(ring->segment(), "optional", {.rejoin_at_cursor = true});
  ASSERT_TRUE(rejoined.ok()) << rejoined.status();
  EXPECT_FALSE(rejoined->resumed());
  EXPECT_EQ(rejoined->missed(), 105u);
  EXPECT_EQ(rejoined->sequence(), 109);
}

TEST(ReliabilityTest, ShouldTellALiveConsumerItWasEvicted) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto c = Consumer::Register(ring->segment(), "victim", {.wait = {.kind = WaitKind::kBlocking}});
  ASSERT_TRUE(c.ok());
  const pid_t operator_process = ForkChild([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = RingSegment::Attach(name.get());
    if (!r.ok()) return 2;
    return EvictConsumer(*r, "victim").ok() ? 0 : 3;
  });
  EXPECT_EQ(c->barrier().WaitFor(0).status, WaitStatus::kEvicted);
  EXPECT_EQ(WaitChild(operator_process), 0);
  EXPECT_TRUE(c->Deregister().ok());
  EXPECT_EQ(EvictConsumer(ring->segment(), "nobody").code(), absl::StatusCode::kNotFound);
}

TEST(ReliabilityTest, ShouldKeepTheNewRegistrationWhenTheEvictedObjectIsDropped) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  std::optional<Consumer> old;
  {
    auto c = Consumer::Register(ring->segment(), "retry");
    ASSERT_TRUE(c.ok());
    old.emplace(*std::move(c));
  }
  PublishRange(*ring, *producer, 8);
  ASSERT_TRUE(EvictConsumer(ring->segment(), "retry").ok());
  // Events are available, but an evicted consumer is told so at once (not handed them).
  EXPECT_EQ(old->barrier().WaitFor(0).status, WaitStatus::kEvicted);
  auto fresh = Consumer::Register(ring->segment(), "retry", {.rejoin_at_cursor = true});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  old.reset();  // the evicted object's destructor must not free the new registration
  EXPECT_EQ(ActiveConsumerCount(ring->segment()), 1);
  EXPECT_NE(ring->segment().producer().gating_mask.load(), 0u);
  EXPECT_EQ(fresh->missed(), 8u);
}

TEST(ReliabilityTest, ShouldStartEvictionsAndMissedAtZeroForAnotherNameInAFreedEntry) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  {
    auto first = Consumer::Register(ring->segment(), "first");
    ASSERT_TRUE(first.ok());
    PublishRange(*ring, *producer, 8);
    ASSERT_TRUE(EvictConsumer(ring->segment(), "first").ok());
    auto again = Consumer::Register(ring->segment(), "first", {.rejoin_at_cursor = true});
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->missed(), 8u);
  }  // both dropped: the entry is free
  // The same name keeps what happened to it...
  {
    auto same = Consumer::Register(ring->segment(), "first");
    ASSERT_TRUE(same.ok()) << same.status();
    EXPECT_EQ(same->missed(), 8u);
    EXPECT_EQ(Stats(ring->segment()).consumers.at(0).evictions, 1u);
  }
  // ...another name taking the entry starts from nothing.
  auto other = Consumer::Register(ring->segment(), "second");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_EQ(other->index(), 0);  // the entry "first" had
  EXPECT_EQ(other->missed(), 0u);
  const RingStats st = Stats(ring->segment());
  ASSERT_EQ(st.consumers.size(), 1u);
  EXPECT_EQ(st.consumers[0].name, "second");
  EXPECT_EQ(st.consumers[0].evictions, 0u);
  EXPECT_EQ(st.consumers[0].missed, 0u);
}

TEST(ReliabilityTest, ShouldReportProducerGoneAfterDeliveringEverythingItPublished) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto c = Consumer::Register(ring->segment(), "reader", {.wait = {.kind = WaitKind::kBlocking}});
  ASSERT_TRUE(c.ok());
  const pid_t producer = ForkChild([&] {
    auto r = Ring<TestEvent>::Attach(name.get());
    if (!r.ok()) return 2;
    auto p = SingleProducerSequencer::Attach(r->segment());
    if (!p.ok()) return 4;
    PublishRange(*r, *p, 10);
    ::_exit(0);  // dies without closing the stream
  });
  ASSERT_EQ(WaitChild(producer), 0);
  WaitResult r = c->barrier().WaitFor(0);
  ASSERT_EQ(r.status, WaitStatus::kOk);
  EXPECT_EQ(r.available, 9);  // everything published is delivered first
  c->Release(9, 10);
  const auto start = std::chrono::steady_clock::now();
  r = c->barrier().WaitFor(10);
  EXPECT_EQ(r.status, WaitStatus::kProducerGone);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // A new producer may take over and continue the sequence.
  auto successor = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(successor.ok()) << successor.status();
  PublishRange(*ring, *successor, 1);
  r = c->barrier().WaitFor(10);
  EXPECT_EQ(r.status, WaitStatus::kOk);
  EXPECT_TRUE((*ring)[10].Verify(10));
}

}  // namespace
}  // namespace xdisruptor
