// The tool's observability commands (metrics_cli.cc): the OpenMetrics endpoint.
#ifndef XDISRUPTOR_TOOLS_METRICS_CLI_H_
#define XDISRUPTOR_TOOLS_METRICS_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "xdisruptor/ring_segment.h"

namespace xdisruptor::tool {

// Names in /dev/shm of regular files that start with a ring's magic, sorted.
std::vector<std::string> RingNames();
// Attaches read-only, as monitors do.
absl::StatusOr<RingSegment> AttachToRead(const std::string& name, absl::Duration timeout);

// `xdisruptor metrics [RING ...] --listen HOST:PORT`: serves /metrics for the rings named
// (every ring on the machine, looked up again at each scrape, when none is) until SIGINT or
// SIGTERM; prints "serving http://HOST:PORT/metrics" once listening. `print`: writes one
// exposition to stdout and returns instead.
int Metrics(const std::vector<std::string>& rings, const std::string& listen, bool print);

}  // namespace xdisruptor::tool

#endif  // XDISRUPTOR_TOOLS_METRICS_CLI_H_
