// xdisruptor_example_producer — publishes synthetic ticks (or text messages) into a ring.
//
//   terminal 1: xdisruptor_example_producer --ring=ticks --events=1000000 --wait_for_consumers=1
//   terminal 2: xdisruptor_example_consumer --ring=ticks --name=printer
//
// Creates the ring (replacing a stale one with --recreate), optionally waits until N
// consumers have registered so none misses the first tick, publishes in batches, closes the
// ring (end of stream) and removes it once every consumer has read everything.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "tick.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(std::string, ring, "ticks", "ring name");
ABSL_FLAG(int64_t, capacity, 65536, "slots, a power of two");
ABSL_FLAG(int64_t, events, 1'000'000, "ticks to publish");
ABSL_FLAG(int64_t, batch, 64, "ticks claimed and published at once");
ABSL_FLAG(int64_t, rate, 0, "ticks per second (0: as fast as the consumers allow)");
ABSL_FLAG(int, wait_for_consumers, 0, "wait until this many consumers have registered");
ABSL_FLAG(std::string, wait, "yielding", "how to wait on a full ring: busy-spin, yielding, sleeping");
ABSL_FLAG(bool, recreate, true, "remove an existing ring of the same name first");
ABSL_FLAG(bool, remove_at_end, true, "remove the ring once every consumer has caught up");
ABSL_FLAG(std::string, event, "tick", "what to publish: tick (tick.h) or message (64-byte text)");

namespace {

constexpr const char* kSymbols[] = {"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META",
                                    "TSLA", "JPM",  "XOM",  "UNH",  "V",    "MA"};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "producer: %s\n", std::string(status.message()).c_str());
  return 1;
}

void FillTick(examples::Tick& t, std::int64_t s, std::int64_t now, double* price) {
  t.sequence = s;
  t.timestamp_ns = now;
  *price += static_cast<double>((s * 7919) % 21 - 10) * 0.01;
  t.price = *price;
  t.quantity = 100 + (s * 31) % 900;
  std::memset(t.symbol, 0, sizeof(t.symbol));
  std::strncpy(t.symbol, kSymbols[s % 12], sizeof(t.symbol) - 1);
  t.mid = 0;
  t.checksum = examples::TickChecksum(t);
}

void FillMessage(examples::Message& m, std::int64_t s, std::int64_t now, double*) {
  m.sequence = s;
  m.timestamp_ns = now;
  // "message <s>", zero-padded; digits by hand: snprintf would be most of the producer's time.
  char digits[20];
  int n = 0;
  for (std::uint64_t v = static_cast<std::uint64_t>(s); n == 0 || v != 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  std::memset(m.text, 0, sizeof(m.text));
  std::memcpy(m.text, "message ", 8);
  for (int i = 0; i < n; ++i) m.text[8 + i] = digits[n - 1 - i];
}

template <typename Event, typename Fill>
int Run(const char* schema, Fill fill) {
  using namespace xdisruptor;
  const std::string name = absl::GetFlag(FLAGS_ring);
  const std::int64_t events = absl::GetFlag(FLAGS_events);
  const std::int64_t batch = absl::GetFlag(FLAGS_batch);
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(kind.status());
  if (batch < 1 || batch > absl::GetFlag(FLAGS_capacity)) {
    return Fail(absl::InvalidArgumentError("--batch must be between 1 and --capacity"));
  }
  if (absl::GetFlag(FLAGS_recreate) && RingSegment::Exists(name)) {
    if (absl::Status s = RingSegment::Remove(name); !s.ok()) return Fail(s);
  }
  auto ring = Ring<Event>::Create(
      {.name = name,
       .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity)),
       .slot_size = sizeof(Event),
       .schema = schema});
  if (!ring.ok()) return Fail(ring.status());
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = *kind});
  if (!producer.ok()) return Fail(producer.status());

  const int want = absl::GetFlag(FLAGS_wait_for_consumers);
  if (want > 0) std::printf("producer: waiting for %d consumers on ring '%s'\n", want, name.c_str());
  std::fflush(stdout);
  while (ActiveConsumerCount(ring->segment()) < want) absl::SleepFor(absl::Milliseconds(1));

  const std::int64_t rate = absl::GetFlag(FLAGS_rate);
  const std::int64_t start = MonotonicNanos();
  double price = 100.0;
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min(batch, events - done);
    if (rate > 0) {  // pace: batch k is due at start + k*batch/rate
      const std::int64_t due = start + done * 1'000'000'000 / rate;
      while (MonotonicNanos() < due) absl::SleepFor(absl::Microseconds(50));
    }
    const absl::StatusOr<std::int64_t> claimed = producer->Next(n);  // n slots, waiting for room
    if (!claimed.ok()) return Fail(claimed.status());                // n outside 1..capacity
    const std::int64_t hi = *claimed;
    const std::int64_t now = MonotonicNanos();
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) fill((*ring)[s], s, now, &price);
    producer->Publish(hi - n + 1, hi);
    done += n;
  }
  producer->Close();
  const double seconds = static_cast<double>(MonotonicNanos() - start) * 1e-9;
  std::printf("producer: published %lld events in %.2f s (%.1f M/s), ring closed\n",
              static_cast<long long>(events), seconds, static_cast<double>(events) / seconds / 1e6);
  if (absl::GetFlag(FLAGS_remove_at_end)) {
    // Consumers keep their mapping after removal; wait so none is cut off from the name.
    while (producer->RemainingCapacity() < static_cast<std::int64_t>(ring->capacity()) &&
           ActiveConsumerCount(ring->segment()) > 0) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    RingSegment::Remove(name).IgnoreError();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Publishes synthetic ticks or messages into an xdisruptor ring.");
  absl::ParseCommandLine(argc, argv);
  const std::string event = absl::GetFlag(FLAGS_event);
  if (event == "tick") return Run<examples::Tick>(examples::kTickSchema, FillTick);
  if (event == "message") return Run<examples::Message>(examples::kMessageSchema, FillMessage);
  return Fail(absl::InvalidArgumentError("--event must be tick or message"));
}
