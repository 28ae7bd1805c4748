// Producers: claim, publish (bytes, numpy arrays), close the stream.
//
// Every error is raised with the GIL held. A producer in use by one thread (waiting with the
// GIL released) stays valid until that use ends: close() from another thread waits for it, and
// the waiting call then raises StateError instead of touching a destroyed sequencer.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

class PyProducer {
 private:
  // Counts a use of the sequencer for its whole length, after checking it may be used here.
  class Usage {
   public:
    explicit Usage(PyProducer& p) : p_(p) {
      p.CheckUsable();
      p_.busy_.fetch_add(1, std::memory_order_acq_rel);
    }
    ~Usage() { p_.busy_.fetch_sub(1, std::memory_order_acq_rel); }
    Usage(const Usage&) = delete;
    Usage& operator=(const Usage&) = delete;

   private:
    PyProducer& p_;
  };

  template <typename F>
  decltype(auto) Use(F&& f) {
    Usage usage(*this);
    if (single_) return f(*single_);
    return f(*multi_);
  }

  void CheckUsable() const {
    if (closed()) ThrowStatus(absl::FailedPreconditionError("the producer is closed"));
    if (closing_.load(std::memory_order_relaxed)) {
      ThrowStatus(absl::FailedPreconditionError(
          "the producer was closed by another thread while this call was under way"));
    }
    if (single_ ? single_->forked() : multi_->forked()) {
      ThrowStatus(absl::FailedPreconditionError(
          "this producer belongs to the process that attached it before fork(); a forked "
          "process must attach its own producer (ring.producer())"));
    }
  }

  // Claims n slots in slices of kPollNs, checking for signals and a close in between (GIL
  // held); the full-ring wait's deadlines span the slices (gating.h, GatingWait).
  template <typename S>
  std::int64_t Claim(S& s, std::int64_t n) {
    for (;;) {
      absl::StatusOr<std::int64_t> hi;
      {
        py::gil_scoped_release release;
        hi = s.NextFor(n, kPollNs);
      }
      if (hi.ok()) return *hi;
      if (hi.status().code() != absl::StatusCode::kDeadlineExceeded) ThrowStatus(hi.status());
      CheckSignals();
      CheckUsable();
    }
  }

