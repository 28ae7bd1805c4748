// xdisruptor_demo_feed — the pipeline demo's market-data feed: synthetic quotes for 32
// symbols, published into a ring the pipeline launcher created (XDISRUPTOR_RING).
//
//   XDISRUPTOR_RING=ticks xdisruptor_demo_feed --seconds=15 --rate=200000
//
// Publishes for --seconds (or --events), paced to --rate per second, then closes the stream.
// SIGINT/SIGTERM end it early, and cleanly: the stream is closed, so every stage drains what
// was published. Prints how many it published.
#include <signal.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "market_tick.h"
#include "xdisruptor/xdisruptor.h"

ABSL_FLAG(std::string, ring, "", "ring name (default: $XDISRUPTOR_RING)");
ABSL_FLAG(double, seconds, 15, "how long to publish (0: until --events)");
ABSL_FLAG(int64_t, events, 0, "how many to publish (0: until --seconds)");
ABSL_FLAG(int64_t, rate, 200'000, "ticks per second (0: as fast as the stages allow)");
ABSL_FLAG(int64_t, batch, 64, "ticks claimed and published at once");
ABSL_FLAG(std::string, wait, "blocking", "how to wait on a full ring");
ABSL_FLAG(int, attach_timeout_ms, 10'000, "how long to wait for the ring to appear");

namespace {

std::atomic<bool> g_stop{false};

constexpr const char* kSymbols[examples::kSymbolCount] = {
    "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "JPM",  "XOM",  "UNH", "V",
    "MA",   "HD",   "PG",   "JNJ",  "LLY",  "AVGO", "COST", "MRK",  "ABBV", "PEP", "KO",
    "ADBE", "CRM",  "NFLX", "AMD",  "INTC", "ORCL", "CSCO", "BAC",  "WMT",  "DIS"};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "feed: %s\n", std::string(status.message()).c_str());
  return 1;
}

// A deterministic random walk per symbol, in cents.
struct Quotes {
  double price[examples::kSymbolCount];
  std::uint64_t state = 0x2545F4914F6CDD1Dull;
  Quotes() {
    for (int i = 0; i < examples::kSymbolCount; ++i) price[i] = 50.0 + 13.0 * i;
  }
  std::uint64_t Next() {  // xorshift64
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  void Fill(examples::MarketTick& t, std::int64_t s, std::int64_t now) {
    const std::uint64_t r = Next();
    const int id = static_cast<int>(r % examples::kSymbolCount);
    double& p = price[id];
    p = std::max(1.0, p + (static_cast<double>((r >> 8) % 21) - 10.0) * 0.01);
    const double half_spread = 0.01 * static_cast<double>(1 + (r >> 16) % 5);
    t.sequence = s;
    t.timestamp_ns = now;
    t.symbol_id = id;
    t.size = static_cast<std::int32_t>(1 + (r >> 24) % 500);
    t.bid = std::round((p - half_spread) * 100.0) / 100.0;
    t.ask = std::round((p + half_spread) * 100.0) / 100.0;
    t.mid = 0;
    t.spread = 0;
    std::memset(t.symbol, 0, sizeof(t.symbol));
    std::memcpy(t.symbol, kSymbols[id], std::strlen(kSymbols[id]));  // at most 4 chars
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Publishes synthetic market ticks into an existing ring.");
  absl::ParseCommandLine(argc, argv);
  using namespace xdisruptor;
  std::string name = absl::GetFlag(FLAGS_ring);
  if (name.empty() && std::getenv("XDISRUPTOR_RING") != nullptr) {
    name = std::getenv("XDISRUPTOR_RING");
  }
  if (name.empty()) return Fail(absl::InvalidArgumentError("give --ring or XDISRUPTOR_RING"));
  auto kind = ParseWaitKind(absl::GetFlag(FLAGS_wait));
  if (!kind.ok()) return Fail(kind.status());
  const std::int64_t batch = std::max<std::int64_t>(1, absl::GetFlag(FLAGS_batch));
  auto ring = internal::RetryWhileNotFound(
      std::int64_t{absl::GetFlag(FLAGS_attach_timeout_ms)} * 1'000'000, [&] {
        return Ring<examples::MarketTick>::Attach(
            name, {.expected_schema = examples::kMarketTickSchema});
      });
  if (!ring.ok()) return Fail(ring.status());
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {.kind = *kind});
  if (!producer.ok()) return Fail(producer.status());
  struct sigaction action{};
  action.sa_handler = [](int) { g_stop.store(true, std::memory_order_relaxed); };
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const std::int64_t rate = absl::GetFlag(FLAGS_rate);
  const std::int64_t limit = absl::GetFlag(FLAGS_events);
  const auto duration_ns = static_cast<std::int64_t>(absl::GetFlag(FLAGS_seconds) * 1e9);
  const std::int64_t start = MonotonicNanos();
  Quotes quotes;
  std::int64_t done = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    if (limit > 0 && done >= limit) break;
    if (limit == 0 && MonotonicNanos() - start >= duration_ns) break;
    const std::int64_t n = limit > 0 ? std::min(batch, limit - done) : batch;
    if (rate > 0) {  // pace: batch k is due at start + k*batch/rate
      const std::int64_t due = start + done * 1'000'000'000 / rate;
      while (MonotonicNanos() < due) absl::SleepFor(absl::Microseconds(100));
    }
    // n slots, waiting for room in slices: a SIGTERM while the ring stays full (a stage
    // dead, held for its restart) still ends the feed and closes the stream.
    absl::StatusOr<std::int64_t> claimed;
    while (!(claimed = producer->NextFor(n, 100'000'000)).ok() &&
           claimed.status().code() == absl::StatusCode::kDeadlineExceeded &&
           !g_stop.load(std::memory_order_relaxed)) {
    }
    if (!claimed.ok() && g_stop.load(std::memory_order_relaxed)) break;
    if (!claimed.ok()) return Fail(claimed.status());  // n outside 1..capacity
    const std::int64_t hi = *claimed;
    const std::int64_t now = MonotonicNanos();
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) quotes.Fill((*ring)[s], s, now);
    producer->Publish(hi - n + 1, hi);
    done += n;
  }
  producer->Close();
  const double seconds = static_cast<double>(MonotonicNanos() - start) * 1e-9;
  std::printf("feed: published %lld ticks in %.1f s (%.0f/s), stream closed%s\n",
              static_cast<long long>(done), seconds, static_cast<double>(done) / seconds,
              g_stop.load() ? " (stopped by a signal)" : "");
  return 0;
}
