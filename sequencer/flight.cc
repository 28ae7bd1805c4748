#include "xdisruptor/flight.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "xdisruptor/schema.h"
#include "xdisruptor/stats.h"

namespace xdisruptor {
namespace {

constexpr int kSeqlockTries = 100000;

// The path bytes are copied one relaxed atomic access at a time: the seqlock's version tells
// a reader whether what it copied is whole.
void CopyIn(char* to, std::string_view from) {
  for (std::size_t i = 0; i < from.size(); ++i) {
    std::atomic_ref<char>(to[i]).store(from[i], std::memory_order_relaxed);
  }
}
std::string CopyOut(const char* from, std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = std::atomic_ref<const char>(from[i]).load(std::memory_order_relaxed);
  }
  return out;
}

// Records `path` as the ring's latest flight record (seqlock writer side).
void Publish(RingSegment& ring, std::string_view path, std::int64_t at_unix_ns) {
  FlightRecordState& f = ring.producer().flight;
  std::uint32_t odd = 0;
  for (int tries = 0;; ++tries) {
    std::uint32_t v = f.version.load(std::memory_order_relaxed);
    const bool busy = (v & 1) != 0;
    // A writer that died mid-update (odd forever) is overtaken after a while.
    if (busy && tries < kSeqlockTries) {
      std::this_thread::yield();
      continue;
    }
    odd = busy ? v + 2 : v + 1;
    if (f.version.compare_exchange_weak(v, odd, std::memory_order_acquire)) break;
  }
  std::atomic_thread_fence(std::memory_order_release);  // the odd version before the fields
  const std::size_t n = std::min(path.size(), kMaxFlightPath);
  CopyIn(f.path, path.substr(0, n));
  f.path_length.store(static_cast<std::uint32_t>(n), std::memory_order_relaxed);
  f.at_unix_ns.store(at_unix_ns, std::memory_order_relaxed);
  f.count.store(f.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  f.version.store(odd + 1, std::memory_order_release);  // even again: the fields are whole
}

std::string EventsJson(const RingSegment& ring, std::int64_t stuck, std::int64_t published) {
  const auto schema = ParseSchema(ring.schema());
  const auto n = static_cast<std::int64_t>(ring.header().flight_events);
  const std::int64_t oldest =
      std::max<std::int64_t>(0, published - static_cast<std::int64_t>(ring.capacity()) + 1);
  const std::int64_t lo = std::max(oldest, stuck - n / 2);
  const std::int64_t hi = std::min(published, lo + n - 1);
  std::string out = "[";
  for (std::int64_t s = lo; schema.ok() && s <= hi; ++s) {
    out += absl::StrFormat("%s{\"sequence\": %d, \"event\": %s}", s == lo ? "" : ", ", s,
                           EventJson(*schema, ring.slot_bytes(s)));
  }
  return out + "]";
}

}  // namespace

std::string FlightDir(const RingSegment& ring) {
  const RingHeaderState& h = ring.header();
  if (h.flight_dir_length > 0) {
    return std::string(h.flight_dir, std::min<std::size_t>(h.flight_dir_length, kMaxFlightPath));
  }
  if (const char* env = std::getenv("XDISRUPTOR_FLIGHT_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/tmp/xdisruptor-flight";
}

absl::StatusOr<std::string> WriteFlightRecord(RingSegment& ring, std::string_view reason,
                                              std::string_view detail,
                                              std::int64_t stuck_sequence) {
  if (absl::Status s = ring.CheckWritable("write a flight record"); !s.ok()) return s;
  const std::string dir = FlightDir(ring);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot make the flight record directory %s: %s", dir, ec.message()));
  }
  const RingStats stats = Stats(ring);
  const std::int64_t now = absl::ToUnixNanos(absl::Now());
  const std::string path = absl::StrFormat("%s/%s.%d.%s.json", dir, ring.name(), now, reason);
  const std::string json = absl::StrFormat(
      "{\"ring\": %s, \"reason\": %s, \"detail\": %s, \"written_at_unix_ns\": %d, "
      "\"writer_pid\": %d, \"stuck_sequence\": %d, \"schema\": %s, \"stats\": %s, "
      "\"events\": %s}\n",
      JsonString(ring.name()), JsonString(reason), JsonString(detail), now, ::getpid(),
      stuck_sequence, JsonString(ring.schema()), StatsJson(stats),
      EventsJson(ring, stuck_sequence, stats.published));
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << json;
    out.close();
    if (!out) {
      std::filesystem::remove(temporary, ec);
      return absl::UnavailableError(absl::StrFormat("cannot write the flight record %s: %s",
                                                    temporary, std::strerror(errno)));
    }
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrFormat("cannot rename the flight record to %s: %s", path, ec.message()));
  }
  Publish(ring, path, now);
  return path;
}

FlightRecordInfo LatestFlightRecord(const RingSegment& ring) {
  const FlightRecordState& f = ring.producer().flight;
  for (int tries = 0; tries < kSeqlockTries; ++tries) {
    const std::uint32_t v = f.version.load(std::memory_order_acquire);
    if ((v & 1) != 0) {
      std::this_thread::yield();
      continue;
    }
    FlightRecordInfo info;
    info.count = f.count.load(std::memory_order_relaxed);
    info.at_unix_ns = f.at_unix_ns.load(std::memory_order_relaxed);
    const std::size_t n =
        std::min<std::size_t>(f.path_length.load(std::memory_order_relaxed), kMaxFlightPath);
    info.path = CopyOut(f.path, n);
    std::atomic_thread_fence(std::memory_order_acquire);  // the fields before the re-check
    if (f.version.load(std::memory_order_relaxed) == v) return info;
  }
  // A writer died mid-update (the version stays odd until the next record overtakes it): the
  // path and time are not whole, but the count only grows and is read alone (a counter that
  // fell to zero would look like a reset to Prometheus).
  FlightRecordInfo count_only;
  count_only.count = f.count.load(std::memory_order_relaxed);
  return count_only;
}

}  // namespace xdisruptor
