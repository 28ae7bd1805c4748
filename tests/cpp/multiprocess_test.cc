// Tests across real processes: every consumer and producer here is a forked child that
// attaches to the ring by name through its own mapping, as separate programs would.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::ForkChild;
using testing::ScopedRingName;
using testing::TestEvent;
using testing::AwaitConsumers;
using testing::WaitChild;

// Child exit codes: 0 ok, 2.. setup failures, 10.. check failures.
constexpr int kAttachFailed = 2;
constexpr int kRegisterFailed = 3;
constexpr int kProducerFailed = 4;
constexpr int kWrongEvents = 10;
constexpr int kWrongCount = 11;
constexpr int kWrongStop = 12;


// Publishes `events` TestEvents in batches of `batch`, then closes the ring.
std::uint64_t ProduceAll(Ring<TestEvent>& ring, std::int64_t events, std::int64_t batch,
                         const WaitParams& wait) {
  auto producer = SingleProducerSequencer::Attach(ring.segment(), wait);
  if (!producer.ok()) return 0;
  std::uint64_t sum = 0;
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min(batch, events - done);
    const std::int64_t hi = *producer->Next(n);
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) {
      ring[s].Fill(s);
      sum += ring[s].Sum();
    }
    producer->Publish(hi - n + 1, hi);
    done += n;
  }
  producer->Close();
  return sum;
}

struct VerifyingHandler {
  std::int64_t expected = 0;
  std::uint64_t errors = 0;
  std::uint64_t sum = 0;
  bool check_mark = false;
  bool write_mark = false;
  int slow_every = 0;  // sleep 50 us every this many events, then re-check the slot

  void on_event(TestEvent& e, std::int64_t sequence, bool) {
    errors += sequence != expected || !e.Verify(sequence);
    if (check_mark) errors += e.stage_mark != TestEvent::StageMark(sequence);
    if (slow_every != 0 && sequence % slow_every == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      errors += !e.Verify(sequence);  // the producer must not have overwritten it meanwhile
    }
    if (write_mark) {
      // Several stores, so a downstream stage that read too early would see a torn mark.
      e.stage_mark = TestEvent::StageMark(sequence);
    }
    sum += e.Sum();
    expected = sequence + 1;
  }
};

// A consumer process: attach, register, run a processor to the end of the stream, check.
int ConsumerProcess(const std::string& ring_name, const std::string& name,
                    ConsumerOptions options, VerifyingHandler handler, std::int64_t events,
                    std::uint64_t* sum_out = nullptr) {
  auto ring = Ring<TestEvent>::Attach(ring_name);
  if (!ring.ok()) return kAttachFailed;
  auto consumer = Consumer::Register(ring->segment(), name, options);
  if (!consumer.ok()) return kRegisterFailed;
  BatchEventProcessor<TestEvent, VerifyingHandler> processor(*ring, *consumer, handler);
  if (processor.Run() != WaitStatus::kClosed) return kWrongStop;
  if (handler.errors != 0) return kWrongEvents;
  if (handler.expected != events) return kWrongCount;
  if (sum_out != nullptr) *sum_out = handler.sum;
  return 0;
}

// (a) 1 producer, 3 consumer processes, 10 million events: every consumer checks every
// sequence, every word of every event and the checksum of the whole stream.
TEST(MultiProcessTest, ShouldDeliverEveryEventToEveryConsumerWhenThreeProcessesRead) {
  ScopedRingName name;
  constexpr std::int64_t kEvents = 10'000'000;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 65536});
  ASSERT_TRUE(ring.ok()) << ring.status();
  // The producer's checksum is computed the same way in every child; pass it through a pipe.
  int sums[2];
  ASSERT_EQ(::pipe(sums), 0);
  std::vector<pid_t> children;
  for (int c = 0; c < 3; ++c) {
    children.push_back(ForkChild([&, c] {
      std::uint64_t sum = 0;
      const int rc = ConsumerProcess(name.get(), "reader" + std::to_string(c),
                                     {.wait = {.kind = WaitKind::kYielding}}, {}, kEvents, &sum);
      if (::write(sums[1], &sum, sizeof(sum)) != sizeof(sum)) return 20;
      return rc;
    }));
  }
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 3));
  const std::uint64_t expected_sum =
      ProduceAll(*ring, kEvents, 64, {.kind = WaitKind::kYielding});
  for (pid_t child : children) EXPECT_EQ(WaitChild(child), 0);
  for (int c = 0; c < 3; ++c) {
    std::uint64_t sum = 0;
    ASSERT_EQ(::read(sums[0], &sum, sizeof(sum)), static_cast<ssize_t>(sizeof(sum)));
    EXPECT_EQ(sum, expected_sum);
  }
  ::close(sums[0]);
  ::close(sums[1]);
}

