// wait_latency — one-way latency from a producer process to a consumer process, and the
// consumer's CPU use, for each wait strategy.
//
// The producer publishes one event at a fixed rate (sleeping until each is due, so it leaves
// the cores to the consumer); each event carries CLOCK_MONOTONIC at publish. The consumer
// records now - stamp for every event into a preallocated array (no allocation while
// measuring), drops a warm-up, and reports p50/p99/p99.9/max and the CPU it used (getrusage)
// over the measured span as a share of one core, and over --idle_ms of silence before the
// first event (idle CPU). Prints a table and, with --json, JSON.
//
// The row `spin-probe` measures the machine, not the ring: one process, no ring, spins reading
// the clock and, for each moment an event would be due at --rate, records how late its loop
// first saw that moment: the latency a perfect busy-spin consumer of a free ring would have on
// this machine at this moment. Its tail is the VM's preemption (the hypervisor or another
// process taking the core); rows whose tails match it owe those to the machine, not the ring.
// It runs in turn with the strategies, in the same run. Beside every row the bench also reads
// the VM's steal time (/proc/stat: time the hypervisor ran something else while this VM's
// vCPUs wanted to run) over the row's span: `steal %` of all vCPU time. Steal arrives in slices
// of milliseconds, so with s % stolen, roughly the slowest s % of the events can owe their
// latency to the host, not to the ring.
//
// A strategy may carry parameters: --strategies=blocking,blocking:phase_spin=0 (the parser of
// the tool's --wait_params; several joined by '&').
//
//   wait_latency --samples=100000 --rate=20000 --json=docs/wait-strategies.json
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(int64_t, samples, 100'000, "measured events per strategy (after the warm-up)");
ABSL_FLAG(int64_t, warmup, 2'000, "events per strategy not measured");
ABSL_FLAG(int64_t, rate, 20'000, "events per second");
ABSL_FLAG(std::string, strategies,
          "spin-probe,busy-spin,yielding,sleeping,blocking,timeout-blocking,phased-backoff",
          "comma-separated wait strategies to measure");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");
ABSL_FLAG(int64_t, idle_ms, 500, "silence before the first event, to measure idle CPU");
ABSL_FLAG(std::string, python, "",
          "a Python interpreter: measure C++ -> Python, the consumer being "
          "bench/latency_consumer.py (next to this source) run by it");
ABSL_FLAG(std::string, python_script, "bench/latency_consumer.py",
          "the Python consumer's script (with --python)");

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
  double idle_cpu_percent;
  double steal_percent = 0;  // of all vCPU time over the row, from /proc/stat
};

// The "cpu" line of /proc/stat: {steal ticks, all ticks}.
std::pair<std::uint64_t, std::uint64_t> CpuTicks() {
  std::uint64_t f[10] = {};
  if (FILE* stat = std::fopen("/proc/stat", "r")) {
    if (std::fscanf(stat, "cpu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", &f[0], &f[1], &f[2],
                    &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9]) < 8) {
      f[7] = 0;
    }
    std::fclose(stat);
  }
  std::uint64_t all = 0;
  for (int i = 0; i < 8; ++i) all += f[i];  // guest time is counted in user already
  return {f[7], all};
}
double StealPercentSince(std::pair<std::uint64_t, std::uint64_t> before) {
  const auto after = CpuTicks();
  const std::uint64_t all = after.second - before.second;
  return all == 0 ? 0.0 : 100.0 * static_cast<double>(after.first - before.first) /
                              static_cast<double>(all);
}

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
  double idle_cpu_start = 0;
  std::int64_t idle_wall_start = 0;
  double idle_cpu_percent = 0;
  void on_event(Stamped& e, std::int64_t sequence, bool) {
    const std::int64_t now = MonotonicNanos();
    ok = ok && e.sequence == sequence && sequence == expected;
    expected = sequence + 1;
    if (sequence == 0) {
      idle_cpu_percent = 100.0 * (CpuSeconds() - idle_cpu_start) /
                         (static_cast<double>(now - idle_wall_start) * 1e-9);
    }
    if (sequence == warmup) {
      cpu_start = CpuSeconds();
      wall_start = now;
    }
    if (sequence >= warmup) latencies->push_back(now - e.published_ns);
  }
  void on_timeout(std::int64_t) {}  // timeout-blocking: nothing to flush here
};

