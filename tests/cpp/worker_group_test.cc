// Worker groups in one process (threads; also under TSan): the DSL's worker pool, a stage
// after the group, registration rules and what `stat` shows. Across processes, with members
// killed and restarted, C++ and Python: tests/python/test_worker_groups.py.
#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/pipeline.h"
#include "xdisruptor/sequencer.h"
#include "xdisruptor/stats.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using testing::Produce;
using testing::TestEvent;

// A member: checks each event, marks it for the stage after the group, counts what it saw.
struct Worker {
  std::vector<std::int64_t> seen;
  std::uint64_t errors = 0;
  void on_event(TestEvent& e, std::int64_t sequence, bool) {
    errors += !e.Verify(sequence);
    e.stage_mark = TestEvent::StageMark(sequence);
    seen.push_back(sequence);
  }
};

// After the group: every event, in order, with its member's mark.
struct After {
  std::int64_t expected = 0;
  std::uint64_t errors = 0;
  void on_event(TestEvent& e, std::int64_t sequence, bool) {
    errors += sequence != expected || e.stage_mark != TestEvent::StageMark(sequence);
    expected = sequence + 1;
  }
};

TEST(WorkerGroupTest, ShouldHandleEachEventOnceAcrossThePoolAndThenRunTheStageAfterIt) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 1024});
  ASSERT_TRUE(ring.ok()) << ring.status();
  Worker w0, w1, w2;
  After after;
  Pipeline<TestEvent> pipeline(*ring);
  pipeline
      .handle_events_with_worker_pool("pool", std::vector<Worker*>{&w0, &w1, &w2},
                                      {.wait = {.kind = WaitKind::kBlocking}, .claim = 16})
      .then(Stage("after", after, {.wait = {.kind = WaitKind::kBlocking}}));
  ASSERT_TRUE(pipeline.Start().ok());
  constexpr std::int64_t kEvents = 200'000;
  Produce(*ring, kEvents, 64);
  const std::vector<StageResult> results = pipeline.Join();
  ASSERT_EQ(results.size(), 4u);
  for (const StageResult& r : results) EXPECT_EQ(r.status, WaitStatus::kClosed) << r.name;
  EXPECT_EQ(results[0].name, "pool.0");
  EXPECT_EQ(after.expected, kEvents);
  EXPECT_EQ(after.errors, 0u);
  std::vector<std::int64_t> all;
  for (Worker* w : {&w0, &w1, &w2}) {
    EXPECT_EQ(w->errors, 0u);
    // Within a member, runs come in increasing order.
    EXPECT_TRUE(std::is_sorted(w->seen.begin(), w->seen.end()));
    all.insert(all.end(), w->seen.begin(), w->seen.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kEvents));  // none twice, none missing
  for (std::int64_t s = 0; s < kEvents; ++s) ASSERT_EQ(all[static_cast<std::size_t>(s)], s);
}

TEST(WorkerGroupTest, ShouldShowTheGroupAndItsMembersInStatsAndLeaveWithTheLastMember) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto a = Consumer::Register(ring->segment(), "a", {.group = "G", .claim = 8});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Consumer::Register(ring->segment(), "b", {.group = "G"});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(a->member());
  EXPECT_EQ(a->group(), "G");
  RingStats st = Stats(ring->segment());
  ASSERT_EQ(st.consumers.size(), 3u);
  EXPECT_EQ(st.consumers[0].name, "G");
  EXPECT_EQ(st.consumers[0].role, "group");
  EXPECT_TRUE(st.consumers[0].gating);
  EXPECT_EQ(st.consumers[0].members, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(st.consumers[1].role, "member");
  EXPECT_EQ(st.consumers[1].group, "G");
  EXPECT_FALSE(st.consumers[1].gating);  // the group gates for its members
  EXPECT_NE(StatsJson(st).find("\"role\": \"group\", \"group\": \"G\", \"members\": [\"a\", "
                               "\"b\"]"),
            std::string::npos);
  // A claim: at most what is published, at most `claim`.
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  const std::int64_t hi = *producer->Next(20);
  for (std::int64_t s = hi - 19; s <= hi; ++s) (*ring)[s].Fill(s);
  producer->Publish(hi - 19, hi);
  const ClaimedRun run = a->NextRun();
  ASSERT_EQ(run.status, WaitStatus::kOk);
  EXPECT_EQ(run.first, 0);
  EXPECT_EQ(run.last, 7);
  const ClaimedRun other = b->NextRun();
  EXPECT_EQ(other.first, 8);
  EXPECT_EQ(other.last, 19);  // b's claim is 64: everything published
  b->Release(19, 12);
  // The group waits for a's run: its sequence stays before it.
  (void)b->NextRun(1'000'000);
  EXPECT_EQ(LoadSequence(ring->segment().consumer(0)), -1);
  a->Release(7, 8);
  (void)a->NextRun(1'000'000);
  EXPECT_EQ(LoadSequence(ring->segment().consumer(0)), 19);
  ASSERT_TRUE(a->Deregister().ok());
  EXPECT_TRUE(FindConsumer(ring->segment(), "G").ok());
  ASSERT_TRUE(b->Deregister().ok());
  EXPECT_FALSE(FindConsumer(ring->segment(), "G").ok());  // gone with its last member
}

