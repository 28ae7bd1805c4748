// Pipeline DSLs of two processes joined into one graph by name: a diamond whose stages are
// split across two forked processes, every event checked by every stage.
#include <unistd.h>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::AwaitConsumers;
using testing::ForkChild;
using testing::ScopedRingName;
using testing::TestEvent;
using testing::WaitChild;

struct Check {
  std::int64_t expected = 0;
  std::uint64_t errors = 0;
  std::uint64_t events = 0;
  bool write_mark = false;
  bool check_mark = false;
  void on_event(TestEvent& e, std::int64_t sequence, bool) {
    errors += sequence != expected || !e.Verify(sequence);
    if (check_mark) errors += e.stage_mark != TestEvent::StageMark(sequence);
    if (write_mark) e.stage_mark = TestEvent::StageMark(sequence);
    expected = sequence + 1;
    ++events;
  }
};

constexpr std::int64_t kEvents = 300'000;
constexpr StageOptions kBlocking{.wait = {.kind = WaitKind::kBlocking}};

// Exit codes: 0 every stage saw every event and ended with the stream; 2 setup; 10 checks.
int RunPipelineProcess(const std::string& ring_name, bool first_half) {
  auto ring = Ring<TestEvent>::Attach(ring_name);
  if (!ring.ok()) return 2;
  Check enrich{.write_mark = true}, left{.check_mark = true}, right{.check_mark = true},
      sink{.check_mark = true};
  Pipeline<TestEvent> pipeline(*ring);
  if (first_half) {  // enrich -> left
    pipeline.handle_events_with(Stage("enrich", enrich, kBlocking))
        .then(Stage("left", left, kBlocking));
  } else {  // after the other process's stages: enrich -> right; left + right -> sink
    pipeline.after("enrich").handle_events_with(Stage("right", right, kBlocking));
    pipeline.after("left", "right").handle_events_with(Stage("sink", sink, kBlocking));
  }
  if (!pipeline.Start().ok()) return 2;
  for (const StageResult& r : pipeline.Join()) {
    if (r.status != WaitStatus::kClosed || r.events != static_cast<std::uint64_t>(kEvents)) {
      return 10;
    }
  }
  for (const Check* c : first_half ? std::vector<const Check*>{&enrich, &left}
                                   : std::vector<const Check*>{&right, &sink}) {
    if (c->errors != 0 || c->events != static_cast<std::uint64_t>(kEvents)) return 10;
  }
  return 0;
}

TEST(PipelineMultiprocessTest, ShouldJoinStagesOfTwoProcessesIntoOneDiamondWhenNamedInAfter) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 1024});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const pid_t second = ForkChild([&] { return RunPipelineProcess(name.get(), false); });
  const pid_t first = ForkChild([&] { return RunPipelineProcess(name.get(), true); });
  ASSERT_TRUE(AwaitConsumers(ring->segment(), 4));
  // The graph in the ring: sink, in the second process, runs after a stage of each process.
  for (const auto& c : Stats(ring->segment()).consumers) {
    if (c.name == "sink") {
      EXPECT_EQ(c.after, (std::vector<std::string>{"left", "right"}));
    }
  }
  auto producer = SingleProducerSequencer::Attach(ring->segment(),
                                                  {.kind = WaitKind::kBlocking});
  ASSERT_TRUE(producer.ok());
  for (std::int64_t done = 0; done < kEvents; done += 100) {
    const std::int64_t hi = *producer->Next(100);
    for (std::int64_t s = hi - 99; s <= hi; ++s) (*ring)[s].Fill(s);
    producer->Publish(hi - 99, hi);
  }
  producer->Close();
  EXPECT_EQ(WaitChild(first), 0);
  EXPECT_EQ(WaitChild(second), 0);
}

}  // namespace
}  // namespace xdisruptor
