// The compiled half of the xdisruptor Python package: xdisruptor._xdisruptor.
#include <Python.h>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

py::object ErrorClass(const char* name) {
  return py::module_::import("xdisruptor.errors").attr(name);
}

}  // namespace

void ThrowStatus(const absl::Status& status, ErrorSubject subject) {
  const char* name = "Error";
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      name = subject == ErrorSubject::kRing       ? "RingNotFoundError"
             : subject == ErrorSubject::kConsumer ? "ConsumerNotFoundError"
                                                  : "NotFoundError";
      break;
    case absl::StatusCode::kAlreadyExists:
      name = subject == ErrorSubject::kRing       ? "RingExistsError"
             : subject == ErrorSubject::kConsumer ? "NameTakenError"
                                                  : "AlreadyExistsError";
      break;
    case absl::StatusCode::kInvalidArgument: name = "InvalidArgumentError"; break;
    case absl::StatusCode::kFailedPrecondition: name = "StateError"; break;
    case absl::StatusCode::kDataLoss: name = "CorruptRingError"; break;
    case absl::StatusCode::kUnavailable: name = "UnavailableError"; break;
    case absl::StatusCode::kResourceExhausted: name = "TableFullError"; break;
    case absl::StatusCode::kPermissionDenied: name = "PermissionDeniedError"; break;
    case absl::StatusCode::kDeadlineExceeded: name = "TimeoutError"; break;
    case absl::StatusCode::kOutOfRange: name = "MissedEventsError"; break;
    default: break;
  }
  const py::object cls = ErrorClass(name);
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
    if (key == "spin_tries") {
      p.spin_tries = value.cast<std::uint32_t>();
    } else if (key == "yield_tries") {
      p.yield_tries = value.cast<std::uint32_t>();
    } else if (key == "sleep_ceiling") {
      p.sleep_ceiling_ns = static_cast<std::int64_t>(value.cast<double>() * 1e9);
    } else if (key == "timeout") {
      p.timeout_ns = static_cast<std::int64_t>(value.cast<double>() * 1e9);
    } else if (key == "phase_spin") {
      p.phase_spin_ns = static_cast<std::int64_t>(value.cast<double>() * 1e9);
    } else if (key == "phase_yield") {
      p.phase_yield_ns = static_cast<std::int64_t>(value.cast<double>() * 1e9);
    } else if (key == "fallback") {
      p.fallback_kind = Unwrap(ParseWaitKind(value.cast<std::string>()));
    } else {
      ThrowStatus(absl::InvalidArgumentError(
          "unknown wait parameter '" + key +
          "'; use spin_tries, yield_tries, sleep_ceiling, timeout, phase_spin, phase_yield, "
          "fallback (times in seconds)"));
    }
  }
  if (absl::Status s = ValidateWaitParams(p); !s.ok()) ThrowStatus(s);
  return p;
}

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
  xdisruptor::python::RegisterRing(m);
  xdisruptor::python::RegisterProducer(m);
  xdisruptor::python::RegisterConsumer(m);
}
