#include "xdisruptor/metrics.h"

#include <algorithm>
#include <functional>

#include "xdisruptor/names.h"

namespace xdisruptor {
namespace {

using RingValue = std::function<double(const RingStats&)>;
using ConsumerValue = std::function<double(const ConsumerStats&)>;

struct RingMetric {
  const char* name;
  MetricType type;
  const char* help;
  RingValue value;
};

struct ConsumerMetric {
  const char* name;
  MetricType type;
  const char* help;
  ConsumerValue value;
};

double Seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }
double Count(std::uint64_t n) { return static_cast<double>(n); }

const std::vector<RingMetric>& RingMetrics() {
  static const auto* metrics = new std::vector<RingMetric>{
      {"xdisruptor_ring_created_timestamp_seconds", MetricType::kGauge,
       "When the ring was made (Unix time): a new value is a new life of the ring under its "
       "name, whose counters start again at 0.",
       [](const RingStats& s) { return static_cast<double>(s.created_at_unix_ns) / 1e9; }},
      {"xdisruptor_ring_capacity", MetricType::kGauge, "Slots in the ring.",
       [](const RingStats& s) { return Count(s.capacity); }},
      {"xdisruptor_ring_slot_size_bytes", MetricType::kGauge, "Bytes per slot.",
       [](const RingStats& s) { return Count(s.slot_size); }},
      {"xdisruptor_ring_cursor", MetricType::kGauge,
       "The producer cursor: the last sequence published (multi-producer: claimed).",
       [](const RingStats& s) { return static_cast<double>(s.cursor); }},
      {"xdisruptor_ring_published_events_total", MetricType::kCounter,
       "Events published contiguously since the ring was created (the highest published "
       "sequence + 1).",
       [](const RingStats& s) { return static_cast<double>(s.published + 1); }},
      {"xdisruptor_ring_producer_alive", MetricType::kGauge,
       "1 while a producer process of the ring lives.",
       [](const RingStats& s) { return s.producer_alive ? 1.0 : 0.0; }},
      {"xdisruptor_ring_producers", MetricType::kGauge, "Producer processes attached, alive or not.",
       [](const RingStats& s) { return Count(s.producers.size()); }},
      {"xdisruptor_ring_closed", MetricType::kGauge, "1 once the producer closed the stream.",
       [](const RingStats& s) { return s.closed ? 1.0 : 0.0; }},
      {"xdisruptor_ring_full_waits_total", MetricType::kCounter,
       "Claims that found the ring full and waited for the slowest gating consumer.",
       [](const RingStats& s) { return Count(s.full_waits); }},
      {"xdisruptor_ring_full_wait_seconds_total", MetricType::kCounter,
       "Seconds producers spent waiting on the full ring.",
       [](const RingStats& s) { return Seconds(s.full_wait_ns); }},
      {"xdisruptor_ring_flight_records_total", MetricType::kCounter,
       "Flight records written for the ring (evictions, producers blocked too long).",
       [](const RingStats& s) { return Count(s.flight.count); }},
      {"xdisruptor_ring_latency_sample_every", MetricType::kGauge,
       "The producer stamps every Nth sequence for the latency histograms (0: off).",
       [](const RingStats& s) { return Count(s.latency_sample_every); }},
      {"xdisruptor_ring_consumers", MetricType::kGauge, "Consumers registered (active or evicted).",
       [](const RingStats& s) { return Count(s.consumers.size()); }},
  };
  return *metrics;
}

const std::vector<ConsumerMetric>& ConsumerMetrics() {
  static const auto* metrics = new std::vector<ConsumerMetric>{
      {"xdisruptor_consumer_sequence", MetricType::kGauge, "The last sequence it released.",
       [](const ConsumerStats& c) { return static_cast<double>(c.sequence); }},
      {"xdisruptor_consumer_lag_events", MetricType::kGauge,
       "Events published that it has not released yet.",
       [](const ConsumerStats& c) { return static_cast<double>(c.lag); }},
      {"xdisruptor_consumer_events_total", MetricType::kCounter,
       "Events it released since its name registered.",
       [](const ConsumerStats& c) { return Count(c.events); }},
      {"xdisruptor_consumer_batches_total", MetricType::kCounter, "Batches it released.",
       [](const ConsumerStats& c) { return Count(c.batches); }},
      {"xdisruptor_consumer_last_batch_events", MetricType::kGauge, "Events of its last batch.",
       [](const ConsumerStats& c) { return Count(c.last_batch); }},
      {"xdisruptor_consumer_alive", MetricType::kGauge, "1 while its process lives.",
       [](const ConsumerStats& c) { return c.alive ? 1.0 : 0.0; }},
      {"xdisruptor_consumer_evicted", MetricType::kGauge,
       "1 when it was evicted (it no longer holds the producer back).",
       [](const ConsumerStats& c) { return c.state == ConsumerStatus::kEvicted ? 1.0 : 0.0; }},
      {"xdisruptor_consumer_gating", MetricType::kGauge, "1 while the producer waits for it.",
       [](const ConsumerStats& c) { return c.gating ? 1.0 : 0.0; }},
      {"xdisruptor_consumer_evictions_total", MetricType::kCounter, "Times its name was evicted.",
       [](const ConsumerStats& c) { return Count(c.evictions); }},
      {"xdisruptor_consumer_missed_events_total", MetricType::kCounter,
       "Events its name skipped when it rejoined after an eviction.",
       [](const ConsumerStats& c) { return Count(c.missed); }},
      {"xdisruptor_consumer_handler_errors_total", MetricType::kCounter,
       "Handler failures its error policy handled (skipped, retried, stopped).",
       [](const ConsumerStats& c) { return Count(c.handler_errors); }},
      {"xdisruptor_consumer_waits_total", MetricType::kCounter,
       "Waits for events that were not there yet.",
       [](const ConsumerStats& c) { return Count(c.waits); }},
      {"xdisruptor_consumer_sleeps_total", MetricType::kCounter,
       "Futex sleeps of its waits (blocking strategies).",
       [](const ConsumerStats& c) { return Count(c.sleeps); }},
      {"xdisruptor_consumer_wakes_total", MetricType::kCounter,
       "Sleeps a publisher's wake-up ended (the rest ran out their sleep budget).",
       [](const ConsumerStats& c) { return Count(c.wakes); }},
      {"xdisruptor_consumer_takeovers_total", MetricType::kCounter,
       "Worker-group members: runs taken over from members that died (handled again).",
       [](const ConsumerStats& c) { return Count(c.takeovers); }},
  };
  return *metrics;
}

std::vector<std::pair<std::string, std::string>> ConsumerLabels(const RingStats& r,
                                                                const ConsumerStats& c) {
  return {{"ring", r.name},
          {"consumer", c.name},
          {"group", c.group},  // worker groups: the group of a member, a group stage's own name
          {"wait", std::string(WaitKindName(c.wait.kind))},
          {"stall", std::string(NameOf(c.stall_policy))}};
}

MetricPoint Point(std::vector<std::pair<std::string, std::string>> labels, double value) {
  MetricPoint p;
  p.labels = std::move(labels);
  p.value = value;
  return p;
}

MetricPoint HistogramPoint(const ConsumerStats& c,
                           std::vector<std::pair<std::string, std::string>> labels) {
  MetricPoint p;
  p.labels = std::move(labels);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    cumulative += c.latency.buckets[i];
    p.buckets.emplace_back(Seconds(latency::BucketBound(i)), cumulative);
  }
  // The buckets are read before the count and a handler may finish in between: the count
  // is never below the last bucket (Prometheus takes +Inf from it).
  p.count = std::max<std::uint64_t>(c.latency.count, cumulative);
  p.sum = Seconds(c.latency.sum_ns);
  return p;
}

}  // namespace

