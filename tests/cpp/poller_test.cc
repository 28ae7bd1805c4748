#include "xdisruptor/event_poller.h"

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/sequencer.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using testing::TestEvent;

TEST(PollerTest, ShouldReportEachStateWhenPolled) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto up = Consumer::Register(ring->segment(), "up");
  auto down = Consumer::Register(ring->segment(), "down", {.after = {"up"}});
  ASSERT_TRUE(up.ok() && down.ok());
  EventPoller<TestEvent> up_poller(*ring, *up);
  EventPoller<TestEvent> down_poller(*ring, *down);
  std::vector<std::int64_t> seen;
  auto take_all = [&](TestEvent& e, std::int64_t s, bool) {
    EXPECT_TRUE(e.Verify(s));
    seen.push_back(s);
    return true;
  };
  EXPECT_EQ(up_poller.Poll(take_all), PollState::kIdle);

  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  const std::int64_t hi = *producer->Next(4);
  for (std::int64_t s = 0; s <= hi; ++s) (*ring)[s].Fill(s);
  producer->Publish(0, hi);

  EXPECT_EQ(down_poller.Poll(take_all), PollState::kGating);  // "up" has not read them
  int calls = 0;
  EXPECT_EQ(up_poller.Poll([&](TestEvent&, std::int64_t, bool) { return ++calls < 2; }),
            PollState::kProcessing);
  EXPECT_EQ(up->sequence(), 1);  // stopped early after two events
  EXPECT_EQ(up_poller.Poll(take_all), PollState::kProcessing);
  EXPECT_EQ(down_poller.Poll(take_all), PollState::kProcessing);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{2, 3, 0, 1, 2, 3}));
  EXPECT_EQ(down_poller.Poll(take_all), PollState::kIdle);
  producer->Close();
  EXPECT_EQ(down_poller.Poll(take_all), PollState::kClosed);
}

TEST(PollerTest, ShouldReportUpstreamGoneWhenTheUpstreamLeaves) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto up = Consumer::Register(ring->segment(), "up");
  auto down = Consumer::Register(ring->segment(), "down", {.after = {"up"}});
  ASSERT_TRUE(up.ok() && down.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  producer->Publish(producer->Next());
  EventPoller<TestEvent> poller(*ring, *down);
  auto ignore = [](TestEvent&, std::int64_t, bool) { return true; };
  EXPECT_EQ(poller.Poll(ignore), PollState::kGating);
  ASSERT_TRUE(up->Deregister().ok());
  EXPECT_EQ(poller.Poll(ignore), PollState::kUpstreamGone);
}

TEST(PollerTest, ShouldHandOutNothingOnceEvicted) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto c = Consumer::Register(ring->segment(), "polled");
  ASSERT_TRUE(c.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  producer->Publish(0, *producer->Next(4));
  EventPoller<TestEvent> poller(*ring, *c);
  int handed = 0;
  auto count = [&](TestEvent&, std::int64_t, bool) { return ++handed > 0; };
  ASSERT_TRUE(EvictConsumer(ring->segment(), "polled").ok());
  // No longer gating: the producer laps it; none of those slots may be handed out as its own.
  for (int i = 0; i < 3; ++i) producer->Publish(*producer->Next(16));
  EXPECT_EQ(poller.Poll(count), PollState::kEvicted);
  EXPECT_EQ(handed, 0);
  EXPECT_EQ(c->sequence(), -1);  // nothing released
}

}  // namespace
}  // namespace xdisruptor
