// The pipeline's registration order, and stage programs' environment.
#include "xdisruptor/pipeline.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>

#include "absl/strings/str_format.h"

namespace xdisruptor {

namespace {

// Splits on `sep`, dropping empty pieces and surrounding spaces (Debian's absl::StrSplit
// wants its own string_view; this stays with std::string_view).
std::vector<std::string> SplitList(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view piece = text.substr(start, end - start);
    while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    if (!piece.empty()) out.emplace_back(piece);
    start = end + 1;
  }
  return out;
}

// A number >= 0 from the environment (seconds, counts).
absl::StatusOr<double> ParseNumber(std::string_view key, const std::string& value) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !(v >= 0) || v > 1e15) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s=%s: expected a number >= 0", key, value));
  }
  return v;
}

std::string Env(std::string_view key) {
  const char* v = std::getenv(std::string(key).c_str());
  return v ? std::string(v) : std::string();
}

// The variable's value, or that of its deprecated spelling (with a warning on stderr).
std::string EnvOrDeprecated(std::string_view key, std::string_view old_key) {
  std::string value = Env(key);
  if (value.empty() && !(value = Env(old_key)).empty()) {
    std::fprintf(stderr, "xdisruptor: %.*s is deprecated; set %.*s\n",
                 static_cast<int>(old_key.size()), old_key.data(), static_cast<int>(key.size()),
                 key.data());
  }
  return value;
}

}  // namespace

absl::StatusOr<StageEnvironment> StageEnvironmentFromEnv() {
  StageEnvironment env;
  env.ring = Env("XDISRUPTOR_RING");
  env.name = Env("XDISRUPTOR_STAGE");
  if (env.ring.empty() || env.name.empty()) {
    return absl::InvalidArgumentError(
        "XDISRUPTOR_RING and XDISRUPTOR_STAGE must name the ring and this stage (the "
        "pipeline launcher sets them: python3 -m xdisruptor.pipeline run FILE)");
  }
  env.consumer.after = SplitList(Env("XDISRUPTOR_AFTER"), ',');
  const std::string wait = Env("XDISRUPTOR_WAIT");
  auto kind = ParseWaitKind(wait.empty() ? "blocking" : wait);
  if (!kind.ok()) return kind.status();
  env.consumer.wait.kind = *kind;
  if (absl::Status s = ParseWaitParams(Env("XDISRUPTOR_WAIT_PARAMS"), &env.consumer.wait);
      !s.ok()) {
    return s;
  }
  const std::string stall = Env("XDISRUPTOR_STALL_POLICY");
  auto stall_policy = ParseEnum<StallPolicy>(stall.empty() ? "hold" : stall);
  if (!stall_policy.ok()) return stall_policy.status();
  env.consumer.stall_policy = *stall_policy;
  const std::string policy = Env("XDISRUPTOR_ERROR_POLICY");
  auto error_policy = ParseEnum<ErrorPolicy>(policy.empty() ? "stop" : policy);
  if (!error_policy.ok()) return error_policy.status();
  env.processor.error_policy = *error_policy;
  const std::tuple<const char*, std::string, int> numbers[] = {
      {"XDISRUPTOR_MAX_RETRIES", EnvOrDeprecated("XDISRUPTOR_MAX_RETRIES", "XDISRUPTOR_RETRIES"),
       0},
      {"XDISRUPTOR_RETRY_PAUSE", Env("XDISRUPTOR_RETRY_PAUSE"), 1},
      {"XDISRUPTOR_MAX_BATCH", Env("XDISRUPTOR_MAX_BATCH"), 2},
      {"XDISRUPTOR_ATTACH_TIMEOUT", Env("XDISRUPTOR_ATTACH_TIMEOUT"), 3},
      {"XDISRUPTOR_MAX_LAG", Env("XDISRUPTOR_MAX_LAG"), 4},
      {"XDISRUPTOR_MAX_LAG_S", Env("XDISRUPTOR_MAX_LAG_S"), 5}};
  for (const auto& [key, text, which] : numbers) {
    if (text.empty()) continue;
    auto v = ParseNumber(key, text);
    if (!v.ok()) return v.status();
    switch (which) {
      case 0: env.processor.max_retries = static_cast<int>(std::min(*v, 1e6)); break;
      case 1: env.processor.retry_pause_ns = static_cast<std::int64_t>(*v * 1e9); break;
      case 2: env.processor.max_batch = static_cast<std::int64_t>(*v); break;
      case 3: env.attach_timeout_ns = static_cast<std::int64_t>(*v * 1e9); break;
      case 4: env.consumer.max_lag = static_cast<std::int64_t>(*v); break;
      default: env.consumer.max_lag_ns = static_cast<std::int64_t>(*v * 1e9); break;
    }
  }
  // Catching up from a journal (docs/journal.md): where to start, and the journal directory.
  if (const std::string start = Env("XDISRUPTOR_START_AT"); !start.empty()) {
    auto v = ParseNumber("XDISRUPTOR_START_AT", start);
    if (!v.ok()) return v.status();
    env.consumer.start_at = static_cast<std::int64_t>(*v);
  }
  env.consumer.journal = Env("XDISRUPTOR_JOURNAL");
  // A member of a worker group (the launcher's `workers = N`): the group, events per claim.
  env.consumer.group = Env("XDISRUPTOR_GROUP");
  if (const std::string claim = Env("XDISRUPTOR_CLAIM"); !claim.empty()) {
    auto v = ParseNumber("XDISRUPTOR_CLAIM", claim);
    if (!v.ok()) return v.status();
    env.consumer.claim = static_cast<std::int64_t>(*v);
  }
  // The launcher's restart = "on-failure": a failed stage keeps its entry for the restart.
  if (const std::string keep = Env("XDISRUPTOR_KEEP_ON_FAILURE"); !keep.empty()) {
    if (keep != "0" && keep != "1") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "XDISRUPTOR_KEEP_ON_FAILURE=%s: expected 0 or 1", keep));
    }
    env.keep_on_failure = keep == "1";
  }
  if (absl::Status s = ValidateProcessorOptions(env.processor); !s.ok()) return s;
  return env;
}

