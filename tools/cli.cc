// xdisruptor — the operator's command-line tool for rings on this machine.
//
//   xdisruptor ls [--json]                      rings in /dev/shm, with geometry and activity
//   xdisruptor stat RING [--json]               producer and every consumer: position, lag,
//                                               rate, wait strategy, stall policy, evictions,
//                                               handler errors
//   xdisruptor top RING [--interval_ms=1000]    the same, live, refreshed in place
//   xdisruptor tune RING CONSUMER --wait=KIND [--wait_params=KEY=VALUE,...]
//                                               retune a running consumer (the keys of
//                                               kWaitParams: counts, times in seconds)
//   xdisruptor limit RING CONSUMER --max_lag=N [--max_lag_s=S]
//                                               set a consumer's slow-consumer limit
//   xdisruptor evict RING CONSUMER              drop a consumer from gating (writes a flight
//                                               record first)
//   xdisruptor metrics [RING ...] --listen HOST:PORT | --print
//                                               Prometheus/OpenMetrics endpoint (/metrics) for
//                                               the rings named, or every ring
//   xdisruptor rm RING [--force]                remove a ring's name (refuses a file that is
//                                               not a ring, or a ring still mapped, unless
//                                               --force)
//   xdisruptor bridge out RING --nats URL[,URL] --stream NAME [--subject S] [--name bridge]
//                  [--max_batch N] [--max_delay_us N] [--replicas N]
//   xdisruptor bridge in RING --nats URL[,URL] --stream NAME [--create [--capacity N]]
//                  [--name bridge-in]       (credentials: --user/--password, --token, --creds;
//                                            TLS: --tls_ca [--tls_cert --tls_key]; both
//                                            sides: --give_up_s S, default 60)
//   xdisruptor journal record RING DIR [--name journal] [--fsync none|batch|every:MS]
//                  [--segment-bytes N] [--retain-bytes N] [--retain-seconds N]
//   xdisruptor journal replay DIR RING [--from SEQ] [--to SEQ] [--rate EVENTS_PER_S]
//                  [--create [--capacity N]] [--noclose]
//   xdisruptor journal stat DIR [--json]        first/last sequence, segments, bytes, schema
//   xdisruptor journal verify DIR               every batch's checksum; names the first bad
//                                               sequence
// Options may be spelled with dashes or underscores (--segment-bytes, --segment_bytes).
// ls, stat and top attach read-only: a monitor needs only read access to a ring.
// Exit status: 0 on success, 1 when the ring or consumer is missing or refused, 2 on usage.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge_cli.h"
#include "journal_cli.h"
#include "metrics_cli.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(bool, json, false, "print JSON (ls, stat)");
ABSL_FLAG(std::string, wait, "", "tune: busy-spin, yielding, sleeping, blocking, "
                                 "timeout-blocking or phased-backoff");
ABSL_FLAG(std::string, wait_params, "",
          "tune: KEY=VALUE,... with KEY one of spin_tries, yield_tries (counts), sleep_ceiling, "
          "timeout, phase_spin, phase_yield (seconds), fallback (sleeping or blocking)");
ABSL_FLAG(int64_t, max_lag, 0, "limit: events a consumer may lag (below the capacity)");
ABSL_FLAG(double, max_lag_s, 0, "limit: seconds a producer waits on it before evicting it");
ABSL_FLAG(bool, force, false, "rm: remove a file that is not a ring, or a ring still mapped");
ABSL_FLAG(int64_t, interval_ms, 1000, "top: refresh interval");
ABSL_FLAG(int64_t, iterations, 0, "top: stop after this many refreshes (0: until Ctrl-C)");
ABSL_FLAG(std::string, listen, "", "metrics: HOST:PORT to serve /metrics on (port 0: any free)");
ABSL_FLAG(bool, print, false, "metrics: print the exposition once instead of serving it");

namespace {

using namespace xdisruptor;
using tool::AttachToRead;
using tool::RingNames;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "xdisruptor: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Usage() {
  std::fprintf(stderr, "%s\n", std::string(absl::ProgramUsageMessage()).c_str());
  return 2;
}

std::string ProducerLine(const RingStats& st) {
  if (st.producers.empty()) return "producer none";
  std::string out = st.producers.size() == 1 ? "producer" : "producers";
  for (const ProducerStats& p : st.producers) {
    out += absl::StrFormat(" %d (%s, waits %s)", p.pid, p.alive ? "alive" : "DEAD",
                           std::string(WaitKindName(p.wait)));
  }
  if (st.full_waits > 0) {
    out += absl::StrFormat("; waited on the full ring %d times, %.3f s", st.full_waits,
                           static_cast<double>(st.full_wait_ns) / 1e9);
  }
  return out;
}

