// xdisruptor/metrics.h — the metrics of rings, named once: what `xdisruptor metrics` serves
// through prometheus-cpp and what Python's xdisruptor.metrics serves through prometheus-client.
// Both turn these families into their library's own, so a dashboard or an alert rule works
// against either. docs/operations.md lists every metric.
//
// Names follow Prometheus conventions: a `xdisruptor_ring_` or `xdisruptor_consumer_` prefix,
// base units (seconds, events), `_total` on counters. Labels: `ring` on everything; consumers
// also `consumer`, `group` (empty until worker groups exist), `wait` (its wait strategy) and
// `stall` (its stall policy).
#ifndef XDISRUPTOR_METRICS_H_
#define XDISRUPTOR_METRICS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "xdisruptor/stats.h"

namespace xdisruptor {

enum class MetricType { kGauge, kCounter, kHistogram };

struct MetricPoint {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;  // gauge, counter
  // Histogram: (upper bound in seconds, cumulative count) per bucket, without +Inf; then the
  // total count and sum.
  std::vector<std::pair<double, std::uint64_t>> buckets;
  std::uint64_t count = 0;
  double sum = 0;
};

struct MetricFamilyData {
  std::string name;
  MetricType type = MetricType::kGauge;
  std::string help;
  std::vector<MetricPoint> points;
};

// A ring named to the exporter, or the reason it cannot be read (then only
// xdisruptor_ring_readable 0 is exported for it).
struct RingSnapshot {
  std::string name;
  bool readable = false;
  RingStats stats;
};

// Every family, in a fixed order, with a point per ring (ring families) or per consumer of a
// readable ring (consumer families). Families with no point are still listed.
std::vector<MetricFamilyData> MetricFamilies(const std::vector<RingSnapshot>& rings);

std::string_view MetricTypeName(MetricType type);  // "gauge", "counter", "histogram"

}  // namespace xdisruptor

#endif  // XDISRUPTOR_METRICS_H_
