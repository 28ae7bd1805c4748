// xdisruptor/catch_up.h — where a consumer reads the events the ring no longer holds before it
// joins the ring (ConsumerOptions::journal): the seam between the sequencer and the journal
// library above it (journal/, which installs the opener; include <xdisruptor/journal.h>).
//
// A catching-up consumer is registered (its name is taken, `stat` shows it) but does not gate:
// its processor (or Python loop) reads events from the source, in order, until the source has
// nothing newer, then asks Consumer::FinishCatchUp(next) to join the ring at `next`: that
// succeeds once `next` is still protected in the ring (the journal's recorder gates it), and
// from then on the consumer reads the ring and gates like any other. No gap, no duplicate.
#ifndef XDISRUPTOR_CATCH_UP_H_
#define XDISRUPTOR_CATCH_UP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "xdisruptor/ring_segment.h"

namespace xdisruptor {

struct CatchUpBatch {
  const std::byte* data = nullptr;  // `count` events, slot_size bytes apart
  std::int64_t count = 0;
  std::shared_ptr<const void> keep_alive{};  // holds `data` for as long as a view needs it
};

class CatchUpSource {
 public:
  virtual ~CatchUpSource() = default;
  // Up to `max` events from `next` on, contiguous and valid until the next call; count 0 when
  // the source holds nothing from `next` yet. OutOfRange when `next` is older than what it
  // holds; DataLoss when what it holds is corrupt.
  virtual absl::StatusOr<CatchUpBatch> Read(std::int64_t next, std::int64_t max) = 0;
  // The highest sequence it holds now (kInitialSequence when none).
  virtual std::int64_t Last() = 0;
};

// Opens the source at `path` for events of `ring` (checking they have the ring's layout).
using CatchUpOpener = absl::StatusOr<std::unique_ptr<CatchUpSource>> (*)(const RingSegment& ring,
                                                                         std::string_view path);
// Installed by the journal library when a program includes <xdisruptor/journal.h>.
void InstallCatchUpOpener(CatchUpOpener opener);
// The installed opener, or nullptr.
CatchUpOpener InstalledCatchUpOpener();

}  // namespace xdisruptor

#endif  // XDISRUPTOR_CATCH_UP_H_
