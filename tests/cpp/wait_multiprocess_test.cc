// Wait strategies across real processes: blocking waits cost no CPU while idle, wake-ups are
// never lost, timeouts reach the handler, a retune from another process applies, and stages
// and producers that wait on a stalled consumer sleep.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

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

// CPU seconds (user + system) a process has used, from /proc/PID/stat fields 14 and 15.
double CpuSeconds(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return -1;
  char buf[1024] = {};
  const std::size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  unsigned long long utime = 0, stime = 0;
  // After ')': state(3) ... utime is field 14, stime 15.
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU a process uses over `window`.
double CpuOver(pid_t pid, std::chrono::milliseconds window) {
  const double before = CpuSeconds(pid);
  std::this_thread::sleep_for(window);
  return CpuSeconds(pid) - before;
}


void PublishOne(Ring<TestEvent>& ring, SingleProducerSequencer& producer) {
  const std::int64_t s = producer.Next();
  ring[s].Fill(s);
  producer.Publish(s);
}

struct CountingHandler {
  std::int64_t expected = 0;
  std::int64_t errors = 0;
  std::int64_t timeouts = 0;
  std::chrono::milliseconds stall_on_first{0};
  bool write_mark = false;
  bool check_mark = false;
  void on_event(TestEvent& e, std::int64_t s, bool) {
    errors += s != expected || !e.Verify(s);
    if (check_mark) errors += e.stage_mark != TestEvent::StageMark(s);
    if (s == 0 && stall_on_first.count() > 0) std::this_thread::sleep_for(stall_on_first);
    if (write_mark) e.stage_mark = TestEvent::StageMark(s);
    expected = s + 1;
  }
  void on_timeout(std::int64_t) { ++timeouts; }
};

// Runs a consumer process to the end of the stream; exit 0 when it saw exactly `events`.
int RunConsumer(const std::string& ring_name, const std::string& name, ConsumerOptions options,
                CountingHandler handler, std::int64_t events, std::int64_t min_timeouts = 0) {
  auto ring = Ring<TestEvent>::Attach(ring_name);
  if (!ring.ok()) return 2;
  auto consumer = Consumer::Register(ring->segment(), name, options);
  if (!consumer.ok()) return 3;
  BatchEventProcessor<TestEvent, CountingHandler> processor(*ring, *consumer, handler);
  if (processor.Run() != WaitStatus::kClosed) return 12;
  if (handler.errors != 0) return 10;
  if (handler.expected != events) return 11;
  if (handler.timeouts < min_timeouts) return 13;
  return 0;
}

class IdleWaitTest : public ::testing::TestWithParam<WaitParams> {};

// The CPU seconds an idle waiter may use over `window`, from its strategy's own parameters: it
// wakes once per sleep ceiling (sleeping) or safety net (blocking), and each wake-up is allowed
// 200 us of CPU (ten times what one costs on this VM), plus 5% for whatever else the process
// does and two clock ticks (20 ms) for the granularity of /proc's CPU accounting. A strategy
// that spins uses the whole window.
double IdleCpuBound(const WaitParams& p, std::chrono::milliseconds window) {
  const WaitKind kind = p.kind == WaitKind::kPhasedBackoff ? p.fallback_kind : p.kind;
  const double period_ns = kind == WaitKind::kSleeping
                               ? static_cast<double>(std::max<std::int64_t>(p.sleep_ceiling_ns, 1000))
                               : static_cast<double>(wait::kSafetyNetNs);
  const double seconds = std::chrono::duration<double>(window).count();
  return 0.02 + seconds * (0.05 + (1e9 / period_ns) * 200e-6);
}

TEST_P(IdleWaitTest, ShouldUseAlmostNoCpuWhenIdleThenReceiveTheNextEvent) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    return RunConsumer(name.get(), "idle", {.wait = GetParam()}, {}, 1);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // past any spin phase
  const std::chrono::milliseconds window(2000);
  const double cpu = CpuOver(child, window);
  const double bound = IdleCpuBound(GetParam(), window);
  EXPECT_GE(cpu, 0.0);
  EXPECT_LT(cpu, bound) << "an idle " << WaitKindName(GetParam().kind) << " consumer used "
                        << cpu << " s of CPU over 2 s; its parameters allow " << bound << " s";
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  PublishOne(*ring, *producer);
  producer->Close();
  EXPECT_EQ(WaitChild(child, std::chrono::seconds(30)), 0);
}

INSTANTIATE_TEST_SUITE_P(
    BlockingKinds, IdleWaitTest,
    ::testing::Values(WaitParams{.kind = WaitKind::kBlocking},
                      WaitParams{.kind = WaitKind::kPhasedBackoff,
                                 .fallback_kind = WaitKind::kBlocking},
                      WaitParams{.kind = WaitKind::kSleeping, .sleep_ceiling_ns = 10'000'000}),
    [](const ::testing::TestParamInfo<WaitParams>& param_info) {
      std::string n(WaitKindName(param_info.param.kind));
      for (char& c : n) c = c == '-' ? '_' : c;
      return n;
    });