 public:
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
    return Use([&](auto& s) { return Claim(s, n); });
  }

  std::optional<std::int64_t> TryNext(std::int64_t n) {
    CheckSize(n);
    return Use([&](auto& s) -> std::optional<std::int64_t> {
      absl::StatusOr<std::int64_t> hi = s.TryNext(n);
      if (hi.ok()) return *hi;
      if (hi.status().code() != absl::StatusCode::kResourceExhausted) ThrowStatus(hi.status());
      return std::nullopt;  // full now
    });
  }

  void Publish(std::int64_t lo, std::int64_t hi) {
    CheckUsable();
    if (lo > hi || hi - lo >= static_cast<std::int64_t>(ring_->capacity())) {
      ThrowStatus(absl::InvalidArgumentError("publish(lo, hi) needs lo <= hi within a claim"));
    }
    Use([&](auto& s) { s.Publish(lo, hi); });
  }

  // Publishes `count` records of `itemsize` bytes laid out back to back in `data`.
  void PublishRecords(const char* data, std::int64_t count, std::int64_t itemsize) {
    CheckUsable();
    if (itemsize <= 0 || itemsize > static_cast<std::int64_t>(ring_->slot_size())) {
      ThrowStatus(absl::InvalidArgumentError("record size does not fit the ring's slots"));
    }
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t chunk = std::max<std::int64_t>(1, capacity / 2);
    Use([&](auto& s) {
      for (std::int64_t done = 0; done < count;) {
        const std::int64_t n = std::min(chunk, count - done);
        const std::int64_t hi = Claim(s, n);
        {
          py::gil_scoped_release release;
          for (std::int64_t seq = hi - n + 1; seq <= hi; ++seq, data += itemsize) {
            std::memcpy(ring_->slot(seq), data, static_cast<std::size_t>(itemsize));
          }
        }
        s.Publish(hi - n + 1, hi);
        done += n;
      }
    });
  }

  // As PublishRecords for at most a capacity of records, but waits for room at most
  // `max_wait_ns` (GIL released): the sequence of the last record, or nullopt with nothing
  // claimed. For waits in a helper thread that must be able to give up (asyncio).
  std::optional<std::int64_t> PublishRecordsFor(const char* data, std::int64_t count,
                                                std::int64_t itemsize, std::int64_t max_wait_ns) {
    CheckSize(count);
    if (itemsize <= 0 || itemsize > static_cast<std::int64_t>(ring_->slot_size())) {
      ThrowStatus(absl::InvalidArgumentError("record size does not fit the ring's slots"));
    }
    return Use([&](auto& s) -> std::optional<std::int64_t> {
      absl::StatusOr<std::int64_t> hi;
      {
        py::gil_scoped_release release;
        hi = max_wait_ns > 0 ? s.NextFor(count, max_wait_ns) : s.TryNext(count);
        if (hi.ok()) {
          const char* p = data;
          for (std::int64_t seq = *hi - count + 1; seq <= *hi; ++seq, p += itemsize) {
            std::memcpy(ring_->slot(seq), p, static_cast<std::size_t>(itemsize));
          }
          s.Publish(*hi - count + 1, *hi);
        }
      }
      if (hi.ok()) return *hi;
      const absl::StatusCode code = hi.status().code();
      if (code != absl::StatusCode::kDeadlineExceeded &&
          code != absl::StatusCode::kResourceExhausted) {
        ThrowStatus(hi.status());
      }
      return std::nullopt;
    });
  }

  // Ends the stream (consumers drain it, then stop).
  void Close() {
    Use([](auto& s) { s.Close(); });
  }

  // Gives up the producer role. Another thread waiting in a claim is told (StateError) and
  // this call waits for it to let go first. In a forked child it only forgets the parent's.
  void Detach() {
    if (closed()) return;
    closing_.store(true, std::memory_order_relaxed);
    {
      py::gil_scoped_release release;
      while (busy_.load(std::memory_order_acquire) != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    const absl::Status s = single_ ? single_->Detach() : multi_->Detach();
    const bool forked = single_ ? single_->forked() : multi_->forked();
    single_.reset();
    multi_.reset();
    ring_.reset();  // a closed producer no longer keeps the ring mapped
    if (!s.ok() && !forked) ThrowStatus(s);
  }

  std::int64_t Cursor() {
    return Use([](auto& s) { return s.cursor(); });
  }
  std::int64_t Remaining() {
    return Use([](auto& s) { return s.RemainingCapacity(); });
  }
  // False for more than the capacity (as the Disruptor's hasAvailableCapacity), an error below 1.
  bool HasAvailableCapacity(std::int64_t n) {
    CheckUsable();
    if (n < 1) {
      ThrowStatus(absl::InvalidArgumentError(
          absl::StrFormat("has_available_capacity needs n >= 1, not %d", n)));
    }
    if (n > static_cast<std::int64_t>(ring_->capacity())) return false;
    return Use([&](auto& s) { return s.HasAvailableCapacity(n); });
  }
  void ClaimSequence(std::int64_t sequence) {
    CheckUsable();
    if (sequence < -1) {
      ThrowStatus(absl::InvalidArgumentError(
          absl::StrFormat("claim_sequence needs a sequence >= -1, not %d", sequence)));
    }
    Use([&](auto& s) { s.ClaimSequence(sequence); });
  }
  bool closed() const { return !single_ && !multi_; }

 private:
  void CheckSize(std::int64_t n) const {
    CheckUsable();
    if (n < 1 || n > static_cast<std::int64_t>(ring_->capacity())) {
      ThrowStatus(absl::InvalidArgumentError(absl::StrFormat(
          "claim between 1 and the ring's capacity (%d) slots, not %d", ring_->capacity(), n)));
    }
  }

  std::shared_ptr<RingSegment> ring_;
  std::optional<SingleProducerSequencer> single_;
  std::optional<MultiProducerSequencer> multi_;
  std::atomic<int> busy_{0};  // uses in progress (some with the GIL released)
  std::atomic<bool> closing_{false};
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
      .def(
          "publish_bytes_for",
          [](PyProducer& p, const py::buffer& data, std::int64_t count, std::int64_t itemsize,
             double max_wait_s) {
            const py::buffer_info info = data.request();
            if (info.size * info.itemsize != count * itemsize) {
              ThrowStatus(absl::InvalidArgumentError("buffer size is not count * itemsize"));
            }
            return p.PublishRecordsFor(static_cast<const char*>(info.ptr), count, itemsize,
                                       static_cast<std::int64_t>(max_wait_s * 1e9));
          },
          py::arg("data"), py::arg("count"), py::arg("itemsize"), py::arg("max_wait_s"))
      .def("close", &PyProducer::Close)
      .def("detach", &PyProducer::Detach)
      .def_property_readonly("closed", &PyProducer::closed)
      .def_property_readonly("cursor", &PyProducer::Cursor)
      .def_property_readonly("remaining_capacity", &PyProducer::Remaining)
      .def("has_available_capacity", &PyProducer::HasAvailableCapacity, py::arg("n"))
      .def("claim_sequence", &PyProducer::ClaimSequence, py::arg("sequence"));
}

}  // namespace xdisruptor::python
