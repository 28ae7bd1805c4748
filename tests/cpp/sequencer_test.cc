#include "xdisruptor/sequencer.h"

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/consumer.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;

class SequencerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = RingSegment::Create({.name = name_.get(), .capacity = 8, .slot_size = 8});
    ASSERT_TRUE(ring.ok()) << ring.status();
    ring_.emplace(*std::move(ring));
  }
  ScopedRingName name_;
  std::optional<RingSegment> ring_;
};

TEST_F(SequencerTest, ShouldClaimInOrderWhenNobodyGates) {
  auto seq = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(seq->Next(), 0);
  EXPECT_EQ(seq->Next(4), 4);
  seq->Publish(0, 4);
  EXPECT_EQ(seq->cursor(), 4);
  EXPECT_EQ(seq->Next(8), 12);  // nobody gates: the producer may run laps ahead
}

TEST_F(SequencerTest, ShouldStopAtOneLapWhenAConsumerGates) {
  auto seq = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(seq.ok());
  auto consumer = Consumer::Register(*ring_, "slow");
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ(seq->RemainingCapacity(), 8);
  auto hi = seq->TryNext(8);
  ASSERT_TRUE(hi.has_value());
  seq->Publish(0, *hi);
  EXPECT_EQ(seq->RemainingCapacity(), 0);
  EXPECT_FALSE(seq->TryNext().has_value());
  consumer->Release(2, 3);  // consumed 0..2
  EXPECT_EQ(seq->RemainingCapacity(), 3);
  EXPECT_EQ(seq->TryNext(3), 10);
  EXPECT_FALSE(seq->TryNext().has_value());
  ASSERT_TRUE(consumer->Deregister().ok());
  EXPECT_EQ(seq->TryNext(), 11);  // no longer gated
}

TEST_F(SequencerTest, ShouldRefuseASecondProducerWhenTheFirstLives) {
  auto first = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(first.ok());
  auto second = SingleProducerSequencer::Attach(*ring_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("live producer"), absl::string_view::npos);
}

TEST_F(SequencerTest, ShouldContinueTheSequenceWhenANewProducerAttaches) {
  {
    auto first = SingleProducerSequencer::Attach(*ring_);
    ASSERT_TRUE(first.ok());
    first->Publish(0, first->Next(5));
    first->Close();
  }
  EXPECT_TRUE(IsClosed(ring_->producer()));
  auto second = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(IsClosed(ring_->producer()));
  EXPECT_EQ(second->Next(), 5);
}

TEST(SequencerDeathTest, ShouldAbortWhenClaimSizeIsInvalid) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 8, .slot_size = 8});
  ASSERT_TRUE(ring.ok());
  auto seq = SingleProducerSequencer::Attach(*ring);
  ASSERT_TRUE(seq.ok());
  EXPECT_DEATH(seq->Next(9), "needs 1 <= n <= capacity");
  EXPECT_DEATH((void)seq->TryNext(0), "needs 1 <= n <= capacity");
}

}  // namespace
}  // namespace xdisruptor