// A million publish/wait cycles with random pauses on both sides, on a ring so small that the
// producer sleeps on the consumer as often as the consumer sleeps on the producer. A lost
// wake-up would show as a safety-net timeout with the sequence already moved (counted by
// BlockOn) and, without the safety net, as a hang the watchdog (WaitChild) would catch.
TEST(WaitMultiProcessTest, ShouldLoseNoWakeupWhenPublishAndWaitRaceWithRandomPauses) {
  ScopedRingName name;
  constexpr std::int64_t kEvents = 1'000'000;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t child = ForkChild([&] {
    auto r = Ring<TestEvent>::Attach(name.get());
    if (!r.ok()) return 2;
    auto c = Consumer::Register(r->segment(), "sleepy", {.wait = {.kind = WaitKind::kBlocking}});
    if (!c.ok()) return 3;
    std::minstd_rand rng(7);
    std::int64_t expected = 0, errors = 0;
    struct Handler {
      std::minstd_rand* rng;
      std::int64_t* expected;
      std::int64_t* errors;
      void on_event(TestEvent& e, std::int64_t s, bool) {
        *errors += s != *expected || !e.Verify(s);
        *expected = s + 1;
        if ((*rng)() % 64 == 0) {
          const auto until = std::chrono::steady_clock::now() +
                             std::chrono::microseconds((*rng)() % 20);
          while (std::chrono::steady_clock::now() < until) {
          }
        }
      }
    } handler{&rng, &expected, &errors};
    BatchEventProcessor<TestEvent, Handler> p(*r, *c, handler);
    if (p.Run() != WaitStatus::kClosed) return 12;
    const std::uint64_t stats[4] = {wait::Stats().lost_wakeups.load(),
                                    wait::Stats().sleeps.load(), wait::Stats().blocks.load(),
                                    wait::Stats().wakes.load()};
    if (::write(report[1], stats, sizeof(stats)) != sizeof(stats)) return 20;
    return errors != 0 ? 10 : expected != kEvents ? 11 : 0;
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = WaitKind::kBlocking});
  ASSERT_TRUE(producer.ok());
  std::minstd_rand rng(11);
  for (std::int64_t i = 0; i < kEvents; ++i) {
    PublishOne(*ring, *producer);
    const auto roll = rng() % 128;
    if (roll == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 50));
    } else if (roll < 4) {
      std::this_thread::yield();
    }
  }
  producer->Close();
  ASSERT_EQ(WaitChild(child, std::chrono::seconds(240)), 0);
  std::uint64_t stats[4] = {};
  ASSERT_EQ(::read(report[0], stats, sizeof(stats)), static_cast<ssize_t>(sizeof(stats)));
  EXPECT_EQ(stats[0], 0u) << "consumer lost wake-ups";
  EXPECT_GT(stats[1], 1000u) << "the consumer hardly ever slept: the test did not test";
  EXPECT_EQ(wait::Stats().lost_wakeups.load(), 0u) << "producer lost wake-ups";
  // One wake per sleep: each side's wakes collect bits the other side set, never more (the
  // producer used to pay a futex_wake on every publish until the woken consumer ran again).
  EXPECT_LE(wait::Stats().wakes.load(), stats[2]) << "the producer woke more often than the "
                                                     "consumer went to sleep";
  EXPECT_LE(stats[3], wait::Stats().blocks.load()) << "the consumer woke more often than the "
                                                      "producer went to sleep";
  EXPECT_GT(wait::Stats().wakes.load(), 0u) << "nobody was ever woken: the test did not test";
  ::close(report[0]);
  ::close(report[1]);
}

TEST(WaitMultiProcessTest, ShouldCallOnTimeoutWhenTimeoutBlockingConsumerIdles) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    return RunConsumer(name.get(), "heartbeat",
                       {.wait = {.kind = WaitKind::kTimeoutBlocking, .timeout_ns = 10'000'000}},
                       {}, 5, /*min_timeouts=*/10);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 5; ++i) PublishOne(*ring, *producer);
  producer->Close();
  EXPECT_EQ(WaitChild(child, std::chrono::seconds(30)), 0);
}