// A latency for a column: "850ns", "12.3us", "1.05ms", "2.10s"; "-" without samples.
std::string Duration(double ns, std::uint64_t samples) {
  if (samples == 0) return "-";
  if (ns < 1e3) return absl::StrFormat("%.0fns", ns);
  if (ns < 1e6) return absl::StrFormat("%.3gus", ns / 1e3);
  if (ns < 1e9) return absl::StrFormat("%.3gms", ns / 1e6);
  return absl::StrFormat("%.3gs", ns / 1e9);
}

// Lag history per consumer (top), drawn as a sparkline scaled to its own maximum.
using LagHistory = std::map<std::string, std::deque<std::int64_t>>;
constexpr std::size_t kSparkWidth = 20;

std::string Sparkline(const std::deque<std::int64_t>& lags) {
  static constexpr const char* kBars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                          "\u2585", "\u2586", "\u2587", "\u2588"};
  const std::int64_t top = lags.empty() ? 0 : *std::max_element(lags.begin(), lags.end());
  std::string out(kSparkWidth - lags.size(), ' ');
  for (std::int64_t lag : lags) {
    out += top <= 0 ? kBars[0] : kBars[std::min<std::int64_t>(7, lag * 8 / (top + 1))];
  }
  return out;
}

// `before` and `seconds` (top): rates over the last interval instead of since registration;
// `history` (top): consumers sorted by lag, with a sparkline of their lag.
void PrintStats(const RingStats& st, const RingStats* before, double seconds,
                LagHistory* history = nullptr) {
  std::printf("ring %s: %" PRIu64 " slots x %u bytes, %s producer, cursor %" PRId64
              " (published %" PRId64 ")%s, %s\n",
              st.name.c_str(), st.capacity, st.slot_size,
              std::string(NameOf(st.sequencer)).c_str(), st.cursor, st.published,
              st.closed ? absl::StrFormat(" (closed at %d)", st.closed_at).c_str() : "",
              ProducerLine(st).c_str());
  std::printf("created by process %" PRId64 " at %s\n", st.creator_pid,
              absl::FormatTime(absl::FromUnixNanos(st.created_at_unix_ns)).c_str());
  if (!st.schema.empty()) std::printf("schema %s\n", st.schema.c_str());
  if (st.origin_epoch != 0) {
    std::printf("carries, through a bridge, the stream of a ring created at %s (epoch %" PRId64
                ")\n",
                absl::FormatTime(absl::FromUnixNanos(st.origin_epoch)).c_str(), st.origin_epoch);
  }
  if (st.flight.count > 0) {
    std::printf("flight records %u, latest %s at %s\n", st.flight.count, st.flight.path.c_str(),
                absl::FormatTime(absl::FromUnixNanos(st.flight.at_unix_ns)).c_str());
  }
  std::printf("latency: publish -> release of every %u-th sequence%s\n", st.latency_sample_every,
              st.latency_sample_every == 0 ? " (off)" : "");
  std::vector<ConsumerStats> rows = st.consumers;
  if (history != nullptr) {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const ConsumerStats& a, const ConsumerStats& b) { return a.lag > b.lag; });
  }
  std::printf("%-20s %8s %-5s %-7s %12s %10s %s%12s %8s %8s %8s %-16s %-5s %5s %6s %s\n",
              "consumer", "pid", "alive", "state", "sequence", "lag",
              history != nullptr ? absl::StrFormat("%-*s ", kSparkWidth, "lag history").c_str() : "",
              "events/s", "p50", "p99", "max", "wait", "stall", "evict", "errors", "after");
  for (const ConsumerStats& c : rows) {
    double rate = c.events_per_second;
    if (before != nullptr && seconds > 0) {  // top: the rate over the last interval
      for (const ConsumerStats& b : before->consumers) {
        if (b.index == c.index && b.name == c.name && c.events >= b.events) {
          rate = static_cast<double>(c.events - b.events) / seconds;
        }
      }
    }
    std::string spark;
    if (history != nullptr) {
      std::deque<std::int64_t>& lags = (*history)[c.name];
      lags.push_back(c.lag);
      if (lags.size() > kSparkWidth) lags.pop_front();
      spark = Sparkline(lags) + " ";
    }
    std::string after;
    for (const std::string& a : c.after) after += (after.empty() ? "" : ",") + a;
    if (c.role == "group") {  // a worker group: the stage, then its members' runs
      std::string members;
      for (const std::string& m : c.members) members += (members.empty() ? "" : ",") + m;
      after += absl::StrFormat("%sgroup of %d: %s", after.empty() ? "" : "  ", c.members.size(),
                               members);
    } else if (c.role == "member") {
      after += absl::StrFormat("%smember of %s, %s, %d taken over", after.empty() ? "" : "  ",
                               c.group,
                               c.sequence < c.claim_hi
                                   ? absl::StrFormat("run %d..%d", c.sequence + 1, c.claim_hi)
                                   : std::string("no run"),
                               c.takeovers);
    }
    const latency::Histogram& h = c.latency;
    std::printf("%-20s %8" PRId64 " %-5s %-7s %12" PRId64 " %10" PRId64 " %s%12.0f %8s %8s %8s "
                "%-16s %-5s %5" PRIu64 " %6" PRIu64 " %s\n",
                c.name.c_str(), c.pid, c.alive ? "yes" : "NO",
                (std::string(NameOf(c.state)) +
                 (c.gating && c.state != ConsumerStatus::kActive ? "+GATES" : "") +
                 (c.observer ? "+OBS" : ""))
                    .c_str(),
                c.sequence, c.lag, spark.c_str(), rate,
                Duration(h.QuantileNs(0.5), h.count).c_str(),
                Duration(h.QuantileNs(0.99), h.count).c_str(),
                Duration(static_cast<double>(h.max_ns), h.count).c_str(),
                std::string(WaitKindName(c.wait.kind)).c_str(),
                std::string(NameOf(c.stall_policy)).c_str(), c.evictions,
                c.handler_errors, after.c_str());
  }
}

