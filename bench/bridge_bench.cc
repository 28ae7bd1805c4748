// bridge_bench — events/s and latency ring -> JetStream -> ring through the bridge, against what
// a user would write by hand with the same client (libnats): one JetStream publish per event.
//
// One run per invocation (bench/bridge.py starts nats-server, alternates the configurations
// and takes medians). Everything but the server runs here as threads: the producer of the
// source ring (main thread), the out side, the in side, and a consumer of the far ring that
// checks every event exactly once and in order, so a run that loses or repeats data fails
// instead of printing a number. Events are 64 bytes: sequence, publish time, 48 bytes filler.
//
//   --mode=bridge --batch=N   bridge::RunOut (max_batch N) and bridge::RunIn
//   --mode=hand               a consumer of the source ring that publishes each event with
//                             js_PublishAsync (released once sent, not once acknowledged: the
//                             hand version promises less), a pull consumer that publishes each
//                             message into the far ring and acknowledges it
//   --rate=R                  events/s paced in 1 ms steps (0: as fast as the rings allow);
//                             latency = far consumer's read time - the event's publish time
//
// Prints one JSON line: mode, batch, events, seconds, events_per_s, p50_us, p99_us, ok.
#include <nats/nats.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/bridge.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(std::string, nats, "nats://127.0.0.1:4222", "the server");
ABSL_FLAG(std::string, mode, "bridge", "bridge or hand");
ABSL_FLAG(int64_t, batch, 1024, "bridge: events per message at most (--max_batch)");
ABSL_FLAG(int64_t, max_delay_us, 1000, "bridge: how long a message may wait to fill up");
ABSL_FLAG(int64_t, events, 1'000'000, "events to carry");
ABSL_FLAG(int64_t, rate, 0, "events/s (0: unpaced); paced runs report latency");
ABSL_FLAG(int64_t, capacity, 65536, "slots of both rings");

namespace {

using namespace xdisruptor;

struct Event {
  std::int64_t sequence;
  std::int64_t published_ns;
  char filler[48];
};
static_assert(sizeof(Event) == 64);
constexpr char kSchema[] = "<i8:sequence,<i8:published_ns,S48:filler";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bridge_bench: %s\n", what.c_str());
  std::exit(1);
}
template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(absl::StrFormat("%s: %s", what, v.status().ToString()));
  return *std::move(v);
}
void Must(natsStatus s, const char* what) {
  if (s != NATS_OK) Die(absl::StrFormat("%s: %s (%s)", what, natsStatus_GetText(s),
                                         nats_GetLastError(nullptr)));
}

// The far ring's checker: every event once, in order; latencies in paced runs.
struct Checked {
  std::int64_t seen = 0;
  bool in_order = true;
  std::int64_t last_ns = 0;
  std::vector<std::int64_t> latency_ns;
};

void Check(RingSegment& far, Consumer& c, std::int64_t events, bool paced, Checked& out) {
  if (paced) out.latency_ns.reserve(static_cast<std::size_t>(events));
  for (;;) {
    const WaitResult r = c.barrier().WaitFor(c.sequence() + 1, 100'000'000);
    if (r.available > c.sequence()) {
      const std::int64_t now = MonotonicNanos();
      for (std::int64_t s = c.sequence() + 1; s <= r.available; ++s) {
        const auto* e = reinterpret_cast<const Event*>(far.slot(s));
        out.in_order = out.in_order && e->sequence == out.seen;
        if (paced) out.latency_ns.push_back(now - e->published_ns);
        ++out.seen;
      }
      c.Release(r.available, static_cast<std::uint64_t>(r.available - c.sequence()));
      out.last_ns = now;
    }
    if (r.status == WaitStatus::kClosed && r.available <= c.sequence()) return;
    if (r.status != WaitStatus::kOk && r.status != WaitStatus::kTimeout &&
        r.status != WaitStatus::kClosed && r.status != WaitStatus::kCheckpoint) {
      Die(absl::StrFormat("far consumer: %s", WaitStatusName(r.status)));
    }
  }
  (void)events;
}

