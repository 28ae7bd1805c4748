// xdisruptor/pipeline.h — stages of handlers wired by dependency, in the Disruptor's DSL.
//
//   xdisruptor::Pipeline<Tick> pipeline(*ring);
//   pipeline.handle_events_with(xdisruptor::Stage("enricher", enricher))
//       .then(xdisruptor::Stage("analytics", analytics), xdisruptor::Stage("recorder", recorder))
//       .then(xdisruptor::Stage("sink", sink));
//   pipeline.after("enricher", "python-stats")        // stages of other processes, by name
//       .handle_events_with(xdisruptor::Stage("alerts", alerts));
//   if (absl::Status s = pipeline.Start(); !s.ok()) { ... }
//   std::vector<xdisruptor::StageResult> results = pipeline.Join();  // until the ring closes
//
// The pipeline DSL sits above the sequencer (as the Disruptor keeps com.lmax.disruptor.dsl
// apart from its core): everything here is built from Consumer and BatchEventProcessor.
// Each stage is a named consumer of the ring with its own thread, wait strategy and error
// policy; it runs after the stages named before it, in this process or in any other (a
// Python process, another C++ program): the ring's consumer table is the graph. Builder calls
// and Start/Halt/Join belong to one thread; Halt may also come from a signal handler.
//
// RunStage() is the other way in: a whole program that is one stage of a pipeline the
// launcher (python3 -m xdisruptor.pipeline) starts, configured by its environment.
#ifndef XDISRUPTOR_PIPELINE_H_
#define XDISRUPTOR_PIPELINE_H_

#include <time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/batch_event_processor.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/journal.h"  // stage programs may catch up from a journal
#include "xdisruptor/ring.h"

namespace xdisruptor {

struct StageOptions {
  WaitParams wait{};
  StallPolicy stall_policy = StallPolicy::kHold;
  std::int64_t max_lag = 0;     // slow-consumer limit (ConsumerOptions), kEvict only
  std::int64_t max_lag_ns = 0;
  ProcessorOptions processor{};
  std::int64_t claim = 64;  // worker pools: events a member claims at a time (ConsumerOptions)
};

template <typename H>
struct StageSpec {
  std::string name;
  H* handler;
  StageOptions options;
};

// A stage: a name, a handler (kept by reference: it must outlive the pipeline's run) and its
// options.
template <typename H>
StageSpec<H> Stage(std::string_view name, H& handler, const StageOptions& options = {}) {
  return StageSpec<H>{std::string(name), &handler, options};
}

// A stage run by a processor of the caller's own type (the Disruptor's EventProcessorFactory):
// `factory(Ring<T>&, Consumer&)` returns a std::unique_ptr to an object with
// `WaitStatus Run()` and `void Halt()`; it reads the ring through the consumer it is given
// (its barrier, Release), registered like any stage.
template <typename Factory>
struct ProcessorSpec {
  std::string name;
  Factory factory;
  StageOptions options;
};
template <typename Factory>
ProcessorSpec<Factory> CustomStage(std::string_view name, Factory factory,
                                   const StageOptions& options = {}) {
  return ProcessorSpec<Factory>{std::string(name), std::move(factory), options};
}

// A worker pool (docs/worker-groups.md): one stage named `group` whose events are shared by
// its handlers, each a member of the worker group (registered as "group.0", "group.1", ...,
// one thread each), each event handled by one of them. Stages after `group` see an event once
// the member that had it released it. The handlers are kept by reference.
template <typename H>
struct WorkerPoolSpec {
  std::string group;
  std::vector<H*> handlers;
  StageOptions options;
};
template <typename H>
WorkerPoolSpec<H> WorkerPool(std::string_view group, const std::vector<H*>& handlers,
                             const StageOptions& options = {}) {
  return WorkerPoolSpec<H>{std::string(group), handlers, options};
}

struct StageResult {
  std::string name;
  WaitStatus status = WaitStatus::kHalted;  // why it ended (kClosed: the stream ended)
  std::uint64_t events = 0;                  // events it released
  std::int64_t sequence = -1;                // the last sequence it released
  std::uint64_t handler_errors = 0;          // failures its error policy handled
  std::optional<HandlerFailure> failure;     // set when the error policy stopped it
};

struct PipelineOptions {
  // How long Start() waits for a stage of another process named in after() to register.
  std::int64_t register_timeout_ns = 10'000'000'000;
  // When one stage stops on a failure, halt the others (else they wait for it).
  bool halt_all_on_failure = true;
};

namespace internal {

// One stage of a Pipeline, its handler's type erased behind functions called once per run.
struct PipelineStage {
  std::string name;
  std::string group;  // a worker pool's member: the pool's (group's) name
  std::vector<std::string> after;
  StageOptions options;
  std::function<void(PipelineStage&)> bind;  // makes the processor once registered
  std::unique_ptr<Consumer> consumer;
  std::function<WaitStatus()> run;
  std::function<void()> halt;
  std::function<std::optional<HandlerFailure>()> failure;
  std::thread thread;
  StageResult result;
};

// The order to register `stages` in: each after the stages of this pipeline it names.
// InvalidArgument for a duplicate or bad name, a stage after itself, or a cycle.
absl::StatusOr<std::vector<std::size_t>> RegistrationOrder(
    const std::vector<std::unique_ptr<PipelineStage>>& stages);
// Registers `stage` now if every stage it runs after is registered (on the ring, or by this
// pipeline), so it gates from when it is added; OK and nothing done otherwise (it registers
// at Start). An error (a bad or taken name) is returned for Start() to report.
absl::Status RegisterEarly(RingSegment& ring,
                           const std::vector<std::unique_ptr<PipelineStage>>& stages,
                           PipelineStage& stage);
// Registers every stage not registered yet (waiting for names of other processes); on
// failure, none stays.
absl::Status RegisterStages(RingSegment& ring,
                            const std::vector<std::unique_ptr<PipelineStage>>& stages,
                            const PipelineOptions& options);

}  // namespace internal

template <typename T>
class Pipeline;

// The stages one builder call added; then() adds stages that run after all of them.
template <typename T>
class StageGroup {
 public:
  template <typename... S>
  StageGroup then(S... stages) {
    return pipeline_->Add(names_, stages...);
  }
  template <typename... S>
  StageGroup handle_events_with(S... stages) {
    return pipeline_->Add(names_, stages...);
  }
  // A worker pool after these stages (WorkerPool).
  template <typename H>
  StageGroup handle_events_with_worker_pool(std::string_view group, const std::vector<H*>& handlers,
                                            const StageOptions& options = {}) {
    return pipeline_->Add(names_, WorkerPool(group, handlers, options));
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  friend class Pipeline<T>;
  StageGroup(Pipeline<T>* pipeline, std::vector<std::string> names)
      : pipeline_(pipeline), names_(std::move(names)) {}
  Pipeline<T>* pipeline_;
  std::vector<std::string> names_;
};

template <typename T>
class Pipeline {
 public:
  explicit Pipeline(Ring<T>& ring, const PipelineOptions& options = {})
      : ring_(&ring), options_(options) {}
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  ~Pipeline() {
    Halt();
    Join();
  }

