#include "xdisruptor/wait_strategy.h"

#include <chrono>

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

}  // namespace
}  // namespace xdisruptor
