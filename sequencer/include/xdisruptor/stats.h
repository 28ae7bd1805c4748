// xdisruptor/stats.h — a snapshot of a ring for operators: the `xdisruptor` tool, Python's
// ring.stats(). Reads counters and registration data with relaxed/acquire loads and /proc for
// liveness; never blocks the data path. Any thread of any process.
#ifndef XDISRUPTOR_STATS_H_
#define XDISRUPTOR_STATS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xdisruptor/flight.h"
#include "xdisruptor/latency.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/wait_strategy.h"

namespace xdisruptor {

struct ConsumerStats {
  int index = 0;
  std::string name;
  std::int64_t pid = 0;
  bool alive = false;
  ConsumerStatus state = ConsumerStatus::kActive;  // active or evicted (or, when `gating`,
                                                   // any: a stray gating bit that blocks)
  bool gating = false;  // its bit in the gating mask is set: the producer waits for it
  bool observer = false;  // registered with gating = false: never waited for, may be lapped
  std::int64_t sequence = 0;
  std::int64_t lag = 0;  // published - sequence
  std::uint64_t events = 0;
  std::uint64_t batches = 0;
  std::uint64_t waits = 0;
  double events_per_second = 0;  // average since it registered
  WaitParams wait;
  StallPolicy stall_policy = StallPolicy::kHold;
  std::int64_t max_lag = 0;     // slow-consumer limit: events
  std::int64_t max_lag_ns = 0;  // and time (0 and 0: none)
  std::vector<std::string> after;
  std::int64_t join_sequence = 0;
  std::int64_t registered_at_unix_ns = 0;
  std::uint64_t evictions = 0;
  std::uint64_t missed = 0;
  std::uint64_t handler_errors = 0;  // failures its error policy handled (skip, retry, stop)
  std::uint64_t sleeps = 0;      // futex sleeps of its waits
  std::uint64_t wakes = 0;       // of those, ended by a wake-up
  std::uint64_t last_batch = 0;  // events of its last release
  latency::Histogram latency;    // publish -> release of the sampled events it released
  // Worker groups (docs/worker-groups.md). role "group": the group as a stage (alive while a
  // member is; `members` names them); "member": one worker of `group`, with the run it
  // claimed up to claim_hi (unfinished while sequence < claim_hi) and the runs it took over.
  std::string role;   // "", "group" or "member"
  std::string group;  // the group's name (for a group stage, its own)
  std::vector<std::string> members;
  std::int64_t claim_hi = 0;
  std::uint64_t takeovers = 0;
};

struct ProducerStats {
  int index = 0;  // entry in the producer table
  std::int64_t pid = 0;
  bool alive = false;
  WaitKind wait = WaitKind::kYielding;  // how it waits on a full ring
  std::uint64_t full_waits = 0;    // claims that found the ring full and waited
  std::uint64_t full_wait_ns = 0;  // how long they waited in all
};

struct RingStats {
  std::string name;
  std::uint64_t capacity = 0;
  std::uint32_t slot_size = 0;
  std::string schema;
  SequencerKind sequencer = SequencerKind::kSingleProducer;
  bool multi_producer = false;
  std::int64_t cursor = 0;     // single producer: published; multi-producer: claimed
  std::int64_t published = 0;  // the highest sequence every consumer may read
  bool closed = false;
  std::int64_t closed_at = -1;  // the cursor when the stream was last closed
  // Fed by a bridge's in side: the source ring's epoch (creation time) it carries; 0: none.
  std::int64_t origin_epoch = 0;
  std::int64_t creator_pid = 0;
  std::int64_t created_at_unix_ns = 0;
  std::vector<ProducerStats> producers;
  std::vector<std::int64_t> producer_pids;
  bool producer_alive = false;  // any producer process lives
  std::vector<ConsumerStats> consumers;  // active and evicted entries, and any that gates
  std::uint32_t latency_sample_every = 0;  // the producer stamps every Nth sequence (0: none)
  FlightRecordInfo flight;                 // the latest flight record (flight.h)
  std::uint64_t full_waits = 0;            // of every producer entry, live or not
  std::uint64_t full_wait_ns = 0;
};

RingStats Stats(const RingSegment& ring);
// The stats as one JSON object (for --json and tests).
std::string StatsJson(const RingStats& stats);
// `s` as a JSON string literal, quotes included.
std::string JsonString(std::string_view s);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_STATS_H_
