#include "xdisruptor/wait_strategy.h"

#include <atomic>
#include <chrono>
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
