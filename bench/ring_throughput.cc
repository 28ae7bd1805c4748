// ring_throughput — events/s from one producer process to C consumer processes, xdisruptor
// against a hand-written shared-memory ring measured in the same run.
//
// Both sides do the same work per event: the producer fills a 64-byte event (8 words derived
// from the sequence) and publishes every `--batch` events; each consumer reads the event,
// checks its sequence and tag words and sums all 8 words; the sums are compared with the
// producer's, so a run that loses or tears data fails instead of printing a number.
// The baseline ("hand") is the ring users write by hand: one head index, a tail per consumer,
// the producer waiting on the minimum tail, consumers taking everything published as a batch.
// Runs alternate (hand, xdisruptor, hand, ...) so both see the same machine state; the
// report gives the median, min and max of each and the ratio of the medians.
//
//   ring_throughput --events=100000000 --consumers=1 --capacity=65536 --batch=256 --wait=spin
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(int64_t, events, 100'000'000, "events per run");
ABSL_FLAG(int, consumers, 1, "consumer processes (each reads every event)");
ABSL_FLAG(int, producers, 1,
          "producer processes; above 1 the sequencer topology runs (multi-producer ring), "
          "compared with one producer of the same ring kind in the same run");
ABSL_FLAG(int64_t, capacity, 65536, "ring slots, a power of two");
ABSL_FLAG(int64_t, batch, 256, "events the producer claims and publishes at once");
ABSL_FLAG(std::string, wait, "busy-spin", "wait strategy of both sides: busy-spin or yielding");
ABSL_FLAG(int, spin_tries, -1, "xdisruptor: pauses before the first yield (-1: the default)");
ABSL_FLAG(std::string, only, "", "run only 'hand' or 'xdisruptor' (for profiling)");
ABSL_FLAG(int, runs, 5, "runs of each implementation");
ABSL_FLAG(uint32_t, latency_sample_every, xdisruptor::kDefaultLatencySampleEvery,
          "xdisruptor: the producer stamps every Nth sequence for the latency histograms (0: off)");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");

namespace {

constexpr std::uint64_t kTag = 0x9E3779B97F4A7C15ull;
constexpr int kMaxConsumers = 16;

struct alignas(64) Event {
  std::uint64_t w[8];
};
static_assert(sizeof(Event) == 64);

inline void FillEvent(Event* e, std::uint64_t s) {
  e->w[0] = s;
  for (int j = 1; j < 7; ++j) e->w[j] = s * 31 + j;
  e->w[7] = s ^ kTag;
}
inline std::uint64_t EventSum(const Event& e) {
  std::uint64_t sum = 0;
  for (std::uint64_t w : e.w) sum += w;
  return sum;
}
// The consumers' work per event, the same code for both rings.
inline void ConsumeEvent(const Event& e, std::uint64_t s, std::uint64_t& errors,
                         std::uint64_t& sum) {
  errors += (e.w[0] != s) | (e.w[7] != (s ^ kTag));
  sum += EventSum(e);
}

double Now() { return static_cast<double>(xdisruptor::MonotonicNanos()) * 1e-9; }

// What a consumer process reports back through a pipe.
struct Report {
  std::uint64_t errors;
  std::uint64_t sum;
  double t_end;
};

struct Outcome {
  double seconds = 0;
  bool ok = false;
};

std::uint64_t ExpectedSum(std::uint64_t events) {
  std::uint64_t sum = 0;
  Event e;
  for (std::uint64_t s = 0; s < events; ++s) {
    FillEvent(&e, s);
    sum += EventSum(e);
  }
  return sum;
}

// Collects C reports; returns the time from t0 to the last consumer's end.
Outcome Collect(int fd, const std::vector<pid_t>& children, double t0, std::uint64_t want_sum) {
  Outcome out{0, true};
  for (std::size_t c = 0; c < children.size(); ++c) {
    Report r{};
    if (::read(fd, &r, sizeof(r)) != sizeof(r)) {
      out.ok = false;
      continue;
    }
    out.ok = out.ok && r.errors == 0 && r.sum == want_sum;
    out.seconds = std::max(out.seconds, r.t_end - t0);
  }
  for (pid_t p : children) {
    int status = 0;
    ::waitpid(p, &status, 0);
    out.ok = out.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return out;
}

// Forks `consumers` processes that attach to ring `name`, register as c0, c1, ..., run
// `consume(ring, consumer)` and write the Report it returns to `fd`.
template <typename Consume>
std::vector<pid_t> ForkConsumers(const std::string& name, int consumers,
                                 const xdisruptor::WaitParams& wait, int fd, Consume consume) {
  using namespace xdisruptor;
  std::vector<pid_t> children;
  for (int c = 0; c < consumers; ++c) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      auto mine = Ring<Event>::Attach(name);
      if (!mine.ok()) _exit(2);
      auto consumer = Consumer::Register(mine->segment(), absl::StrFormat("c%d", c),
                                         {.wait = wait});
      if (!consumer.ok()) _exit(3);
      const Report rep = consume(*mine, *consumer);
      _exit(::write(fd, &rep, sizeof(rep)) == sizeof(rep) ? 0 : 1);
    }
    children.push_back(pid);
  }
  return children;
}

