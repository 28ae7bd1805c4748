#include <nats/nats.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/bridge.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/schema.h"
#include "xdisruptor/sequencer.h"
#include "xdisruptor/stats.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor::bridge {
namespace {

// --- libnats handles, owned -------------------------------------------------------------
struct ConnDeleter { void operator()(natsConnection* c) const { natsConnection_Destroy(c); } };
struct JsDeleter { void operator()(jsCtx* j) const { jsCtx_Destroy(j); } };
struct SubDeleter { void operator()(natsSubscription* s) const { natsSubscription_Destroy(s); } };
struct MsgDeleter { void operator()(natsMsg* m) const { natsMsg_Destroy(m); } };
using Conn = std::unique_ptr<natsConnection, ConnDeleter>;
using Js = std::unique_ptr<jsCtx, JsDeleter>;
using Sub = std::unique_ptr<natsSubscription, SubDeleter>;
using Msg = std::unique_ptr<natsMsg, MsgDeleter>;

absl::Status NatsError(natsStatus s, std::string_view what, jsErrCode code = jsErrCode{}) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = absl::StrFormat("%s: %s", what, natsStatus_GetText(s));
  if (last != nullptr && *last != '\0') text += absl::StrFormat(" (%s)", last);
  if (code != 0) text += absl::StrFormat(" [JetStream error %d]", static_cast<int>(code));
  switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
      return absl::PermissionDeniedError(text);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(text);
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(text);
    default:
      return absl::UnavailableError(text);
  }
}

absl::StatusOr<Conn> Connect(const NatsOptions& o, const char* name) {
  natsOptions* opts = nullptr;
  if (natsStatus s = natsOptions_Create(&opts); s != NATS_OK) return NatsError(s, "nats options");
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> owned(opts, natsOptions_Destroy);
  std::vector<const char*> urls;
  for (const std::string& u : o.urls) urls.push_back(u.c_str());
  natsStatus s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK && !o.user.empty()) s = natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str());
  if (s == NATS_OK && !o.token.empty()) s = natsOptions_SetToken(opts, o.token.c_str());
  if (s == NATS_OK && !o.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, o.creds_file.c_str(), nullptr);
  }
  if (s == NATS_OK && !o.tls_ca.empty()) {
    s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(opts, o.tls_ca.c_str());
    if (s == NATS_OK && !o.tls_cert.empty()) {
      s = natsOptions_LoadCertificatesChain(opts, o.tls_cert.c_str(), o.tls_key.c_str());
    }
  }
  if (s == NATS_OK) s = natsOptions_SetName(opts, name);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, o.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, o.reconnect_wait_ms);
  if (s == NATS_OK) s = natsOptions_SetReconnectJitter(opts, o.reconnect_wait_ms / 4, o.reconnect_wait_ms);
  if (s != NATS_OK) return NatsError(s, "nats options");
  natsConnection* nc = nullptr;
  if (s = natsConnection_Connect(&nc, opts); s != NATS_OK) {
    std::string servers;
    for (const std::string& u : o.urls) servers += (servers.empty() ? "" : ",") + u;
    absl::Status e = NatsError(s, "cannot connect to " + servers);
    if (!o.tls_ca.empty() && o.tls_cert.empty()) {  // a server verifying clients hangs up
      e = absl::Status(e.code(), std::string(e.message()) +
                                     "; a server that verifies clients needs --tls_cert and --tls_key");
    }
    return e;
  }
  return Conn(nc);
}

// Ensures the stream exists (creating it with file storage when missing); returns its subject.
absl::StatusOr<std::string> EnsureStream(jsCtx* js, const OutOptions& o, const std::string& subject) {
  jsStreamInfo* si = nullptr;
  jsErrCode code{};
  natsStatus s = js_GetStreamInfo(&si, js, o.stream.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND) {
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {subject.c_str()};
    config.Name = o.stream.c_str();
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Replicas = o.replicas;
    code = jsErrCode{};
    s = js_AddStream(&si, js, &config, nullptr, &code);
    if (s != NATS_OK) return NatsError(s, "cannot create stream " + o.stream, code);
  } else if (s != NATS_OK) {
    return NatsError(s, "cannot read stream " + o.stream, code);
  }
  std::string found = si->Config->SubjectsLen > 0 ? si->Config->Subjects[0] : "";
  jsStreamInfo_Destroy(si);
  return found;
}

// The subject of an existing stream (in: the stream must exist).
absl::StatusOr<std::string> StreamSubject(jsCtx* js, const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode code{};
  const natsStatus s = js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND) {
    return absl::NotFoundError(absl::StrFormat(
        "JetStream has no stream '%s' (a `bridge out` creates it)", stream));
  }
  if (s != NATS_OK) return NatsError(s, "cannot read stream " + stream, code);
  std::string subject = si->Config->SubjectsLen > 0 ? si->Config->Subjects[0] : "";
  jsStreamInfo_Destroy(si);
  if (subject.empty()) return absl::FailedPreconditionError("stream " + stream + " has no subject");
  return subject;
}