  // Stages that run on every event as it is published (after no other stage).
  template <typename... S>
  StageGroup<T> handle_events_with(S... stages) {
    return Add({}, stages...);
  }
  // A worker pool on every event as it is published (the Disruptor's
  // handleEventsWithWorkerPool): each event handled by one of `handlers`.
  template <typename H>
  StageGroup<T> handle_events_with_worker_pool(std::string_view group,
                                               const std::vector<H*>& handlers,
                                               const StageOptions& options = {}) {
    return Add({}, WorkerPool(group, handlers, options));
  }

  // A group standing for stages already named (of this pipeline or of other processes);
  // its handle_events_with() adds stages that run after all of them.
  template <typename... Names>
  StageGroup<T> after(const Names&... names) {
    return StageGroup<T>(this, std::vector<std::string>{std::string(names)...});
  }

  // Fatal failures of every stage go to `handler` (the Disruptor's setDefaultExceptionHandler:
  // stages added before and after), unless a stage has its own. Before Start(); the handler
  // must outlive the pipeline's run.
  void SetDefaultExceptionHandler(ExceptionHandler<T>& handler) {
    default_exception_handler_ = &handler;
  }
  // Stage `name`'s own exception handler and rewind strategy (handleExceptionsFor(...).with);
  // a worker pool's name sets them for each of its members.
  void SetExceptionHandler(std::string_view name, ExceptionHandler<T>& handler) {
    exception_handlers_[std::string(name)] = &handler;
  }
  void SetRewindStrategy(std::string_view name, RewindStrategy& strategy) {
    rewind_strategies_[std::string(name)] = &strategy;
  }

