// The pipeline DSL and the processor's error policies, with threads in one process (these
// also run under TSan). Mixed-language pipelines across processes are in
// tests/python/test_pipeline*.py.
#include "xdisruptor/pipeline.h"

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/sequencer.h"
#include "xdisruptor/stats.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using testing::Produce;
using testing::TestEvent;

// Checks order and content; optionally writes or checks an upstream's in-place mark.
struct Checker {
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

constexpr StageOptions kYield{.wait = {.kind = WaitKind::kYielding}};

TEST(PipelineTest, ShouldRunADiamondWhenBuiltWithThen) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 128});
  ASSERT_TRUE(ring.ok()) << ring.status();
  Checker enrich{.write_mark = true}, left{.check_mark = true}, right{.check_mark = true},
      sink{.check_mark = true};
  Pipeline<TestEvent> pipeline(*ring);
  pipeline.handle_events_with(Stage("enrich", enrich, kYield))
      .then(Stage("left", left, kYield), Stage("right", right, kYield))
      .then(Stage("sink", sink, kYield));
  ASSERT_TRUE(pipeline.Start().ok());
  // The graph is in the ring: sink runs after both branches.
  auto stats = Stats(ring->segment());
  ASSERT_EQ(stats.consumers.size(), 4u);
  for (const auto& c : stats.consumers) {
    if (c.name == "sink") {
      EXPECT_EQ(c.after, (std::vector<std::string>{"left", "right"}));
    }
  }
  constexpr std::int64_t kEvents = 100'000;
  Produce(*ring, kEvents, 13);
  const std::vector<StageResult> results = pipeline.Join();
  ASSERT_EQ(results.size(), 4u);
  for (const StageResult& r : results) {
    EXPECT_EQ(r.status, WaitStatus::kClosed) << r.name;
    EXPECT_EQ(r.events, static_cast<std::uint64_t>(kEvents)) << r.name;
    EXPECT_FALSE(r.failure.has_value());
  }
  for (Checker* c : {&enrich, &left, &right, &sink}) {
    EXPECT_EQ(c->events, static_cast<std::uint64_t>(kEvents));
    EXPECT_EQ(c->errors, 0u);
  }
}

TEST(PipelineTest, ShouldRunAfterAStageRegisteredElsewhereWhenNamedInAfter) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  // "external" stands for a stage of another process (a Python one, say): a consumer
  // registered by someone else, which this pipeline only knows by name.
  auto external = Consumer::Register(ring->segment(), "external",
                                     {.wait = {.kind = WaitKind::kYielding}});
  ASSERT_TRUE(external.ok());
  Checker external_handler{.write_mark = true};
  BatchEventProcessor<TestEvent, Checker> external_processor(*ring, *external, external_handler);
  Checker after_external{.check_mark = true};
  Pipeline<TestEvent> pipeline(*ring);
  pipeline.after("external").handle_events_with(Stage("downstream", after_external, kYield));
  ASSERT_TRUE(pipeline.Start().ok());
  std::thread t([&] { external_processor.Run(); });
  Produce(*ring, 20'000, 5);
  t.join();
  const auto results = pipeline.Join();
  EXPECT_EQ(results.at(0).status, WaitStatus::kClosed);
  EXPECT_EQ(after_external.events, 20'000u);
  EXPECT_EQ(after_external.errors, 0u);
}

TEST(PipelineTest, ShouldRefuseTheGraphWhenNamesRepeatOrFormACycle) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  Checker a, b, c;
  // Each refusal leaves nothing registered at once (stages register when added), not only
  // once the pipeline is gone.
  {
    Pipeline<TestEvent> pipeline(*ring);
    pipeline.handle_events_with(Stage("a", a), Stage("a", b));
    const absl::Status s = pipeline.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("two stages are called 'a'"), std::string_view::npos) << s;
    EXPECT_EQ(ActiveConsumerCount(ring->segment()), 0);
  }
  {
    Pipeline<TestEvent> pipeline(*ring);
    pipeline.handle_events_with(Stage("c", c));
    pipeline.after("b").handle_events_with(Stage("a", a));
    pipeline.after("a").handle_events_with(Stage("b", b));
    const absl::Status s = pipeline.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("cycle"), std::string_view::npos) << s;
    EXPECT_EQ(ActiveConsumerCount(ring->segment()), 0);
  }
  {
    Pipeline<TestEvent> pipeline(*ring, {.register_timeout_ns = 50'000'000});
    pipeline.after("nobody").handle_events_with(Stage("a", a));
    const absl::Status s = pipeline.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
    EXPECT_NE(s.message().find("stage 'a'"), std::string_view::npos) << s;
  }
  {
    Pipeline<TestEvent> pipeline(*ring);
    pipeline.handle_events_with(Stage("c", c)).then(
        Stage("a", a, {.processor = {.error_policy = ErrorPolicy::kRetry, .max_retries = -1}}));
    EXPECT_EQ(pipeline.Start().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ActiveConsumerCount(ring->segment()), 0);
  }
  // Nothing stayed registered after the refusals.
  EXPECT_EQ(ActiveConsumerCount(ring->segment()), 0);
}

