#include "xdisruptor/consumer.h"
#include "xdisruptor/process.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/event_poller.h"
#include "xdisruptor/sequencer.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;

class ConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = RingSegment::Create({.name = name_.get(), .capacity = 16, .slot_size = 8});
    ASSERT_TRUE(ring.ok()) << ring.status();
    ring_.emplace(*std::move(ring));
  }
  ScopedRingName name_;
  std::optional<RingSegment> ring_;
};

TEST_F(ConsumerTest, ShouldJoinAtTheCursorWhenRegistering) {
  auto producer = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(producer.ok());
  producer->Publish(0, *producer->Next(5));
  auto c = Consumer::Register(*ring_, "late", {.wait = {.kind = WaitKind::kSleeping}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sequence(), 4);
  EXPECT_EQ(c->join_sequence(), 4);
  const ConsumerState& entry = ring_->consumer(static_cast<std::size_t>(c->index()));
  EXPECT_EQ(LoadStatus(entry), ConsumerStatus::kActive);
  EXPECT_EQ(std::string(entry.name, entry.name_length), "late");
  EXPECT_EQ(entry.wait_kind.load(), static_cast<std::uint32_t>(WaitKind::kSleeping));
  EXPECT_EQ(LoadOwner(entry.owner).pid, ::getpid());
  EXPECT_NE(ring_->producer().gating_mask.load() & (1ull << c->index()), 0u);
  EXPECT_EQ(ActiveConsumerCount(*ring_), 1);
}

TEST_F(ConsumerTest, ShouldRefuseWhenTheNameIsHeldByALiveConsumer) {
  auto first = Consumer::Register(*ring_, "dup");
  ASSERT_TRUE(first.ok());
  auto second = Consumer::Register(*ring_, "dup");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("live process"), absl::string_view::npos);
  ASSERT_TRUE(first->Deregister().ok());
  auto third = Consumer::Register(*ring_, "dup");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->index(), first->index());  // its own earlier entry
}

TEST_F(ConsumerTest, ShouldRefuseWhenTheTableIsFull) {
  std::vector<Consumer> all;
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    auto c = Consumer::Register(*ring_, "c" + std::to_string(i));
    ASSERT_TRUE(c.ok()) << c.status();
    all.push_back(*std::move(c));
  }
  EXPECT_EQ(ring_->producer().gating_mask.load(), ~0ull);
  auto extra = Consumer::Register(*ring_, "extra");
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kResourceExhausted);
  all.pop_back();  // the destructor deregisters
  EXPECT_TRUE(Consumer::Register(*ring_, "extra").ok());
}

