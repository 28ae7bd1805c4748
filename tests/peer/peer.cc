// xdisruptor_test_peer — the C++ side of the cross-language tests (Python tests start it).
//
//   xdisruptor_test_peer produce --ring=R --events=N [--create --capacity=C] [--consumers=K]
//   xdisruptor_test_peer consume --ring=R --name=X --events=N [--after=A,B] [--mark]
//                                [--expect_mark] [--wait=blocking] [--start_at=S | --start_back=K]
//                                [--observer] [--journal=DIR]
//   xdisruptor_test_peer chaos-consume --ring=R --name=X --log=F [--policy=evict] [--after=A]
//                                [--max_lag=N --max_lag_s=S] [--slow_ms=M]
// produce publishes N PeerEvents (creating the ring with --create; --multi: a multi-producer
// ring), after K consumers joined, then closes the ring (unless --noclose). --spawn=NAME
// first starts a chaos-consume child of that name (evict policy) and never reaps it: the
// guarantee tests kill it and the producer must go on. --stall claims a batch and never
// publishes it (a multi-producer that dies mid-claim when killed).
// Exit codes of chaos-consume: 0 stream ended, 3 evicted while alive, 4 upstream gone,
// 5 producer stalled, 1 bad events, 2 setup refused. consume registers, prints "ready", checks every event from sequence 0
// (and with --expect_mark that an upstream stage marked it; with --mark marks it in place) and
// exits 0 only if it saw exactly N intact events in order, then the end of the stream (from
// --start_at on when given: the join with history). An --observer that is lapped exits 6 if
// every event it read intact came before the batch it was lapped in (exactly when: a damaged
// event in a batch it was not told about exits 1).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "peer_event.h"
#include "xdisruptor/journal.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(std::string, ring, "", "ring name");
ABSL_FLAG(std::string, name, "cpp", "consumer name");
ABSL_FLAG(std::string, after, "", "comma-separated upstream consumers");
ABSL_FLAG(int64_t, events, 1000, "events to publish or expect");
ABSL_FLAG(int64_t, until, 0, "produce: publish until this many events exist in the ring "
                             "(continues a ring whose producer died)");
ABSL_FLAG(int64_t, capacity, 1024, "slots when creating");
ABSL_FLAG(int64_t, batch, 32, "events per claim when producing");
ABSL_FLAG(int, consumers, 0, "produce: wait for this many consumers first");
ABSL_FLAG(int64_t, rate, 0, "produce: events per second (0: as fast as allowed)");
ABSL_FLAG(bool, create, false, "produce: create the ring");
ABSL_FLAG(bool, mark, false, "consume: write the mark into each event");
ABSL_FLAG(bool, expect_mark, false, "consume: check an upstream stage marked each event");
ABSL_FLAG(std::string, wait, "yielding", "wait strategy");
ABSL_FLAG(std::string, policy, "hold", "chaos-consume: stall policy, hold or evict");
ABSL_FLAG(std::string, log, "", "chaos-consume: the durable log of what this name processed");
ABSL_FLAG(bool, close, true, "produce: close the stream at the end");
ABSL_FLAG(bool, multi, false, "produce: a multi-producer ring (created or attached)");
ABSL_FLAG(bool, stall, false, "produce (multi): claim a batch, print 'stalled', never publish");
ABSL_FLAG(std::string, spawn, "", "produce: start a chaos-consume child of this name first");
ABSL_FLAG(int64_t, max_lag, 0, "chaos-consume: slow-consumer limit, events");
ABSL_FLAG(double, max_lag_s, 0, "chaos-consume: slow-consumer limit, seconds");
ABSL_FLAG(int64_t, slow_ms, 0, "chaos-consume: pause after each batch");
ABSL_FLAG(int64_t, start_at, -1, "consume: join at this older sequence (-1: at the cursor)");
ABSL_FLAG(int64_t, start_back, -1,
          "consume: join this many events before the slowest gating consumer's next event "
          "(read at registration; -1: not used)");
ABSL_FLAG(bool, observer, false, "consume: do not gate (may be lapped: exit code 6)");
ABSL_FLAG(std::string, journal, "", "consume: catch up from this journal directory first");
ABSL_FLAG(std::string, group, "", "work: the worker group this member joins");
ABSL_FLAG(int64_t, claim, 64, "work: events per claim");
ABSL_FLAG(int64_t, busy_us, 0, "work: CPU burned per event (microseconds)");

namespace {

using namespace xdisruptor;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "peer: %s\n", std::string(s.message()).c_str());
  return 2;
}