// ---------------------------------------------------------------- the hand-written ring
struct alignas(128) Index {
  std::atomic<std::uint64_t> v;
};
struct HandRing {
  Index head;
  Index ready;
  Index go;
  Index tail[kMaxConsumers];
};

Outcome RunHand(std::uint64_t events, int consumers, std::uint64_t capacity, std::uint64_t batch,
                bool yield, std::uint64_t want_sum) {
  const std::size_t bytes = sizeof(HandRing) + capacity * sizeof(Event);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return {};
  auto* ring = new (mem) HandRing{};
  auto* slots = reinterpret_cast<Event*>(static_cast<char*>(mem) + sizeof(HandRing));
  const std::uint64_t mask = capacity - 1;
  auto idle = [yield] { yield ? (void)sched_yield() : xdisruptor::wait::CpuRelax(); };
  int fds[2];
  if (::pipe(fds) != 0) return {};
  std::vector<pid_t> children;
  for (int c = 0; c < consumers; ++c) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ring->ready.v.fetch_add(1);
      while (ring->go.v.load(std::memory_order_acquire) == 0) idle();
      std::uint64_t r = 0, h = 0, errors = 0, sum = 0;
      while (r < events) {
        while ((h = ring->head.v.load(std::memory_order_acquire)) == r) idle();
        for (; r < h; ++r) ConsumeEvent(slots[r & mask], r, errors, sum);
        ring->tail[c].v.store(r, std::memory_order_release);
      }
      const Report rep{errors, sum, Now()};
      _exit(::write(fds[1], &rep, sizeof(rep)) == sizeof(rep) ? 0 : 1);
    }
    children.push_back(pid);
  }
  while (ring->ready.v.load() < static_cast<std::uint64_t>(consumers)) ::usleep(100);
  const double t0 = Now();
  ring->go.v.store(1, std::memory_order_release);
  std::uint64_t min_tail = 0;
  for (std::uint64_t w = 0; w < events; ++w) {
    if (w - min_tail >= capacity) {
      ring->head.v.store(w, std::memory_order_release);
      for (;;) {
        std::uint64_t m = UINT64_MAX;
        for (int c = 0; c < consumers; ++c) {
          m = std::min(m, ring->tail[c].v.load(std::memory_order_acquire));
        }
        min_tail = m;
        if (w - min_tail < capacity) break;
        idle();
      }
    }
    FillEvent(&slots[w & mask], w);
    if ((w + 1) % batch == 0) ring->head.v.store(w + 1, std::memory_order_release);
  }
  ring->head.v.store(events, std::memory_order_release);
  Outcome out = Collect(fds[0], children, t0, want_sum);
  ::close(fds[0]);
  ::close(fds[1]);
  ::munmap(mem, bytes);
  return out;
}

// ---------------------------------------------------------------- xdisruptor
struct CheckingHandler {
  std::uint64_t errors = 0;
  std::uint64_t sum = 0;
  void on_event(const Event& e, std::int64_t sequence, bool) {
    ConsumeEvent(e, static_cast<std::uint64_t>(sequence), errors, sum);
  }
};