  // Registers every stage not registered yet (upstream first; stages of other processes
  // named in after() are waited for up to register_timeout_ns), then starts one thread per
  // stage. Stages gate from when they were added, so none misses an event published since.
  absl::Status Start() {
    if (started_) return absl::FailedPreconditionError("the pipeline was already started");
    if (!add_error_.ok()) {  // refused: the stages registered when added leave again
      for (auto& stage : stages_) stage->consumer.reset();
      return add_error_;
    }
    if (stages_.empty()) return absl::FailedPreconditionError("the pipeline has no stages");
    if (absl::Status s = internal::RegisterStages(ring_->segment(), stages_, options_); !s.ok()) {
      return s;
    }
    started_ = true;
    for (auto& stage : stages_) stage->bind(*stage);
    // Release: a Halt() that sees it running sees every stage's halt function.
    running_.store(true, std::memory_order_release);
    for (auto& stage : stages_) {
      internal::PipelineStage* st = stage.get();
      st->thread = std::thread([this, st] { RunStageThread(*st); });
    }
    return absl::OkStatus();
  }

  // Asks every stage to stop after the batch in hand. Any thread; async-signal-safe once
  // Start() has returned (atomics and futex wakes only).
  void Halt() {
    if (!running_.load(std::memory_order_acquire)) return;
    for (auto& stage : stages_) {
      if (stage->halt) stage->halt();
    }
  }

  // Waits for every stage to end (the stream closed, Halt, a failure), has each leave the
  // ring, and returns how each ended, in the order the stages were added.
  std::vector<StageResult> Join() {
    std::vector<StageResult> results;
    if (!started_) return results;
    for (auto& stage : stages_) {
      if (stage->thread.joinable()) stage->thread.join();
    }
    running_.store(false, std::memory_order_release);
    for (auto& stage : stages_) {
      // (halt and the consumer stay until the pipeline goes: a Halt() from another thread
      // that saw the pipeline running may be calling it now; halting a processor that ended,
      // on a consumer that left the ring, does nothing)
      stage->run = nullptr;
      stage->failure = nullptr;
      if (stage->consumer && stage->consumer->registered()) {  // (a second Join: as before)
        stage->result.events = stage->consumer->ring().consumer(
            static_cast<std::size_t>(stage->consumer->index())).events.load(
                std::memory_order_relaxed);
        stage->result.handler_errors = stage->consumer->handler_errors();
        stage->result.sequence = stage->consumer->sequence();
        (void)stage->consumer->Deregister();
      }
      results.push_back(stage->result);
    }
    return results;
  }

  // The first mistake in building the pipeline: a bad or taken stage name (also returned by
  // Start()), or a stage added after Start() (refused: it is neither added nor registered).
  absl::Status error() const { return !late_error_.ok() ? late_error_ : add_error_; }

  // Start, then Join.
  absl::StatusOr<std::vector<StageResult>> Run() {
    if (absl::Status s = Start(); !s.ok()) return s;
    return Join();
  }

 private:
  friend class StageGroup<T>;

  template <typename... S>
  StageGroup<T> Add(const std::vector<std::string>& after, S... specs) {
    std::vector<std::string> names;
    if (started_) {  // (the Disruptor's IllegalStateException): nothing is added or registered
      if (late_error_.ok()) {
        late_error_ = absl::FailedPreconditionError(
            "a stage was added after the pipeline started; add every stage before Start()");
      }
      return StageGroup<T>(this, std::move(names));
    }
    (AddOne(after, specs, &names), ...);
    return StageGroup<T>(this, std::move(names));
  }

  template <typename H>
  void AddOne(const std::vector<std::string>& after, const StageSpec<H>& spec,
              std::vector<std::string>* names, const std::string& group = {}) {
    static_assert(EventHandler<H, T>, "a stage's handler needs on_event(T&, int64_t, bool)");
    internal::PipelineStage& stage = NewStage(after, spec.name, spec.options, names);
    stage.group = group;
    H* handler = spec.handler;
    Ring<T>* ring = ring_;
    stage.bind = [this, ring, handler](internal::PipelineStage& self) {
      auto processor = std::make_shared<BatchEventProcessor<T, H>>(
          *ring, *self.consumer, *handler, self.options.processor);
      if (ExceptionHandler<T>* h = ExceptionHandlerFor(self)) {
        processor->SetExceptionHandler(*h);
      }
      if (RewindStrategy* r = ForStage(rewind_strategies_, self)) {
        processor->SetRewindStrategy(*r);
      }
      self.run = [processor] { return processor->Run(); };
      self.halt = [processor] { processor->Halt(); };
      self.failure = [processor] { return processor->failure(); };
    };
    RegisterAdded();
  }

