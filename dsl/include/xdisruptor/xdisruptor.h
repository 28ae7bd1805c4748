// xdisruptor/xdisruptor.h — everything a producer or consumer program needs, in one include.
#ifndef XDISRUPTOR_XDISRUPTOR_H_
#define XDISRUPTOR_XDISRUPTOR_H_

#include "xdisruptor/batch_event_processor.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/event_poller.h"
#include "xdisruptor/flight.h"
#include "xdisruptor/latency.h"
#include "xdisruptor/layout.h"
#include "xdisruptor/metrics.h"
#include "xdisruptor/multi_producer_sequencer.h"
#include "xdisruptor/pipeline.h"
#include "xdisruptor/process.h"
#include "xdisruptor/ring.h"
#include "xdisruptor/ring_queries.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/schema.h"
#include "xdisruptor/sequence_barrier.h"
#include "xdisruptor/sequencer.h"
#include "xdisruptor/stats.h"
#include "xdisruptor/translators.h"
#include "xdisruptor/wait_strategy.h"

#endif  // XDISRUPTOR_XDISRUPTOR_H_
