// xdisruptor/bridge.h — a ring carried across hosts through NATS JetStream (docs/scale-out.md).
//
//   bridge out: a named gating consumer of a ring that packs batches of events into JetStream
//               messages, publishes them asynchronously and releases a batch only once
//               JetStream acknowledged it (at-least-once into the stream);
//   bridge in:  a durable JetStream consumer and the producer of a far ring that publishes each
//               event at the sequence it had at the source, so the far ring's cursor is the
//               dedupe state: an event at or below it is a duplicate and is dropped (exactly
//               once into the far ring, across restarts of either side).
//
// One message per batch. Headers (BridgeWire): the ring's name, its epoch (the source ring's
// creation time: it changes when the ring is re-created), the first sequence, the count, the
// event size and the schema text; the body is count * event size bytes. `Nats-Msg-Id` is
// "<epoch>-<first>-<count>", so JetStream drops a batch re-sent after a crash within its
// duplicate window. The end of a stream travels as a message with `Xd-Close: <last sequence>`.
#ifndef XDISRUPTOR_BRIDGE_H_
#define XDISRUPTOR_BRIDGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/status/statusor.h"
#include "xdisruptor/consumer.h"

namespace xdisruptor::bridge {

// How to reach JetStream: cluster members, credentials and TLS, as libnats takes them.
struct NatsOptions {
  std::vector<std::string> urls{"nats://127.0.0.1:4222"};
  std::string user, password, token, creds_file;
  std::string tls_ca, tls_cert, tls_key;  // a CA file turns TLS on
  int max_reconnect = -1;                 // -1: forever
  std::int64_t reconnect_wait_ms = 250;
  // How long a side keeps trying while nothing moves (out: nothing acknowledged; in: no fetch
  // answered) before it ends with the error. A replicated stream electing a new leader
  // answers "no responders" for seconds meanwhile.
  absl::Duration give_up = absl::Seconds(60);
};

struct OutOptions {
  std::string ring;
  std::string stream;
  std::string subject;             // empty: "xdisruptor.<ring>"
  std::string name = "bridge";     // its consumer name in the ring
  // How it registers: after other stages, its wait, its stall policy (a pipeline stage's
  // settings; by default a blocking wait that holds the producer).
  ConsumerOptions consumer{.wait = {.kind = WaitKind::kBlocking}};
  std::int64_t max_batch = 1024;   // events per message at most
  std::int64_t max_delay_us = 1000;  // how long a message waits to fill up
  int replicas = 1;                // of a stream it creates
  std::int64_t max_pending = 256;  // messages published and not yet acknowledged
  bool status_line = false;        // a live line on stderr (a tty)
};

struct InOptions {
  std::string stream;
  std::string ring;
  std::string name = "bridge-in";  // the durable JetStream consumer
  bool create = false;             // make the ring with the schema the stream carries
  std::uint64_t capacity = 65536;  // of a ring it creates
  int fetch = 256;                 // messages per fetch
  bool status_line = false;
};

// What a bridge counted; printed at the end and on the status line.
struct Counters {
  std::atomic<std::uint64_t> events{0};      // events carried (out: acked; in: published)
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> duplicates{0};  // in: events dropped as already in the ring
  std::atomic<std::uint64_t> bad{0};         // in: garbage, truncated or foreign messages
  std::atomic<std::uint64_t> pending{0};     // out: messages not yet acknowledged
  std::atomic<std::int64_t> lag{0};          // out: ring events not yet acknowledged
};

// Runs until the ring's stream ends (out: the ring closed and everything was acknowledged; in:
// the close marker arrived and the far ring was closed) or `stop` becomes true.
absl::Status RunOut(const NatsOptions& nats, const OutOptions& options,
                    const std::atomic<bool>& stop, Counters& counters);
absl::Status RunIn(const NatsOptions& nats, const InOptions& options,
                   const std::atomic<bool>& stop, Counters& counters);

// --- the wire format (bridge_wire.cc), public for tests and other implementations ---------
struct WireBatch {
  std::string ring;
  std::int64_t epoch = 0;
  std::int64_t first = 0;
  std::int64_t count = 0;         // 0 for the close marker
  std::int64_t close_at = -1;     // the close marker: the last sequence of the stream
  std::uint32_t event_size = 0;
  std::string schema;
  std::span<const char> events;   // count * event_size bytes
};

inline constexpr char kHeaderRing[] = "Xd-Ring";
inline constexpr char kHeaderEpoch[] = "Xd-Epoch";
inline constexpr char kHeaderFirst[] = "Xd-First";
inline constexpr char kHeaderCount[] = "Xd-Count";
inline constexpr char kHeaderSize[] = "Xd-Event-Size";
inline constexpr char kHeaderSchema[] = "Xd-Schema";
inline constexpr char kHeaderClose[] = "Xd-Close";

std::string MessageId(std::int64_t epoch, std::int64_t first, std::int64_t count);

// Reads a message through `header` (the value of a header, or nullptr when absent) and its
// body; InvalidArgument naming what is wrong for anything that is not a whole batch.
absl::StatusOr<WireBatch> DecodeBatch(const std::function<const char*(const char*)>& header,
                                      std::span<const char> body);

}  // namespace xdisruptor::bridge

#endif  // XDISRUPTOR_BRIDGE_H_