  template <typename H>
  void AddOne(const std::vector<std::string>& after, const WorkerPoolSpec<H>& spec,
              std::vector<std::string>* names) {
    static_assert(EventHandler<H, T>, "a worker's handler needs on_event(T&, int64_t, bool)");
    if (spec.handlers.empty() && add_error_.ok()) {
      add_error_ = absl::InvalidArgumentError(
          absl::StrFormat("worker pool '%s' has no handlers", spec.group));
    }
    std::vector<std::string> members;
    for (std::size_t i = 0; i < spec.handlers.size(); ++i) {
      AddOne(after, StageSpec<H>{absl::StrFormat("%s.%d", spec.group, i), spec.handlers[i],
                                 spec.options},
             &members, spec.group);
    }
    names->push_back(spec.group);  // what runs after the pool runs after the group
  }

  internal::PipelineStage& NewStage(const std::vector<std::string>& after,
                                    const std::string& name, const StageOptions& options,
                                    std::vector<std::string>* names) {
    auto stage = std::make_unique<internal::PipelineStage>();
    stage->name = name;
    stage->after = after;
    stage->options = options;
    stage->result.name = name;
    names->push_back(name);
    stages_.push_back(std::move(stage));
    return *stages_.back();
  }

  // Gate from now on (as the Disruptor's handleEventsWith does): nothing published before
  // Start() is lost to the stage just added. A stage after one that is not registered yet
  // (another process's) registers at Start().
  void RegisterAdded() {
    if (add_error_.ok()) {
      add_error_ = internal::RegisterEarly(ring_->segment(), stages_, *stages_.back());
    }
  }

  template <typename Factory>
  void AddOne(const std::vector<std::string>& after, const ProcessorSpec<Factory>& spec,
              std::vector<std::string>* names) {
    internal::PipelineStage& stage = NewStage(after, spec.name, spec.options, names);
    Ring<T>* ring = ring_;
    stage.bind = [ring, factory = spec.factory](internal::PipelineStage& self) {
      std::shared_ptr processor(factory(*ring, *self.consumer));
      self.run = [processor] { return processor->Run(); };
      self.halt = [processor] { processor->Halt(); };
      self.failure = [] { return std::optional<HandlerFailure>(); };
    };
    RegisterAdded();
  }

  // What was set for the stage's name, else (a worker pool's member) for its pool's name.
  template <typename V>
  static V* ForStage(const std::map<std::string, V*>& set, const internal::PipelineStage& stage) {
    for (const std::string* key : {&stage.name, &stage.group}) {
      if (key->empty()) continue;
      if (auto it = set.find(*key); it != set.end()) return it->second;
    }
    return nullptr;
  }
  ExceptionHandler<T>* ExceptionHandlerFor(const internal::PipelineStage& stage) const {
    ExceptionHandler<T>* h = ForStage(exception_handlers_, stage);
    return h != nullptr ? h : default_exception_handler_;
  }

  void RunStageThread(internal::PipelineStage& stage) {
    stage.result.status = stage.run();
    stage.result.failure = stage.failure();
    if (stage.result.status == WaitStatus::kHandlerFailed && options_.halt_all_on_failure) {
      Halt();
    }
  }

