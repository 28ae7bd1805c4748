// The batch event processor with threads in one process (these also run under TSan).
#include "xdisruptor/batch_event_processor.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/sequencer.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using testing::Produce;
using testing::TestEvent;

struct CheckingHandler {
  std::int64_t expected = 0;
  std::uint64_t errors = 0;
  std::uint64_t sum = 0;
  std::uint64_t batches = 0;
  bool started = false;
  bool shut_down = false;
  bool check_mark = false;
  bool write_mark = false;

  void on_start() { started = true; }
  void on_shutdown() { shut_down = true; }
  void on_event(TestEvent& e, std::int64_t sequence, bool end_of_batch) {
    errors += sequence != expected || !e.Verify(sequence);
    if (check_mark) errors += e.stage_mark != TestEvent::StageMark(sequence);
    if (write_mark) e.stage_mark = TestEvent::StageMark(sequence);
    sum += e.Sum();
    batches += end_of_batch;
    expected = sequence + 1;
  }
};

TEST(ProcessorTest, ShouldDeliverEveryEventInOrderWhenStagesRunInThreads) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 256});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto a = Consumer::Register(ring->segment(), "a", {.wait = {.kind = WaitKind::kYielding}});
  auto b = Consumer::Register(ring->segment(), "b",
                              {.after = {"a"}, .wait = {.kind = WaitKind::kSleeping}});
  ASSERT_TRUE(a.ok() && b.ok());
  CheckingHandler ha{.write_mark = true};
  CheckingHandler hb{.check_mark = true};
  BatchEventProcessor<TestEvent, CheckingHandler> pa(*ring, *a, ha);
  BatchEventProcessor<TestEvent, CheckingHandler> pb(*ring, *b, hb);
  WaitStatus why_a{}, why_b{};
  std::thread ta([&] { why_a = pa.Run(); });
  std::thread tb([&] { why_b = pb.Run(); });
  constexpr std::int64_t kEvents = 200'000;
  Produce(*ring, kEvents, 7);
  ta.join();
  tb.join();
  EXPECT_EQ(why_a, WaitStatus::kClosed);
  EXPECT_EQ(why_b, WaitStatus::kClosed);
  for (CheckingHandler* h : {&ha, &hb}) {
    EXPECT_TRUE(h->started && h->shut_down);
    EXPECT_EQ(h->expected, kEvents);
    EXPECT_EQ(h->errors, 0u);
    EXPECT_GE(h->batches, 1u);
  }
  EXPECT_EQ(ha.sum, hb.sum);
  EXPECT_EQ(a->sequence(), kEvents - 1);
  const ConsumerState& entry = ring->segment().consumer(static_cast<std::size_t>(b->index()));
  EXPECT_EQ(entry.events.load(), static_cast<std::uint64_t>(kEvents));
  EXPECT_EQ(entry.batches.load(), hb.batches);
}

TEST(ProcessorTest, ShouldReturnWhenHaltedFromAnotherThread) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto c = Consumer::Register(ring->segment(), "c", {.wait = {.kind = WaitKind::kSleeping}});
  ASSERT_TRUE(c.ok());
  CheckingHandler h;
  BatchEventProcessor<TestEvent, CheckingHandler> p(*ring, *c, h);
  std::thread t([&] { EXPECT_EQ(p.Run(), WaitStatus::kHalted); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  p.Halt();
  t.join();
  EXPECT_TRUE(h.shut_down);
}

// The Disruptor's earlyExit: a processor halted before it runs still calls on_start and
// on_shutdown once each (code waiting for on_start must not hang), and handles no event.
TEST(ProcessorTest, ShouldPairStartAndShutdownWhenHaltedBeforeItStarts) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto c = Consumer::Register(ring->segment(), "c", {.wait = {.kind = WaitKind::kBlocking}});
  ASSERT_TRUE(c.ok());
  CheckingHandler h;
  BatchEventProcessor<TestEvent, CheckingHandler> p(*ring, *c, h);
  p.Halt();
  std::thread t([&] { EXPECT_EQ(p.Run(), WaitStatus::kHalted); });
  t.join();
  EXPECT_TRUE(h.started && h.shut_down);
  EXPECT_EQ(h.expected, 0);  // no event handled
  h.started = h.shut_down = false;
  // Halting is not sticky: a later Run waits again until halted again.
  std::thread again([&] { EXPECT_EQ(p.Run(), WaitStatus::kHalted); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  p.Halt();
  again.join();
  EXPECT_TRUE(h.started && h.shut_down);
}

struct TimeoutHandler {
  int timeouts = 0;
  std::int64_t last_seen = -2;
  void on_event(TestEvent&, std::int64_t, bool) {}
  void on_timeout(std::int64_t sequence) {
    last_seen = sequence;
    ++timeouts;
  }
};

TEST(ProcessorTest, ShouldCallOnTimeoutWhenNothingArrivesInTime) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto c = Consumer::Register(ring->segment(), "c",
                              {.wait = {.kind = WaitKind::kSleeping, .timeout_ns = 2'000'000}});
  ASSERT_TRUE(c.ok());
  TimeoutHandler h;
  BatchEventProcessor<TestEvent, TimeoutHandler> p(*ring, *c, h);
  std::thread t([&] { p.Run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  p.Halt();
  t.join();
  EXPECT_GE(h.timeouts, 3);
  EXPECT_EQ(h.last_seen, -1);
}

}  // namespace
}  // namespace xdisruptor