TEST(WaitMultiProcessTest, ShouldApplyARetuneFromAnotherProcessAtTheNextWait) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  const pid_t consumer = ForkChild([&] {
    return RunConsumer(name.get(), "tunable", {.wait = {.kind = WaitKind::kBusySpin}}, {}, 1);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  const double spinning = CpuOver(consumer, std::chrono::milliseconds(500));
  EXPECT_GT(spinning, 0.2) << "a busy-spinning consumer should burn CPU";
  const pid_t operator_process = ForkChild([&] {  // as the command-line tool would
    auto r = RingSegment::Attach(name.get());
    if (!r.ok()) return 2;
    return RetuneConsumer(*r, "tunable", {.kind = WaitKind::kBlocking}).ok() ? 0 : 3;
  });
  ASSERT_EQ(WaitChild(operator_process), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double blocked = CpuOver(consumer, std::chrono::milliseconds(1000));
  EXPECT_LT(blocked, IdleCpuBound({.kind = WaitKind::kBlocking}, std::chrono::milliseconds(1000)))
      << "after the retune to blocking the consumer still burns CPU";
  const ConsumerState& entry = ring->segment().consumer(0);
  EXPECT_EQ(entry.wait_kind.load(), static_cast<std::uint32_t>(WaitKind::kBlocking));
  EXPECT_EQ(entry.wait_config_version.load(), 2u);  // registration + one retune
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  PublishOne(*ring, *producer);
  producer->Close();
  EXPECT_EQ(WaitChild(consumer, std::chrono::seconds(30)), 0);
  EXPECT_EQ(RetuneConsumer(ring->segment(), "nobody", {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RetuneConsumer(ring->segment(), "tunable", {.kind = WaitKind::kTimeoutBlocking}).code(),
            absl::StatusCode::kInvalidArgument);
}

// B runs after A and blocks; A stalls on the first event: B must sleep, not spin, then see
// every event with A's change once A goes on.
TEST(WaitMultiProcessTest, ShouldSleepWhenTheUpstreamStageStalls) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  const pid_t a = ForkChild([&] {
    return RunConsumer(name.get(), "A", {.wait = {.kind = WaitKind::kBlocking}},
                       {.stall_on_first = std::chrono::milliseconds(1800), .write_mark = true},
                       10);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  const pid_t b = ForkChild([&] {
    return RunConsumer(name.get(), "B", {.after = {"A"}, .wait = {.kind = WaitKind::kBlocking}},
                       {.check_mark = true}, 10);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 2));
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 10; ++i) PublishOne(*ring, *producer);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double downstream = CpuOver(b, std::chrono::milliseconds(1000));
  EXPECT_LT(downstream, 0.05) << "the downstream stage spun while its upstream stalled";
  producer->Close();
  EXPECT_EQ(WaitChild(a, std::chrono::seconds(30)), 0);
  EXPECT_EQ(WaitChild(b, std::chrono::seconds(30)), 0);
}

// A producer with a blocking strategy facing a full ring sleeps until the slowest consumer
// moves, then goes on.
TEST(WaitMultiProcessTest, ShouldSleepWhenTheProducerFacesAFullRing) {
  ScopedRingName name;
  constexpr std::int64_t kEvents = 100;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 8});
  ASSERT_TRUE(ring.ok());
  const pid_t consumer = ForkChild([&] {
    return RunConsumer(name.get(), "slow", {.wait = {.kind = WaitKind::kBlocking}},
                       {.stall_on_first = std::chrono::milliseconds(1800)}, kEvents);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  const pid_t producer = ForkChild([&] {
    auto r = Ring<TestEvent>::Attach(name.get());
    if (!r.ok()) return 2;
    auto p = SingleProducerSequencer::Attach(r->segment(), {.kind = WaitKind::kBlocking});
    if (!p.ok()) return 4;
    for (std::int64_t i = 0; i < kEvents; ++i) PublishOne(*r, *p);
    p->Close();
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ring->segment().producer().cursor.load(), 7) << "the producer should be full";
  const double waiting = CpuOver(producer, std::chrono::milliseconds(1000));
  EXPECT_LT(waiting, 0.05) << "the producer spun on a full ring";
  EXPECT_EQ(WaitChild(producer, std::chrono::seconds(30)), 0);
  EXPECT_EQ(WaitChild(consumer, std::chrono::seconds(30)), 0);
}

// A blocking consumer killed while asleep leaves its sleeper bit on the cursor's notification;
// taking over its name clears it, so publishes stop paying for a wake-up nobody waits for.
TEST(WaitMultiProcessTest, ShouldClearTheSleeperBitWhenADeadSleepersNameIsTakenOver) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    return RunConsumer(name.get(), "sleeper", {.wait = {.kind = WaitKind::kBlocking}}, {}, 1);
  });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 1));
  NotificationState& n = ring->segment().producer().cursor_notification;
  for (int i = 0; i < 2000 && n.consumer_sleepers.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(n.consumer_sleepers.load(), 1u);  // entry 0 asleep on the cursor
  ::kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
  EXPECT_EQ(n.consumer_sleepers.load(), 1u);  // nobody cleared it yet
  auto again = Consumer::Register(ring->segment(), "sleeper");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(n.consumer_sleepers.load(), 0u);
}

}  // namespace
}  // namespace xdisruptor