// Where `subject` in the stream ends for this life of the ring (its name and epoch): the
// sequence the next batch starts at, or kAtCursor when the stream holds none of it (a first
// start, or a ring made anew). A bridge stopped and started again goes on from there.
absl::StatusOr<std::int64_t> StreamResumesAt(jsCtx* js, const OutOptions& o,
                                             const std::string& subject, const RingSegment& ring) {
  natsMsg* raw = nullptr;
  jsErrCode code{};
  const natsStatus s = js_GetLastMsg(&raw, js, o.stream.c_str(), subject.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND) return kAtCursor;  // nothing stored on the subject
  if (s != NATS_OK) return NatsError(s, "cannot read the end of stream " + o.stream, code);
  Msg msg(raw);
  auto batch = DecodeBatch(
      [&](const char* key) -> const char* {
        const char* value = nullptr;
        return natsMsgHeader_Get(msg.get(), key, &value) == NATS_OK ? value : nullptr;
      },
      std::span<const char>(natsMsg_GetData(msg.get()),
                            static_cast<std::size_t>(natsMsg_GetDataLength(msg.get()))));
  if (!batch.ok()) {
    std::fprintf(stderr, "bridge out: the last message on %s is not a batch (%s): going on "
                 "from the ring's cursor\n", subject.c_str(),
                 std::string(batch.status().message()).c_str());
    return kAtCursor;
  }
  if (batch->ring != o.ring) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "subject %s of stream %s carries ring '%s', not '%s': one ring per subject (pass "
        "--subject)", subject, o.stream, batch->ring, o.ring));
  }
  if (batch->epoch != static_cast<std::int64_t>(ring.header().created_at_unix_ns)) {
    return kAtCursor;  // an earlier life's: this life starts at the cursor
  }
  return batch->count == 0 ? batch->close_at + 1 : batch->first + batch->count;
}

// Bytes an event of `ring` takes on the wire: its schema's size, else the whole slot.
std::uint32_t EventSize(const RingSegment& ring) {
  const auto schema = ParseSchema(ring.schema());
  return schema.ok() && schema->itemsize > 0 ? schema->itemsize : ring.slot_size();
}

// A far ring at its start about to go on from `first` (> 0): refused while a consumer waits
// before it (registered at the start, before the first batch), naming them.
absl::Status CheckNoneWaitsBefore(const RingSegment& ring, std::int64_t first,
                                  const InOptions& o) {
  std::string waiting;
  for (const ConsumerStats& c : Stats(ring).consumers) {
    if ((c.gating || c.observer) && c.sequence < first - 1) {
      waiting += (waiting.empty() ? "" : ", ") + c.name;
    }
  }
  if (waiting.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "stream %s goes on at sequence %d (bridge out joined the source ring while it ran, or "
      "the stream's first messages are gone), but ring %s has consumers waiting at its start: "
      "%s. They would take %d slots never written for events. Start them after bridge in's "
      "first batch (they then join where the stream goes on), or give them the stream from "
      "its start (bridge out on the source ring before its first event)",
      o.stream, first, o.ring, waiting, first));
}

// in: a batch of a later life of the source ring than the one the far ring carries.
absl::Status NewLifeError(const InOptions& o, const WireBatch& b, std::int64_t carried,
                          std::int64_t cursor) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "stream %s now carries a new life of ring '%s' (it was made again: epoch %d), but ring "
      "'%s' holds the one before (epoch %d, up to sequence %d): one far ring takes one life; "
      "remove it (or bridge into another ring) and start again with --create",
      o.stream, b.ring, b.epoch, o.ring, carried, cursor));
}

// The live line on a tty: events/s since the last line, acks pending, lag, duplicates, bad.
class StatusLine {
 public:
  StatusLine(const char* side, const Counters& c, bool enabled)
      : side_(side), c_(c), enabled_(enabled), at_(absl::Now()), events_(c.events.load()) {}

  // Redraws at most every 250 ms, or now when `force`.
  void Update(bool force = false) {
    const absl::Time now = absl::Now();
    if (!enabled_ || (!force && now - at_ < absl::Milliseconds(250))) return;
    const std::uint64_t events = c_.events.load();
    const double rate = static_cast<double>(events - events_) /
                        std::max(1e-9, absl::ToDoubleSeconds(now - at_));
    at_ = now;
    events_ = events;
    std::fprintf(stderr, "\r%s: %llu events, %.0f events/s, %llu messages, %llu pending acks, "
                 "lag %lld, %llu duplicates, %llu bad   ", side_,
                 static_cast<unsigned long long>(events), rate,
                 static_cast<unsigned long long>(c_.messages.load()),
                 static_cast<unsigned long long>(c_.pending.load()),
                 static_cast<long long>(c_.lag.load()),
                 static_cast<unsigned long long>(c_.duplicates.load()),
                 static_cast<unsigned long long>(c_.bad.load()));
  }

 private:
  const char* side_;
  const Counters& c_;
  bool enabled_;
  absl::Time at_;
  std::uint64_t events_;
};

// --- out ---------------------------------------------------------------------------------
struct InFlight {
  std::int64_t first;
  std::int64_t last;
  bool acked = false;
};