// What a user writes by hand: one async JetStream publish per event.
void HandOut(RingSegment& src, jsCtx* js, const std::string& subject) {
  auto c = Must(Consumer::Register(src, "hand", {.wait = {.kind = WaitKind::kBlocking}}),
                "register hand");
  for (;;) {
    const WaitResult r = c.barrier().WaitFor(c.sequence() + 1, 100'000'000);
    for (std::int64_t s = c.sequence() + 1; s <= r.available; ++s) {
      Must(js_PublishAsync(js, subject.c_str(), src.slot(s), sizeof(Event), nullptr),
           "js_PublishAsync");
    }
    if (r.available > c.sequence()) {
      c.Release(r.available, static_cast<std::uint64_t>(r.available - c.sequence()));
    }
    if (r.status == WaitStatus::kClosed && r.available <= c.sequence()) break;
  }
  Must(js_PublishAsyncComplete(js, nullptr), "js_PublishAsyncComplete");
  Must(js_PublishAsync(js, subject.c_str(), nullptr, 0, nullptr), "end marker");
  Must(js_PublishAsyncComplete(js, nullptr), "js_PublishAsyncComplete");
}

void HandIn(RingSegment& far, jsCtx* js, const std::string& subject) {
  auto p = Must(SingleProducerSequencer::Attach(far, {.kind = WaitKind::kBlocking}), "far producer");
  natsSubscription* sub = nullptr;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Config.AckPolicy = js_AckExplicit;
  Must(js_PullSubscribe(&sub, js, subject.c_str(), "hand-in", nullptr, &so, nullptr),
       "js_PullSubscribe");
  for (bool done = false; !done;) {
    natsMsgList list{};
    const natsStatus s = natsSubscription_Fetch(&list, sub, 256, 200, nullptr);
    if (s == NATS_TIMEOUT) continue;
    Must(s, "fetch");
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      if (natsMsg_GetDataLength(m) == 0) {
        done = true;
      } else {
        const std::int64_t seq = p.Next();
        std::memcpy(far.slot(seq), natsMsg_GetData(m), sizeof(Event));
        p.Publish(seq);
      }
      natsMsg_Ack(m, nullptr);
    }
    natsMsgList_Destroy(&list);
  }
  p.Close();
  natsSubscription_Destroy(sub);
}