std::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kGauge: return "gauge";
    case MetricType::kCounter: return "counter";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

std::vector<MetricFamilyData> MetricFamilies(const std::vector<RingSnapshot>& rings) {
  std::vector<MetricFamilyData> out;
  MetricFamilyData readable{"xdisruptor_ring_readable", MetricType::kGauge,
                            "1 when the exporter could read the ring, 0 when it is missing or "
                            "refused (the other series of that ring are then absent).",
                            {}};
  for (const RingSnapshot& r : rings) {
    readable.points.push_back(Point({{"ring", r.name}}, r.readable ? 1.0 : 0.0));
  }
  out.push_back(std::move(readable));
  for (const RingMetric& m : RingMetrics()) {
    MetricFamilyData f{m.name, m.type, m.help, {}};
    for (const RingSnapshot& r : rings) {
      if (r.readable) f.points.push_back(Point({{"ring", r.name}}, m.value(r.stats)));
    }
    out.push_back(std::move(f));
  }
  for (const ConsumerMetric& m : ConsumerMetrics()) {
    MetricFamilyData f{m.name, m.type, m.help, {}};
    for (const RingSnapshot& r : rings) {
      if (!r.readable) continue;
      for (const ConsumerStats& c : r.stats.consumers) {
        f.points.push_back(Point(ConsumerLabels(r.stats, c), m.value(c)));
      }
    }
    out.push_back(std::move(f));
  }
  MetricFamilyData hist{"xdisruptor_consumer_latency_seconds", MetricType::kHistogram,
                        "Publish -> release latency of the sampled events it released (every "
                        "Nth sequence, N = xdisruptor_ring_latency_sample_every).",
                        {}};
  for (const RingSnapshot& r : rings) {
    if (!r.readable) continue;
    for (const ConsumerStats& c : r.stats.consumers) {
      hist.points.push_back(HistogramPoint(c, ConsumerLabels(r.stats, c)));
    }
  }
  out.push_back(std::move(hist));
  return out;
}

}  // namespace xdisruptor