namespace internal {
namespace {

ConsumerOptions ConsumerOptionsOf(const PipelineStage& stage) {
  return {.after = stage.after,
          .wait = stage.options.wait,
          .stall_policy = stage.options.stall_policy,
          .max_lag = stage.options.max_lag,
          .max_lag_ns = stage.options.max_lag_ns,
          .group = stage.group,
          .claim = stage.options.claim};
}

}  // namespace

absl::StatusOr<std::vector<std::size_t>> RegistrationOrder(
    const std::vector<std::unique_ptr<PipelineStage>>& stages) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const std::string& name = stages[i]->name;
    if (name.empty() || name.size() > kMaxNameLength - 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "stage %d: a stage name has 1 to %d characters", i, kMaxNameLength - 1));
    }
    if (!index.emplace(name, i).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "two stages are called '%s'; each stage needs its own name", name));
    }
  }
  // A worker pool's name stands for its members: stages after it come after all of them.
  std::map<std::string, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (stages[i]->group.empty()) continue;
    if (index.count(stages[i]->group) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "worker pool '%s' has the name of a stage; each needs its own name",
          stages[i]->group));
    }
    groups[stages[i]->group].push_back(i);
  }
  // Depth-first topological order; 0 unvisited, 1 on the path, 2 done.
  std::vector<int> mark(stages.size(), 0);
  std::vector<std::size_t> order;
  std::function<absl::Status(std::size_t)> visit = [&](std::size_t i) -> absl::Status {
    if (mark[i] == 2) return absl::OkStatus();
    if (mark[i] == 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "stage '%s' runs after itself through a cycle of after() names", stages[i]->name));
    }
    mark[i] = 1;
    for (const std::string& up : stages[i]->after) {
      if (up == stages[i]->name) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "stage '%s' cannot run after itself", up));
      }
      if (auto g = groups.find(up); g != groups.end()) {
        for (std::size_t member : g->second) {
          if (member == i) {
            return absl::InvalidArgumentError(absl::StrFormat(
                "stage '%s' cannot run after its own worker pool", stages[i]->name));
          }
          if (absl::Status s = visit(member); !s.ok()) return s;
        }
        continue;
      }
      auto it = index.find(up);
      if (it == index.end()) continue;  // a stage of another process
      if (absl::Status s = visit(it->second); !s.ok()) return s;
    }
    mark[i] = 2;
    order.push_back(i);
    return absl::OkStatus();
  };
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (absl::Status s = visit(i); !s.ok()) return s;
  }
  return order;
}

