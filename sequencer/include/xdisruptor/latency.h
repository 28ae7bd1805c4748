// xdisruptor/latency.h — per-hop latency: the producer stamps the publish time of sampled
// sequences in the segment's stamp table; each consumer turns the stamps of what it releases
// into a publish -> release histogram in its own entry. `stat`, `top` and `metrics` read it.
//
// Sampled: every sequence that is a multiple of the ring's latency_sample_every (N, a power of
// two; 0: none). Sequence s lives in stamp entry (s / N) % kStampCount, so the table holds the
// last kStampCount samples; a reader that finds another sequence there (a lapped entry, or
// one being rewritten) skips the sample. Clock: the steady clock (CLOCK_MONOTONIC), shared by
// every process of the machine.
//
// Cost: one compare per publish (single producer) and per release against the next sampled
// sequence (an OR and a compare per multi-producer publish); a clock read and three stores
// per N events on the producer's side, a clock read and a few relaxed stores on each
// consumer's.
#ifndef XDISRUPTOR_LATENCY_H_
#define XDISRUPTOR_LATENCY_H_

#include <array>
#include <atomic>
#include <bit>
#include <climits>
#include <cstdint>

#include "xdisruptor/layout.h"
#include "xdisruptor/layout_access.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor::latency {

// The mask of a sampling period: N - 1, or all ones when sampling is off, so that
// HoldsSample is one expression with no separate check.
inline std::int64_t SampleMask(std::uint32_t every) {
  return every == 0 ? -1 : static_cast<std::int64_t>(every) - 1;
}

// True when lo..hi holds a sampled sequence (never with the mask of "off").
inline bool HoldsSample(std::int64_t lo, std::int64_t hi, std::int64_t mask) {
  return ((lo - 1) | mask) != (hi | mask);
}

// The first sampled sequence after `s` (INT64_MAX when sampling is off): a producer or
// consumer that keeps it needs one compare per publish or release (`hi >= next`).
inline std::int64_t NextSample(std::int64_t s, std::int64_t mask) {
  return mask < 0 ? INT64_MAX : (s | mask) + 1;
}

// The oldest sampled sequence of `from`..`hi` still worth visiting: the table holds the last
// kStampCount samples, so a jump (a claim moved ahead, a long catch-up) costs at most that.
inline std::int64_t FirstLive(std::int64_t from, std::int64_t hi, std::int64_t mask) {
  const std::int64_t window = static_cast<std::int64_t>(kStampCount) * (mask + 1);
  return hi - from >= window ? NextSample(hi - window, mask) : (from + mask) & ~mask;
}

inline StampState& StampOf(const RingSegment& ring, std::int64_t sequence, std::int64_t mask) {
  const auto n = static_cast<std::uint64_t>(sequence) / static_cast<std::uint64_t>(mask + 1);
  return ring.stamps()[n & (kStampCount - 1)];
}

// Producer: stamps every sampled sequence of lo..hi with `now`, before the cursor store that
// publishes them (whose release makes the stamps visible with the events).
inline void Stamp(const RingSegment& ring, std::int64_t lo, std::int64_t hi, std::int64_t mask,
                  std::int64_t now) {
  for (std::int64_t s = FirstLive(lo, hi, mask); s <= hi; s += mask + 1) {
    StampState& e = StampOf(ring, s, mask);
    e.sequence.store(kInitialSequence, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // the invalidation before the time
    e.publish_ns.store(now, std::memory_order_relaxed);
    e.sequence.store(s, std::memory_order_release);
  }
}

// Consumer: the publish time of sampled sequence s, or -1 when its entry holds another.
inline std::int64_t PublishedAt(const RingSegment& ring, std::int64_t s, std::int64_t mask) {
  const StampState& e = StampOf(ring, s, mask);
  if (e.sequence.load(std::memory_order_acquire) != s) return -1;
  const std::int64_t t = e.publish_ns.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);  // the time before the re-check
  return e.sequence.load(std::memory_order_relaxed) == s ? t : -1;
}

// Bucket i counts latencies in (2^(i+7), 2^(i+8)] ns (bucket 0 from 0); above the last bucket
// a latency counts only in the total (the +Inf bucket).
inline std::uint64_t BucketBound(std::size_t i) { return std::uint64_t{1} << (i + 8); }

// Consumer: records one latency in its entry. Single writer (the consuming thread).
inline void Record(ConsumerState& c, std::int64_t latency_ns) {
  const auto ns = static_cast<std::uint64_t>(latency_ns < 0 ? 0 : latency_ns);
  const int width = ns == 0 ? 0 : std::bit_width(ns - 1);
  const std::size_t bucket = width <= 8 ? 0 : static_cast<std::size_t>(width - 8);
  if (bucket < kLatencyBuckets) BumpCounter(c.latency_buckets[bucket]);
  BumpCounter(c.latency_count);
  BumpCounter(c.latency_sum_ns, ns);
  if (ns > LoadCounter(c.latency_max_ns)) c.latency_max_ns.store(ns, std::memory_order_relaxed);
}

// Consumer: records the samples of prev+1..released (the release that just happened).
inline void RecordReleased(const RingSegment& ring, ConsumerState& c, std::int64_t prev,
                           std::int64_t released, std::int64_t mask) {
  const std::int64_t now = MonotonicNanos();
  for (std::int64_t s = FirstLive(prev + 1, released, mask); s <= released; s += mask + 1) {
    if (const std::int64_t t = PublishedAt(ring, s, mask); t >= 0) Record(c, now - t);
  }
}

// A snapshot of one entry's histogram, and what `stat` shows of it.
struct Histogram {
  std::array<std::uint64_t, kLatencyBuckets> buckets{};  // per bucket, not cumulative
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;
  std::uint64_t max_ns = 0;

  static Histogram Of(const ConsumerState& c) {
    Histogram h;
    for (std::size_t i = 0; i < kLatencyBuckets; ++i) h.buckets[i] = LoadCounter(c.latency_buckets[i]);
    h.count = LoadCounter(c.latency_count);
    h.sum_ns = LoadCounter(c.latency_sum_ns);
    h.max_ns = LoadCounter(c.latency_max_ns);
    return h;
  }
  // The q-quantile (0 < q <= 1), interpolated linearly inside its bucket as Prometheus'
  // histogram_quantile does, never above the maximum seen; 0 with no samples.
  double QuantileNs(double q) const {
    if (count == 0) return 0;
    const double rank = q * static_cast<double>(count);
    double below = 0;
    for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
      const double n = static_cast<double>(buckets[i]);
      if (n > 0 && below + n >= rank) {
        const double lo = i == 0 ? 0 : static_cast<double>(BucketBound(i - 1));
        const double hi = static_cast<double>(BucketBound(i));
        const double at = lo + (hi - lo) * (rank - below) / n;
        return std::min(at, static_cast<double>(max_ns));
      }
      below += n;
    }
    return static_cast<double>(max_ns);  // in the +Inf bucket
  }
};

}  // namespace xdisruptor::latency

#endif  // XDISRUPTOR_LATENCY_H_