Outcome RunXdisruptor(std::uint64_t events, int consumers, std::uint64_t capacity,
                      std::uint64_t batch, xdisruptor::WaitKind kind, std::uint64_t want_sum) {
  using namespace xdisruptor;
  const std::string name = absl::StrFormat("xdbench-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create({.name = name, .capacity = capacity,
                                   .latency_sample_every = absl::GetFlag(FLAGS_latency_sample_every)});
  if (!ring.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ring.status().message()).c_str());
    return {};
  }
  WaitParams wait{.kind = kind};
  if (absl::GetFlag(FLAGS_spin_tries) >= 0) {
    wait.spin_tries = static_cast<std::uint32_t>(absl::GetFlag(FLAGS_spin_tries));
  }
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const std::vector<pid_t> children =
      ForkConsumers(name, consumers, wait, fds[1], [](Ring<Event>& mine, Consumer& consumer) {
        CheckingHandler handler;
        BatchEventProcessor<Event, CheckingHandler> processor(mine, consumer, handler);
        const WaitStatus why = processor.Run();
        return Report{handler.errors + (why != WaitStatus::kClosed), handler.sum, Now()};
      });
  while (ActiveConsumerCount(ring->segment()) < consumers) ::usleep(100);
  auto producer = SingleProducerSequencer::Attach(ring->segment(), wait);
  if (!producer.ok()) return {};
  const Ring<Event>::Slots slots = ring->slots();
  const double t0 = Now();
  const auto n = static_cast<std::int64_t>(batch);
  for (std::int64_t done = 0; done < static_cast<std::int64_t>(events); done += n) {
    const std::int64_t take = std::min<std::int64_t>(n, static_cast<std::int64_t>(events) - done);
    const std::int64_t hi = *producer->Next(take);
    for (std::int64_t s = hi - take + 1; s <= hi; ++s) {
      FillEvent(&slots[s], static_cast<std::uint64_t>(s));
    }
    producer->Publish(hi - take + 1, hi);
  }
  producer->Close();
  Outcome out = Collect(fds[0], children, t0, want_sum);
  ::close(fds[0]);
  ::close(fds[1]);
  RingSegment::Remove(name).IgnoreError();
  return out;
}

// ---------------------------------------------------------------- sequencer topology (nP-1C)
// Events of producer p: w[0] = its count, w[1] = p, w[7] = count ^ tag ^ p. Consumers check
// that each producer's events arrive exactly once and in that producer's order.
struct TaggedChecker {
  std::uint64_t errors = 0;
  std::uint64_t events = 0;
  std::vector<std::uint64_t> next;
  void on_event(const Event& e, std::int64_t, bool) {
    const std::uint64_t p = e.w[1];
    if (p >= next.size() || e.w[7] != (e.w[0] ^ kTag ^ p) || e.w[0] != next[p]) {
      ++errors;
      return;
    }
    next[p] = e.w[0] + 1;
    ++events;
  }
};