// (b) 8 slots and a deliberately slow consumer: the producer never overwrites an unread slot.
TEST(MultiProcessTest, ShouldNeverOverwriteAnUnreadSlotWhenTheConsumerIsSlow) {
  ScopedRingName name;
  constexpr std::int64_t kEvents = 20'000;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 8});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    return ConsumerProcess(name.get(), "slow", {.wait = {.kind = WaitKind::kSleeping}},
                           {.slow_every = 3}, kEvents);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  // Producer claims one slot at a time at full speed, and checks the gating invariant itself.
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = WaitKind::kYielding});
  ASSERT_TRUE(producer.ok());
  const ConsumerState& slow = ring->segment().consumer(0);
  std::int64_t violations = 0;
  for (std::int64_t s = 0; s < kEvents; ++s) {
    const std::int64_t claimed = producer->Next();
    // Slot `claimed` held claimed - 8, which the consumer must have released already.
    violations += slow.sequence.load(std::memory_order_acquire) < claimed - 8;
    (*ring)[claimed].Fill(claimed);
    producer->Publish(claimed);
  }
  producer->Close();
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(WaitChild(child), 0);
}

// (c) A then B in two processes: B sees A's in-place change on every event, never before A
// released it.
TEST(MultiProcessTest, ShouldShowUpstreamChangesWhenStagesRunInProcesses) {
  ScopedRingName name;
  constexpr std::int64_t kEvents = 1'000'000;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 1024});
  ASSERT_TRUE(ring.ok());
  const pid_t a = ForkChild([&] {
    return ConsumerProcess(name.get(), "A", {.wait = {.kind = WaitKind::kYielding}},
                           {.write_mark = true}, kEvents);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  const pid_t b = ForkChild([&] {
    return ConsumerProcess(name.get(), "B",
                           {.after = {"A"}, .wait = {.kind = WaitKind::kYielding}},
                           {.check_mark = true}, kEvents);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 2));
  ProduceAll(*ring, kEvents, 16, {.kind = WaitKind::kYielding});
  EXPECT_EQ(WaitChild(a), 0);
  EXPECT_EQ(WaitChild(b), 0);
}

// (d) Consumers join again and again while a producer process runs flat out: each starts
// cleanly at its join point and reads only intact events from there on.
TEST(MultiProcessTest, ShouldStartCleanlyAtTheJoinPointWhenJoiningAFullSpeedStream) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 256});
  ASSERT_TRUE(ring.ok());
  const pid_t producer = ForkChild([&] {
    auto r = Ring<TestEvent>::Attach(name.get());
    if (!r.ok()) return kAttachFailed;
    auto seq = SingleProducerSequencer::Attach(r->segment(), {.kind = WaitKind::kYielding});
    if (!seq.ok()) return kProducerFailed;
    for (;;) {  // until killed
      const std::int64_t hi = *seq->Next(4);
      for (std::int64_t s = hi - 3; s <= hi; ++s) (*r)[s].Fill(s);
      seq->Publish(hi - 3, hi);
    }
  });
  // Wait until the stream has lapped the ring many times.
  while (ring->segment().producer().cursor.load() < 100'000) std::this_thread::yield();
  constexpr int kJoins = 300;
  int bad_joins = 0;
  for (int j = 0; j < kJoins; ++j) {
    auto consumer = Consumer::Register(ring->segment(), "joiner" + std::to_string(j % 3));
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    const std::int64_t start = consumer->sequence();
    EventPoller<TestEvent> poller(*ring, *consumer);
    std::int64_t expected = start + 1;
    std::uint64_t errors = 0;
    while (expected < start + 1 + 2000) {
      poller.Poll([&](TestEvent& e, std::int64_t s, bool) {
        errors += s != expected || !e.Verify(s);
        expected = s + 1;
        return true;
      });
    }
    bad_joins += errors != 0;
    ASSERT_TRUE(consumer->Deregister().ok());
  }
  ::kill(producer, SIGKILL);
  WaitChild(producer);
  EXPECT_EQ(bad_joins, 0);
}

