#include "bridge_cli.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "xdisruptor/bridge.h"
#include "xdisruptor/pipeline.h"

// Shared with the journal commands (journal_cli.cc): --name, --create, --capacity.
ABSL_DECLARE_FLAG(std::string, name);
ABSL_DECLARE_FLAG(bool, create);
ABSL_DECLARE_FLAG(int64_t, capacity);
ABSL_FLAG(std::string, nats, "nats://127.0.0.1:4222",
          "bridge: NATS server URLs, comma-separated (members of one cluster)");
ABSL_FLAG(std::string, stream, "", "bridge: the JetStream stream");
ABSL_FLAG(std::string, subject, "", "bridge out: the stream's subject (default xdisruptor.RING)");
ABSL_FLAG(int64_t, max_batch, 1024, "bridge out: events per message at most");
ABSL_FLAG(int64_t, max_delay_us, 1000, "bridge out: how long a message may wait to fill up");
ABSL_FLAG(int, replicas, 1, "bridge out: replicas of a stream it creates");
ABSL_FLAG(std::string, user, "", "bridge: NATS user (with --password)");
ABSL_FLAG(std::string, password, "", "bridge: NATS password");
ABSL_FLAG(std::string, token, "", "bridge: NATS token");
ABSL_FLAG(std::string, creds, "", "bridge: NATS credentials file");
ABSL_FLAG(std::string, tls_ca, "", "bridge: CA file (turns TLS on)");
ABSL_FLAG(std::string, tls_cert, "", "bridge: client certificate (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "bridge: client key");
ABSL_FLAG(double, give_up_s, 60, "bridge: seconds with nothing acknowledged (out) or no fetch "
          "answered (in) before it gives up (a cluster electing a leader takes seconds)");

namespace xdisruptor::tool {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

bridge::NatsOptions Nats() {
  bridge::NatsOptions n;
  n.urls = absl::StrSplit(absl::GetFlag(FLAGS_nats), ',', absl::SkipEmpty());
  n.user = absl::GetFlag(FLAGS_user);
  n.password = absl::GetFlag(FLAGS_password);
  n.token = absl::GetFlag(FLAGS_token);
  n.creds_file = absl::GetFlag(FLAGS_creds);
  n.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  n.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  n.tls_key = absl::GetFlag(FLAGS_tls_key);
  n.give_up = absl::Seconds(absl::GetFlag(FLAGS_give_up_s));
  return n;
}

int Finish(const char* side, const absl::Status& s, const bridge::Counters& c) {
  std::fprintf(stderr, "%s%s: %llu events in %llu messages, %llu duplicates dropped, %llu bad "
               "messages\n", isatty(2) ? "\n" : "", side,
               static_cast<unsigned long long>(c.events.load()),
               static_cast<unsigned long long>(c.messages.load()),
               static_cast<unsigned long long>(c.duplicates.load()),
               static_cast<unsigned long long>(c.bad.load()));
  if (s.ok() || (g_stop.load() && s.code() == absl::StatusCode::kCancelled)) return 0;
  std::fprintf(stderr, "xdisruptor: %s\n", std::string(s.message()).c_str());
  return 1;
}

// Both sides need --stream and a positive --give_up_s; false (after saying so) otherwise.
bool CommonFlagsOk(const char* side) {
  if (absl::GetFlag(FLAGS_stream).empty()) {
    std::fprintf(stderr, "xdisruptor: bridge %s needs --stream NAME\n", side);
    return false;
  }
  if (!(absl::GetFlag(FLAGS_give_up_s) > 0)) {
    std::fprintf(stderr, "xdisruptor: --give_up_s must be > 0 seconds\n");
    return false;
  }
  return true;
}

void HandleSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int BridgeOut(const std::string& ring) {
  if (!CommonFlagsOk("out")) return 2;
  HandleSignals();
  bridge::OutOptions o;
  o.ring = ring;
  o.stream = absl::GetFlag(FLAGS_stream);
  o.subject = absl::GetFlag(FLAGS_subject);
  if (const char* stage = std::getenv("XDISRUPTOR_STAGE"); stage != nullptr && *stage != '\0') {
    // A stage of the pipeline launcher: its name, `after`, wait and stall policy.
    auto env = StageEnvironmentFromEnv();
    if (!env.ok()) {
      std::fprintf(stderr, "xdisruptor: %s\n", std::string(env.status().message()).c_str());
      return 2;
    }
    o.name = env->name;
    o.consumer = env->consumer;
  }
  if (!absl::GetFlag(FLAGS_name).empty()) o.name = absl::GetFlag(FLAGS_name);
  o.max_batch = absl::GetFlag(FLAGS_max_batch);
  o.max_delay_us = absl::GetFlag(FLAGS_max_delay_us);
  o.replicas = absl::GetFlag(FLAGS_replicas);
  o.status_line = isatty(2);
  if (o.max_batch < 1 || o.max_delay_us < 0 || o.replicas < 1) {
    std::fprintf(stderr, "xdisruptor: --max_batch and --replicas must be >= 1, --max_delay_us >= 0\n");
    return 2;
  }
  bridge::Counters counters;
  const absl::Status status = bridge::RunOut(Nats(), o, g_stop, counters);
  if (const char* stage = std::getenv("XDISRUPTOR_STAGE"); stage != nullptr && *stage != '\0') {
    // The stage's last line, as the launcher reads it from every stage (its summary's counts).
    std::printf("stage %s: %s, %llu events, 0 handler errors\n", o.name.c_str(),
                status.ok() ? "stream closed" : g_stop.load() ? "stopped" : "failed",
                static_cast<unsigned long long>(counters.events.load()));
    std::fflush(stdout);
  }
  return Finish("bridge out", status, counters);
}

int BridgeIn(const std::string& ring) {
  if (!CommonFlagsOk("in")) return 2;
  HandleSignals();
  bridge::InOptions o;
  o.ring = ring;
  o.stream = absl::GetFlag(FLAGS_stream);
  if (!absl::GetFlag(FLAGS_name).empty()) o.name = absl::GetFlag(FLAGS_name);
  o.create = absl::GetFlag(FLAGS_create);
  o.capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity));
  o.status_line = isatty(2);
  bridge::Counters counters;
  return Finish("bridge in", bridge::RunIn(Nats(), o, g_stop, counters), counters);
}

}  // namespace xdisruptor::tool
