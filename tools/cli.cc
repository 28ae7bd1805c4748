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
//   xdisruptor evict RING CONSUMER              drop a consumer from gating
//   xdisruptor rm RING [--force]                remove a ring's name (refuses a file that is
//                                               not a ring, or a ring still mapped, unless
//                                               --force)
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
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "journal_cli.h"
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

namespace {

using namespace xdisruptor;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "xdisruptor: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Usage() {
  std::fprintf(stderr, "%s\n", std::string(absl::ProgramUsageMessage()).c_str());
  return 2;
}

// Names in /dev/shm of regular files that start with a ring's magic (never opened blocking:
// a FIFO planted there cannot hang the tool).
std::vector<std::string> RingNames() {
  std::vector<std::string> names;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent* e = ::readdir(dir)) {
    if (RingSegment::IsRing(e->d_name)) names.push_back(e->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<RingSegment> AttachToRead(const std::string& name,
                                         absl::Duration timeout = absl::Seconds(2)) {
  return RingSegment::Attach(name, {.creation_timeout = timeout, .read_only = true});
}

std::string ProducerLine(const RingStats& st) {
  if (st.producers.empty()) return "producer none";
  std::string out = st.producers.size() == 1 ? "producer" : "producers";
  for (const ProducerStats& p : st.producers) {
    out += absl::StrFormat(" %d (%s, waits %s)", p.pid, p.alive ? "alive" : "DEAD",
                           std::string(WaitKindName(p.wait)));
  }
  return out;
}

void PrintStats(const RingStats& st, const RingStats* before, double seconds) {
  std::printf("ring %s: %" PRIu64 " slots x %u bytes, %s producer, cursor %" PRId64
              " (published %" PRId64 ")%s, %s\n",
              st.name.c_str(), st.capacity, st.slot_size,
              std::string(NameOf(st.sequencer)).c_str(), st.cursor, st.published,
              st.closed ? absl::StrFormat(" (closed at %d)", st.closed_at).c_str() : "",
              ProducerLine(st).c_str());
  std::printf("created by process %" PRId64 " at %s\n", st.creator_pid,
              absl::FormatTime(absl::FromUnixNanos(st.created_at_unix_ns)).c_str());
  if (!st.schema.empty()) std::printf("schema %s\n", st.schema.c_str());
  std::printf("%-20s %8s %-5s %-7s %12s %10s %12s %-16s %-5s %5s %6s %s\n", "consumer", "pid",
              "alive", "state", "sequence", "lag", "events/s", "wait", "stall", "evict", "errors",
              "after");
  for (const ConsumerStats& c : st.consumers) {
    double rate = c.events_per_second;
    if (before != nullptr && seconds > 0) {  // top: the rate over the last interval
      for (const ConsumerStats& b : before->consumers) {
        if (b.index == c.index && b.name == c.name && c.events >= b.events) {
          rate = static_cast<double>(c.events - b.events) / seconds;
        }
      }
    }
    std::string after;
    for (const std::string& a : c.after) after += (after.empty() ? "" : ",") + a;
    std::printf("%-20s %8" PRId64 " %-5s %-7s %12" PRId64 " %10" PRId64 " %12.0f %-16s %-5s %5" PRIu64
                " %6" PRIu64 " %s\n",
                c.name.c_str(), c.pid, c.alive ? "yes" : "NO",
                (std::string(NameOf(c.state)) +
                 (c.gating && c.state != ConsumerStatus::kActive ? "+GATES" : "") +
                 (c.observer ? "+OBS" : ""))
                    .c_str(),
                c.sequence, c.lag, rate,
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
  auto ring = AttachToRead(name);
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
  auto ring = AttachToRead(name);
  if (!ring.ok()) return Fail(ring.status());
  const auto interval = absl::Milliseconds(absl::GetFlag(FLAGS_interval_ms));
  RingStats before = Stats(*ring);
  for (std::int64_t i = 0;
       absl::GetFlag(FLAGS_iterations) == 0 || i < absl::GetFlag(FLAGS_iterations); ++i) {
    absl::SleepFor(interval);
    const RingStats now = Stats(*ring);
    std::printf("\033[H\033[2J");  // home, clear: refresh in place
    PrintStats(now, &before, absl::ToDoubleSeconds(interval));
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
      "evict RING CONSUMER | rm RING [--force] | journal record RING DIR | journal replay "
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
  if (command == "journal" && operands >= 2) {
    const std::string sub = arg(0);
    if (sub == "record" && operands == 3) return tool::JournalRecord(arg(1), arg(2));
    if (sub == "replay" && operands == 3) return tool::JournalReplay(arg(1), arg(2));
    if (sub == "stat" && operands == 2) return tool::JournalStat(arg(1), absl::GetFlag(FLAGS_json));
    if (sub == "verify" && operands == 2) return tool::JournalVerify(arg(1));
  }
  return Usage();
}