// Many processes register at once: names stay unique and exactly one holder wins each name.
TEST(MultiProcessTest, ShouldKeepNamesUniqueWhenProcessesRegisterConcurrently) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  constexpr int kProcesses = 12;
  int go[2], done[2], leave[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(done), 0);
  ASSERT_EQ(::pipe(leave), 0);
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(ForkChild([&, p] {
      auto r = RingSegment::Attach(name.get());
      if (!r.ok()) return kAttachFailed;
      char byte;
      if (::read(go[0], &byte, 1) != 1) return 21;
      // Every process tries "shared"; each also takes two names of its own.
      auto shared = Consumer::Register(*r, "shared");
      auto own1 = Consumer::Register(*r, "own-a-" + std::to_string(p));
      auto own2 = Consumer::Register(*r, "own-b-" + std::to_string(p));
      if (!own1.ok() || !own2.ok()) return kRegisterFailed;
      if (!shared.ok() && shared.status().code() != absl::StatusCode::kAlreadyExists) return 22;
      const char won = shared.ok() ? 1 : 0;
      if (::write(done[1], &won, 1) != 1) return 23;
      if (::read(leave[0], &byte, 1) != 1) return 24;  // hold everything until told to leave
      return 0;
    }));
  }
  const std::vector<char> bytes(kProcesses, 'g');
  ASSERT_EQ(::write(go[1], bytes.data(), kProcesses), kProcesses);
  int winners = 0;
  for (int p = 0; p < kProcesses; ++p) {
    char won = 0;
    ASSERT_EQ(::read(done[0], &won, 1), 1);
    winners += won;
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(ActiveConsumerCount(*ring), 2 * kProcesses + 1);
  ASSERT_EQ(::write(leave[1], bytes.data(), kProcesses), kProcesses);
  for (pid_t child : children) EXPECT_EQ(WaitChild(child), 0);
  EXPECT_EQ(ActiveConsumerCount(*ring), 0);
  EXPECT_EQ(ring->producer().gating_mask.load(), 0u);
  for (int fd : {go[0], go[1], done[0], done[1], leave[0], leave[1]}) ::close(fd);
}

// A consumer process killed with SIGKILL leaves its entry; its name can be registered again
// (the dead owner is detected by pid and start time), and the producer is released.
TEST(MultiProcessTest, ShouldFreeTheNameWhenItsOwnerIsKilled) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    auto r = RingSegment::Attach(name.get());
    if (!r.ok()) return kAttachFailed;
    auto c = Consumer::Register(*r, "victim");
    if (!c.ok()) return kRegisterFailed;
    ::pause();
    return 0;
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  EXPECT_EQ(Consumer::Register(ring->segment(), "victim").status().code(),
            absl::StatusCode::kAlreadyExists);
  ::kill(child, SIGKILL);
  // Dead even before it is reaped (a zombie): give the kernel a moment to finish the kill.
  absl::Status last = absl::UnknownError("not tried");
  for (int i = 0; i < 1000 && !last.ok(); ++i) {
    auto again = Consumer::Register(ring->segment(), "victim");
    last = again.status();
    if (!last.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(last.ok()) << last;
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
}

// A producer process that died while attached leaves the ring to a successor, which continues
// the sequence where the dead one stopped publishing.
TEST(MultiProcessTest, ShouldTakeOverWhenTheProducerProcessDied) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 8, .slot_size = 8});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    auto r = RingSegment::Attach(name.get());
    if (!r.ok()) return kAttachFailed;
    auto seq = SingleProducerSequencer::Attach(*r);
    if (!seq.ok()) return kProducerFailed;
    seq->Publish(*seq->Next(3));
    ::_exit(0);  // dies attached: no detach runs
  });
  ASSERT_EQ(WaitChild(child), 0);
  auto seq = SingleProducerSequencer::Attach(*ring);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(seq->Next(), 3);
}

}  // namespace
}  // namespace xdisruptor
