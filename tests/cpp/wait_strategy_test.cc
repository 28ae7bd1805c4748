#include "xdisruptor/wait_strategy.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "gtest/gtest.h"

namespace xdisruptor {
namespace {

TEST(WaitStrategyTest, ShouldRoundTripNamesWhenParsing) {
  for (std::uint32_t k = 0; k < kWaitKindCount; ++k) {
    const auto kind = static_cast<WaitKind>(k);
    auto parsed = ParseWaitKind(WaitKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(ParseWaitKind("spinning").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WaitStrategyTest, ShouldRejectWhenParamsAreOutOfRange) {
  EXPECT_FALSE(ValidateWaitParams({.kind = static_cast<WaitKind>(9)}).ok());
  EXPECT_FALSE(ValidateWaitParams({.sleep_ceiling_ns = -1}).ok());
  EXPECT_FALSE(ValidateWaitParams({.timeout_ns = -5}).ok());
  EXPECT_TRUE(ValidateWaitParams({}).ok());
}

TEST(WaitStrategyTest, ShouldGiveUpWhenTimeoutElapses) {
  for (WaitKind kind : {WaitKind::kBusySpin, WaitKind::kYielding, WaitKind::kSleeping}) {
    Idler idler({.kind = kind, .timeout_ns = 20'000'000});
    const auto start = std::chrono::steady_clock::now();
    while (idler.Idle(NoBlockTarget)) {
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, std::chrono::milliseconds(20)) << WaitKindName(kind);
  }
}

TEST(WaitStrategyTest, ShouldSleepWhenSpinAndYieldAreSpent) {
  // 5 sleeps with a 2 ms ceiling take at least 1+2+2+2+2 ms = 9 ms (first sleep is 1 us, then
  // doubling: use a ceiling low enough that the sum is dominated by it).
  Idler idler({.kind = WaitKind::kSleeping, .spin_tries = 0, .yield_tries = 0,
               .sleep_ceiling_ns = 2'000'000});
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 16; ++i) idler.Idle(NoBlockTarget);  // 1,2,4,...,1024 us, then 2 ms x 5
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(10));
  EXPECT_EQ(idler.attempts(), 16u);
}

// An Idler blocking on a sequence that never comes, with 1 ms slices (so a sleep is short).
struct NeverTarget {
  NotificationState n{};
  std::atomic<std::int64_t> sequence{0};
  wait::BlockTarget operator()() {
    wait::BlockTarget t;
    t.sequence = &sequence;
    t.needed = 1;
    t.notification = &n;
    t.sleeper = {.producer = false, .index = 5};
    return t;
  }
};

TEST(BlockingTest, ShouldSpinForPhaseSpinBeforeItSleeps) {
  NeverTarget target;
  const auto start = std::chrono::steady_clock::now();
  Idler idler({.kind = WaitKind::kBlocking, .phase_spin_ns = 5'000'000}, 1'000'000'000);
  const std::uint64_t blocks_before = wait::Stats().blocks.load();
  while (!idler.slept()) {
    // Nobody sets a sleeper bit while the spin phase lasts.
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(4)) {
      EXPECT_EQ(wait::Stats().blocks.load(), blocks_before);
    }
    idler.Idle(std::ref(target));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(5));
  EXPECT_GT(idler.attempts(), 1u);

  Idler at_once({.kind = WaitKind::kBlocking, .phase_spin_ns = 0}, 1'000'000);
  at_once.Idle(std::ref(target));
  EXPECT_TRUE(at_once.slept()) << "phase_spin 0: the first idle step sleeps";
  Idler told_not_to({.kind = WaitKind::kTimeoutBlocking, .timeout_ns = 1'000'000'000}, 1'000'000,
                    /*spin_first=*/false);
  told_not_to.Idle(std::ref(target));
  EXPECT_TRUE(told_not_to.slept()) << "spin_first false: the first idle step sleeps";
}

TEST(BlockingTest, ShouldStopSpinningWhileWaitsSleepAnywayAndStartAgainWhenSpinPays) {
  NeverTarget target;
  auto slept_wait = [&] {
    Idler i({.kind = WaitKind::kBlocking, .phase_spin_ns = 0}, 100'000);
    i.Idle(std::ref(target));
    return i;
  };
  auto spun_wait = [&] {  // ended (the caller saw its sequence) while still spinning
    Idler i({.kind = WaitKind::kBlocking, .phase_spin_ns = 1'000'000'000});
    i.Idle(std::ref(target));
    return i;
  };
  SpinAdvisor advisor;
  EXPECT_TRUE(advisor.SpinNext()) << "a new consumer spins";
  advisor.Done(Idler({}));  // a wait that never idled says nothing
  for (int i = 0; i < 4; ++i) advisor.Done(slept_wait());
  int spins = 0;
  for (int i = 0; i < 64; ++i) spins += advisor.SpinNext() ? 1 : 0;
  EXPECT_EQ(spins, 8) << "credit spent: only every 8th wait tries the spin";
  advisor.Done(spun_wait());
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(advisor.SpinNext()) << i;
}

// A publish that does not reach what a sleeper needs still collects its sleeper bit and wakes
// it; a waiter whose bit was collected between setting it and sleeping must not then sleep
// through the publish it needs (nobody would wake it: its bit is gone). Each round the waiter
// needs 2r; the publisher stores 2r-1 (not enough) and then 2r, after a random few pauses so
// that the first publish lands anywhere in the waiter's BlockOn. A sleep through the second
// publish would end only at the sleep's budget, 2 s, far longer than any wake-up takes even on
// a loaded machine: the test fails at the first such timeout (a shorter budget would count a
// publisher that was merely descheduled between its store and its Notify as a lost wake-up).
TEST(BlockingTest, ShouldNotSleepThroughTheNeededPublishWhenAnEarlierOneCollectedItsBit) {
  constexpr std::int64_t kRounds = 200'000;
  NotificationState n{};
  std::atomic<std::int64_t> sequence{0};
  std::atomic<std::int64_t> wanted{0};
  const std::uint64_t timeouts_before = wait::Stats().safety_timeouts.load();
  const std::uint64_t blocks_before = wait::Stats().blocks.load();
  std::thread publisher([&] {
    std::minstd_rand rng(5);
    for (std::int64_t r = 1; r <= kRounds; ++r) {
      while (wanted.load(std::memory_order_acquire) < r) wait::CpuRelax();
      for (std::uint32_t i = rng() % 64; i > 0; --i) wait::CpuRelax();
      sequence.store(2 * r - 1, std::memory_order_release);
      wait::Notify(n);
      for (std::uint32_t i = rng() % 16; i > 0; --i) wait::CpuRelax();
      sequence.store(2 * r, std::memory_order_release);
      wait::Notify(n);
    }
  });
  wait::BlockTarget target;
  target.sequence = &sequence;
  target.notification = &n;
  target.sleeper = {.producer = false, .index = 3};
  std::int64_t slept_through = 0;
  for (std::int64_t r = 1; r <= kRounds; ++r) {
    target.needed = 2 * r;
    wanted.store(r, std::memory_order_release);
    while (!wait::Reached(target, std::memory_order_acquire)) {
      wait::BlockOn(target, 2'000'000'000);
      if (wait::Stats().safety_timeouts.load() != timeouts_before) slept_through = r;
    }
    if (slept_through != 0) break;  // one is enough: do not sleep 2 s per round
  }
  wanted.store(kRounds, std::memory_order_release);  // let the publisher finish
  sequence.store(2 * kRounds, std::memory_order_release);
  publisher.join();
  EXPECT_EQ(slept_through, 0) << "the waiter slept through the publish it needed";
  EXPECT_GT(wait::Stats().blocks.load() - blocks_before, 1000u)
      << "the waiter hardly ever set its bit: the test did not test";
  EXPECT_EQ(n.consumer_sleepers.load(), 0u);
}

}  // namespace
}  // namespace xdisruptor