constexpr std::int64_t kAckTimeoutNs = 2'000'000'000;  // libnats 3.4 has no async ack timeout
constexpr absl::Duration kGapTimeout = absl::Seconds(60);  // in: how long a gap may wait

struct AckState {
  std::mutex mu;
  std::deque<InFlight> flights;  // in publish order
  std::string error;             // the first failed publish, if any
};

// in: NAKs the messages of a fetched list from `from` on when it goes out of scope (those
// already settled refuse a second settling; harmless).
struct GiveBack {
  natsMsgList* list;
  int from = 0;
  ~GiveBack() {
    for (int i = from; i < list->Count; ++i) natsMsg_Nak(list->Msgs[i], nullptr);
  }
};

std::int64_t HeaderInt(natsMsg* msg, const char* key, std::int64_t otherwise) {
  const char* text = nullptr;
  return natsMsgHeader_Get(msg, key, &text) == NATS_OK && text != nullptr ? std::atoll(text)
                                                                          : otherwise;
}

// Runs on libnats' thread. A late ack of a message sent before a reset still proves its
// events are stored: it acknowledges every batch in flight that it covers.
void OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure) {
  auto* state = static_cast<AckState*>(closure);
  const std::int64_t first = HeaderInt(msg, kHeaderFirst, -1);
  const std::int64_t last = first + HeaderInt(msg, kHeaderCount, 0) - 1;
  {
    std::lock_guard lock(state->mu);
    if (ack == nullptr) {
      if (state->error.empty()) {
        state->error = absl::StrFormat("publish of the batch from %d failed: %s%s", first,
                                       natsStatus_GetText(err->Err),
                                       err->ErrText != nullptr ? std::string(" ") + err->ErrText : "");
      }
    } else {  // flights are in publish order: the first one it covers, and those after it
      auto f = std::lower_bound(state->flights.begin(), state->flights.end(), first,
                                [](const InFlight& x, std::int64_t v) { return x.first < v; });
      for (; f != state->flights.end() && f->last <= last; ++f) f->acked = true;
    }
  }
  natsMsg_Destroy(msg);
}

