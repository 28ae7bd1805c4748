#include "metrics_cli.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include "absl/strings/str_format.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "xdisruptor/metrics.h"
#include "xdisruptor/stats.h"

namespace xdisruptor::tool {
namespace {

prometheus::MetricType ToPrometheus(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return prometheus::MetricType::Counter;
    case MetricType::kHistogram: return prometheus::MetricType::Histogram;
    case MetricType::kGauge: break;
  }
  return prometheus::MetricType::Gauge;
}

prometheus::ClientMetric ToPrometheus(MetricType type, const MetricPoint& point) {
  prometheus::ClientMetric m;
  for (const auto& [name, value] : point.labels) m.label.push_back({name, value});
  switch (type) {
    case MetricType::kGauge: m.gauge.value = point.value; break;
    case MetricType::kCounter: m.counter.value = point.value; break;
    case MetricType::kHistogram:
      m.histogram.sample_count = point.count;
      m.histogram.sample_sum = point.sum;
      for (const auto& [bound, cumulative] : point.buckets) {
        m.histogram.bucket.push_back({.cumulative_count = cumulative, .upper_bound = bound});
      }
      break;
  }
  return m;
}

// Reads the rings at every scrape (a ring created after the exporter started is seen; one
// removed is reported unreadable when named, dropped when not).
class RingCollector : public prometheus::Collectable {
 public:
  explicit RingCollector(std::vector<std::string> rings) : rings_(std::move(rings)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<RingSnapshot> snapshots;
    for (const std::string& name : rings_.empty() ? RingNames() : rings_) {
      RingSnapshot s;
      s.name = name;
      if (auto ring = AttachToRead(name, absl::Milliseconds(10)); ring.ok()) {
        s.readable = true;
        s.stats = Stats(*ring);
      }
      snapshots.push_back(std::move(s));
    }
    std::vector<prometheus::MetricFamily> out;
    for (const MetricFamilyData& f : MetricFamilies(snapshots)) {
      prometheus::MetricFamily family{f.name, f.help, ToPrometheus(f.type), {}};
      for (const MetricPoint& p : f.points) family.metric.push_back(ToPrometheus(f.type, p));
      out.push_back(std::move(family));
    }
    return out;
  }

 private:
  std::vector<std::string> rings_;
};

}  // namespace

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

absl::StatusOr<RingSegment> AttachToRead(const std::string& name, absl::Duration timeout) {
  return RingSegment::Attach(name, {.creation_timeout = timeout, .read_only = true});
}

int Metrics(const std::vector<std::string>& rings, const std::string& listen, bool print) {
  auto collector = std::make_shared<RingCollector>(rings);
  if (print) {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, collector->Collect());
    std::fputs(out.str().c_str(), stdout);
    return 0;
  }
  if (listen.empty()) {
    std::fprintf(stderr, "xdisruptor: metrics needs --listen HOST:PORT (or --print)\n");
    return 2;
  }
  // Block the stop signals before the server's threads start, so they all inherit the mask
  // and sigwait below is the one place they arrive.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xdisruptor: cannot listen on %s: %s\n", listen.c_str(), e.what());
    return 1;
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {  // civetweb reports a refused address only this way
    std::fprintf(stderr, "xdisruptor: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  exposer->RegisterCollectable(collector);
  // "HOST:PORT", or a port alone (civetweb then listens on every address).
  const std::size_t colon = listen.rfind(':');
  const std::string host = colon == std::string::npos ? "0.0.0.0" : listen.substr(0, colon);
  std::printf("serving http://%s:%d/metrics\n", host.c_str(), ports[0]);
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop, &signal);
  return 0;
}

}  // namespace xdisruptor::tool