int Ls() {
  const bool json = absl::GetFlag(FLAGS_json);
  if (json) std::printf("[");
  bool first = true;
  for (const std::string& name : RingNames()) {
    auto ring = AttachToRead(name, absl::Milliseconds(10));
    if (!ring.ok()) {  // a ring that cannot be read is listed with the reason, never dropped
      const std::string why(ring.status().message());
      if (json) {
        std::printf("%s{\"name\": %s, \"error\": %s}", first ? "" : ", ",
                    JsonString(name).c_str(), JsonString(why).c_str());
      } else {
        std::printf("%-30s (unreadable: %s)\n", name.c_str(), why.c_str());
      }
      first = false;
      continue;
    }
    const RingStats st = Stats(*ring);
    if (json) {
      std::printf("%s%s", first ? "" : ", ", StatsJson(st).c_str());
    } else {
      std::printf("%-30s %10" PRIu64 " x %-5u cursor %-12" PRId64 " %2zu consumers  producer %s%s\n",
                  name.c_str(), st.capacity, st.slot_size, st.cursor, st.consumers.size(),
                  st.producers.empty() ? "none" : st.producer_alive ? "alive" : "dead",
                  st.closed ? "  closed" : "");
    }
    first = false;
  }
  if (json) std::printf("]\n");
  return 0;
}

int Stat(const std::string& name) {
  auto ring = AttachToRead(name, absl::Seconds(2));
  if (!ring.ok()) return Fail(ring.status());
  const RingStats st = Stats(*ring);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", StatsJson(st).c_str());
  } else {
    PrintStats(st, nullptr, 0);
  }
  return 0;
}

int Top(const std::string& name) {
  auto ring = AttachToRead(name, absl::Seconds(2));
  if (!ring.ok()) return Fail(ring.status());
  const auto interval = absl::Milliseconds(absl::GetFlag(FLAGS_interval_ms));
  RingStats before = Stats(*ring);
  LagHistory history;
  for (std::int64_t i = 0;
       absl::GetFlag(FLAGS_iterations) == 0 || i < absl::GetFlag(FLAGS_iterations); ++i) {
    absl::SleepFor(interval);
    const RingStats now = Stats(*ring);
    std::printf("\033[H\033[2J");  // home, clear: refresh in place
    std::printf("xdisruptor top %s   every %s   %s   (Ctrl-C quits)\n", name.c_str(),
                absl::FormatDuration(interval).c_str(),
                absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()).c_str());
    PrintStats(now, &before, absl::ToDoubleSeconds(interval), &history);
    std::fflush(stdout);
    before = now;
  }
  return 0;
}

