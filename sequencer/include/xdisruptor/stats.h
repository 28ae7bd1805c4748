// xdisruptor/stats.h — a snapshot of a ring for operators: the `xdisruptor` tool, Python's
// ring.stats(). Reads counters and registration data with relaxed/acquire loads and /proc for
// liveness; never blocks the data path. Any thread of any process.
#ifndef XDISRUPTOR_STATS_H_
#define XDISRUPTOR_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

struct ConsumerStats {
  int index = 0;
  std::string name;
  std::int64_t pid = 0;
  bool alive = false;
  std::string state;  // "active", "evicted"
  std::int64_t sequence = 0;
  std::int64_t lag = 0;  // cursor - sequence
  std::uint64_t events = 0;
  std::uint64_t batches = 0;
  std::uint64_t waits = 0;
  double events_per_second = 0;  // average since it registered
  WaitParams wait;
  std::string stall_policy;  // "hold", "evict"
  std::vector<std::string> after;
  std::uint64_t evictions = 0;
  std::uint64_t missed = 0;
  std::uint64_t handler_errors = 0;  // failures its error policy handled (skip, retry, stop)
};

struct RingStats {
  std::string name;
  std::uint64_t capacity = 0;
  std::uint32_t slot_size = 0;
  std::string schema;
  bool multi_producer = false;
  std::int64_t cursor = 0;  // single producer: published; multi-producer: claimed
  bool closed = false;
  std::vector<std::int64_t> producer_pids;
  bool producer_alive = false;  // any producer process lives
  std::vector<ConsumerStats> consumers;  // active and evicted entries
};

RingStats Stats(const RingSegment& ring);
// The stats as one JSON object (for --json and tests).
std::string StatsJson(const RingStats& stats);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_STATS_H_