// Throws on chosen events: always, or only the first `transient` times it sees one.
struct Flaky {
  std::int64_t fail_every = 1000;  // events with sequence % fail_every == fail_at fail
  std::int64_t fail_at = 500;
  int transient = 0;               // > 0: each failing event fails only this many times
  bool rewindable = false;         // fail with RewindableError (else a fatal error)
  std::vector<std::int64_t> seen{};
  std::vector<int> failures_left{};  // per failing event, for transient failures
  std::vector<std::pair<std::int64_t, std::int64_t>> batches{};  // (size, queue depth)
  std::int64_t reported = 0;

  void on_batch_start(std::int64_t size, std::int64_t depth) { batches.emplace_back(size, depth); }
  void on_event(TestEvent& e, std::int64_t sequence, bool) {
    if (!e.Verify(sequence)) throw std::logic_error("corrupt event");
    if (sequence % fail_every == fail_at) {
      const auto k = static_cast<std::size_t>(sequence / fail_every);
      if (transient == 0) Fail("bad event");
      if (failures_left.size() <= k) failures_left.resize(k + 1, transient);
      if (failures_left[k]-- > 0) Fail("transient");
    }
    seen.push_back(sequence);
  }
  void on_handler_error(TestEvent&, std::int64_t, const std::exception&) { ++reported; }
  void Fail(const char* what) const {
    if (rewindable) throw RewindableError(what);
    throw std::runtime_error(what);
  }
};

struct PolicyRun {
  StageResult flaky;
  StageResult downstream;
  std::int64_t flaky_sequence;
};

PolicyRun RunWithPolicy(Flaky& flaky, Checker& downstream, const ProcessorOptions& options,
                        std::int64_t events) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 256});
  EXPECT_TRUE(ring.ok());
  Pipeline<TestEvent> pipeline(*ring);
  pipeline
      .handle_events_with(Stage("flaky", flaky, {.wait = {.kind = WaitKind::kYielding},
                                                 .processor = options}))
      .then(Stage("downstream", downstream, kYield));
  EXPECT_TRUE(pipeline.Start().ok());
  std::thread producer([&] { Produce(*ring, events, 32); });
  auto results = pipeline.Join();
  // With the stage stopped, the ring fills and the producer waits: let it finish by
  // draining with a fresh consumer.
  const std::int64_t flaky_sequence = results.at(0).sequence;
  if (results.at(0).status != WaitStatus::kClosed) {
    auto drain = Consumer::Register(ring->segment(), "drain",
                                    {.wait = {.kind = WaitKind::kYielding}});
    Checker sink{.expected = drain->sequence() + 1};
    BatchEventProcessor<TestEvent, Checker> p(*ring, *drain, sink);
    p.Run();
  }
  producer.join();
  return {results.at(0), results.at(1), flaky_sequence};
}