absl::Status RunOutLoop(const NatsOptions& nats, const OutOptions& o,
                        const std::atomic<bool>& stop, Counters& counters, RingSegment& ring_ref,
                        std::optional<Consumer>& registered, bool& sending) {
  RingSegment* ring = &ring_ref;
  const std::string subject = o.subject.empty() ? "xdisruptor." + o.ring : o.subject;
  AckState acks;  // first: libnats' thread may run OnAck until the connection is destroyed
  auto conn = Connect(nats, ("xdisruptor bridge out " + o.ring).c_str());
  if (!conn.ok()) return conn.status();
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = o.max_pending;
  jo.PublishAsync.AckHandler = OnAck;
  jo.PublishAsync.AckHandlerClosure = &acks;
  jsCtx* js_raw = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js_raw, conn->get(), &jo); s != NATS_OK) {
    return NatsError(s, "JetStream context");
  }
  Js js(js_raw);
  auto stream_subject = EnsureStream(js.get(), o, subject);
  if (!stream_subject.ok()) return stream_subject.status();
  if (*stream_subject != subject) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "stream %s takes subject '%s', not '%s' (pass --subject %s)", o.stream,
        *stream_subject, subject, *stream_subject));
  }
  // Registered only now that JetStream answers. A consumer left registered by a bridge that
  // crashed or gave up resumes its place; otherwise the bridge goes on where the stream ends
  // (after a stop, the ring's history fills what it missed), or joins at the cursor.
  ConsumerOptions co = o.consumer;
  if (co.start_at == kAtCursor) {
    auto resume_at = StreamResumesAt(js.get(), o, subject, *ring);
    if (!resume_at.ok()) return resume_at.status();
    co.start_at = *resume_at;
  }
  const bool from_stream = co.start_at != o.consumer.start_at;
  auto consumer_or = Consumer::Register(*ring, o.name, co);
  if (!consumer_or.ok()) {
    // The join with history's refusal (an evicted entry's OutOfRange says so itself).
    if (from_stream && consumer_or.status().code() == absl::StatusCode::kOutOfRange &&
        consumer_or.status().message().find("no longer protected") != std::string_view::npos) {
      return absl::DataLossError(absl::StrFormat(
          "stream %s goes on at %d, but ring %s no longer holds it (the bridge was away while "
          "the producer went on): the stream cannot go on without a gap, which its in side "
          "would stop at. Bridge into a new stream; to have a bridge hold the ring while it is "
          "away, kill it rather than stop it (%s)",
          o.stream, co.start_at, o.ring, consumer_or.status().message()));
    }
    return consumer_or.status();
  }
  registered.emplace(*std::move(consumer_or));
  Consumer* consumer = &*registered;
  std::fprintf(stderr, "bridge out: ring %s -> stream %s (subject %s), consumer %s from %lld%s\n",
               o.ring.c_str(), o.stream.c_str(), subject.c_str(), o.name.c_str(),
               static_cast<long long>(consumer->sequence() + 1),
               consumer->resumed() ? " (resumed its place)"
               : from_stream       ? " (where the stream ends)"
                                   : "");
  const std::uint32_t event_size = EventSize(*ring);
  const std::string epoch = absl::StrFormat("%d", ring->header().created_at_unix_ns);
  const std::string schema_text(ring->schema());
  // A message (headers and events) must fit the server's max_payload (1 MiB by default): of
  // large events, fewer than --max_batch go in one.
  const std::int64_t max_payload = natsConnection_GetMaxPayload(conn->get());
  const std::int64_t headers = 1024 + static_cast<std::int64_t>(schema_text.size() + o.ring.size());
  const std::int64_t max_batch = std::min<std::int64_t>(
      o.max_batch, (max_payload - headers) / static_cast<std::int64_t>(event_size));
  if (max_batch < 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "an event of ring %s takes %d bytes; with its headers it does not fit one message of "
        "this NATS server (max_payload %d bytes): raise max_payload in the server's "
        "configuration", o.ring, event_size, max_payload));
  }
  std::vector<char> body;

  // Releases the acknowledged prefix of the batches in flight; a failed publish is an error.
  std::int64_t last_progress_ns = MonotonicNanos();
  auto settle = [&]() -> absl::Status {
    std::lock_guard lock(acks.mu);
    if (!acks.error.empty()) return absl::UnavailableError(acks.error);
    while (!acks.flights.empty() && acks.flights.front().acked) {
      const InFlight f = acks.flights.front();
      acks.flights.pop_front();
      if (f.last >= f.first) {
        consumer->Release(f.last, static_cast<std::uint64_t>(f.last - f.first + 1));
        counters.events += static_cast<std::uint64_t>(f.last - f.first + 1);
      }
      last_progress_ns = MonotonicNanos();
    }
    counters.pending = acks.flights.size();
    if (acks.flights.empty()) last_progress_ns = MonotonicNanos();
    if (MonotonicNanos() - last_progress_ns > kAckTimeoutNs) {
      return absl::DeadlineExceededError("no acknowledgement from JetStream for 2 s");
    }
    return absl::OkStatus();
  };
  // Sends one message asynchronously; the ack handler marks [first, last] acknowledged.
  auto send = [&](natsMsg* m, const std::string& id, std::int64_t first,
                  std::int64_t last) -> absl::Status {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    {
      std::lock_guard lock(acks.mu);
      acks.flights.push_back({first, last});
    }
    natsStatus s = js_PublishMsgAsync(js.get(), &m, &po);
    while (s == NATS_TIMEOUT && !stop.load()) {  // too many in flight: settle, then again
      if (absl::Status st = settle(); !st.ok()) {
        natsMsg_Destroy(m);
        return st;  // acks stopped coming: the caller resets
      }
      s = js_PublishMsgAsync(js.get(), &m, &po);
    }
    if (s == NATS_TIMEOUT) {  // stopped while held back: this one was never sent
      natsMsg_Destroy(m);
      std::lock_guard lock(acks.mu);
      acks.flights.pop_back();
      return absl::CancelledError("stopped");
    }
    if (s != NATS_OK) {
      natsMsg_Destroy(m);  // (null when the library took it)
      return NatsError(s, "publish");
    }
    ++counters.messages;
    return absl::OkStatus();
  };
  auto new_message = [&](const char* data, std::size_t size) -> absl::StatusOr<natsMsg*> {
    natsMsg* m = nullptr;
    if (natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, data, static_cast<int>(size));
        s != NATS_OK) {
      return NatsError(s, "message");
    }
    natsMsgHeader_Set(m, kHeaderRing, o.ring.c_str());
    natsMsgHeader_Set(m, kHeaderEpoch, epoch.c_str());
    return m;
  };
  auto publish_batch = [&](std::int64_t first, std::int64_t last) -> absl::Status {
    const std::int64_t count = last - first + 1;
    body.resize(static_cast<std::size_t>(count) * event_size);
    for (std::int64_t s = first; s <= last; ++s) {  // slot by slot: a batch may wrap the ring
      std::memcpy(body.data() + static_cast<std::size_t>(s - first) * event_size, ring->slot(s),
                  event_size);
    }
    auto m = new_message(body.data(), body.size());
    if (!m.ok()) return m.status();
    natsMsgHeader_Set(*m, kHeaderFirst, absl::StrFormat("%d", first).c_str());
    natsMsgHeader_Set(*m, kHeaderCount, absl::StrFormat("%d", count).c_str());
    natsMsgHeader_Set(*m, kHeaderSize, absl::StrFormat("%d", event_size).c_str());
    natsMsgHeader_Set(*m, kHeaderSchema, schema_text.c_str());
    return send(*m, MessageId(ring->header().created_at_unix_ns, first, count), first, last);
  };
  // The end of the stream after `last`: a message with no events (it releases nothing).
  auto publish_close = [&](std::int64_t last) -> absl::Status {
    auto m = new_message(nullptr, 0);
    if (!m.ok()) return m.status();
    natsMsgHeader_Set(*m, kHeaderClose, absl::StrFormat("%d", last).c_str());
    natsMsgHeader_Set(*m, kHeaderFirst, absl::StrFormat("%d", last + 1).c_str());
    return send(*m, absl::StrFormat("%s-close-%d", epoch, last), last + 1, last);
  };

  std::int64_t published_to = consumer->sequence();  // sent, maybe not acknowledged yet
  // After a failed publish or acks that stopped coming (the server crashed, a reconnect lost
  // them): forget what is in flight and send again from the last released event. JetStream
  // drops what it stored already (same message id) within its duplicate window; the in side
  // drops the rest by sequence.
  // Resets follow one another every 200 ms while the stream has no leader; only
  // nats.give_up of them in a row with nothing released ends the bridge.
  absl::Time failing_since = absl::InfinitePast();
  absl::Time said_at = absl::InfinitePast();
  std::int64_t released_at_reset = consumer->sequence();
  auto reset = [&](const absl::Status& why) -> absl::Status {
    natsMsgList pending{};
    if (js_PublishAsyncGetPendingList(&pending, js.get()) == NATS_OK) natsMsgList_Destroy(&pending);
    {
      std::lock_guard lock(acks.mu);
      acks.flights.clear();
      acks.error.clear();
    }
    const absl::Time now = absl::Now();
    if (consumer->sequence() > released_at_reset || failing_since == absl::InfinitePast()) {
      failing_since = now;
    }
    released_at_reset = consumer->sequence();
    if (now - failing_since > nats.give_up) {
      return absl::UnavailableError(absl::StrFormat(
          "nothing acknowledged for %s: %s", absl::FormatDuration(nats.give_up),
          why.message()));
    }
    if (failing_since == now || now - said_at >= absl::Seconds(5)) {  // not every 200 ms
      said_at = now;
      std::fprintf(stderr, "%sbridge out: sending again from %lld (failing for %s): %s\n",
                   o.status_line ? "\n" : "", static_cast<long long>(consumer->sequence() + 1),
                   absl::FormatDuration(absl::Trunc(now - failing_since, absl::Milliseconds(100)))
                       .c_str(),
                   std::string(why.message()).c_str());
    }
    published_to = consumer->sequence();
    last_progress_ns = MonotonicNanos();
    absl::SleepFor(absl::Milliseconds(200));
    return absl::OkStatus();
  };
  const std::int64_t delay_ns = o.max_delay_us * 1000;
  StatusLine status("bridge out", counters, o.status_line);
  sending = true;
  while (!stop.load()) {
    if (absl::Status s = settle(); !s.ok()) {
      if (absl::Status r = reset(s); !r.ok()) return r;
      continue;
    }
    status.Update();
    WaitResult r = consumer->barrier().WaitFor(published_to + 1, 1'000'000);  // 1 ms slices
    counters.lag = std::max<std::int64_t>(0, r.available - consumer->sequence());
    if (r.status == WaitStatus::kClosed && r.available <= published_to) {
      // The end: everything sent; once acknowledged, the close marker.
      jsPubOptions wait;
      jsPubOptions_Init(&wait);
      wait.MaxWait = 5000;
      absl::Status done = js_PublishAsyncComplete(js.get(), &wait) == NATS_OK
                              ? settle() : absl::DeadlineExceededError("acks of the last batches");
      if (done.ok() && consumer->sequence() == published_to) {
        done = publish_close(published_to);
        if (done.ok() && js_PublishAsyncComplete(js.get(), &wait) != NATS_OK) {
          done = absl::DeadlineExceededError("the close marker's ack");
        }
        if (done.ok()) {
          std::lock_guard lock(acks.mu);
          if (!acks.error.empty()) done = absl::UnavailableError(acks.error);
        }
        if (done.ok()) {
          status.Update(true);
          return absl::OkStatus();
        }
      }
      if (!done.ok()) {
        if (absl::Status rr = reset(done); !rr.ok()) return rr;
      }
      continue;
    }
    if (r.status != WaitStatus::kOk && r.status != WaitStatus::kCheckpoint &&
        r.status != WaitStatus::kTimeout && r.status != WaitStatus::kClosed) {
      return absl::AbortedError(absl::StrFormat("the ring's consumer stopped: %s",
                                                WaitStatusName(r.status)));
    }
    if (r.available <= published_to) continue;
    // A batch: wait up to max_delay for it to fill, unless it is full already.
    if (r.available - published_to < max_batch && delay_ns > 0) {
      const WaitResult more = consumer->barrier().WaitFor(published_to + max_batch, delay_ns);
      r.available = std::max(r.available, more.available);
    }
    while (published_to < r.available && !stop.load()) {
      // Released as they are acknowledged, not when the whole run is sent: the ring's producer
      // moves on meanwhile and the acks' bookkeeping stays short.
      if (absl::Status s = settle(); !s.ok()) {
        if (absl::Status rr = reset(s); !rr.ok()) return rr;
        break;
      }
      const std::int64_t first = published_to + 1;
      const std::int64_t last = std::min(r.available, first + max_batch - 1);
      if (absl::Status s = publish_batch(first, last); !s.ok()) {
        if (absl::IsCancelled(s)) break;  // stopped: what is in flight is settled below
        if (absl::Status rr = reset(s); !rr.ok()) return rr;
        break;
      }
      published_to = last;
    }
  }
  // Stopped: wait up to 5 s for the acks of what is in flight. All acknowledged, the stream
  // holds everything released, in order, and the entry is freed (a stopped bridge does not
  // hold the producer); the next start goes on where the stream ends, from the ring's history
  // while the ring still holds it. Otherwise the stream may lack a batch before one it
  // stored: the entry stays, as for a crash, and the next start resumes from what was
  // acknowledged.
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = 5000;
  const bool drained = js_PublishAsyncComplete(js.get(), &wait) == NATS_OK && settle().ok() &&
                       consumer->sequence() == published_to;
  if (!drained) {
    std::fprintf(stderr, "%sbridge out: stopped with events %lld..%lld not acknowledged: "
                 "consumer %s stays registered, holding the ring for the next start of the "
                 "bridge (or `xdisruptor evict`)\n", o.status_line ? "\n" : "",
                 static_cast<long long>(consumer->sequence() + 1),
                 static_cast<long long>(published_to), o.name.c_str());
    consumer->Abandon();
  }
  return absl::CancelledError("stopped");
}

}  // namespace

