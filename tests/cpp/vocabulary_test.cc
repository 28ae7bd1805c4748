// One home per protocol and one spelling per word: the name tables and their parser, the wait
// parameter parser every surface uses, the error-policy rule, the liveness rule and the
// availability protocol, each tested where it lives.
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/error_policy.h"
#include "xdisruptor/internal/availability.h"
#include "xdisruptor/multi_producer_sequencer.h"
#include "xdisruptor/names.h"
#include "xdisruptor/process.h"
#include "xdisruptor/wait_status.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {
namespace {

TEST(VocabularyTest, ShouldRoundTripEveryNameWhenParsed) {
  for (const auto& entry : EnumNames<WaitKind>::kTable) {
    EXPECT_EQ(*ParseWaitKind(entry.name), entry.value);
    EXPECT_EQ(WaitKindName(entry.value), entry.name);
  }
  for (const auto& entry : EnumNames<StallPolicy>::kTable) EXPECT_EQ(*ParseEnum<StallPolicy>(entry.name), entry.value);
  for (const auto& entry : EnumNames<ErrorPolicy>::kTable) EXPECT_EQ(*ParseEnum<ErrorPolicy>(entry.name), entry.value);
  for (std::uint32_t i = 0; i < kWaitStatusCount; ++i) {
    EXPECT_EQ(WaitStatusName(static_cast<WaitStatus>(i)), kWaitStatuses[i].name);
  }
  EXPECT_EQ(WaitStatusName(WaitStatus::kHalted), "halted");
  EXPECT_EQ(WaitStatusDescription(WaitStatus::kUpstreamGone), "an upstream stage left");
}

TEST(VocabularyTest, ShouldNameTheChoicesWhenANameIsUnknown) {
  EXPECT_EQ(ParseEnum<StallPolicy>("sometimes").status().message(),
            "unknown stall policy 'sometimes'; use hold or evict");
  EXPECT_EQ(ParseEnum<ErrorPolicy>("ignore").status().message(),
            "unknown error policy 'ignore'; use stop, skip or retry");
  EXPECT_EQ(NameOf(EnumNames<StallPolicy>::kTable, static_cast<StallPolicy>(7)), "unknown");
}

TEST(VocabularyTest, ShouldParseWaitParametersInSecondsAndCounts) {
  WaitParams p{.kind = WaitKind::kPhasedBackoff};
  ASSERT_TRUE(ParseWaitParams(" spin_tries=7, phase_spin=0.00002,phase_yield=1e-4 ,"
                              "fallback=sleeping,sleep_ceiling=0.0005",
                              &p)
                  .ok());
  EXPECT_EQ(p.spin_tries, 7u);
  EXPECT_EQ(p.phase_spin_ns, 20'000);
  EXPECT_EQ(p.phase_yield_ns, 100'000);
  EXPECT_EQ(p.fallback_kind, WaitKind::kSleeping);
  EXPECT_EQ(p.sleep_ceiling_ns, 500'000);
  for (const WaitParamInfo& info : kWaitParams) {
    if (info.unit == WaitParamUnit::kSeconds && info.name == "sleep_ceiling") {
      EXPECT_DOUBLE_EQ(WaitParamNumber(p, info), 0.0005);
    }
  }
}

TEST(VocabularyTest, ShouldRefuseWaitParametersOutOfRange) {
  WaitParams p;
  for (const char* bad : {"spin_tries=-1", "spin_tries=4294967296", "spin_tries=1.5",
                          "timeout=1e300", "timeout=-0.5", "timeout=nan", "sleep_ceiling=abc",
                          "colour=1", "timeout", "fallback=yielding", "fallback=often"}) {
    WaitParams q = p;
    EXPECT_FALSE(ParseWaitParams(bad, &q).ok()) << bad;
  }
  EXPECT_FALSE(SetWaitParam(p, "fallback", 1.0).ok());
  EXPECT_TRUE(ParseWaitParams("", &p).ok());
}

TEST(VocabularyTest, ShouldRewindOnlyRewindableErrorsUntilTheRetriesRunOut) {
  const ProcessorOptions retry{.error_policy = ErrorPolicy::kRetry, .max_retries = 2};
  EXPECT_EQ(PresetAction(retry, true, 1), ErrorAction::kRewind);
  EXPECT_EQ(PresetAction(retry, true, 2), ErrorAction::kRewind);
  EXPECT_EQ(PresetAction(retry, true, 3), ErrorAction::kStop);
  EXPECT_EQ(PresetAction(retry, false, 1), ErrorAction::kStop);  // a fatal error: never rerun
  EXPECT_EQ(PresetAction({.error_policy = ErrorPolicy::kSkip}, true, 9), ErrorAction::kSkip);
  EXPECT_EQ(PresetAction({.error_policy = ErrorPolicy::kStop}, false, 1), ErrorAction::kStop);
}

TEST(VocabularyTest, ShouldTellNobodyAliveAndDeadOwnersApart) {
  OwnerState owner{};
  EXPECT_EQ(OwnerLiveness(owner), Liveness::kNobody);
  StoreOwner(owner, CurrentProcess());
  EXPECT_EQ(OwnerLiveness(owner), Liveness::kAlive);
  EXPECT_TRUE(OwnedByMe(owner));
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ProcessIdentity gone{.pid = child};
  int status = 0;
  ::waitpid(child, &status, 0);
  StoreOwner(owner, gone);
  EXPECT_EQ(OwnerLiveness(owner), Liveness::kDead);
  // A live pid with another start time is a reused pid: the owner is dead.
  StoreOwner(owner, {.pid = ::getpid(), .start_time = CurrentProcess().start_time + 1});
  EXPECT_EQ(OwnerLiveness(owner), Liveness::kDead);
  ClearOwner(owner);
  EXPECT_EQ(OwnerLiveness(owner), Liveness::kNobody);
}

TEST(VocabularyTest, ShouldPublishOnlyTheContiguousPrefixWhenProducersPublishOutOfOrder) {
  testing::ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 8, .slot_size = 8,
                                   .sequencer = SequencerKind::kMultiProducer});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto producer = MultiProducerSequencer::Attach(*ring);
  ASSERT_TRUE(producer.ok());
  const internal::Availability published(*ring);
  const std::int64_t hi = *producer->Next(4);  // 0..3 claimed
  EXPECT_EQ(published.cursor(), 3);
  EXPECT_EQ(published.HighestPublished(0, hi), -1);
  producer->Publish(2, 3);  // out of order: 0 and 1 still missing
  EXPECT_FALSE(published.IsPublished(0));
  EXPECT_TRUE(published.IsPublished(3));
  EXPECT_EQ(published.HighestPublished(0, hi), -1);
  producer->Publish(0, 1);
  EXPECT_EQ(published.HighestPublished(0, hi), 3);
  EXPECT_TRUE(published.PreviousLapPublished(8 + 2));  // lap 0 of slot 2 is in: lap 1 may go
  EXPECT_FALSE(published.PreviousLapPublished(8 + 5));  // slot 5 never had lap 0
}

TEST(VocabularyTest, ShouldSayTheCursorIsPublishedWhenOneProducerPublishes) {
  testing::ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 8, .slot_size = 8});
  ASSERT_TRUE(ring.ok());
  const internal::Availability published(*ring);
  EXPECT_FALSE(published.multi_producer());
  EXPECT_EQ(published.MarkOf(0), nullptr);
  ring->producer().cursor.store(5);
  EXPECT_EQ(published.HighestPublished(0, 5), 5);
  EXPECT_TRUE(published.IsPublished(5));
  EXPECT_FALSE(published.IsPublished(6));
}

}  // namespace
}  // namespace xdisruptor