// A member refused after its group was made (its name taken): the group goes again, rather
// than stay with no member and hold the producer for ever.
TEST(WorkerGroupTest, ShouldNotLeaveAMemberlessGroupWhenItsFirstMemberIsRefused) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto x = Consumer::Register(ring->segment(), "x", {.gating = false});
  ASSERT_TRUE(x.ok()) << x.status();
  auto m = Consumer::Register(ring->segment(), "x", {.group = "G"});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kAlreadyExists) << m.status();
  EXPECT_EQ(FindConsumer(ring->segment(), "G").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadGatingMask(ring->segment().producer()), 0u);  // nothing holds the producer
  auto a = Consumer::Register(ring->segment(), "a", {.group = "G"});  // and G can be made
  EXPECT_TRUE(a.ok()) << a.status();
}

// A ring of 64 slots, "a" its only member of group "G" (claims of 8), 40 events published.
struct MemberWithEvents {
  ScopedRingName name;
  std::optional<Ring<TestEvent>> ring;
  std::optional<Consumer> a;
  std::optional<SingleProducerSequencer> producer;  // attached for the whole test
  void Make() {
    auto r = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
    ASSERT_TRUE(r.ok()) << r.status();
    ring.emplace(*std::move(r));
    auto member = Consumer::Register(ring->segment(), "a", {.group = "G", .claim = 8});
    ASSERT_TRUE(member.ok()) << member.status();
    a.emplace(*std::move(member));
    auto attached = SingleProducerSequencer::Attach(ring->segment());
    ASSERT_TRUE(attached.ok());
    producer.emplace(*std::move(attached));
    const std::int64_t hi = *producer->Next(40);
    for (std::int64_t s = hi - 39; s <= hi; ++s) (*ring)[s].Fill(s);
    producer->Publish(hi - 39, hi);
  }
};

// Halted or evicted, a member claims nothing more, even with events waiting.
TEST(WorkerGroupTest, ShouldStopClaimingWhenHaltedOrEvictedWithEventsWaiting) {
  MemberWithEvents m;
  ASSERT_NO_FATAL_FAILURE(m.Make());
  auto& a = m.a;
  auto& ring = m.ring;
  a->barrier().Alert();
  EXPECT_EQ(a->NextRun(1'000'000).status, WaitStatus::kHalted);
  a->barrier().ClearAlert();
  ClaimedRun run = a->NextRun(1'000'000);
  ASSERT_EQ(run.status, WaitStatus::kOk);
  a->Release(run.last, static_cast<std::uint64_t>(run.last - run.first + 1));
  ASSERT_TRUE(EvictConsumer(ring->segment(), "G").ok());
  EXPECT_EQ(a->NextRun(1'000'000).status, WaitStatus::kEvicted);
}

// The same with a run in hand (not released yet, as after a restart or a takeover): it is
// not handed out again once halted or evicted (evicted, its slots may be overwritten).
TEST(WorkerGroupTest, ShouldNotHandOutAnUnfinishedRunWhenHaltedOrEvicted) {
  MemberWithEvents m;
  ASSERT_NO_FATAL_FAILURE(m.Make());
  auto& a = m.a;
  auto& ring = m.ring;
  const ClaimedRun run = a->NextRun(1'000'000);
  ASSERT_EQ(run.status, WaitStatus::kOk);
  a->barrier().Alert();
  EXPECT_EQ(a->NextRun(1'000'000).status, WaitStatus::kHalted);
  a->barrier().ClearAlert();
  const ClaimedRun again = a->NextRun(1'000'000);  // still its own: handed out again
  ASSERT_EQ(again.status, WaitStatus::kOk);
  EXPECT_EQ(std::pair(again.first, again.last), std::pair(run.first, run.last));
  ASSERT_TRUE(EvictConsumer(ring->segment(), "G").ok());
  EXPECT_EQ(a->NextRun(1'000'000).status, WaitStatus::kEvicted);
}