TEST(PipelineTest, ShouldSkipOnlyTheFailingEventsWhenPolicyIsSkip) {
  Flaky flaky;
  Checker downstream;
  const PolicyRun run =
      RunWithPolicy(flaky, downstream, {.error_policy = ErrorPolicy::kSkip}, 10'000);
  EXPECT_EQ(run.flaky.status, WaitStatus::kClosed);
  EXPECT_EQ(run.flaky.handler_errors, 10u);
  EXPECT_EQ(flaky.reported, 10);
  EXPECT_EQ(flaky.seen.size(), 9'990u);
  for (std::size_t i = 1; i < flaky.seen.size(); ++i) ASSERT_LT(flaky.seen[i - 1], flaky.seen[i]);
  // Skipped events are released too: the stage after it sees the whole stream.
  EXPECT_EQ(downstream.events, 10'000u);
  EXPECT_EQ(downstream.errors, 0u);
}

TEST(PipelineTest, ShouldRerunTheBatchWhenPolicyIsRetryAndTheFailureIsTransient) {
  Flaky flaky{.transient = 2, .rewindable = true};
  Checker downstream;
  const PolicyRun run = RunWithPolicy(
      flaky, downstream,
      {.error_policy = ErrorPolicy::kRetry, .max_retries = 3, .retry_pause_ns = 100'000},
      10'000);
  EXPECT_EQ(run.flaky.status, WaitStatus::kClosed);
  EXPECT_FALSE(run.flaky.failure.has_value());
  EXPECT_EQ(run.flaky.handler_errors, 20u);  // each failing event failed twice
  // The rewind ran whole batches again: every event was handled, some more than once, and
  // after the last rerun of each batch the events went on in order.
  std::vector<int> count(10'000, 0);
  for (std::int64_t s : flaky.seen) ++count[static_cast<std::size_t>(s)];
  for (int c : count) ASSERT_GE(c, 1);
  EXPECT_GT(flaky.seen.size(), 10'000u);
  EXPECT_EQ(downstream.events, 10'000u);
  EXPECT_EQ(downstream.errors, 0u);
}

TEST(PipelineTest, ShouldStopAtTheFailingEventWhenRetriesRunOut) {
  Flaky flaky{.fail_every = 1'000'000, .fail_at = 1234, .rewindable = true};
  Checker downstream;
  const PolicyRun run = RunWithPolicy(
      flaky, downstream,
      {.error_policy = ErrorPolicy::kRetry, .max_retries = 2, .retry_pause_ns = 0}, 5'000);
  EXPECT_EQ(run.flaky.status, WaitStatus::kHandlerFailed);
  ASSERT_TRUE(run.flaky.failure.has_value());
  EXPECT_EQ(run.flaky.failure->sequence, 1234);
  EXPECT_EQ(run.flaky.failure->attempts, 3);
  EXPECT_EQ(run.flaky.failure->what, "bad event");
  EXPECT_EQ(run.flaky.handler_errors, 3u);
  // Everything before the failing event was released, nothing from it on.
  EXPECT_EQ(run.flaky_sequence, 1233);
  // The failure halted the rest of the pipeline; downstream never saw past the failure.
  EXPECT_EQ(run.downstream.status, WaitStatus::kHalted);
  EXPECT_LE(downstream.expected, 1234);
  EXPECT_EQ(downstream.errors, 0u);
}

// The report: under retry, a fatal error was rerun like a transient one (1001 runs of
// the handler). Only a RewindableError is rerun; anything else stops at once.
TEST(PipelineTest, ShouldNotRetryAFatalErrorUnderTheRetryPolicy) {
  Flaky flaky{.fail_every = 1'000'000, .fail_at = 1234};
  Checker downstream;
  const PolicyRun run = RunWithPolicy(
      flaky, downstream,
      {.error_policy = ErrorPolicy::kRetry, .max_retries = 1000, .retry_pause_ns = 0}, 5'000);
  EXPECT_EQ(run.flaky.status, WaitStatus::kHandlerFailed);
  ASSERT_TRUE(run.flaky.failure.has_value());
  EXPECT_EQ(run.flaky.failure->attempts, 1);
  EXPECT_EQ(run.flaky.handler_errors, 1u);
  EXPECT_EQ(flaky.reported, 1);
  EXPECT_EQ(run.flaky_sequence, 1233);
}

TEST(PipelineTest, ShouldStopAndReleaseWhatCameBeforeWhenPolicyIsStop) {
  Flaky flaky{.fail_every = 1'000'000, .fail_at = 77};
  Checker downstream;
  const PolicyRun run =
      RunWithPolicy(flaky, downstream, {.error_policy = ErrorPolicy::kStop}, 1'000);
  EXPECT_EQ(run.flaky.status, WaitStatus::kHandlerFailed);
  ASSERT_TRUE(run.flaky.failure.has_value());
  EXPECT_EQ(run.flaky.failure->sequence, 77);
  EXPECT_EQ(run.flaky.failure->attempts, 1);
  EXPECT_EQ(run.flaky_sequence, 76);
  EXPECT_EQ(flaky.seen.size(), 77u);
}

TEST(PipelineTest, ShouldCapEachBatchAndReportTheQueueDepthWhenMaxBatchIsSet) {
  Flaky flaky{.fail_every = 1'000'000'000, .fail_at = -1};
  Checker downstream;
  const PolicyRun run = RunWithPolicy(flaky, downstream, {.max_batch = 16}, 20'000);
  EXPECT_EQ(run.flaky.status, WaitStatus::kClosed);
  std::int64_t total = 0;
  for (const auto& [size, depth] : flaky.batches) {
    ASSERT_GE(size, 1);
    ASSERT_LE(size, 16);
    ASSERT_GE(depth, size);
    total += size;
  }
  EXPECT_EQ(total, 20'000);
  EXPECT_EQ(flaky.seen.size(), 20'000u);
}

TEST(PipelineTest, ShouldParseWaitParamsAndPoliciesWhenGivenAsText) {
  WaitParams p{.kind = WaitKind::kPhasedBackoff};
  ASSERT_TRUE(ParseWaitParams("phase_spin=0.00002, fallback=sleeping,timeout=0.5", &p).ok());
  EXPECT_EQ(p.phase_spin_ns, 20'000);
  EXPECT_EQ(p.fallback_kind, WaitKind::kSleeping);
  EXPECT_EQ(p.timeout_ns, 500'000'000);
  EXPECT_FALSE(ParseWaitParams("spin=3", &p).ok());
  EXPECT_FALSE(ParseWaitParams("timeout=-1", &p).ok());
  EXPECT_FALSE(ParseWaitParams("timeout", &p).ok());
  EXPECT_EQ(*ParseEnum<ErrorPolicy>("retry"), ErrorPolicy::kRetry);
  EXPECT_EQ(ParseEnum<ErrorPolicy>("ignore").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xdisruptor
