// Consumers: register by name, wait (GIL released, Ctrl-C checked), release, halt, leave.
#include <algorithm>
#include <optional>
#include <vector>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

class PyConsumer {
 public:
  PyConsumer(const PyRing& ring, const std::string& name, const std::vector<std::string>& after,
             const std::string& wait, const py::dict& params, const std::string& stall_policy,
             bool rejoin_at_cursor)
      : ring_(ring.segment) {
    ConsumerOptions options{.after = after,
                            .wait = ParseWait(wait, params),
                            .stall_policy = Unwrap(ParseEnum<StallPolicy>(stall_policy)),
                            .rejoin_at_cursor = rejoin_at_cursor};
    consumer_.emplace(
        Unwrap(Consumer::Register(ring.get(), name, options), ErrorSubject::kConsumer));
  }

  // Waits for `sequence` with the GIL released; returns (available, status name). Every
  // kPollNs it takes the GIL back to let Ctrl-C (or any signal handler) raise.
  py::tuple WaitFor(std::int64_t sequence) {
    const WaitResult r = Wait(sequence);
    return py::make_tuple(r.available, std::string(WaitStatusName(r.status)));
  }

  // The next batch in one call: releases the batch handed out before (if any), waits for the
  // next sequence, and returns (first, count, status) for at most `limit` events that do not
  // wrap around the ring's end. The batch stays pending (unreleased) until the next call or
  // ReleasePending().
  py::tuple NextRange(std::int64_t limit) {
    ReleasePending();
    Consumer& c = get();
    const std::int64_t first = c.sequence() + 1;
    const WaitResult waited = Wait(first);
    if (waited.status != WaitStatus::kOk) {
      return py::make_tuple(first, 0, std::string(WaitStatusName(waited.status)));
    }
    const std::int64_t available = waited.available;
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t to_end = capacity - (first & (capacity - 1));
    const std::int64_t count = std::min({available - first + 1, limit, to_end});
    pending_last_ = first + count - 1;
    pending_count_ = count;
    return py::make_tuple(first, count, "ok");
  }

  void ReleasePending() {
    if (pending_count_ > 0 && consumer_) {
      consumer_->Release(pending_last_, static_cast<std::uint64_t>(pending_count_));
    }
    pending_count_ = 0;
  }

  // Forgets the batch handed out without releasing it: it will be delivered again.
  void DiscardPending() { pending_count_ = 0; }

  // Available now, without waiting.
  std::int64_t Available() { return get().barrier().Available(); }

  void Release(std::int64_t sequence, std::uint64_t events) { get().Release(sequence, events); }
  void Halt() { get().barrier().Alert(); }
  void ClearHalt() { get().barrier().ClearAlert(); }
  void Deregister() {
    if (consumer_) {
      const absl::Status s = consumer_->Deregister();
      consumer_.reset();
      if (!s.ok()) ThrowStatus(s);
    }
  }
  Consumer& get() {
    if (!consumer_) ThrowStatus(absl::FailedPreconditionError("the consumer has left the ring"));
    return *consumer_;
  }
  bool closed() const { return !consumer_; }

 private:
  WaitResult Wait(std::int64_t sequence) {
    Consumer& c = get();
    for (;;) {
      WaitResult r;
      {
        py::gil_scoped_release release;
        r = c.barrier().WaitFor(sequence, kPollNs);
      }
      if (r.status != WaitStatus::kCheckpoint) return r;
      CheckSignals();
    }
  }

  std::shared_ptr<RingSegment> ring_;
  std::optional<Consumer> consumer_;
  std::int64_t pending_last_ = -1;
  std::int64_t pending_count_ = 0;
};

}  // namespace

void RegisterConsumer(py::module_& m) {
  py::class_<PyConsumer>(m, "RawConsumer")
      .def(py::init<const PyRing&, const std::string&, const std::vector<std::string>&,
                    const std::string&, const py::dict&, const std::string&, bool>(),
           py::arg("ring"), py::arg("name"), py::arg("after"), py::arg("wait"),
           py::arg("params"), py::arg("stall_policy") = "hold",
           py::arg("rejoin_at_cursor") = false)
      .def_property_readonly("resumed", [](PyConsumer& c) { return c.get().resumed(); })
      .def_property_readonly("missed", [](PyConsumer& c) { return c.get().missed(); })
      .def_property_readonly("handler_errors",
                             [](PyConsumer& c) { return c.get().handler_errors(); })
      .def_property_readonly("events", [](PyConsumer& c) { return c.get().events(); })
      .def("count_handler_error", [](PyConsumer& c) { c.get().CountHandlerError(); })
      .def("wait_for", &PyConsumer::WaitFor, py::arg("sequence"))
      .def("next_range", &PyConsumer::NextRange, py::arg("limit"))
      .def("release_pending", &PyConsumer::ReleasePending)
      .def("discard_pending", &PyConsumer::DiscardPending)
      .def("available", &PyConsumer::Available)
      .def("release", &PyConsumer::Release, py::arg("sequence"), py::arg("events"))
      .def("halt", &PyConsumer::Halt)
      .def("clear_halt", &PyConsumer::ClearHalt)
      .def("deregister", &PyConsumer::Deregister)
      .def_property_readonly("closed", &PyConsumer::closed)
      .def_property_readonly("sequence", [](PyConsumer& c) { return c.get().sequence(); })
      .def_property_readonly("join_sequence",
                             [](PyConsumer& c) { return c.get().join_sequence(); })
      .def_property_readonly("index", [](PyConsumer& c) { return c.get().index(); })
      .def_property_readonly("name", [](PyConsumer& c) { return std::string(c.get().name()); });
}

}  // namespace xdisruptor::python