// The spin probe (see the top): lateness of a no-op spin loop at each due moment.
std::vector<std::int64_t> SpinProbe(std::int64_t total, std::int64_t rate) {
  std::vector<std::int64_t> late;
  late.reserve(static_cast<std::size_t>(total));
  const std::int64_t period = 1'000'000'000 / rate;
  std::int64_t due = MonotonicNanos() + 1'000'000;
  while (static_cast<std::int64_t>(late.size()) < total) {
    const std::int64_t now = MonotonicNanos();
    while (due <= now && static_cast<std::int64_t>(late.size()) < total) {
      late.push_back(now - due);
      due += period;
    }
  }
  return late;
}

Result Summarize(std::vector<std::int64_t>& latencies, double cpu_percent, bool ok,
                 double idle_cpu_percent) {
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    if (latencies.empty()) return 0.0;
    const auto i = static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1));
    return static_cast<double>(latencies[i]) / 1e3;
  };
  return {at(0.5), at(0.99), at(0.999), at(1.0), cpu_percent,
          static_cast<std::int64_t>(latencies.size()), ok, idle_cpu_percent};
}

Result MeasureProbe(std::int64_t samples, std::int64_t rate) {
  const auto ticks = CpuTicks();
  std::vector<std::int64_t> late = SpinProbe(samples, rate);
  Result r = Summarize(late, 100.0, true, 100.0);
  r.steal_percent = StealPercentSince(ticks);
  return r;
}