// A chaos-consume child of this program (never reaped: the tests make a zombie of it).
pid_t SpawnConsumer(const std::string& name) {
  const std::string ring = "--ring=" + absl::GetFlag(FLAGS_ring);
  const std::string who = "--name=" + name;
  const std::string log = "--log=" + absl::GetFlag(FLAGS_log);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);  // its "ready" is not ours
    if (null >= 0) ::dup2(null, STDOUT_FILENO);
    ::execl("/proc/self/exe", "xdisruptor_test_peer", "chaos-consume", ring.c_str(), who.c_str(),
            log.c_str(), "--policy=evict", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

template <typename Sequencer>
int ProduceWith(Ring<peer::PeerEvent>& ring, Sequencer& producer) {
  std::printf("ready\n");
  std::fflush(stdout);
  while (ActiveConsumerCount(ring.segment()) < absl::GetFlag(FLAGS_consumers)) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (absl::GetFlag(FLAGS_stall)) {
    *producer.Next(absl::GetFlag(FLAGS_batch));  // claimed, never published
    std::printf("stalled\n");
    std::fflush(stdout);
    for (;;) ::pause();
  }
  std::int64_t events = absl::GetFlag(FLAGS_events);
  if (absl::GetFlag(FLAGS_until) > 0) events = absl::GetFlag(FLAGS_until) - (producer.cursor() + 1);
  const std::int64_t batch = absl::GetFlag(FLAGS_batch);
  const std::int64_t rate = absl::GetFlag(FLAGS_rate);
  const std::int64_t start = MonotonicNanos();
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min(batch, events - done);
    if (rate > 0) {
      const std::int64_t due = start + done * 1'000'000'000 / rate;
      while (MonotonicNanos() < due) absl::SleepFor(absl::Microseconds(100));
    }
    const std::int64_t hi = *producer.Next(n);
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) peer::Fill(&ring[s], s);
    producer.Publish(hi - n + 1, hi);
    done += n;
  }
  if (absl::GetFlag(FLAGS_close)) producer.Close();
  return 0;
}

int Produce() {
  const std::string name = absl::GetFlag(FLAGS_ring);
  const bool multi = absl::GetFlag(FLAGS_multi);
  absl::StatusOr<Ring<peer::PeerEvent>> ring =
      absl::GetFlag(FLAGS_create)
          ? Ring<peer::PeerEvent>::Create(
                {.name = name,
                 .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity)),
                 .schema = peer::kPeerSchema,
                 .sequencer = multi ? SequencerKind::kMultiProducer
                                    : SequencerKind::kSingleProducer})
          : Ring<peer::PeerEvent>::Attach(name, {.expected_schema = peer::kPeerSchema});
  if (!ring.ok()) return Fail(ring.status());
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(kind.status());
  if (!absl::GetFlag(FLAGS_spawn).empty()) {
    std::printf("child %d\n", static_cast<int>(SpawnConsumer(absl::GetFlag(FLAGS_spawn))));
    std::fflush(stdout);
  }
  if (multi) {
    auto producer = MultiProducerSequencer::Attach(ring->segment(), {.kind = *kind});
    if (!producer.ok()) return Fail(producer.status());
    return ProduceWith(*ring, *producer);
  }
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = *kind});
  if (!producer.ok()) return Fail(producer.status());
  return ProduceWith(*ring, *producer);
}

struct Checker {
  std::int64_t expected = 0;
  std::int64_t bad = 0;
  std::int64_t bad_before_batch = 0;  // bad events in the batches before the last one
  std::int64_t batch_last = -1;       // the last sequence of the last batch handed out
  bool mark = false;
  bool expect_mark = false;
  void on_batch_start(std::int64_t size, std::int64_t) {
    bad_before_batch = bad;
    batch_last = expected + size - 1;
  }
  void on_event(peer::PeerEvent& e, std::int64_t s, bool) {
    bad += s != expected || !peer::Verify(e, s);
    if (expect_mark) bad += e.mark != peer::Mark(s);
    if (mark) e.mark = peer::Mark(s);
    expected = s + 1;
  }
};

