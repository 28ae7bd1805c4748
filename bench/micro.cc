// micro — Google Benchmark microbenchmarks of the hot operations, in one process:
//   BM_ClaimPublish/N      single-producer Next(N) + Publish of N events (the consumer's
//                          release every 1024 events keeps room; amortised, small)
//   BM_BarrierWaitReady    SequenceBarrier::WaitFor when the sequence is already published
//   BM_ProcessorBatchLoop  BatchEventProcessor::Run over one batch of 4096 published events
//                          per iteration (a handler that sums one word, and halts the run at
//                          the batch's end): the per-event loop and its batch bookkeeping
// Times are noisy on a shared machine; bench/run also runs each under callgrind with fixed
// iteration counts (--iterations=N), counting only inside the Measured* functions, and
// reports instructions per operation.
//
//   micro [--iterations=N] [--latency_sample_every=N] [Google Benchmark flags]
// --latency_sample_every: the rings' latency sampling period (default the library's; 0: off),
// to count what sampling costs per event.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "xdisruptor/xdisruptor.h"

namespace {

using namespace xdisruptor;

struct alignas(64) Event {
  std::uint64_t w[8];
};

std::uint32_t g_sample_every = kDefaultLatencySampleEvery;

std::string Name(const char* what) { return absl::StrFormat("xdmicro-%s-%d", what, ::getpid()); }

[[gnu::noinline]] std::int64_t MeasuredClaimPublish(SingleProducerSequencer& producer,
                                                   const Ring<Event>::Slots& slots,
                                                   std::int64_t n) {
  const std::int64_t hi = *producer.Next(n);
  for (std::int64_t s = hi - n + 1; s <= hi; ++s) slots[s].w[0] = static_cast<std::uint64_t>(s);
  producer.Publish(hi - n + 1, hi);
  return hi;
}

[[gnu::noinline]] WaitResult MeasuredBarrierWait(SequenceBarrier& barrier, std::int64_t s) {
  return barrier.WaitFor(s);
}

void BM_ClaimPublish(benchmark::State& state) {
  const std::string name = Name("claim");
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create({.name = name, .capacity = 65536, .latency_sample_every = g_sample_every});
  auto consumer = Consumer::Register(ring->segment(), "c", {});
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {});
  const std::int64_t n = state.range(0);
  const Ring<Event>::Slots slots = ring->slots();
  std::int64_t released = -1;
  for (auto _ : state) {
    const std::int64_t hi = MeasuredClaimPublish(*producer, slots, n);
    if (hi - released >= 1024) {
      consumer->Release(hi, static_cast<std::uint64_t>(hi - released));
      released = hi;
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
  RingSegment::Remove(name).IgnoreError();
}

void BM_BarrierWaitReady(benchmark::State& state) {
  const std::string name = Name("barrier");
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create({.name = name, .capacity = 4096, .latency_sample_every = g_sample_every});
  auto consumer = Consumer::Register(ring->segment(), "c", {});
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {});
  const std::int64_t hi = *producer->Next(4096);
  producer->Publish(0, hi);
  SequenceBarrier& barrier = consumer->barrier();
  std::int64_t s = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(MeasuredBarrierWait(barrier, s));
    s = (s + 1) & 4095;
  }
  state.SetItemsProcessed(state.iterations());
  RingSegment::Remove(name).IgnoreError();
}

struct Summer {
  std::uint64_t sum = 0;
  void (*halt)(void*) = nullptr;  // the processor's Halt, set once it exists
  void* processor = nullptr;
  void on_event(const Event& e, std::int64_t, bool end_of_batch) {
    sum += e.w[0];
    if (end_of_batch) halt(processor);  // Run() returns after this batch
  }
};
using SumProcessor = BatchEventProcessor<Event, Summer>;

// The measured part alone, not inlined, so callgrind can count just it
// (--toggle-collect=*MeasuredProcessorRun*).
[[gnu::noinline]] WaitStatus MeasuredProcessorRun(SumProcessor& processor) {
  return processor.Run();
}

void BM_ProcessorBatchLoop(benchmark::State& state) {
  constexpr std::int64_t kEvents = 4096;
  const std::string name = Name("processor");
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create({.name = name, .capacity = kEvents, .latency_sample_every = g_sample_every});
  auto consumer = Consumer::Register(ring->segment(), "c", {});
  auto producer = SingleProducerSequencer::Attach(ring->segment(), {});
  Summer summer;
  // One batch of the whole ring: asked for (by default a batch is at most half the ring).
  SumProcessor processor(*ring, *consumer, summer, {.max_batch = kEvents});
  summer.processor = &processor;
  summer.halt = [](void* p) { static_cast<SumProcessor*>(p)->Halt(); };
  for (auto _ : state) {
    state.PauseTiming();
    const std::int64_t hi = *producer->Next(kEvents);
    for (std::int64_t s = hi - kEvents + 1; s <= hi; ++s) {
      (*ring)[s].w[0] = static_cast<std::uint64_t>(s);
    }
    producer->Publish(hi - kEvents + 1, hi);
    state.ResumeTiming();
    MeasuredProcessorRun(processor);  // one batch of 4096, then halted
  }
  benchmark::DoNotOptimize(summer.sum);
  state.SetItemsProcessed(state.iterations() * kEvents);
  RingSegment::Remove(name).IgnoreError();
}

}  // namespace

int main(int argc, char** argv) {
  // --iterations=N fixes the iteration count (callgrind runs); the rest goes to the library.
  std::int64_t iterations = 0;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iterations=", 13) == 0) {
      iterations = std::atoll(argv[i] + 13);
    } else if (std::strncmp(argv[i], "--latency_sample_every=", 23) == 0) {
      g_sample_every = static_cast<std::uint32_t>(std::atoll(argv[i] + 23));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  auto fix = [iterations](benchmark::internal::Benchmark* b) {
    if (iterations > 0) b->Iterations(iterations);
  };
  fix(benchmark::RegisterBenchmark("BM_ClaimPublish", BM_ClaimPublish)->Arg(1)->Arg(64));
  fix(benchmark::RegisterBenchmark("BM_BarrierWaitReady", BM_BarrierWaitReady));
  fix(benchmark::RegisterBenchmark("BM_ProcessorBatchLoop", BM_ProcessorBatchLoop));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