absl::Status RunOut(const NatsOptions& nats, const OutOptions& o, const std::atomic<bool>& stop,
                    Counters& counters) {
  if (!o.consumer.journal.empty()) {
    return absl::InvalidArgumentError(
        "bridge out reads the live ring; it does not catch up from a journal (to send a "
        "recorded stream, replay the journal into a ring and bridge that ring)");
  }
  auto ring = RingSegment::Attach(o.ring);
  if (!ring.ok()) return ring.status();
  std::optional<Consumer> consumer;
  bool sending = false;
  absl::Status result = RunOutLoop(nats, o, stop, counters, *ring, consumer, sending);
  if (!consumer.has_value()) return result;
  // Given up on an error once it was sending, or as a restart of a bridge that was (JetStream
  // unreachable for long, a refused publish, ...): the entry stays, so the ring keeps what was
  // not stored and the next start of the bridge resumes from it. A clean end (everything
  // stored, or stopped with every ack in) frees it; a start that never reached JetStream
  // registered nothing (or left a crashed bridge's entry as it was).
  if (!result.ok() && !absl::IsCancelled(result) && (sending || consumer->resumed())) {
    std::fprintf(stderr, "bridge out: consumer %s stays registered at %lld, holding the ring "
                 "for the next start of the bridge (or `xdisruptor evict`)\n", o.name.c_str(),
                 static_cast<long long>(consumer->sequence()));
    consumer->Abandon();
  }
  return result;
}

