#include "xdisruptor/multi_producer_sequencer.h"
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
  EXPECT_EQ(*seq->Next(4), 4);
  seq->Publish(0, 4);
  EXPECT_EQ(seq->cursor(), 4);
  EXPECT_EQ(*seq->Next(8), 12);  // nobody gates: the producer may run laps ahead
}

TEST_F(SequencerTest, ShouldStopAtOneLapWhenAConsumerGates) {
  auto seq = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(seq.ok());
  auto consumer = Consumer::Register(*ring_, "slow");
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ(seq->RemainingCapacity(), 8);
  auto hi = seq->TryNext(8);
  ASSERT_TRUE(hi.ok());
  seq->Publish(0, *hi);
  EXPECT_EQ(seq->RemainingCapacity(), 0);
  EXPECT_EQ(seq->TryNext().status().code(), absl::StatusCode::kResourceExhausted);
  consumer->Release(2, 3);  // consumed 0..2
  EXPECT_EQ(seq->RemainingCapacity(), 3);
  EXPECT_EQ(*seq->TryNext(3), 10);
  EXPECT_FALSE(seq->TryNext().ok());
  ASSERT_TRUE(consumer->Deregister().ok());
  EXPECT_EQ(*seq->TryNext(), 11);  // no longer gated
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
    first->Publish(0, *first->Next(5));
    first->Close();
  }
  EXPECT_TRUE(IsClosed(ring_->producer()));
  auto second = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(IsClosed(ring_->producer()));
  EXPECT_EQ(second->Next(), 5);
}

// The Disruptor throws IllegalArgumentException for next(n) with n outside 1..bufferSize: a
// caller's mistake is a status here, never an abort, for both kinds of sequencer.
TEST(ClaimSizeTest, ShouldRefuseAClaimSizeOutsideOneToTheCapacityWithAStatus) {
  ScopedRingName name;
  for (SequencerKind kind : {SequencerKind::kSingleProducer, SequencerKind::kMultiProducer}) {
    auto ring = RingSegment::Create(
        {.name = name.get(), .capacity = 8, .slot_size = 8, .sequencer = kind});
    ASSERT_TRUE(ring.ok());
    auto check = [](auto& seq) {
      for (std::int64_t n : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{9}}) {
        EXPECT_EQ(seq.Next(n).status().code(), absl::StatusCode::kInvalidArgument) << n;
        EXPECT_EQ(seq.TryNext(n).status().code(), absl::StatusCode::kInvalidArgument) << n;
        EXPECT_EQ(seq.NextFor(n, 1000).status().code(), absl::StatusCode::kInvalidArgument);
      }
      EXPECT_NE(seq.Next(9).status().message().find("from 1 to the ring's capacity (8)"),
                std::string::npos);
      EXPECT_EQ(*seq.Next(8), 7);  // nothing was claimed by the refused calls
    };
    if (kind == SequencerKind::kSingleProducer) {
      auto seq = SingleProducerSequencer::Attach(*ring);
      ASSERT_TRUE(seq.ok());
      check(*seq);
    } else {
      auto seq = MultiProducerSequencer::Attach(*ring);
      ASSERT_TRUE(seq.ok());
      check(*seq);
    }
    ring = absl::InternalError("unmapped");
    ASSERT_TRUE(RingSegment::Remove(name.get()).ok());
  }
}

}  // namespace
}  // namespace xdisruptor
