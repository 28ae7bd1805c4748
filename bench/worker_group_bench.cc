// worker_group_bench — what a worker group costs per event in C++, against a single consumer
// measured in the same run (docs/worker-groups.md).
//
// One producer thread publishes --events 64-byte events in batches of 256; the consumer side
// is, alternating run by run:
//   single       one plain consumer (BatchEventProcessor), the baseline
//   group-1      a worker group of one member (the claim, the group's sequence, the CAS)
//   group-2      a worker group of two members (threads)
// Every handler sums the events' first word; the sums are checked, so a lost or repeated
// event fails the run. Prints medians (min..max) of events/s and the ratio to single.
//
//   worker_group_bench --events=20000000 --runs=5 --claim=256 --wait=yielding
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(int64_t, events, 20'000'000, "events per run");
ABSL_FLAG(int, runs, 5, "runs of each configuration");
ABSL_FLAG(int64_t, claim, 256, "events a member claims at a time");
ABSL_FLAG(std::string, wait, "yielding", "wait strategy of every side");

namespace {

using namespace xdisruptor;

struct Event {
  std::int64_t sequence;
  std::int64_t pad[7];
};

struct Summer {
  std::int64_t sum = 0;
  std::int64_t count = 0;
  void on_event(Event& e, std::int64_t, bool) {
    sum += e.sequence;
    ++count;
  }
};

double RunOnce(const std::string& mode, std::int64_t events, std::int64_t claim, WaitKind wait) {
  const std::string name = absl::StrFormat("xdwg-bench-%d", ::getpid());
  (void)RingSegment::Remove(name, {.force = true});
  auto ring = Ring<Event>::Create({.name = name, .capacity = 65536});
  if (!ring.ok()) {
    std::fprintf(stderr, "%s\n", ring.status().ToString().c_str());
    std::exit(1);
  }
  const int members = mode == "group-2" ? 2 : 1;
  std::vector<Consumer> consumers;
  for (int i = 0; i < members; ++i) {
    ConsumerOptions o{.wait = {.kind = wait}};
    if (mode != "single") {
      o.group = "G";
      o.claim = claim;
    }
    auto c = Consumer::Register(ring->segment(), absl::StrFormat("c%d", i), o);
    if (!c.ok()) std::exit(2);
    consumers.push_back(*std::move(c));
  }
  std::vector<Summer> sums(static_cast<std::size_t>(members));
  std::vector<std::thread> threads;
  for (int i = 0; i < members; ++i) {
    threads.emplace_back([&, i] {
      BatchEventProcessor<Event, Summer> p(*ring, consumers[static_cast<std::size_t>(i)],
                                           sums[static_cast<std::size_t>(i)]);
      p.Run();
    });
  }
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = wait});
  const std::int64_t t0 = MonotonicNanos();
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min<std::int64_t>(256, events - done);
    const std::int64_t hi = *producer->Next(n);
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) (*ring)[s].sequence = s;
    producer->Publish(hi - n + 1, hi);
    done += n;
  }
  producer->Close();
  for (auto& t : threads) t.join();
  const double seconds = static_cast<double>(MonotonicNanos() - t0) * 1e-9;
  std::int64_t sum = 0, count = 0;
  for (const Summer& s : sums) {
    sum += s.sum;
    count += s.count;
  }
  if (count != events || sum != events * (events - 1) / 2) {
    std::fprintf(stderr, "%s: %lld events, wrong sum\n", mode.c_str(),
                 static_cast<long long>(count));
    std::exit(3);
  }
  consumers.clear();
  (void)RingSegment::Remove(name, {.force = true});
  return static_cast<double>(events) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::int64_t events = absl::GetFlag(FLAGS_events);
  auto wait = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!wait.ok()) return 2;
  const std::vector<std::string> modes = {"single", "group-1", "group-2"};
  std::vector<std::vector<double>> rates(modes.size());
  for (int r = 0; r < absl::GetFlag(FLAGS_runs); ++r) {
    for (std::size_t m = 0; m < modes.size(); ++m) {
      rates[m].push_back(RunOnce(modes[m], events, absl::GetFlag(FLAGS_claim), *wait));
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double base = median(rates[0]);
  std::printf("%lld events of 64 bytes, claim %lld, wait %s, medians of %d runs\n",
              static_cast<long long>(events), static_cast<long long>(absl::GetFlag(FLAGS_claim)),
              absl::GetFlag(FLAGS_wait).c_str(), absl::GetFlag(FLAGS_runs));
  for (std::size_t m = 0; m < modes.size(); ++m) {
    const auto [lo, hi] = std::minmax_element(rates[m].begin(), rates[m].end());
    std::printf("%-8s %8.2f M events/s (%.2f..%.2f)  %.2fx single  %.2f ns/event\n",
                modes[m].c_str(), median(rates[m]) / 1e6, *lo / 1e6, *hi / 1e6,
                median(rates[m]) / base, 1e9 / median(rates[m]));
  }
  return 0;
}