// --- in ----------------------------------------------------------------------------------
absl::Status RunIn(const NatsOptions& nats, const InOptions& o, const std::atomic<bool>& stop,
                   Counters& counters) {
  auto conn = Connect(nats, ("xdisruptor bridge in " + o.ring).c_str());
  if (!conn.ok()) return conn.status();
  jsCtx* js_raw = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js_raw, conn->get(), nullptr); s != NATS_OK) {
    return NatsError(s, "JetStream context");
  }
  Js js(js_raw);
  auto subject = StreamSubject(js.get(), o.stream);
  if (!subject.ok()) return subject.status();

  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = o.stream.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* sub_raw = nullptr;
  jsErrCode code{};
  if (natsStatus s = js_PullSubscribe(&sub_raw, js.get(), subject->c_str(), o.name.c_str(),
                                      nullptr, &so, &code);
      s != NATS_OK) {
    return NatsError(s, "cannot subscribe to stream " + o.stream, code);
  }
  Sub sub(sub_raw);
  std::fprintf(stderr, "bridge in: stream %s (subject %s), durable %s -> ring %s\n",
               o.stream.c_str(), subject->c_str(), o.name.c_str(), o.ring.c_str());

  std::optional<RingSegment> ring;
  std::optional<SingleProducerSequencer> producer;
  std::int64_t epoch = 0;  // pinned by the first batch taken
  absl::Time gap_since = absl::InfinitePast();  // since when batches arrive ahead of the ring
  std::uint32_t event_size = 0;
  StatusLine status("bridge in", counters, o.status_line);
  absl::Time fetch_failing_since = absl::InfinitePast();  // fetches failing in a row since
  absl::Time last_fetch_error = absl::InfinitePast();
  // A batch whose events are not the size its own schema says lies about itself: it is
  // counted and terminated, never applied (the caller's check).
  auto self_consistent = [](const WireBatch& b) {
    if (b.schema.empty()) return true;
    const auto schema = ParseSchema(b.schema);
    return schema.ok() && schema->itemsize == b.event_size;
  };
  // The far ring this process publishes into, carrying the source's life `life`.
  auto take_ring = [&](RingSegment far, std::int64_t life) -> absl::Status {
    ring.emplace(std::move(far));
    auto p = SingleProducerSequencer::Attach(*ring, {.kind = WaitKind::kBlocking});
    if (!p.ok()) return p.status();
    producer.emplace(*std::move(p));
    epoch = life;
    event_size = EventSize(*ring);
    return absl::OkStatus();
  };
  // Opens (or creates) the far ring for the first batch. Anything wrong here is a setting
  // (the ring's name, capacity, schema or slots, another life of the source): the bridge stops
  // saying so and acknowledges nothing, so the stream keeps every message for the next start.
  auto open_ring = [&](const WireBatch& b) -> absl::Status {
    auto attached = RingSegment::Attach(o.ring);
    if (!attached.ok() && attached.status().code() == absl::StatusCode::kNotFound && o.create) {
      attached = RingSegment::Create({.name = o.ring, .capacity = o.capacity,
                                      .slot_size = (b.event_size + 7) / 8 * 8,
                                      .schema = b.schema});
    }
    if (!attached.ok()) return attached.status();
    if (!SameSchema(attached->schema(), b.schema)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "ring '%s' carries schema \"%s\" but stream %s carries \"%s\"", o.ring,
          attached->schema(), o.stream, b.schema));
    }
    const auto parsed = ParseSchema(attached->schema());
    if (b.event_size > attached->slot_size() ||
        (!attached->schema().empty() && parsed.ok() && parsed->itemsize != b.event_size)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "stream %s carries %d-byte events, which ring '%s' does not take (%d-byte slots, "
          "schema \"%s\")",
          o.stream, b.event_size, o.ring, attached->slot_size(), attached->schema()));
    }
    // Which life of the source ring the far ring carries: a ring it was never given one to
    // takes this batch's; one that carries an earlier life cannot take a later one (its
    // cursor counts the earlier life's sequences: the new ones would be taken for duplicates).
    const std::int64_t carried = LoadOriginEpoch(attached->producer());
    if (carried != 0 && b.epoch > carried) {
      return NewLifeError(o, b, carried, LoadCursor(attached->producer()));
    }
    if (carried == 0) StoreOriginEpoch(attached->producer(), b.epoch);
    if (absl::Status st = take_ring(*std::move(attached), carried != 0 ? carried : b.epoch);
        !st.ok()) {
      return st;
    }
    event_size = b.event_size;  // what the stream carries (it fits the slots, checked above)
    return absl::OkStatus();
  };

  while (!stop.load()) {
    status.Update();
    natsMsgList list{};
    code = jsErrCode{};
    const natsStatus s = natsSubscription_Fetch(&list, sub.get(), o.fetch, 200, &code);
    if (s == NATS_TIMEOUT) {
      // Nothing to fetch, connected, and no error for a whole give_up: a failure before is
      // over (an idle stream's timeouts would otherwise let a single error long after count
      // as failing all along; errors between timeouts, a flapping leader, still add up).
      if (natsConnection_Status(conn->get()) == NATS_CONN_STATUS_CONNECTED &&
          absl::Now() - last_fetch_error > nats.give_up) {
        fetch_failing_since = absl::InfinitePast();
      }
      continue;
    }
    if (s != NATS_OK) {
      // A server gone (libnats reconnects), or a cluster electing a new leader for the stream
      // or the durable consumer (no responders, JetStream errors meanwhile): fetch again,
      // for up to nats.give_up in a row.
      const absl::Time now = absl::Now();
      last_fetch_error = now;
      if (fetch_failing_since == absl::InfinitePast()) {
        fetch_failing_since = now;
        std::fprintf(stderr, "%sbridge in: fetch failed (%s), retrying\n",
                     o.status_line ? "\n" : "", natsStatus_GetText(s));
      } else if (now - fetch_failing_since > nats.give_up) {
        return NatsError(s, "fetch from stream " + o.stream, code);
      }
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    fetch_failing_since = absl::InfinitePast();
    std::unique_ptr<natsMsgList, void (*)(natsMsgList*)> owned(&list, natsMsgList_Destroy);
    // Leaving with messages of this fetch not yet settled (an error, a stop, the end): hand
    // them back at once, so the next start gets them now rather than after the ack wait.
    GiveBack give_back{&list};
    for (int i = 0; i < list.Count; ++i) {
      give_back.from = i;  // every path below settles message i before the next
      natsMsg* m = list.Msgs[i];
      auto header = [m](const char* key) -> const char* {
        const char* v = nullptr;
        return natsMsgHeader_Get(m, key, &v) == NATS_OK ? v : nullptr;
      };
      auto batch = DecodeBatch(header, {natsMsg_GetData(m),
                                        static_cast<std::size_t>(natsMsg_GetDataLength(m))});
      const bool whole = batch.ok() && (batch->count == 0 || self_consistent(*batch));
      if (whole && ring.has_value() && batch->epoch > epoch) {
        return NewLifeError(o, *batch, epoch, producer->cursor());
      }
      const bool bad = !whole || (ring.has_value() && (batch->epoch < epoch ||
                                                       (batch->count > 0 &&
                                                        batch->event_size != event_size)));
      if (bad) {  // garbage, truncated, lying, or an earlier life's: counted, never applied
        ++counters.bad;
        std::fprintf(stderr, "bridge in: dropped a message: %s\n",
                     !batch.ok() ? std::string(batch.status().message()).c_str()
                     : batch->epoch < epoch
                         ? "it comes from an earlier life of the ring (made again since)"
                         : absl::StrFormat("a batch of %d-byte events carries schema \"%s\" of "
                                           "another size (or none valid)",
                                           batch->event_size, batch->schema)
                               .c_str());
        natsMsg_Term(m, nullptr);
        continue;
      }
      if (!ring.has_value()) {
        if (batch->count == 0) {
          // A close marker first: the stream ends with no batch left for this durable. A far
          // ring carrying this life (restarted after its last batch) is closed below; with
          // none, there is nothing to close.
          auto attached = RingSegment::Attach(o.ring);
          const std::int64_t carried =
              attached.ok() ? LoadOriginEpoch(attached->producer()) : 0;
          if (!attached.ok() || carried != batch->epoch) {
            if (attached.ok() && carried != 0 && batch->epoch > carried) {
              return NewLifeError(o, *batch, carried, LoadCursor(attached->producer()));
            }
            natsMsg_Ack(m, nullptr);
            continue;
          }
          if (absl::Status st = take_ring(*std::move(attached), carried); !st.ok()) return st;
        } else if (absl::Status st = open_ring(*batch); !st.ok()) {
          return st;
        }
        if (batch->epoch < epoch) {  // the far ring carries a later life already
          ++counters.bad;
          std::fprintf(stderr, "bridge in: dropped a message: it comes from an earlier life "
                       "of the ring (made again since)\n");
          natsMsg_Term(m, nullptr);
          continue;
        }
      }
      // The far ring's cursor is the dedupe state: events at or below it are in already.
      const std::int64_t cursor = producer->cursor();
      // Ahead of the far ring: after a server crash a batch (or the close marker) can be
      // stored before the ones the out side sends again. Put it back for a moment; the
      // missing batches come first. A gap that lasts means events are gone.
      auto put_back = [&](std::int64_t next) -> absl::Status {
        if (gap_since == absl::InfinitePast()) gap_since = absl::Now();
        if (absl::Now() - gap_since > kGapTimeout) {
          return absl::DataLossError(absl::StrFormat(
              "stream %s skips from sequence %d to %d for %s: events are missing (retention?)",
              o.stream, cursor, next, absl::FormatDuration(kGapTimeout)));
        }
        natsMsg_NakWithDelay(m, 50, nullptr);
        return absl::OkStatus();
      };
      if (batch->count == 0) {
        if (batch->close_at > cursor) {  // batches put back for a gap come first
          if (absl::Status st = put_back(batch->close_at); !st.ok()) return st;
          continue;
        }
        // Closed, then acknowledged: killed between the two, the next start finds the marker
        // again (a producer attaching reopens the ring) and closes it again.
        producer->Close();
        natsMsg_Ack(m, nullptr);
        status.Update(true);
        return absl::OkStatus();
      }
      const std::int64_t last = batch->first + batch->count - 1;
      if (last <= cursor) {
        counters.duplicates += static_cast<std::uint64_t>(batch->count);
        natsMsg_Ack(m, nullptr);
        continue;
      }
      if (batch->first > cursor + 1 && cursor == kInitialSequence) {
        // A far ring joining a stream midway (bridge out joined a live ring, retention
        // dropped the first events, the far ring was made again under a kept durable): its
        // cursor goes to just before the stream's first event, so consumers registering from
        // here join there. Consumers already waiting at the ring's start would take the
        // slots before it (never written) for events, and hold the producer there for good.
        if (absl::Status st = CheckNoneWaitsBefore(*ring, batch->first, o); !st.ok()) return st;
        producer->ClaimSequence(batch->first - 1);
        producer->Publish(batch->first - 1);
      } else if (batch->first > cursor + 1) {
        if (absl::Status st = put_back(batch->first); !st.ok()) return st;
        continue;
      }
      gap_since = absl::InfinitePast();
      const std::int64_t from = std::max(batch->first, producer->cursor() + 1);
      counters.duplicates += static_cast<std::uint64_t>(from - batch->first);
      for (std::int64_t at = from; at <= last;) {
        const std::int64_t n = std::min<std::int64_t>(last - at + 1,
                                                      static_cast<std::int64_t>(ring->capacity()));
        absl::StatusOr<std::int64_t> claimed;
        while (!(claimed = producer->NextFor(n, 100'000'000)).ok()) {  // a full far ring:
          if (stop.load()) return absl::CancelledError("stopped");      // stoppable waits
        }
        const std::int64_t hi = *claimed;
        for (std::int64_t seq = hi - n + 1; seq <= hi; ++seq) {
          std::memcpy(ring->slot(seq),
                      batch->events.data() + static_cast<std::size_t>(seq - batch->first) * event_size,
                      event_size);
        }
        producer->Publish(hi - n + 1, hi);
        at = hi + 1;
      }
      counters.events += static_cast<std::uint64_t>(last - from + 1);
      ++counters.messages;
      natsMsg_Ack(m, nullptr);
    }
    give_back.from = list.Count;
  }
  return absl::CancelledError("stopped");
}

}  // namespace xdisruptor::bridge
