// xdisruptor/wait_status.h — why a wait (or a processor's run) ended: the one list of
// statuses, with the name every surface shows (Python's xdisruptor.WaitStatus, the stage
// programs' last line, the launcher) and a sentence for people.
#ifndef XDISRUPTOR_WAIT_STATUS_H_
#define XDISRUPTOR_WAIT_STATUS_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "xdisruptor/names.h"

namespace xdisruptor {

enum class WaitStatus : std::uint32_t {
  kOk,            // `available` >= the sequence asked for
  kHalted,        // halted from this process (a processor's Halt, a barrier's Alert)
  kClosed,        // the producer closed the ring and everything it published was delivered
  kTimeout,       // the wait strategy's timeout elapsed first
  kUpstreamGone,  // a consumer this one runs after left before reaching the sequence
  kCheckpoint,    // the caller's own limit (WaitFor's max_wait_ns) elapsed; nothing else
  kProducerStalled,  // multi-producer ring: a producer died between claim and publish, so
                     // the sequence waited for will never be published
  kProducerGone,     // every event published was delivered, and the producer process died
                     // without closing the stream (a new producer may attach and go on)
  kEvicted,          // this consumer was evicted (an operator, or its stall policy): it no
                     // longer holds the producer back, and may have missed events
  kHandlerFailed,    // processors only: the handler failed and the stage's error policy
                     // stopped it (BatchEventProcessor::failure() says where and why)
  kLapped,           // an observer (a consumer that does not gate): the producer overwrote
                     // events it had not finished reading
  kMissedEvents,     // a consumer catching up from a journal: events it needs are neither in
                     // the journal nor still in the ring (see failure() for why)
  kAlerted [[deprecated("use kHalted")]] = kHalted,
};
inline constexpr std::uint32_t kWaitStatusCount = 12;

struct WaitStatusInfo {
  WaitStatus value;
  std::string_view name;         // as every surface spells it
  std::string_view description;  // for people: "an upstream stage left"
};
inline constexpr std::array<WaitStatusInfo, kWaitStatusCount> kWaitStatuses{{
    {WaitStatus::kOk, "ok", "ok"},
    {WaitStatus::kHalted, "halted", "halted"},
    {WaitStatus::kClosed, "closed", "stream closed"},
    {WaitStatus::kTimeout, "timeout", "timeout"},
    {WaitStatus::kUpstreamGone, "upstream-gone", "an upstream stage left"},
    {WaitStatus::kCheckpoint, "checkpoint", "checkpoint"},
    {WaitStatus::kProducerStalled, "producer-stalled",
     "a producer died between claim and publish"},
    {WaitStatus::kProducerGone, "producer-gone", "the producer died without closing the stream"},
    {WaitStatus::kEvicted, "evicted", "evicted"},
    {WaitStatus::kHandlerFailed, "handler-failed", "handler failed"},
    {WaitStatus::kLapped, "lapped", "the producer overwrote events this observer had not read"},
    {WaitStatus::kMissedEvents, "missed-events",
     "events it needs are neither in the journal nor in the ring"},
}};

constexpr bool WaitStatusesInOrder() {
  for (std::uint32_t i = 0; i < kWaitStatusCount; ++i) {
    if (static_cast<std::uint32_t>(kWaitStatuses[i].value) != i) return false;
  }
  return true;
}
static_assert(WaitStatusesInOrder(), "kWaitStatuses is indexed by the status's value");

inline const WaitStatusInfo& WaitStatusInfoOf(WaitStatus status) {
  const auto i = static_cast<std::uint32_t>(status);
  return kWaitStatuses[i < kWaitStatusCount ? i : 0];
}
inline std::string_view WaitStatusName(WaitStatus status) { return WaitStatusInfoOf(status).name; }
inline std::string_view WaitStatusDescription(WaitStatus status) {
  return WaitStatusInfoOf(status).description;
}

}  // namespace xdisruptor

#endif  // XDISRUPTOR_WAIT_STATUS_H_