int Consume() {
  auto ring = Ring<peer::PeerEvent>::Attach(absl::GetFlag(FLAGS_ring),
                                            {.expected_schema = peer::kPeerSchema});
  if (!ring.ok()) return Fail(ring.status());
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(kind.status());
  ConsumerOptions options{.wait = {.kind = *kind}};
  for (absl::string_view up : absl::StrSplit(absl::GetFlag(FLAGS_after), ',', absl::SkipEmpty())) {
    options.after.emplace_back(up);
  }
  if (absl::GetFlag(FLAGS_start_at) >= 0) options.start_at = absl::GetFlag(FLAGS_start_at);
  if (absl::GetFlag(FLAGS_start_back) >= 0) {
    options.start_at = std::max<std::int64_t>(
        0, MinimumGatingSequence(ring->segment()) + 1 - absl::GetFlag(FLAGS_start_back));
  }
  options.gating = !absl::GetFlag(FLAGS_observer);
  options.journal = absl::GetFlag(FLAGS_journal);
  auto consumer = Consumer::Register(ring->segment(), absl::GetFlag(FLAGS_name), options);
  if (!consumer.ok()) return Fail(consumer.status());
  std::printf("ready\n");
  std::fflush(stdout);
  Checker checker{.expected = consumer->sequence() + 1,
                  .mark = absl::GetFlag(FLAGS_mark),
                  .expect_mark = absl::GetFlag(FLAGS_expect_mark)};
  BatchEventProcessor<peer::PeerEvent, Checker> processor(*ring, *consumer, checker);
  const WaitStatus why = processor.Run();
  const std::int64_t events = absl::GetFlag(FLAGS_events);
  std::printf("consumed %lld events, %lld bad, end %s\n",
              static_cast<long long>(checker.expected), static_cast<long long>(checker.bad),
              std::string(WaitStatusName(why)).c_str());
  if (why == WaitStatus::kLapped) {
    // Told before the next batch (the last one was released: it had to be intact), or after
    // the last one (not released: it may be damaged).
    const bool last_released = consumer->sequence() >= checker.batch_last;
    return (last_released ? checker.bad : checker.bad_before_batch) == 0 ? 6 : 1;
  }
  return checker.bad == 0 && checker.expected == events && why == WaitStatus::kClosed ? 0 : 1;
}

// chaos-consume: a consumer that survives SIGKILL and restarts. Its log holds one line per
// batch, "E first last", written (and flushed) before the batch is released, and "G missed"
// when it rejoined after an eviction. On restart it skips what its log already has (events
// handled but not released before the kill come again: at-least-once delivery, exactly-once
// processing). "G told joined" records a rejoin after an eviction.
struct ChaosLogger {
  std::FILE* log;
  std::int64_t last_logged;
  std::int64_t first_in_batch = -1;
  std::int64_t bad = 0;
  std::int64_t slow_ms = 0;
  void on_event(peer::PeerEvent& e, std::int64_t s, bool end_of_batch) {
    if (end_of_batch && slow_ms > 0) absl::SleepFor(absl::Milliseconds(slow_ms));
    if (s > last_logged) {
      bad += !peer::Verify(e, s);
      if (first_in_batch < 0) first_in_batch = s;
    }
    if (end_of_batch && first_in_batch >= 0) {
      std::fprintf(log, "E %lld %lld\n", static_cast<long long>(first_in_batch),
                   static_cast<long long>(s));
      std::fflush(log);
      last_logged = s;
      first_in_batch = -1;
    }
  }
};

int ChaosConsume() {
  const std::string path = absl::GetFlag(FLAGS_log);
  std::int64_t last_logged = -1;
  std::uint64_t missed_before = 0;
  if (std::FILE* in = std::fopen(path.c_str(), "r")) {
    char kind;
    long long a = 0, b = 0;
    while (std::fscanf(in, " %c %lld", &kind, &a) == 2) {
      if (kind == 'E' && std::fscanf(in, " %lld", &b) == 1) last_logged = b;
      if (kind == 'M') missed_before = static_cast<std::uint64_t>(a);
    }
    std::fclose(in);
  }
  auto ring = Ring<peer::PeerEvent>::Attach(absl::GetFlag(FLAGS_ring),
                                            {.expected_schema = peer::kPeerSchema});
  if (!ring.ok()) return Fail(ring.status());
  const bool evict = absl::GetFlag(FLAGS_policy) == "evict";
  ConsumerOptions options{.wait = {.kind = WaitKind::kBlocking},
                          .stall_policy = evict ? StallPolicy::kEvict : StallPolicy::kHold,
                          .rejoin_at_cursor = evict,
                          .max_lag = absl::GetFlag(FLAGS_max_lag),
                          .max_lag_ns = static_cast<std::int64_t>(
                              absl::GetFlag(FLAGS_max_lag_s) * 1e9)};
  for (absl::string_view up : absl::StrSplit(absl::GetFlag(FLAGS_after), ',', absl::SkipEmpty())) {
    options.after.emplace_back(up);
  }
  auto consumer = Consumer::Register(ring->segment(), absl::GetFlag(FLAGS_name), options);
  if (!consumer.ok()) return Fail(consumer.status());
  std::FILE* log = std::fopen(path.c_str(), "a");
  if (log == nullptr) return 2;
  if (consumer->missed() > missed_before) {  // rejoined at the cursor after an eviction
    // "G told joined": the count the library told (since its last release) and where it
    // starts again; events it handled but had not released before the kill are in both.
    std::fprintf(log, "G %llu %lld\nM %llu\n",
                 static_cast<unsigned long long>(consumer->missed() - missed_before),
                 static_cast<long long>(consumer->sequence()),
                 static_cast<unsigned long long>(consumer->missed()));
    std::fflush(log);
    last_logged = std::max(last_logged, consumer->sequence());
  }
  std::printf("ready\n");
  std::fflush(stdout);
  ChaosLogger logger{log, last_logged};
  logger.slow_ms = absl::GetFlag(FLAGS_slow_ms);
  for (;;) {
    BatchEventProcessor<peer::PeerEvent, ChaosLogger> processor(*ring, *consumer, logger);
    const WaitStatus why = processor.Run();
    if (why == WaitStatus::kEvicted) {  // evicted while alive: rejoin like a restart would
      std::fprintf(stderr, "peer: %s evicted while alive\n", consumer->name().data());
      return 3;
    }
    if (why == WaitStatus::kUpstreamGone) return 4;
    if (why == WaitStatus::kProducerStalled) return 5;
    if (why == WaitStatus::kProducerGone) {
      absl::SleepFor(absl::Milliseconds(20));  // the driver restarts the producer
      continue;
    }
    return logger.bad == 0 && why == WaitStatus::kClosed ? 0 : 1;
  }
}

