// bindings.h — what the pybind11 module's parts share: the process-side objects Python holds,
// and the translation of absl::Status into the xdisruptor.errors exception classes.
//
// Every Python-side object keeps the mapping alive through a shared_ptr<RingSegment>, and so
// does every numpy view (its base is a capsule holding one): a view outliving ring.close() stays
// valid memory. Waits release the GIL and return to Python every kPollNs to check for signals.
#ifndef XDISRUPTOR_PYTHON_SRC_BINDINGS_H_
#define XDISRUPTOR_PYTHON_SRC_BINDINGS_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/journal.h"  // (also makes consumers understand journal=)
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor::python {

namespace py = pybind11;

inline constexpr std::int64_t kPollNs = 50'000'000;  // 50 ms between signal checks

// Which subclass of NotFoundError / AlreadyExistsError a status of that code becomes.
enum class ErrorSubject { kRing, kConsumer, kJournal, kOther };

// Raises the exception of xdisruptor.errors that matches `status`.
[[noreturn]] void ThrowStatus(const absl::Status& status,
                              ErrorSubject subject = ErrorSubject::kOther);
// Raises if Python has a pending signal (Ctrl-C): call with the GIL held.
void CheckSignals();

template <typename T>
T Unwrap(absl::StatusOr<T> value, ErrorSubject subject = ErrorSubject::kOther) {
  if (!value.ok()) ThrowStatus(value.status(), subject);
  return *std::move(value);
}

struct PyRing {
  std::shared_ptr<RingSegment> segment;

  RingSegment& get() const;  // raises StateError once closed
  // A numpy view of `count` slots from `first`, which must not wrap around the ring's end.
  py::array View(std::int64_t first, std::int64_t count, const py::dtype& dtype,
                 bool writable) const;
};

// A wait strategy from Python: kind name and keyword parameters (seconds, counts), through
// the one C++ parser (SetWaitParam); and back.
WaitParams ParseWait(const std::string& kind, const py::dict& params);
py::dict WaitParamsDict(const WaitParams& params);

void RegisterRing(py::module_& m);
void RegisterMetrics(py::module_& m);
void RegisterProducer(py::module_& m);
void RegisterConsumer(py::module_& m);
void RegisterJournal(py::module_& m);

}  // namespace xdisruptor::python

#endif  // XDISRUPTOR_PYTHON_SRC_BINDINGS_H_
