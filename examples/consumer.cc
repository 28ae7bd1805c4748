// xdisruptor_example_consumer — reads ticks from a ring as a named consumer and checks them.
//
//   xdisruptor_example_consumer --ring=ticks --name=audit --after=risk,logger --wait=sleeping
//
// Attaches (waiting up to --attach_timeout for the producer to create the ring), registers
// under --name, runs after the consumers named in --after, and checks every tick: sequence
// continuity from its join point, checksum, and (with --expect_mid) that an upstream stage
// filled in the mid price. --enrich makes it such a stage: it writes mid in place.
// Prints a summary when the producer closes the ring; exits non-zero if any check failed.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tick.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(std::string, ring, "ticks", "ring name");
ABSL_FLAG(std::string, name, "printer", "this consumer's name");
ABSL_FLAG(std::string, after, "", "comma-separated consumers this one runs after");
ABSL_FLAG(std::string, wait, "yielding", "busy-spin, yielding or sleeping");
ABSL_FLAG(int, attach_timeout_ms, 10000, "how long to wait for the ring to appear");
ABSL_FLAG(bool, enrich, false, "write the mid price into each tick (an enricher stage)");
ABSL_FLAG(bool, expect_mid, false, "check that an upstream stage filled in the mid price");
ABSL_FLAG(int64_t, print_every, 0, "print every Nth tick (0: only the summary)");

namespace {

struct TickChecker {
  std::int64_t expected = -1;  // next sequence; set from the join point
  std::int64_t events = 0;
  std::int64_t gaps = 0;
  std::int64_t bad = 0;
  std::int64_t max_latency_ns = 0;
  std::int64_t first_event_ns = 0;  // when the first tick arrived
  bool enrich = false;
  bool expect_mid = false;
  std::int64_t print_every = 0;

  void on_event(examples::Tick& t, std::int64_t sequence, bool end_of_batch) {
    if (events == 0) first_event_ns = xdisruptor::MonotonicNanos();
    gaps += sequence != expected || t.sequence != sequence;
    bad += t.checksum != examples::TickChecksum(t);
    if (expect_mid) bad += std::fabs(t.mid - t.price) > 0.005001;
    if (enrich) t.mid = std::round(t.price * 100.0) / 100.0;
    if (end_of_batch) {
      max_latency_ns = std::max(max_latency_ns, xdisruptor::MonotonicNanos() - t.timestamp_ns);
    }
    if (print_every > 0 && sequence % print_every == 0) {
      std::printf("%6lld %-5s %9.2f x %lld\n", static_cast<long long>(sequence), t.symbol,
                  t.price, static_cast<long long>(t.quantity));
    }
    ++events;
    expected = sequence + 1;
  }
};

int Fail(const std::string& who, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", who.c_str(), std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Reads ticks from an xdisruptor ring as a named consumer.");
  absl::ParseCommandLine(argc, argv);
  using namespace xdisruptor;
  const std::string name = absl::GetFlag(FLAGS_name);
  const std::string ring_name = absl::GetFlag(FLAGS_ring);
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(name, kind.status());

  const absl::Time deadline =
      absl::Now() + absl::Milliseconds(absl::GetFlag(FLAGS_attach_timeout_ms));
  auto ring = Ring<examples::Tick>::Attach(ring_name, {.expected_schema = examples::kTickSchema});
  while (!ring.ok() && ring.status().code() == absl::StatusCode::kNotFound &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    ring = Ring<examples::Tick>::Attach(ring_name, {.expected_schema = examples::kTickSchema});
  }
  if (!ring.ok()) return Fail(name, ring.status());

  ConsumerOptions options{.wait = {.kind = *kind}};
  for (absl::string_view up : absl::StrSplit(absl::GetFlag(FLAGS_after), ',', absl::SkipEmpty())) {
    options.after.emplace_back(up);
  }
  // An upstream stage may still be starting: retry a missing one until the deadline.
  auto consumer = Consumer::Register(ring->segment(), name, options);
  while (!consumer.ok() && consumer.status().code() == absl::StatusCode::kNotFound &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    consumer = Consumer::Register(ring->segment(), name, options);
  }
  if (!consumer.ok()) return Fail(name, consumer.status());

  TickChecker checker{.expected = consumer->sequence() + 1,
                      .enrich = absl::GetFlag(FLAGS_enrich),
                      .expect_mid = absl::GetFlag(FLAGS_expect_mid),
                      .print_every = absl::GetFlag(FLAGS_print_every)};
  const std::int64_t first = checker.expected;
  BatchEventProcessor<examples::Tick, TickChecker> processor(*ring, *consumer, checker);
  const WaitStatus why = processor.Run();
  const double seconds =
      std::max(1e-9, static_cast<double>(MonotonicNanos() - checker.first_event_ns) * 1e-9);
  const ConsumerState& entry = ring->segment().consumer(static_cast<std::size_t>(consumer->index()));
  const bool ok = checker.gaps == 0 && checker.bad == 0 && why == WaitStatus::kClosed;
  std::printf(
      "%-8s %s: %lld ticks (sequences %lld..%lld) in %.2f s, %.1f M/s, %llu batches, "
      "max latency %.1f us, %lld gaps, %lld bad, wait %s, end: %s\n",
      name.c_str(), ok ? "OK  " : "FAIL", static_cast<long long>(checker.events),
      static_cast<long long>(first), static_cast<long long>(checker.expected - 1), seconds,
      static_cast<double>(checker.events) / seconds / 1e6,
      static_cast<unsigned long long>(entry.batches.load(std::memory_order_relaxed)),
      static_cast<double>(checker.max_latency_ns) / 1e3, static_cast<long long>(checker.gaps),
      static_cast<long long>(checker.bad), std::string(WaitKindName(*kind)).c_str(),
      why == WaitStatus::kClosed ? "ring closed by producer" : "stopped early");
  return ok ? 0 : 1;
}
