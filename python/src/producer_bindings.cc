// Producers: claim, publish (bytes, numpy arrays), close the stream.
#include <algorithm>
#include <cstring>
#include <optional>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

class PyProducer {
 public:
  PyProducer(const PyRing& ring, const std::string& wait, const py::dict& params)
      : ring_(ring.segment),
        sequencer_(Unwrap(SingleProducerSequencer::Attach(ring.get(), ParseWait(wait, params)))) {}

  // Claims n slots, waiting with the GIL released; Ctrl-C interrupts the wait.
  std::int64_t Next(std::int64_t n) {
    CheckSize(n);
    for (;;) {
      std::optional<std::int64_t> hi;
      {
        py::gil_scoped_release release;
        hi = sequencer().NextFor(n, kPollNs);
      }
      if (hi) return *hi;
      CheckSignals();
    }
  }

  std::optional<std::int64_t> TryNext(std::int64_t n) {
    CheckSize(n);
    return sequencer().TryNext(n);
  }

  void Publish(std::int64_t lo, std::int64_t hi) {
    if (lo > hi || hi > sequencer().cursor() + ring_->capacity() * 2) {
      ThrowStatus(absl::InvalidArgumentError("publish(lo, hi) needs lo <= hi within a claim"));
    }
    sequencer().Publish(lo, hi);
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
      sequencer().Publish(hi - n + 1, hi);
      done += n;
    }
  }

  void Close() { sequencer().Close(); }
  void Detach() {
    if (sequencer_) {
      const absl::Status s = sequencer_->Detach();
      sequencer_.reset();
      if (!s.ok()) ThrowStatus(s);
    }
  }
  std::int64_t Cursor() { return sequencer().cursor(); }
  std::int64_t Remaining() { return sequencer().RemainingCapacity(); }
  bool closed() const { return !sequencer_; }

 private:
  SingleProducerSequencer& sequencer() {
    if (!sequencer_) ThrowStatus(absl::FailedPreconditionError("the producer is closed"));
    return *sequencer_;
  }
  void CheckSize(std::int64_t n) const {
    if (n < 1 || n > static_cast<std::int64_t>(ring_->capacity())) {
      ThrowStatus(absl::InvalidArgumentError("claim between 1 and the ring's capacity slots"));
    }
  }

  std::shared_ptr<RingSegment> ring_;
  std::optional<SingleProducerSequencer> sequencer_;
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