// work: a member of a worker group. Every event it handles is checked and its sequence
// appended (binary int64) to --log, flushed at the end of each batch before the batch is
// released; a run taken over from a dead member is handled again in full (the test counts
// the duplicates against the kills).
struct Worker {
  std::FILE* log;
  std::int64_t busy_ns = 0;
  std::int64_t bad = 0;
  std::int64_t handled = 0;
  std::vector<std::int64_t> pending;
  void on_event(peer::PeerEvent& e, std::int64_t s, bool end_of_batch) {
    bad += !peer::Verify(e, s);
    e.mark = peer::Mark(s);  // for a stage after the group (consume --expect_mark)
    if (busy_ns > 0) {
      for (const std::int64_t until = MonotonicNanos() + busy_ns; MonotonicNanos() < until;) {
      }
    }
    pending.push_back(s);
    ++handled;
    if (end_of_batch) {
      std::fwrite(pending.data(), sizeof(std::int64_t), pending.size(), log);
      std::fflush(log);
      pending.clear();
    }
  }
};

int Work() {
  auto ring = Ring<peer::PeerEvent>::Attach(absl::GetFlag(FLAGS_ring),
                                            {.expected_schema = peer::kPeerSchema});
  if (!ring.ok()) return Fail(ring.status());
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(kind.status());
  ConsumerOptions options{.wait = {.kind = *kind},
                          .stall_policy = absl::GetFlag(FLAGS_policy) == "evict"
                                              ? StallPolicy::kEvict : StallPolicy::kHold,
                          .group = absl::GetFlag(FLAGS_group),
                          .claim = absl::GetFlag(FLAGS_claim)};
  for (absl::string_view up : absl::StrSplit(absl::GetFlag(FLAGS_after), ',', absl::SkipEmpty())) {
    options.after.emplace_back(up);
  }
  auto consumer = Consumer::Register(ring->segment(), absl::GetFlag(FLAGS_name), options);
  if (!consumer.ok()) return Fail(consumer.status());
  std::FILE* log = std::fopen(absl::GetFlag(FLAGS_log).c_str(), "ab");
  if (log == nullptr) return 2;
  std::printf("ready\n");
  std::fflush(stdout);
  Worker worker{.log = log, .busy_ns = absl::GetFlag(FLAGS_busy_us) * 1000, .bad = 0,
                .handled = 0, .pending = {}};
  BatchEventProcessor<peer::PeerEvent, Worker> processor(*ring, *consumer, worker);
  const WaitStatus why = processor.Run();
  std::printf("worked %lld events, %lld bad, %llu taken over, end %s\n",
              static_cast<long long>(worker.handled), static_cast<long long>(worker.bad),
              static_cast<unsigned long long>(consumer->takeovers()),
              std::string(WaitStatusName(why)).c_str());
  std::fclose(log);
  return worker.bad == 0 && why == WaitStatus::kClosed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string mode = args.size() > 1 ? args[1] : "";
  if (mode == "produce") return Produce();
  if (mode == "consume") return Consume();
  if (mode == "work") return Work();
  if (mode == "chaos-consume") return ChaosConsume();
  std::fprintf(stderr, "usage: xdisruptor_test_peer produce|consume --ring=R ...\n");
  return 2;
}