// A member that died with nothing in hand, not yet noticed: the last live member leaving
// still ends the group (it no longer holds the producer back).
TEST(WorkerGroupTest, ShouldEndTheGroupWhenTheLastLiveMemberLeavesBesideADeadIdleOne) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto a = Consumer::Register(ring->segment(), "a", {.group = "G"});
  ASSERT_TRUE(a.ok()) << a.status();
  const pid_t child = testing::ForkChild([&] {
    auto b = Consumer::Register(ring->segment(), "b", {.group = "G"});
    ::_exit(b.ok() ? 0 : 1);  // dies registered, idle (no destructor deregisters it)
    return 1;
  });
  ASSERT_EQ(testing::WaitChild(child), 0);
  const RingStats st = Stats(ring->segment());
  ASSERT_FALSE(st.consumers.empty());
  ASSERT_EQ(st.consumers[0].members, (std::vector<std::string>{"a", "b"}));  // b dead, idle
  ASSERT_TRUE(a->Deregister().ok());
  EXPECT_EQ(FindConsumer(ring->segment(), "G").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadGatingMask(ring->segment().producer()), 0u);
}

// A member killed after announcing a claim but before winning it: that run was never its own
// (`work` is still below it), so it is not handed over as taken over; it is claimed as usual.
TEST(WorkerGroupTest, ShouldNotRedoARunADeadMemberAnnouncedButNeverWon) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto a = Consumer::Register(ring->segment(), "a", {.group = "G", .claim = 8});
  ASSERT_TRUE(a.ok()) << a.status();
  const pid_t child = testing::ForkChild([&] {
    auto d = Consumer::Register(ring->segment(), "d", {.group = "G", .claim = 8});
    if (!d.ok()) ::_exit(1);
    const auto index = static_cast<std::size_t>(*FindConsumer(ring->segment(), "d"));
    ConsumerState& c = ring->segment().consumer(index);
    c.claim_hi.store(7, std::memory_order_relaxed);  // announced 0..7, killed before the CAS
    ::_exit(0);
    return 1;
  });
  ASSERT_EQ(testing::WaitChild(child), 0);
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  const std::int64_t hi = *producer->Next(16);
  for (std::int64_t s = hi - 15; s <= hi; ++s) (*ring)[s].Fill(s);
  producer->Publish(hi - 15, hi);
  std::int64_t handled = 0;
  bool taken_over = false;
  while (handled < 16) {
    const ClaimedRun run = a->NextRun(200'000'000);
    ASSERT_EQ(run.status, WaitStatus::kOk);
    EXPECT_EQ(run.first, handled);  // each event once, in order: nothing redone
    taken_over = taken_over || run.taken_over;
    handled = run.last + 1;
    a->Release(run.last, static_cast<std::uint64_t>(run.last - run.first + 1));
  }
  EXPECT_FALSE(taken_over);
}

TEST(WorkerGroupTest, ShouldRefuseBadGroupsClearly) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  auto plain = Consumer::Register(ring->segment(), "plain");
  ASSERT_TRUE(plain.ok());
  auto s = Consumer::Register(ring->segment(), "m", {.group = "plain"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(s.status().message().find("not a worker group"), std::string::npos);
  s = Consumer::Register(ring->segment(), "G", {.group = "G"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  s = Consumer::Register(ring->segment(), "m", {.group = "G", .claim = 0});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  s = Consumer::Register(ring->segment(), "m", {.gating = false, .group = "G"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  s = Consumer::Register(ring->segment(), "m", {.group = "bad name!"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  Pipeline<TestEvent> pipeline(*ring);
  pipeline.handle_events_with_worker_pool("plain2", std::vector<Worker*>{});
  EXPECT_EQ(pipeline.Start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xdisruptor