TEST_F(ConsumerTest, ShouldRefuseWhenOptionsAreInvalid) {
  EXPECT_EQ(Consumer::Register(*ring_, "bad name").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Consumer::Register(*ring_, "b", {.after = {"missing"}}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Consumer::Register(*ring_, "b", {.after = {"b"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Consumer::Register(*ring_, "b", {.after = {"a", "a"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Consumer::Register(*ring_, "b", {.after = std::vector<std::string>(9, "x")})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Consumer::Register(*ring_, "b", {.wait = {.timeout_ns = -1}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ActiveConsumerCount(*ring_), 0);
}

TEST_F(ConsumerTest, ShouldRecordUpstreamsWhenRunningAfterOthers) {
  auto a = Consumer::Register(*ring_, "a");
  auto b = Consumer::Register(*ring_, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = Consumer::Register(*ring_, "c", {.after = {"a", "b"}});
  ASSERT_TRUE(c.ok()) << c.status();
  const ConsumerState& entry = ring_->consumer(static_cast<std::size_t>(c->index()));
  ASSERT_EQ(entry.after_count, 2u);
  EXPECT_EQ(entry.after[0], a->index());
  EXPECT_EQ(entry.after[1], b->index());
  auto producer = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(producer.ok());
  producer->Publish(0, *producer->Next(3));
  EXPECT_EQ(c->barrier().Available(), -1);  // a and b have read nothing
  a->Release(2, 3);
  EXPECT_EQ(c->barrier().Available(), -1);
  b->Release(1, 2);
  EXPECT_EQ(c->barrier().Available(), 1);
  EXPECT_EQ(FindConsumer(*ring_, "b").value(), b->index());
  EXPECT_EQ(FindConsumer(*ring_, "zz").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ConsumerTest, ShouldReportUpstreamGoneWhenItLeavesEarly) {
  auto a = Consumer::Register(*ring_, "a");
  ASSERT_TRUE(a.ok());
  auto b = Consumer::Register(*ring_, "b", {.after = {"a"}});
  ASSERT_TRUE(b.ok());
  auto producer = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(producer.ok());
  producer->Publish(0, *producer->Next(3));
  ASSERT_TRUE(a->Deregister().ok());
  EXPECT_EQ(b->barrier().WaitFor(0).status, WaitStatus::kUpstreamGone);
}

TEST_F(ConsumerTest, ShouldStopAtTheFinalCursorWhenTheRingIsClosed) {
  auto c = Consumer::Register(*ring_, "c");
  ASSERT_TRUE(c.ok());
  auto producer = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(producer.ok());
  producer->Publish(0, *producer->Next(3));
  producer->Close();
  WaitResult r = c->barrier().WaitFor(0);
  EXPECT_EQ(r.status, WaitStatus::kOk);
  EXPECT_EQ(r.available, 2);
  r = c->barrier().WaitFor(3);
  EXPECT_EQ(r.status, WaitStatus::kClosed);
}

TEST_F(ConsumerTest, ShouldApplyARetuneAtTheNextWait) {
  auto c = Consumer::Register(*ring_, "c", {.wait = {.kind = WaitKind::kBusySpin}});
  ASSERT_TRUE(c.ok());
  ConsumerState& entry = ring_->consumer(static_cast<std::size_t>(c->index()));
  entry.wait_timeout_ns.store(5'000'000);  // as another process would write it
  entry.wait_kind.store(static_cast<std::uint32_t>(WaitKind::kSleeping));
  EXPECT_EQ(c->barrier().CurrentWaitParams().kind, WaitKind::kSleeping);
  EXPECT_EQ(c->barrier().WaitFor(0).status, WaitStatus::kTimeout);
  EXPECT_EQ(entry.waits.load(), 1u);
}

}  // namespace
}  // namespace xdisruptor

namespace xdisruptor {
namespace {

TEST_F(ConsumerTest, ShouldDeregisterTheOldEntryWhenMoveAssigned) {
  auto first = Consumer::Register(*ring_, "first");
  auto second = Consumer::Register(*ring_, "second");
  ASSERT_TRUE(first.ok() && second.ok());
  const int first_index = first->index();
  *first = *std::move(second);
  EXPECT_EQ(first->name(), "second");
  EXPECT_EQ(ActiveConsumerCount(*ring_), 1);
  EXPECT_EQ(LoadStatus(ring_->consumer(static_cast<std::size_t>(first_index))),
            ConsumerStatus::kFree);
  EXPECT_FALSE(second->registered());
}

}  // namespace
}  // namespace xdisruptor

namespace xdisruptor {
namespace {

TEST_F(ConsumerTest, ShouldNotHandOutAnEntryThatAStageRunsAfter) {
  auto a = Consumer::Register(*ring_, "a");
  ASSERT_TRUE(a.ok());
  auto b = Consumer::Register(*ring_, "b", {.after = {"a"}});
  ASSERT_TRUE(b.ok());
  const int a_index = a->index();
  ASSERT_TRUE(a->Deregister().ok());
  auto x = Consumer::Register(*ring_, "x");
  ASSERT_TRUE(x.ok());
  EXPECT_NE(x->index(), a_index);
  EXPECT_EQ(b->barrier().WaitFor(0).status, WaitStatus::kUpstreamGone);
}

TEST_F(ConsumerTest, ShouldFreeAnEntryLeftJoiningByADeadRegistrant) {
  ConsumerState& stale = ring_->consumer(0);  // as if its process died inside Register
  StoreStatus(stale, ConsumerStatus::kJoining);
  ring_->producer().gating_mask.store(1);
  auto c = Consumer::Register(*ring_, "fresh");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ring_->producer().gating_mask.load(), 1ull << c->index());
  EXPECT_EQ(c->index(), 0);  // the freed entry is reused
}

TEST_F(ConsumerTest, ShouldReportUpstreamGoneWhenItsEntryIsReRegistered) {
  auto a = Consumer::Register(*ring_, "a");
  ASSERT_TRUE(a.ok());
  auto b = Consumer::Register(*ring_, "b", {.after = {"a"}});
  ASSERT_TRUE(b.ok());
  auto producer = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(producer.ok());
  producer->Publish(0, *producer->Next(10));
  a->Release(2, 3);
  ASSERT_TRUE(a->Deregister().ok());
  // "a" comes back and joins at the cursor (9): b must not take 3..9 as processed by "a".
  auto a_again = Consumer::Register(*ring_, "a");
  ASSERT_TRUE(a_again.ok());
  EXPECT_EQ(a_again->index(), a->index());
  // Once the entry is someone else's registration, b cannot trust its sequence at all.
  EXPECT_EQ(b->barrier().Available(), kInitialSequence - 1);
  EXPECT_EQ(b->barrier().WaitFor(3).status, WaitStatus::kUpstreamGone);
}

// A stage whose process died (Abandon: as a crash leaves it) restarts after its upstream
// drained the stream and left: it resumes on the upstream's last sequence, as a running stage
// goes on, instead of being refused for an upstream that is not registered.
TEST_F(ConsumerTest, ShouldResumeOnAnUpstreamThatLeftWhileItsProcessWasDead) {
  auto producer = SingleProducerSequencer::Attach(*ring_);
  ASSERT_TRUE(producer.ok());
  for (const bool drained : {false, true}) {
    SCOPED_TRACE(drained ? "the upstream drained the stream" : "the upstream left early");
    const std::int64_t base = producer->cursor() + 1;
    auto a = Consumer::Register(*ring_, "a");
    ASSERT_TRUE(a.ok());
    auto b = Consumer::Register(*ring_, "b", {.after = {"a"}});
    ASSERT_TRUE(b.ok());
    producer->Publish(base, *producer->Next(10));
    if (drained) producer->Close();
    a->Release(base + (drained ? 9 : 5), drained ? 10 : 6);
    b->Release(base + 3, 4);
    b->Abandon();
    ASSERT_TRUE(a->Deregister().ok());
    auto again = Consumer::Register(*ring_, "b", {.after = {"a"}});
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->resumed());
    EXPECT_EQ(again->sequence(), base + 3);
    WaitResult r = again->barrier().WaitFor(base + 4);
    EXPECT_EQ(r.status, WaitStatus::kOk);
    EXPECT_EQ(r.available, base + (drained ? 9 : 5));
    again->Release(r.available, 1);
    r = again->barrier().WaitFor(r.available + 1);
    EXPECT_EQ(r.status, drained ? WaitStatus::kClosed : WaitStatus::kUpstreamGone);
    ASSERT_TRUE(again->Deregister().ok());
    if (drained) continue;
    // Asked to run after another stage than it did, it is still refused.
    auto c = Consumer::Register(*ring_, "c");
    ASSERT_TRUE(c.ok());
    auto d = Consumer::Register(*ring_, "d", {.after = {"c"}});
    ASSERT_TRUE(d.ok());
    d->Abandon();
    ASSERT_TRUE(c->Deregister().ok());
    auto z = Consumer::Register(*ring_, "z");
    ASSERT_TRUE(z.ok());
    EXPECT_EQ(Consumer::Register(*ring_, "d", {.after = {"z"}}).status().code(),
              absl::StatusCode::kFailedPrecondition);
    auto d_again = Consumer::Register(*ring_, "d", {.after = {"c"}});
    ASSERT_TRUE(d_again.ok()) << d_again.status();
    EXPECT_TRUE(d_again->resumed());
    ASSERT_TRUE(d_again->Deregister().ok());
    ASSERT_TRUE(z->Deregister().ok());
  }
}

}  // namespace
}  // namespace xdisruptor
