// xdisruptor_demo_stage — the C++ stages of the pipeline demo, each a program the pipeline
// launcher starts (configured by its environment: see xdisruptor/pipeline.h, RunStage).
//
//   --role=enricher   completes each tick in place: mid = (bid + ask) / 2, spread = ask - bid
//   --role=sink       runs last: checks that sequences are contiguous from its first event
//                     and that the enricher's mid and spread are on every tick; a gap or a
//                     missing change stops the stage with the reason (error policy "stop")
//
// --fail_at=N makes the handler throw on event N (--fail_times times, -1: always): a way to
// watch the error policies (stop, skip, retry) at work, used by the tests. --die_at=N makes
// the process kill itself (SIGKILL) on event N, a crash; with --once=FILE either happens only
// while FILE does not exist (it is made then), so a restarted stage goes on (restart policies).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "market_tick.h"
#include "xdisruptor/pipeline.h"

ABSL_FLAG(std::string, role, "sink", "enricher or sink");
ABSL_FLAG(int64_t, fail_at, -1, "throw on this event (tests of the error policies)");
ABSL_FLAG(int, fail_times, -1, "how often --fail_at throws (-1: every time)");
ABSL_FLAG(int64_t, slow_us, 0, "pause after each batch (a stage that cannot keep up)");
ABSL_FLAG(bool, fail_rewindable, false, "--fail_at throws a RewindableError (worth a retry)");
ABSL_FLAG(int64_t, die_at, -1, "SIGKILL this process on this event (a crash)");
ABSL_FLAG(std::string, once, "", "--fail_at and --die_at act only if this file does not exist "
          "(and make it)");

namespace {

struct DemoStage {
  bool enrich = false;
  std::int64_t fail_at = -1;
  int fail_times = -1;
  std::int64_t slow_us = 0;
  bool fail_rewindable = false;
  std::int64_t die_at = -1;
  std::string once;
  std::int64_t first = -1;
  std::int64_t expected = -1;
  std::int64_t events = 0;
  std::int64_t batches = 0;
  std::int64_t max_batch = 0;
  std::int64_t max_latency_ns = 0;

  bool batch_begins = false;

  // Called before each batch, and again before each rerun of one (error policy retry).
  void on_batch_start(std::int64_t size, std::int64_t) {
    batch_begins = true;
    ++batches;
    max_batch = std::max(max_batch, size);
  }

  void on_event(examples::MarketTick& t, std::int64_t sequence, bool end_of_batch) {
    // A rerun batch starts again below where the last attempt got to: a rewind, not a gap.
    if (batch_begins && first >= 0 && sequence < expected && sequence >= first) {
      events -= expected - sequence;
      expected = sequence;
    }
    batch_begins = false;
    bool act = sequence == fail_at || sequence == die_at;
    if (act && !once.empty()) {
      // First time only: O_EXCL makes the file, or finds it there (an earlier process acted).
      const int fd = ::open(once.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
      act = fd >= 0;
      if (act) ::close(fd);
    }
    if (act && sequence == die_at) ::kill(::getpid(), SIGKILL);
    if (act && sequence == fail_at && fail_times != 0) {
      if (fail_times > 0) --fail_times;
      if (first < 0) first = sequence;
      expected = sequence + 1;  // a skipped event must not look like a gap
      const std::string what = absl::StrFormat("asked to fail on event %d", sequence);
      if (fail_rewindable) throw xdisruptor::RewindableError(what);
      throw std::runtime_error(what);
    }
    if (enrich) {
      t.mid = (t.bid + t.ask) / 2;
      t.spread = t.ask - t.bid;
    } else {
      if (first < 0) first = expected = sequence;
      if (sequence != expected || t.sequence != sequence) {
        throw std::runtime_error(absl::StrFormat(
            "sequence gap: expected %d, got slot %d holding tick %d", expected, sequence,
            t.sequence));
      }
      if (t.mid != (t.bid + t.ask) / 2 || t.spread != t.ask - t.bid || t.spread <= 0) {
        throw std::runtime_error(absl::StrFormat(
            "tick %d lacks the enricher's mid/spread (%g/%g)", sequence, t.mid, t.spread));
      }
    }
    expected = sequence + 1;
    ++events;
    if (end_of_batch && slow_us > 0) absl::SleepFor(absl::Microseconds(slow_us));
    if (end_of_batch) {
      max_latency_ns = std::max(max_latency_ns, xdisruptor::MonotonicNanos() - t.timestamp_ns);
    }
  }

  void on_shutdown() {
    if (enrich) {
      std::printf("enricher: %lld ticks completed in place in %lld batches (largest %lld)\n",
                  static_cast<long long>(events), static_cast<long long>(batches),
                  static_cast<long long>(max_batch));
    } else {
      std::printf("sink: %lld ticks, sequences %lld..%lld contiguous, enricher's mid and spread "
                  "on every one, max latency from publish %.1f ms\n",
                  static_cast<long long>(events), static_cast<long long>(first),
                  static_cast<long long>(expected - 1),
                  static_cast<double>(max_latency_ns) / 1e6);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("A C++ stage of the pipeline demo (started by the launcher).");
  absl::ParseCommandLine(argc, argv);
  const std::string role = absl::GetFlag(FLAGS_role);
  if (role != "enricher" && role != "sink") {
    std::fprintf(stderr, "--role must be enricher or sink\n");
    return 2;
  }
  DemoStage stage{.enrich = role == "enricher",
                  .fail_at = absl::GetFlag(FLAGS_fail_at),
                  .fail_times = absl::GetFlag(FLAGS_fail_times),
                  .slow_us = absl::GetFlag(FLAGS_slow_us),
                  .fail_rewindable = absl::GetFlag(FLAGS_fail_rewindable),
                  .die_at = absl::GetFlag(FLAGS_die_at),
                  .once = absl::GetFlag(FLAGS_once)};
  return xdisruptor::RunStage<examples::MarketTick>(stage, examples::kMarketTickSchema);
}