absl::Status RegisterStages(RingSegment& ring,
                            const std::vector<std::unique_ptr<PipelineStage>>& stages,
                            const PipelineOptions& options) {
  // Refused: the stages registered when they were added leave again.
  const auto leave_all = [&stages] {
    for (const auto& done : stages) done->consumer.reset();
  };
  auto order = RegistrationOrder(stages);
  if (!order.ok()) {
    leave_all();
    return order.status();
  }
  for (const auto& stage : stages) {
    if (absl::Status s = ValidateProcessorOptions(stage->options.processor); !s.ok()) {
      leave_all();
      return absl::InvalidArgumentError(absl::StrFormat("stage '%s': %s", stage->name,
                                                        s.message()));
    }
  }
  for (std::size_t i : *order) {
    PipelineStage& stage = *stages[i];
    if (stage.consumer) continue;  // registered when it was added
    const ConsumerOptions consumer_options = ConsumerOptionsOf(stage);
    auto consumer = RetryWhileNotFound(options.register_timeout_ns, [&] {
      return Consumer::Register(ring, stage.name, consumer_options);
    });
    if (!consumer.ok()) {
      leave_all();
      return absl::Status(consumer.status().code(),
                          absl::StrFormat("stage '%s': %s", stage.name,
                                          consumer.status().message()));
    }
    stage.consumer = std::make_unique<Consumer>(*std::move(consumer));
  }
  return absl::OkStatus();
}

absl::Status RegisterEarly(RingSegment& ring,
                           const std::vector<std::unique_ptr<PipelineStage>>& stages,
                           PipelineStage& stage) {
  for (const auto& other : stages) {
    if (other.get() != &stage && other->name == stage.name) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "two stages are called '%s'; each stage needs its own name", stage.name));
    }
  }
  for (const std::string& up : stage.after) {
    if (!FindConsumer(ring, up).ok()) return absl::OkStatus();  // at Start
  }
  if (absl::Status s = ValidateProcessorOptions(stage.options.processor); !s.ok()) return s;
  auto consumer = Consumer::Register(ring, stage.name, ConsumerOptionsOf(stage));
  if (!consumer.ok()) {
    return absl::Status(consumer.status().code(), absl::StrFormat(
        "stage '%s': %s", stage.name, consumer.status().message()));
  }
  stage.consumer = std::make_unique<Consumer>(*std::move(consumer));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Consumer>> RegisterFromEnvironment(RingSegment& ring,
                                                                  const StageEnvironment& env) {
  auto consumer = RetryWhileNotFound(env.attach_timeout_ns, [&] {
    return Consumer::Register(ring, env.name, env.consumer);
  });
  if (!consumer.ok()) return consumer.status();
  return std::make_unique<Consumer>(*std::move(consumer));
}

namespace {
void (*g_halt)(void*) = nullptr;
void* g_halt_arg = nullptr;

void OnSignal(int sig) {
  if (g_halt != nullptr) g_halt(g_halt_arg);
  signal(sig, SIG_DFL);  // a second Ctrl-C ends the program at once
}
}  // namespace

void HaltOnSignals(void (*halt)(void*), void* arg) {
  g_halt = halt;
  g_halt_arg = arg;
  struct sigaction action{};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int ReportStage(const StageEnvironment& env, WaitStatus why, std::uint64_t events,
                std::uint64_t handler_errors, const std::optional<HandlerFailure>& failure) {
  const std::string name = env.name.empty() ? "?" : env.name;
  if (failure.has_value()) {
    if (failure->sequence >= 0) {
      std::fprintf(stderr, "stage %s: failed on event %lld after %d attempt%s: %s\n",
                   name.c_str(), static_cast<long long>(failure->sequence), failure->attempts,
                   failure->attempts == 1 ? "" : "s", failure->what.c_str());
    } else {
      std::fprintf(stderr, "stage %s: %s\n", name.c_str(), failure->what.c_str());
    }
  } else if (why != WaitStatus::kClosed && why != WaitStatus::kHalted) {
    std::fprintf(stderr, "stage %s: stopped: %s\n", name.c_str(), std::string(WaitStatusDescription(why)).c_str());
  }
  std::printf("stage %s: %s, %llu events, %llu handler errors\n", name.c_str(), std::string(WaitStatusDescription(why)).c_str(),
              static_cast<unsigned long long>(events),
              static_cast<unsigned long long>(handler_errors));
  std::fflush(stdout);
  const bool ok = !failure.has_value() &&
                  (why == WaitStatus::kClosed || why == WaitStatus::kHalted);
  return ok ? 0 : 1;
}

}  // namespace internal
}  // namespace xdisruptor