  Ring<T>* ring_;
  PipelineOptions options_;
  std::vector<std::unique_ptr<internal::PipelineStage>> stages_;
  absl::Status add_error_;
  absl::Status late_error_;  // a stage added after Start()  // the first failure of an early registration, told by Start()
  ExceptionHandler<T>* default_exception_handler_ = nullptr;
  std::map<std::string, ExceptionHandler<T>*> exception_handlers_;
  std::map<std::string, RewindStrategy*> rewind_strategies_;
  bool started_ = false;
  std::atomic<bool> running_{false};  // between Start() and the end of Join()
};

// --- One stage per program, configured by its environment (the pipeline launcher) ---

// What the launcher tells a stage program:
//   XDISRUPTOR_RING            ring name                        (required)
//   XDISRUPTOR_STAGE           this stage's consumer name       (required)
//   XDISRUPTOR_AFTER           comma-separated upstream names
//   XDISRUPTOR_WAIT            wait strategy name (default blocking)
//   XDISRUPTOR_WAIT_PARAMS     key=value,... as wait_strategy.h's ParseWaitParams reads them
//                              (kWaitParams: counts, times in seconds, fallback)
//   XDISRUPTOR_STALL_POLICY    hold | evict (EnumNames<StallPolicy>::kTable)
//   XDISRUPTOR_ERROR_POLICY    stop | skip | retry (EnumNames<ErrorPolicy>::kTable)
//   XDISRUPTOR_MAX_RETRIES (XDISRUPTOR_RETRIES, deprecated), XDISRUPTOR_RETRY_PAUSE
//                              (seconds), XDISRUPTOR_MAX_BATCH
//   XDISRUPTOR_MAX_LAG, XDISRUPTOR_MAX_LAG_S  the slow-consumer limit (events, seconds)
//   XDISRUPTOR_ATTACH_TIMEOUT  seconds to wait for the ring and upstream stages (default 10)
//   XDISRUPTOR_GROUP, XDISRUPTOR_CLAIM  a worker group's member: the group, events per claim
//   XDISRUPTOR_KEEP_ON_FAILURE 1: a stage that fails keeps its entry, as a crash would
//                              (Consumer::Abandon), so a restart by name resumes where it
//                              failed (the launcher's restart = "on-failure")
struct StageEnvironment {
  std::string ring;
  std::string name;
  ConsumerOptions consumer{};
  ProcessorOptions processor{};
  std::int64_t attach_timeout_ns = 10'000'000'000;
  bool keep_on_failure = false;
};
absl::StatusOr<StageEnvironment> StageEnvironmentFromEnv();

namespace internal {
// Registers the stage, retried while an upstream stage is not there yet.
absl::StatusOr<std::unique_ptr<Consumer>> RegisterFromEnvironment(
    RingSegment& ring, const StageEnvironment& env);
// Calls attempt() until it returns something other than NotFound (a ring or an upstream
// stage that is not there yet) or `timeout_ns` passes; returns the last result.
template <typename F>
auto RetryWhileNotFound(std::int64_t timeout_ns, F attempt) -> decltype(attempt()) {
  const std::int64_t deadline = MonotonicNanos() + timeout_ns;
  for (;;) {
    auto result = attempt();
    if (result.ok() || result.status().code() != absl::StatusCode::kNotFound ||
        MonotonicNanos() >= deadline) {
      return result;
    }
    const timespec pause{.tv_sec = 0, .tv_nsec = 10'000'000};
    nanosleep(&pause, nullptr);
  }
}
// Makes SIGINT and SIGTERM call halt(arg) (once; then the default action is restored).
void HaltOnSignals(void (*halt)(void*), void* arg);
// The stage's last line on stdout, and its exit code: 0 when the stream ended or a signal
// stopped it, 1 otherwise (the reason on stderr).
int ReportStage(const StageEnvironment& env, WaitStatus why, std::uint64_t events,
                std::uint64_t handler_errors, const std::optional<HandlerFailure>& failure);
}  // namespace internal

// Runs `handler` as the stage the environment describes, until the stream ends, a signal
// stops it, or its error policy does. Returns the program's exit code. `expected_schema`
// (if not empty) must match the ring's.
template <typename T, EventHandler<T> H>
int RunStage(H& handler, std::string_view expected_schema = {}) {
  auto env = StageEnvironmentFromEnv();
  if (!env.ok()) return internal::ReportStage({}, WaitStatus::kHalted, 0, 0,
                                              HandlerFailure{.what = std::string(
                                                  env.status().message())});
  auto ring = internal::RetryWhileNotFound(env->attach_timeout_ns, [&] {
    return Ring<T>::Attach(env->ring, {.expected_schema = std::string(expected_schema)});
  });
  if (!ring.ok()) return internal::ReportStage(*env, WaitStatus::kHalted, 0, 0,
                                               HandlerFailure{.what = std::string(
                                                   ring.status().message())});
  auto consumer = internal::RegisterFromEnvironment(ring->segment(), *env);
  if (!consumer.ok()) return internal::ReportStage(*env, WaitStatus::kHalted, 0, 0,
                                                   HandlerFailure{.what = std::string(
                                                       consumer.status().message())});
  BatchEventProcessor<T, H> processor(*ring, **consumer, handler, env->processor);
  internal::HaltOnSignals(
      [](void* p) { static_cast<BatchEventProcessor<T, H>*>(p)->Halt(); }, &processor);
  const WaitStatus why = processor.Run();
  const int code = internal::ReportStage(*env, why, (*consumer)->ring().consumer(
      static_cast<std::size_t>((*consumer)->index())).events.load(std::memory_order_relaxed),
      (*consumer)->handler_errors(), processor.failure());
  if (code != 0 && env->keep_on_failure) (*consumer)->Abandon();
  return code;
}

}  // namespace xdisruptor

#endif  // XDISRUPTOR_PIPELINE_H_
