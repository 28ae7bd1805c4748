// The compiled half of the xdisruptor Python package: xdisruptor._xdisruptor.
//
// Besides the raw classes it exports the vocabulary every surface shares, read from the C++
// name tables (names.h, wait_strategy.h, wait_status.h, error_policy.h): the Python package
// builds its enums and checks from these, never from copies.
#include <Python.h>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

py::object ErrorClass(const char* code, ErrorSubject subject) {
  static constexpr const char* kSubjects[] = {"ring", "consumer", "journal", ""};
  return py::module_::import("xdisruptor.errors")
      .attr("error_class")(code, kSubjects[static_cast<int>(subject)]);
}

template <typename Table>
py::tuple Names(const Table& table) {
  py::list names;
  for (const auto& entry : table) names.append(std::string(entry.name));
  return py::tuple(names);
}

}  // namespace

void ThrowStatus(const absl::Status& status, ErrorSubject subject) {
  const std::string code = absl::StatusCodeToString(status.code());
  const py::object cls = ErrorClass(code.c_str(), subject);
  PyErr_SetString(cls.ptr(), std::string(status.message()).c_str());
  throw py::error_already_set();
}

void CheckSignals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

WaitParams ParseWait(const std::string& kind, const py::dict& params) {
  WaitParams p;
  p.kind = Unwrap(ParseWaitKind(kind));
  for (auto item : params) {
    const std::string key = py::str(item.first);
    const py::handle value = item.second;
    absl::Status s;
    if (py::isinstance<py::str>(value)) {
      s = SetWaitParam(p, key, value.cast<std::string>());
    } else if (py::isinstance<py::bool_>(value) || !py::isinstance<py::float_>(value) &&
                                                       !py::isinstance<py::int_>(value)) {
      s = absl::InvalidArgumentError(absl::StrFormat(
          "wait parameter %s=%s: expected a number", key, std::string(py::repr(value))));
    } else {
      s = SetWaitParam(p, key, value.cast<double>());
    }
    if (!s.ok()) ThrowStatus(s);
  }
  if (absl::Status s = ValidateWaitParams(p); !s.ok()) ThrowStatus(s);
  return p;
}

py::dict WaitParamsDict(const WaitParams& params) {
  py::dict d;
  for (const WaitParamInfo& info : kWaitParams) {
    const std::string name(info.name);
    switch (info.unit) {
      case WaitParamUnit::kCount:
        d[name.c_str()] = static_cast<std::uint64_t>(WaitParamNumber(params, info));
        break;
      case WaitParamUnit::kSeconds: d[name.c_str()] = WaitParamNumber(params, info); break;
      case WaitParamUnit::kWaitKind:
        d[name.c_str()] = std::string(WaitKindName(params.fallback_kind));
        break;
    }
  }
  return d;
}