int Tune(const std::string& ring_name, const std::string& consumer) {
  WaitParams params;
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(kind.status());
  params.kind = *kind;
  if (absl::Status s = ParseWaitParams(absl::GetFlag(FLAGS_wait_params), &params); !s.ok()) {
    return Fail(s);
  }
  auto ring = RingSegment::Attach(ring_name);
  if (!ring.ok()) return Fail(ring.status());
  if (absl::Status s = RetuneConsumer(*ring, consumer, params); !s.ok()) return Fail(s);
  std::printf("%s/%s now waits by %s\n", ring_name.c_str(), consumer.c_str(),
              std::string(WaitKindName(*kind)).c_str());
  return 0;
}

int Evict(const std::string& ring_name, const std::string& consumer) {
  auto ring = RingSegment::Attach(ring_name);
  if (!ring.ok()) return Fail(ring.status());
  if (absl::Status s = EvictConsumer(*ring, consumer); !s.ok()) return Fail(s);
  std::printf("%s/%s evicted\n", ring_name.c_str(), consumer.c_str());
  return 0;
}

int Limit(const std::string& ring_name, const std::string& consumer) {
  const double seconds = absl::GetFlag(FLAGS_max_lag_s);
  if (!(seconds >= 0) || seconds > 1e9) {
    return Fail(absl::InvalidArgumentError("--max_lag_s must be seconds from 0 to 1e9"));
  }
  auto ring = RingSegment::Attach(ring_name);
  if (!ring.ok()) return Fail(ring.status());
  if (absl::Status s = LimitConsumer(*ring, consumer, absl::GetFlag(FLAGS_max_lag),
                                     static_cast<std::int64_t>(seconds * 1e9));
      !s.ok()) {
    return Fail(s);
  }
  std::printf("%s/%s: max_lag %" PRId64 " events, max_lag_s %g\n", ring_name.c_str(),
              consumer.c_str(), absl::GetFlag(FLAGS_max_lag), seconds);
  return 0;
}

int Rm(const std::string& name) {
  if (absl::Status s = RingSegment::Remove(name, {.force = absl::GetFlag(FLAGS_force)});
      !s.ok()) {
    return Fail(s);
  }
  std::printf("removed %s\n", name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "usage: xdisruptor ls | stat RING | top RING | tune RING CONSUMER --wait=KIND "
      "[--wait_params=K=V,...] | limit RING CONSUMER --max_lag=N [--max_lag_s=S] | "
      "evict RING CONSUMER | rm RING [--force] | metrics [RING...] --listen HOST:PORT | bridge out "
      "RING --stream S | bridge in RING --stream S | journal record RING DIR | journal replay "
      "DIR RING | journal stat DIR | journal verify DIR   [--json]");
  // --segment-bytes and --segment_bytes alike: dashes in an option's name become underscores.
  std::vector<std::string> spelled(argv, argv + argc);
  std::vector<char*> argv2;
  for (std::string& a : spelled) {
    if (a.rfind("--", 0) == 0) {
      const std::size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    }
    argv2.push_back(a.data());
  }
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv2.data());
  const std::string command = args.size() > 1 ? args[1] : "";
  const std::size_t operands = args.size() >= 2 ? args.size() - 2 : 0;
  auto arg = [&](std::size_t i) { return std::string(args[2 + i]); };
  if (command == "ls" && operands == 0) return Ls();
  if (command == "stat" && operands == 1) return Stat(arg(0));
  if (command == "top" && operands == 1) return Top(arg(0));
  if (command == "tune" && operands == 2) return Tune(arg(0), arg(1));
  if (command == "evict" && operands == 2) return Evict(arg(0), arg(1));
  if (command == "limit" && operands == 2) return Limit(arg(0), arg(1));
  if (command == "rm" && operands == 1) return Rm(arg(0));
  if (command == "metrics") {
    std::vector<std::string> rings;
    for (std::size_t i = 0; i < operands; ++i) rings.push_back(arg(i));
    return tool::Metrics(rings, absl::GetFlag(FLAGS_listen), absl::GetFlag(FLAGS_print));
  }
  if (command == "bridge" && operands == 2 && arg(0) == "out") return tool::BridgeOut(arg(1));
  if (command == "bridge" && operands == 2 && arg(0) == "in") return tool::BridgeIn(arg(1));
  if (command == "journal" && operands >= 2) {
    const std::string sub = arg(0);
    if (sub == "record" && operands == 3) return tool::JournalRecord(arg(1), arg(2));
    if (sub == "replay" && operands == 3) return tool::JournalReplay(arg(1), arg(2));
    if (sub == "stat" && operands == 2) return tool::JournalStat(arg(1), absl::GetFlag(FLAGS_json));
    if (sub == "verify" && operands == 2) return tool::JournalVerify(arg(1));
  }
  return Usage();
}