Outcome RunProducers(std::uint64_t events, int producers, int consumers, std::uint64_t capacity,
                     std::uint64_t batch, xdisruptor::WaitKind kind) {
  using namespace xdisruptor;
  const std::string name = absl::StrFormat("xdbench-mp-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create({.name = name,
                                   .capacity = capacity,
                                   .sequencer = SequencerKind::kMultiProducer,
                                   .latency_sample_every = absl::GetFlag(FLAGS_latency_sample_every)});
  if (!ring.ok()) return {};
  const WaitParams wait{.kind = kind};
  const std::uint64_t per_producer = events / static_cast<std::uint64_t>(producers);
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const std::vector<pid_t> children = ForkConsumers(
      name, consumers, wait, fds[1], [&](Ring<Event>& mine, Consumer& consumer) {
        TaggedChecker checker{0, 0,
                              std::vector<std::uint64_t>(static_cast<std::size_t>(producers))};
        BatchEventProcessor<Event, TaggedChecker> processor(mine, consumer, checker);
        const WaitStatus why = processor.Run();
        bool complete = why == WaitStatus::kClosed;
        for (std::uint64_t n : checker.next) complete = complete && n == per_producer;
        return Report{checker.errors + !complete, checker.events, Now()};
      });
  while (ActiveConsumerCount(ring->segment()) < consumers) ::usleep(100);
  const double t0 = Now();
  std::vector<pid_t> writers;
  for (int p = 0; p < producers; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      auto mine = Ring<Event>::Attach(name);
      if (!mine.ok()) _exit(2);
      auto seq = MultiProducerSequencer::Attach(mine->segment(), wait);
      if (!seq.ok()) _exit(4);
      const Ring<Event>::Slots slots = mine->slots();
      const auto n = static_cast<std::int64_t>(batch);
      for (std::uint64_t done = 0; done < per_producer;) {
        const std::int64_t take =
            std::min<std::int64_t>(n, static_cast<std::int64_t>(per_producer - done));
        const std::int64_t hi = *seq->Next(take);
        for (std::int64_t s = hi - take + 1; s <= hi; ++s, ++done) {
          Event& e = slots[s];
          e.w[0] = done;
          e.w[1] = static_cast<std::uint64_t>(p);
          e.w[7] = done ^ kTag ^ static_cast<std::uint64_t>(p);
        }
        seq->Publish(hi - take + 1, hi);
      }
      _exit(0);
    }
    writers.push_back(pid);
  }
  bool ok = true;
  for (pid_t w : writers) {
    int status = 0;
    ::waitpid(w, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  auto closer = MultiProducerSequencer::Attach(ring->segment());
  if (!closer.ok()) return {};
  closer->Close();
  // Collect compares each report's sum with the wanted value: here the event count.
  Outcome out = Collect(fds[0], children, t0, per_producer * static_cast<std::uint64_t>(producers));
  out.ok = out.ok && ok;
  ::close(fds[0]);
  ::close(fds[1]);
  RingSegment::Remove(name).IgnoreError();
  return out;
}

struct Series {
  std::vector<double> rates;  // events/s per run
  double Median() const {
    std::vector<double> v = rates;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  double Min() const { return rates.empty() ? 0 : *std::min_element(rates.begin(), rates.end()); }
  double Max() const { return rates.empty() ? 0 : *std::max_element(rates.begin(), rates.end()); }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const auto events = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_events));
  const int consumers = absl::GetFlag(FLAGS_consumers);
  const auto capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity));
  const auto batch = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_batch));
  const int runs = absl::GetFlag(FLAGS_runs);
  auto kind = xdisruptor::ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok() || *kind == xdisruptor::WaitKind::kSleeping || consumers < 1 ||
      consumers > kMaxConsumers || batch < 1 || batch > capacity || runs < 1 ||
      (capacity & (capacity - 1)) != 0) {
    std::fprintf(stderr, "bad arguments: see --help (wait is busy-spin or yielding)\n");
    return 2;
  }
  const bool yield = *kind == xdisruptor::WaitKind::kYielding;
  const int producers = absl::GetFlag(FLAGS_producers);
  if (producers < 1 || producers > 16) {
    std::fprintf(stderr, "--producers is between 1 and 16\n");
    return 2;
  }
  if (producers > 1) {
    // The sequencer topology: N producers into one multi-producer ring against one producer
    // of the same kind of ring (the hand-written ring has no multi-producer form).
    Series one, many;
    for (int r = 0; r < runs; ++r) {
      const Outcome a = RunProducers(events, 1, consumers, capacity, batch, *kind);
      const Outcome b = RunProducers(events, producers, consumers, capacity, batch, *kind);
      if (!a.ok || !b.ok) {
        std::fprintf(stderr, "run %d: data check FAILED\n", r);
        return 1;
      }
      one.rates.push_back(static_cast<double>(events) / a.seconds);
      many.rates.push_back(static_cast<double>(events) / b.seconds);
      std::printf("run %d: 1 producer %.1fM/s  %d producers %.1fM/s\n", r,
                  one.rates.back() / 1e6, producers, many.rates.back() / 1e6);
      std::fflush(stdout);
    }
    std::printf(
        "%dP-%dC vs 1P-%dC (multi-producer ring), %s, %" PRIu64 " events, %" PRIu64
        " slots, batch %" PRIu64 ", %ld cores, %d runs\n"
        "  1 producer   median %.1fM/s (min %.1f, max %.1f)\n"
        "  %d producers median %.1fM/s (min %.1f, max %.1f)\n"
        "  ratio %d producers / 1 producer = %.2f\n",
        producers, consumers, consumers, std::string(xdisruptor::WaitKindName(*kind)).c_str(),
        events, capacity, batch, sysconf(_SC_NPROCESSORS_ONLN), runs, one.Median() / 1e6,
        one.Min() / 1e6, one.Max() / 1e6, producers, many.Median() / 1e6, many.Min() / 1e6,
        many.Max() / 1e6, producers, many.Median() / one.Median());
    return 0;
  }
  const std::uint64_t want_sum = ExpectedSum(events);
  Series hand, xd;
  bool ok = true;
  for (int r = 0; r < runs; ++r) {
    const std::string only = absl::GetFlag(FLAGS_only);
    const Outcome h = only == "xdisruptor" ? Outcome{1, true}
                                           : RunHand(events, consumers, capacity, batch, yield,
                                                     want_sum);
    const Outcome x = only == "hand" ? Outcome{1, true}
                                     : RunXdisruptor(events, consumers, capacity, batch, *kind,
                                                     want_sum);
    if (!h.ok || !x.ok) {
      std::fprintf(stderr, "run %d: data check FAILED (hand %s, xdisruptor %s)\n", r,
                   h.ok ? "ok" : "bad", x.ok ? "ok" : "bad");
      ok = false;
      continue;
    }
    hand.rates.push_back(static_cast<double>(events) / h.seconds);
    xd.rates.push_back(static_cast<double>(events) / x.seconds);
    std::printf("run %d: hand %.1fM/s  xdisruptor %.1fM/s\n", r, hand.rates.back() / 1e6,
                xd.rates.back() / 1e6);
    std::fflush(stdout);
  }
  if (!ok) return 1;
  const double ratio = xd.Median() / hand.Median();
  Series per_round;  // xdisruptor / hand within each round, which saw one machine state
  for (std::size_t i = 0; i < xd.rates.size(); ++i) {
    per_round.rates.push_back(xd.rates[i] / hand.rates[i]);
  }
  std::printf(
      "1P-%dC %s, %" PRIu64 " events, %" PRIu64 " slots, batch %" PRIu64 ", %ld cores, %d runs\n"
      "  hand-written ring  median %.1fM/s (min %.1f, max %.1f)\n"
      "  xdisruptor         median %.1fM/s (min %.1f, max %.1f)\n"
      "  ratio xdisruptor/hand = %.2f (of the medians); median of per-round ratios %.2f "
      "(min %.2f, max %.2f)\n",
      consumers, std::string(xdisruptor::WaitKindName(*kind)).c_str(), events, capacity, batch,
      sysconf(_SC_NPROCESSORS_ONLN), runs, hand.Median() / 1e6, hand.Min() / 1e6,
      hand.Max() / 1e6, xd.Median() / 1e6, xd.Min() / 1e6, xd.Max() / 1e6, ratio,
      per_round.Median(), per_round.Min(), per_round.Max());
  const std::string json = absl::GetFlag(FLAGS_json);
  if (!json.empty()) {
    if (FILE* f = std::fopen(json.c_str(), "w")) {
      std::fprintf(f,
                   "{\"topology\": \"1P-%dC\", \"wait\": \"%s\", \"events\": %" PRIu64
                   ", \"capacity\": %" PRIu64 ", \"batch\": %" PRIu64
                   ", \"cores\": %ld, \"runs\": %d,\n \"hand\": {\"median\": %.0f, \"min\": "
                   "%.0f, \"max\": %.0f},\n \"xdisruptor\": {\"median\": %.0f, \"min\": %.0f, "
                   "\"max\": %.0f},\n \"ratio\": %.3f, \"per_round_ratio_median\": %.3f}\n",
                   consumers, std::string(xdisruptor::WaitKindName(*kind)).c_str(), events,
                   capacity, batch, sysconf(_SC_NPROCESSORS_ONLN), runs, hand.Median(),
                   hand.Min(), hand.Max(), xd.Median(), xd.Min(), xd.Max(), ratio,
                   per_round.Median());
      std::fclose(f);
    }
  }
  return 0;
}
