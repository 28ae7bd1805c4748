// wait_latency — one-way latency from a producer process to a consumer process, and the
// consumer's CPU use, for each wait strategy.
//
// The producer publishes one event at a fixed rate (sleeping until each is due, so it leaves
// the cores to the consumer); each event carries CLOCK_MONOTONIC at publish. The consumer
// records now - stamp for every event into a preallocated array (no allocation while
// measuring), drops a warm-up, and reports p50/p99/p99.9/max and the CPU it used (getrusage)
// over the measured span as a share of one core. Prints a table and, with --json, JSON.
//
//   wait_latency --samples=100000 --rate=20000 --json=docs/wait-strategies.json
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(int64_t, samples, 100'000, "measured events per strategy (after the warm-up)");
ABSL_FLAG(int64_t, warmup, 2'000, "events per strategy not measured");
ABSL_FLAG(int64_t, rate, 20'000, "events per second");
ABSL_FLAG(std::string, strategies,
          "busy-spin,yielding,sleeping,blocking,timeout-blocking,phased-backoff",
          "comma-separated wait strategies to measure");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");

namespace {

using xdisruptor::MonotonicNanos;

struct alignas(64) Stamped {
  std::int64_t published_ns;
  std::int64_t sequence;
  std::uint8_t pad[48];
};

struct Result {
  double p50_us, p99_us, p999_us, max_us, cpu_percent;
  std::int64_t samples;
  bool ok;
};

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

struct LatencyHandler {
  std::vector<std::int64_t>* latencies;
  std::int64_t warmup;
  std::int64_t expected = 0;
  bool ok = true;
  double cpu_start = 0;
  std::int64_t wall_start = 0;
  void on_event(Stamped& e, std::int64_t sequence, bool) {
    const std::int64_t now = MonotonicNanos();
    ok = ok && e.sequence == sequence && sequence == expected;
    expected = sequence + 1;
    if (sequence == warmup) {
      cpu_start = CpuSeconds();
      wall_start = now;
    }
    if (sequence >= warmup) latencies->push_back(now - e.published_ns);
  }
  void on_timeout(std::int64_t) {}  // timeout-blocking: nothing to flush here
};

xdisruptor::WaitParams ParamsFor(xdisruptor::WaitKind kind) {
  xdisruptor::WaitParams p{.kind = kind};
  if (kind == xdisruptor::WaitKind::kTimeoutBlocking) p.timeout_ns = 10'000'000;
  return p;
}

Result Measure(xdisruptor::WaitKind kind, std::int64_t warmup, std::int64_t samples,
               std::int64_t rate) {
  using namespace xdisruptor;
  const std::string name = absl::StrFormat("xdlatency-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Stamped>::Create({.name = name, .capacity = 4096});
  if (!ring.ok()) return {};
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const std::int64_t total = warmup + samples;
  const pid_t child = ::fork();
  if (child == 0) {
    std::vector<std::int64_t> latencies;
    latencies.reserve(static_cast<std::size_t>(samples));
    auto mine = Ring<Stamped>::Attach(name);
    if (!mine.ok()) _exit(2);
    auto consumer = Consumer::Register(mine->segment(), "measure", {.wait = ParamsFor(kind)});
    if (!consumer.ok()) _exit(3);
    LatencyHandler handler{&latencies, warmup};
    BatchEventProcessor<Stamped, LatencyHandler> processor(*mine, *consumer, handler);
    const bool closed = processor.Run() == WaitStatus::kClosed;
    const double cpu = CpuSeconds() - handler.cpu_start;
    const double wall = static_cast<double>(MonotonicNanos() - handler.wall_start) * 1e-9;
    std::sort(latencies.begin(), latencies.end());
    auto at = [&](double q) {
      if (latencies.empty()) return 0.0;
      const auto i = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1));
      return static_cast<double>(latencies[i]) / 1e3;
    };
    const Result r{at(0.5), at(0.99), at(0.999), at(1.0), 100.0 * cpu / wall,
                   static_cast<std::int64_t>(latencies.size()),
                   closed && handler.ok && handler.expected == total};
    _exit(::write(fds[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
  }
  while (ActiveConsumerCount(ring->segment()) < 1) ::usleep(100);
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = WaitKind::kBlocking});
  if (!producer.ok()) return {};
  const Ring<Stamped>::Slots slots = ring->slots();
  const std::int64_t period = 1'000'000'000 / rate;
  std::int64_t due = MonotonicNanos() + 1'000'000;
  for (std::int64_t i = 0; i < total; ++i, due += period) {
    const timespec at{static_cast<time_t>(due / 1'000'000'000),
                      static_cast<long>(due % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
    const std::int64_t s = producer->Next();
    slots[s].sequence = s;
    slots[s].published_ns = MonotonicNanos();
    producer->Publish(s);
  }
  producer->Close();
  Result r{};
  const bool got = ::read(fds[0], &r, sizeof(r)) == sizeof(r);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  RingSegment::Remove(name).IgnoreError();
  r.ok = r.ok && got && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::int64_t samples = absl::GetFlag(FLAGS_samples);
  const std::int64_t warmup = absl::GetFlag(FLAGS_warmup);
  const std::int64_t rate = absl::GetFlag(FLAGS_rate);
  if (samples < 1 || warmup < 0 || rate < 1 || rate > 1'000'000) {
    std::fprintf(stderr, "bad arguments: see --help\n");
    return 2;
  }
  std::vector<std::pair<std::string, Result>> results;
  std::printf("one-way latency, producer -> consumer process, %lld events/s, %lld samples, "
              "%ld cores\n",
              static_cast<long long>(rate), static_cast<long long>(samples),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("| strategy | p50 us | p99 us | p99.9 us | max us | consumer CPU %% |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  bool ok = true;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_strategies), ',')) {
    auto kind = xdisruptor::ParseWaitKind(std::string(name));
    if (!kind.ok()) {
      std::fprintf(stderr, "%s\n", std::string(kind.status().message()).c_str());
      return 2;
    }
    const Result r = Measure(*kind, warmup, samples, rate);
    ok = ok && r.ok;
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f |%s\n", std::string(name).c_str(),
                r.p50_us, r.p99_us, r.p999_us, r.max_us, r.cpu_percent,
                r.ok ? "" : " (FAILED: events lost or out of order)");
    std::fflush(stdout);
    results.emplace_back(std::string(name), r);
  }
  const std::string json = absl::GetFlag(FLAGS_json);
  if (!json.empty()) {
    if (FILE* f = std::fopen(json.c_str(), "w")) {
      std::fprintf(f, "{\"rate\": %lld, \"samples\": %lld, \"cores\": %ld, \"results\": [\n",
                   static_cast<long long>(rate), static_cast<long long>(samples),
                   sysconf(_SC_NPROCESSORS_ONLN));
      for (std::size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i].second;
        std::fprintf(f,
                     "  {\"strategy\": \"%s\", \"p50_us\": %.2f, \"p99_us\": %.2f, "
                     "\"p999_us\": %.2f, \"max_us\": %.2f, \"consumer_cpu_percent\": %.2f, "
                     "\"ok\": %s}%s\n",
                     results[i].first.c_str(), r.p50_us, r.p99_us, r.p999_us, r.max_us,
                     r.cpu_percent, r.ok ? "true" : "false", i + 1 < results.size() ? "," : "");
      }
      std::fprintf(f, "]}\n");
      std::fclose(f);
    }
  }
  return ok ? 0 : 1;
}
