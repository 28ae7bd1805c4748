// xdisruptor/flight.h — flight records: what the ring looked like when something went wrong.
//
// A flight record is one JSON file written when a consumer is evicted (by a producer's stall
// policy or an operator) or when a producer has waited on the full ring longer than the ring's
// flight_wait (RingOptions). It holds the reason, the stuck sequence, every producer's and
// consumer's position, state and wait strategy (the `stat --json` object), and the
// flight_events events around the stuck sequence decoded with the ring's schema. The latest
// record's path is kept in the segment, where `xdisruptor stat` shows it.
//
// Where: the ring's flight_dir, else $XDISRUPTOR_FLIGHT_DIR of the writing process, else
// /tmp/xdisruptor-flight; the file is <ring>.<unix ns>.<reason>.json, written whole (a temporary
// name, then rename). Any thread; it does file I/O, so the data path calls it only while
// stuck. See docs/operations.md.
#ifndef XDISRUPTOR_FLIGHT_H_
#define XDISRUPTOR_FLIGHT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "xdisruptor/ring_segment.h"

namespace xdisruptor {

inline constexpr std::string_view kFlightEviction = "eviction";
inline constexpr std::string_view kFlightProducerBlocked = "producer-blocked";

struct FlightRecordInfo {
  std::uint32_t count = 0;  // records written for the ring (0: none; path empty)
  std::string path;         // the latest
  std::int64_t at_unix_ns = 0;
};

// Writes a record for `ring` now; returns its path. `stuck_sequence` is the first event a
// consumer has not released (the events around it are decoded into the record).
absl::StatusOr<std::string> WriteFlightRecord(RingSegment& ring, std::string_view reason,
                                              std::string_view detail,
                                              std::int64_t stuck_sequence);

// The latest record written for `ring`.
FlightRecordInfo LatestFlightRecord(const RingSegment& ring);

// The directory the records of `ring` go to from this process.
std::string FlightDir(const RingSegment& ring);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_FLIGHT_H_
