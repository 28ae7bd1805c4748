// Producers: claim, publish (bytes, numpy arrays), close the stream.
#include <algorithm>
#include <cstring>
#include <optional>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

class PyProducer {
 public:
  // Calls `f` with whichever sequencer this producer has.
  template <typename F>
  decltype(auto) With(F&& f) {
    if (single_) return f(*single_);
    if (!multi_) ThrowStatus(absl::FailedPreconditionError("the producer is closed"));
    return f(*multi_);
  }

  PyProducer(const PyRing& ring, const std::string& wait, const py::dict& params)
      : ring_(ring.segment) {
    const WaitParams w = ParseWait(wait, params);
    if (ring.get().multi_producer()) {
      multi_.emplace(Unwrap(MultiProducerSequencer::Attach(ring.get(), w)));
    } else {
      single_.emplace(Unwrap(SingleProducerSequencer::Attach(ring.get(), w)));
    }
  }

  // Claims n slots, waiting with the GIL released; Ctrl-C interrupts the wait.
  std::int64_t Next(std::int64_t n) {
    CheckSize(n);
    for (;;) {
      std::optional<std::int64_t> hi;
      {
        py::gil_scoped_release release;
        hi = With([&](auto& s) { return s.NextFor(n, kPollNs); });
      }
      if (hi) return *hi;
      CheckSignals();
    }
  }

  std::optional<std::int64_t> TryNext(std::int64_t n) {
    CheckSize(n);
    return With([&](auto& s) { return s.TryNext(n); });
  }

  void Publish(std::int64_t lo, std::int64_t hi) {
    if (lo > hi || hi - lo >= static_cast<std::int64_t>(ring_->capacity())) {
      ThrowStatus(absl::InvalidArgumentError("publish(lo, hi) needs lo <= hi within a claim"));
    }
    With([&](auto& s) { s.Publish(lo, hi); });
  }

  // Publishes `count` records of `itemsize` bytes laid out back to back in `data`.
  void PublishRecords(const char* data, std::int64_t count, std::int64_t itemsize) {
    if (itemsize <= 0 || itemsize > static_cast<std::int64_t>(ring_->slot_size())) {
      ThrowStatus(absl::InvalidArgumentError("record size does not fit the ring's slots"));
    }
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t chunk = std::max<std::int64_t>(1, capacity / 2);
    for (std::int64_t done = 0; done < count;) {
      const std::int64_t n = std::min(chunk, count - done);
      const std::int64_t hi = Next(n);
      {
        py::gil_scoped_release release;
        for (std::int64_t s = hi - n + 1; s <= hi; ++s, data += itemsize) {
          std::memcpy(ring_->slot(s), data, static_cast<std::size_t>(itemsize));
        }
      }
      With([&](auto& s) { s.Publish(hi - n + 1, hi); });
      done += n;
    }
  }

  void Close() {
    With([](auto& s) { s.Close(); });
  }
  void Detach() {
    if (closed()) return;
    const absl::Status s = With([](auto& seq) { return seq.Detach(); });
    single_.reset();
    multi_.reset();
    if (!s.ok()) ThrowStatus(s);
  }
  std::int64_t Cursor() {
    return With([](auto& s) { return s.cursor(); });
  }
  std::int64_t Remaining() {
    return With([](auto& s) { return s.RemainingCapacity(); });
  }
  bool closed() const { return !single_ && !multi_; }

 private:
  void CheckSize(std::int64_t n) const {
    if (n < 1 || n > static_cast<std::int64_t>(ring_->capacity())) {
      ThrowStatus(absl::InvalidArgumentError("claim between 1 and the ring's capacity slots"));
    }
  }

  std::shared_ptr<RingSegment> ring_;
  std::optional<SingleProducerSequencer> single_;
  std::optional<MultiProducerSequencer> multi_;
};

}  // namespace

void RegisterProducer(py::module_& m) {
  py::class_<PyProducer>(m, "RawProducer")
      .def(py::init<const PyRing&, const std::string&, const py::dict&>(), py::arg("ring"),
           py::arg("wait"), py::arg("params"))
      .def("next", &PyProducer::Next, py::arg("n") = 1)
      .def("try_next", &PyProducer::TryNext, py::arg("n") = 1)
      .def("publish", &PyProducer::Publish, py::arg("lo"), py::arg("hi"))
      .def(
          "publish_bytes",
          [](PyProducer& p, const py::buffer& data, std::int64_t count, std::int64_t itemsize) {
            const py::buffer_info info = data.request();
            if (info.size * info.itemsize != count * itemsize) {
              ThrowStatus(absl::InvalidArgumentError("buffer size is not count * itemsize"));
            }
            p.PublishRecords(static_cast<const char*>(info.ptr), count, itemsize);
          },
          py::arg("data"), py::arg("count"), py::arg("itemsize"))
      .def("close", &PyProducer::Close)
      .def("detach", &PyProducer::Detach)
      .def_property_readonly("closed", &PyProducer::closed)
      .def_property_readonly("cursor", &PyProducer::Cursor)
      .def_property_readonly("remaining_capacity", &PyProducer::Remaining);
}

}  // namespace xdisruptor::python