// The consumer's result travels to the producer as one line of text (the Python consumer
// writes the same line).
void WriteResult(int fd, const Result& r) {
  dprintf(fd, "%.3f %.3f %.3f %.3f %.3f %lld %d %.4f\n", r.p50_us, r.p99_us, r.p999_us,
          r.max_us, r.cpu_percent, static_cast<long long>(r.samples), r.ok ? 1 : 0,
          r.idle_cpu_percent);
}
bool ReadResult(int fd, Result* r) {
  char line[256] = {};
  std::size_t got = 0;
  while (got + 1 < sizeof(line)) {
    const ssize_t n = ::read(fd, line + got, sizeof(line) - 1 - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (std::memchr(line, '\n', got) != nullptr) break;
  }
  long long samples = 0;
  int ok = 0;
  if (std::sscanf(line, "%lf %lf %lf %lf %lf %lld %d %lf", &r->p50_us, &r->p99_us, &r->p999_us,
                  &r->max_us, &r->cpu_percent, &samples, &ok, &r->idle_cpu_percent) != 8) {
    return false;
  }
  r->samples = samples;
  r->ok = ok != 0;
  return true;
}

Result Measure(const xdisruptor::WaitParams& params, absl::string_view spec,
               std::int64_t warmup, std::int64_t samples, std::int64_t rate,
               std::int64_t idle_ms) {
  using namespace xdisruptor;
  const std::string name = absl::StrFormat("xdlatency-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Stamped>::Create({.name = name, .capacity = 4096,
                                     .schema = "<i8:published_ns,<i8:sequence,S48:pad"});
  if (!ring.ok()) return {};
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const std::int64_t total = warmup + samples;
  const pid_t child = ::fork();
  const std::string python = absl::GetFlag(FLAGS_python);
  if (child == 0 && !python.empty()) {
    ::close(fds[0]);
    const std::string script = absl::GetFlag(FLAGS_python_script);
    const std::string args[] = {python, script, name, std::to_string(warmup),
                                std::to_string(samples), std::string(spec),
                                std::to_string(fds[1])};
    const char* argv[] = {args[0].c_str(), args[1].c_str(), args[2].c_str(), args[3].c_str(),
                          args[4].c_str(), args[5].c_str(), args[6].c_str(), nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    _exit(4);
  }
  if (child == 0) {
    std::vector<std::int64_t> latencies;
    latencies.reserve(static_cast<std::size_t>(samples));
    auto mine = Ring<Stamped>::Attach(name);
    if (!mine.ok()) _exit(2);
    auto consumer = Consumer::Register(mine->segment(), "measure", {.wait = params});
    if (!consumer.ok()) _exit(3);
    LatencyHandler handler{&latencies, warmup};
    handler.idle_cpu_start = CpuSeconds();
    handler.idle_wall_start = MonotonicNanos();
    BatchEventProcessor<Stamped, LatencyHandler> processor(*mine, *consumer, handler);
    const bool closed = processor.Run() == WaitStatus::kClosed;
    const double cpu = CpuSeconds() - handler.cpu_start;
    const double wall = static_cast<double>(MonotonicNanos() - handler.wall_start) * 1e-9;
    const Result r = Summarize(latencies, 100.0 * cpu / wall,
                               closed && handler.ok && handler.expected == total,
                               handler.idle_cpu_percent);
    WriteResult(fds[1], r);
    _exit(0);
  }
  while (ActiveConsumerCount(ring->segment()) < 1) ::usleep(100);
  ::usleep(static_cast<useconds_t>(idle_ms * 1000));
  const auto ticks = CpuTicks();
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
  ::close(fds[1]);
  fds[1] = -1;
  const bool got = ReadResult(fds[0], &r);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  RingSegment::Remove(name).IgnoreError();
  r.ok = r.ok && got && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  r.steal_percent = StealPercentSince(ticks);
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
  std::printf("one-way latency, C++ producer -> %s consumer process, %lld events/s, "
              "%lld samples, "
              "%ld cores\n",
              absl::GetFlag(FLAGS_python).empty() ? "C++" : "Python",
              static_cast<long long>(rate), static_cast<long long>(samples),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("| strategy | p50 us | p99 us | p99.9 us | max us | consumer CPU %% | idle CPU %% "
              "| steal %% |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  bool ok = true;
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_strategies), ',')) {
    const auto [name, tuning] = std::pair<absl::string_view, absl::string_view>(
        absl::StrSplit(spec, absl::MaxSplits(':', 1)));
    if (name == "spin-probe") {
      const Result r = MeasureProbe(samples, rate);
      std::printf("| %s | %.1f | %.1f | %.1f | %.1f | n/a | n/a | %.2f |\n",
                  std::string(spec).c_str(), r.p50_us, r.p99_us, r.p999_us, r.max_us,
                  r.steal_percent);
      results.emplace_back(std::string(spec), r);
      continue;
    }
    auto kind = xdisruptor::ParseWaitKind(std::string(name));
    if (!kind.ok()) {
      std::fprintf(stderr, "%s\n", std::string(kind.status().message()).c_str());
      return 2;
    }
    xdisruptor::WaitParams params{.kind = *kind};
    if (*kind == xdisruptor::WaitKind::kTimeoutBlocking) params.timeout_ns = 10'000'000;
    if (absl::Status s = xdisruptor::ParseWaitParams(absl::StrReplaceAll(tuning, {{"&", ","}}),
                                                     &params);
        !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 2;
    }
    const Result r = Measure(params, tuning.empty() ? name : spec, warmup, samples, rate,
                             absl::GetFlag(FLAGS_idle_ms));
    ok = ok && r.ok;
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |%s\n",
                std::string(spec).c_str(), r.p50_us, r.p99_us, r.p999_us, r.max_us,
                r.cpu_percent, r.idle_cpu_percent, r.steal_percent,
                r.ok ? "" : " (FAILED: events lost or out of order)");
    std::fflush(stdout);
    results.emplace_back(std::string(spec), r);
  }
  const std::string json = absl::GetFlag(FLAGS_json);
  if (!json.empty()) {
    if (FILE* f = std::fopen(json.c_str(), "w")) {
      std::fprintf(f,
                   "{\"consumer\": \"%s\", \"rate\": %lld, \"samples\": %lld, "
                   "\"cores\": %ld, \"results\": [\n",
                   absl::GetFlag(FLAGS_python).empty() ? "cpp" : "python",
                   static_cast<long long>(rate), static_cast<long long>(samples),
                   sysconf(_SC_NPROCESSORS_ONLN));
      for (std::size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i].second;
        std::fprintf(f,
                     "  {\"strategy\": \"%s\", \"p50_us\": %.2f, \"p99_us\": %.2f, "
                     "\"p999_us\": %.2f, \"max_us\": %.2f, \"consumer_cpu_percent\": %.2f, "
                     "\"idle_cpu_percent\": %.3f, \"steal_percent\": %.3f, \"ok\": %s}%s\n",
                     results[i].first.c_str(), r.p50_us, r.p99_us, r.p999_us, r.max_us,
                     r.cpu_percent, r.idle_cpu_percent, r.steal_percent, r.ok ? "true" : "false",
                     i + 1 < results.size() ? "," : "");
      }
      std::fprintf(f, "]}\n");
      std::fclose(f);
    }
  }
  return ok ? 0 : 1;
}
