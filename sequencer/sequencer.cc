#include "xdisruptor/sequencer.h"

#include <utility>

namespace xdisruptor {

SingleProducerSequencer::SingleProducerSequencer(internal::ProducerRole role)
    : role_(std::move(role)),
      producer_(&role_.ring().producer()),
      entry_(&role_.entry()),
      capacity_(role_.capacity()),
      // Pairs with the previous producer's release store in Publish: continue after it.
      next_value_(LoadCursor(*producer_)),
      written_(entry_->claim_hi.load(std::memory_order_relaxed)),
      cached_gating_(kInitialSequence - capacity_),  // forces a gating read on first claim
      sample_mask_(latency::SampleMask(role_.ring().latency_sample_every())),
      next_sample_(latency::NextSample(next_value_, sample_mask_)) {}

}  // namespace xdisruptor