std::int64_t Percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const std::int64_t events = absl::GetFlag(FLAGS_events);
  const std::int64_t rate = absl::GetFlag(FLAGS_rate);
  const std::int64_t batch = absl::GetFlag(FLAGS_batch);
  if (mode != "bridge" && mode != "hand") Die("--mode is bridge or hand");
  const std::string tag = absl::StrFormat("%d", getpid());
  const std::string src_name = "xdbb-src-" + tag, far_name = "xdbb-far-" + tag;
  const std::string stream = "XDBB_" + tag, subject = "xdbb." + tag;
  const auto capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity));
  auto src = Must(RingSegment::Create({.name = src_name, .capacity = capacity,
                                       .slot_size = sizeof(Event), .schema = kSchema}), "src ring");
  auto far = Must(RingSegment::Create({.name = far_name, .capacity = capacity,
                                       .slot_size = sizeof(Event), .schema = kSchema}), "far ring");
  auto checker = Must(Consumer::Register(far, "check", {.wait = {.kind = WaitKind::kBlocking}}),
                      "register checker");

  // The stream (file storage, as the bridge makes it), created here for both modes.
  natsConnection* nc = nullptr;
  Must(natsConnection_ConnectTo(&nc, absl::GetFlag(FLAGS_nats).c_str()), "connect");
  jsCtx* js = nullptr;
  Must(natsConnection_JetStream(&js, nc, nullptr), "JetStream");
  {
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {subject.c_str()};
    config.Name = stream.c_str();
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    jsStreamInfo* si = nullptr;
    Must(js_AddStream(&si, js, &config, nullptr, nullptr), "js_AddStream");
    jsStreamInfo_Destroy(si);
  }

  std::atomic<bool> stop{false};
  bridge::Counters out_counters, in_counters;
  absl::Status out_status, in_status;
  std::vector<std::thread> threads;
  if (mode == "bridge") {
    bridge::NatsOptions n;
    n.urls = {absl::GetFlag(FLAGS_nats)};
    bridge::OutOptions o{.ring = src_name, .stream = stream, .subject = subject,
                         .max_batch = batch, .max_delay_us = absl::GetFlag(FLAGS_max_delay_us)};
    bridge::InOptions i{.stream = stream, .ring = far_name};
    threads.emplace_back([&, n, i] { in_status = bridge::RunIn(n, i, stop, in_counters); });
    threads.emplace_back([&, n, o] { out_status = bridge::RunOut(n, o, stop, out_counters); });
  } else {
    // Each side its own connection, as on two hosts.
    auto with_connection = [&](auto side) {
      return [&, side] {
        natsConnection* c = nullptr;
        Must(natsConnection_ConnectTo(&c, absl::GetFlag(FLAGS_nats).c_str()), "connect");
        jsCtx* j = nullptr;
        Must(natsConnection_JetStream(&j, c, nullptr), "JetStream");
        side(j);
        jsCtx_Destroy(j);
        natsConnection_Destroy(c);
      };
    };
    threads.emplace_back(with_connection([&](jsCtx* j) { HandIn(far, j, subject); }));
    threads.emplace_back(with_connection([&](jsCtx* j) { HandOut(src, j, subject); }));
  }
  const char* gate = mode == "bridge" ? "bridge" : "hand";
  const std::int64_t deadline = MonotonicNanos() + 20'000'000'000;
  while (!FindConsumer(src, gate).ok()) {
    if (MonotonicNanos() > deadline) Die("the out side did not register");
    absl::SleepFor(absl::Milliseconds(5));
  }

  Checked checked;
  std::thread check([&] { Check(far, checker, events, rate > 0, checked); });
  auto producer = Must(SingleProducerSequencer::Attach(src, {.kind = WaitKind::kBlocking}),
                       "producer");
  const std::int64_t t0 = MonotonicNanos();
  std::int64_t next = 0;
  while (next < events) {
    std::int64_t n = std::min<std::int64_t>(256, events - next);
    if (rate > 0) {  // 1 ms steps: what is due by now
      const std::int64_t due = (MonotonicNanos() - t0) * rate / 1'000'000'000 + 1;
      if (due <= next) {
        absl::SleepFor(absl::Microseconds(1000));
        continue;
      }
      n = std::min(n, due - next);
    }
    const std::int64_t hi = Must(producer.Next(n), "claim");
    const std::int64_t now = MonotonicNanos();
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) {
      auto* e = reinterpret_cast<Event*>(src.slot(s));
      e->sequence = s;
      e->published_ns = now;
    }
    producer.Publish(hi - n + 1, hi);
    next += n;
  }
  producer.Close();
  check.join();
  for (auto& t : threads) t.join();
  const bool ok = checked.seen == events && checked.in_order && out_status.ok() && in_status.ok();
  if (!out_status.ok()) std::fprintf(stderr, "out: %s\n", out_status.ToString().c_str());
  if (!in_status.ok()) std::fprintf(stderr, "in: %s\n", in_status.ToString().c_str());
  const double seconds = static_cast<double>(checked.last_ns - t0) * 1e-9;
  const std::int64_t p50 = Percentile(checked.latency_ns, 0.50);
  const std::int64_t p99 = Percentile(checked.latency_ns, 0.99);
  std::printf("{\"mode\": \"%s\", \"batch\": %lld, \"events\": %lld, \"rate\": %lld, "
              "\"seconds\": %.4f, \"events_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
              "\"seen\": %lld, \"ok\": %s}\n",
              mode.c_str(), static_cast<long long>(mode == "bridge" ? batch : 1),
              static_cast<long long>(events), static_cast<long long>(rate), seconds,
              static_cast<double>(checked.seen) / seconds, static_cast<double>(p50) / 1e3,
              static_cast<double>(p99) / 1e3, static_cast<long long>(checked.seen),
              ok ? "true" : "false");
  js_DeleteStream(js, stream.c_str(), nullptr, nullptr);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  (void)RingSegment::Remove(src_name);
  (void)RingSegment::Remove(far_name);
  return ok ? 0 : 1;
}