namespace {

// The stage environment as C++ stage programs read it (StageEnvironmentFromEnv): the same
// variables, the same parsers, in Python units.
py::dict StageEnvironmentDict() {
  const StageEnvironment env = Unwrap(StageEnvironmentFromEnv());
  py::dict d;
  d["ring"] = env.ring;
  d["name"] = env.name;
  d["after"] = env.consumer.after;
  d["wait"] = std::string(WaitKindName(env.consumer.wait.kind));
  d["wait_params"] = WaitParamsDict(env.consumer.wait);
  d["stall_policy"] = std::string(NameOf(env.consumer.stall_policy));
  d["error_policy"] = std::string(NameOf(env.processor.error_policy));
  d["max_retries"] = env.processor.max_retries;
  d["retry_pause"] = static_cast<double>(env.processor.retry_pause_ns) / 1e9;
  d["max_batch"] = env.processor.max_batch;
  d["attach_timeout"] = static_cast<double>(env.attach_timeout_ns) / 1e9;
  d["max_lag"] = env.consumer.max_lag;
  d["max_lag_s"] = static_cast<double>(env.consumer.max_lag_ns) / 1e9;
  d["start_at"] = env.consumer.start_at == kAtCursor ? py::object(py::none())
                                                     : py::object(py::int_(env.consumer.start_at));
  d["journal"] = env.consumer.journal;
  d["group"] = env.consumer.group;
  d["claim"] = env.consumer.claim;
  d["keep_on_failure"] = env.keep_on_failure;
  return d;
}

void RegisterVocabulary(py::module_& m) {
  m.attr("LAYOUT_VERSION") = kLayoutVersion;
  m.attr("WAIT_KINDS") = Names(EnumNames<WaitKind>::kTable);
  m.attr("STALL_POLICIES") = Names(EnumNames<StallPolicy>::kTable);
  m.attr("ERROR_POLICIES") = Names(EnumNames<ErrorPolicy>::kTable);
  m.attr("ERROR_ACTIONS") = Names(EnumNames<ErrorAction>::kTable);
  m.attr("WAIT_STATUSES") = Names(kWaitStatuses);  // in value order
  py::list descriptions;
  for (const WaitStatusInfo& info : kWaitStatuses) {
    descriptions.append(std::string(info.description));
  }
  m.attr("WAIT_STATUS_DESCRIPTIONS") = py::tuple(descriptions);
  py::list params;
  for (const WaitParamInfo& info : kWaitParams) {
    params.append(py::make_tuple(std::string(info.name),
                                 info.unit == WaitParamUnit::kCount     ? "count"
                                 : info.unit == WaitParamUnit::kSeconds ? "seconds"
                                                                        : "wait"));
  }
  m.attr("WAIT_PARAMS") = py::tuple(params);
  m.def(
      "wait_params",
      [](const std::string& kind, const py::dict& params) {
        return WaitParamsDict(ParseWait(kind, params));
      },
      py::arg("kind"), py::arg("params"),
      "Checks a wait strategy and its parameters as a consumer would; returns every "
      "parameter's value (counts, seconds, fallback).");
  m.def(
      "error_action",
      [](const std::string& policy, bool rewindable, int attempts, int max_retries) {
        const ProcessorOptions options{.error_policy = Unwrap(ParseEnum<ErrorPolicy>(policy)),
                                       .max_retries = max_retries};
        return std::string(NameOf(PresetAction(options, rewindable, attempts)));
      },
      py::arg("policy"), py::arg("rewindable"), py::arg("attempts"), py::arg("max_retries"),
      "What a preset error policy does about a handler failure (rewind, skip or stop) in a "
      "batch that failed `attempts` times in a row, by the C++ rule (PresetAction).");
  m.def(
      "error_report",
      [](const std::string& action) {
        return std::string(ErrorActionReport(Unwrap(ParseEnum<ErrorAction>(action))));
      },
      py::arg("action"));
  m.def(
      "default_max_batch",
      [](std::uint64_t capacity) { return DefaultMaxBatch(capacity); }, py::arg("capacity"),
      "The batch cap of a consumer that names none, for a ring of this capacity (C++'s "
      "DefaultMaxBatch: half the ring; Python consumers take at most 4096 of it).");
  m.def("stage_environment", &StageEnvironmentDict,
        "The XDISRUPTOR_* stage variables of this process, parsed as C++ stages parse them.");
}

}  // namespace
}  // namespace xdisruptor::python

PYBIND11_MODULE(_xdisruptor, m) {
  m.doc() = "The compiled core of xdisruptor; use the xdisruptor package instead.";
  m.def("evict", [](const std::string& ring, const std::string& consumer) {
    auto seg = xdisruptor::python::Unwrap(xdisruptor::RingSegment::Attach(ring),
                                          xdisruptor::python::ErrorSubject::kRing);
    if (absl::Status s = xdisruptor::EvictConsumer(seg, consumer); !s.ok()) {
      xdisruptor::python::ThrowStatus(s, xdisruptor::python::ErrorSubject::kConsumer);
    }
  });
  xdisruptor::python::RegisterVocabulary(m);
  xdisruptor::python::RegisterRing(m);
  xdisruptor::python::RegisterMetrics(m);
  xdisruptor::python::RegisterProducer(m);
  xdisruptor::python::RegisterConsumer(m);
  xdisruptor::python::RegisterJournal(m);
}
