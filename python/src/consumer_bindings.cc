// Consumers: register by name, wait (GIL released, Ctrl-C checked), release, halt, leave.
//
// One loop reads a consumer at a time (BeginLoop/EndLoop, enforced: a second one raises
// StateError). close() from another thread halts the loop and leaves once it has ended; the
// loop is handed no event after the close.
#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

std::uint64_t ThisThread() {
  return static_cast<std::uint64_t>(std::hash<std::thread::id>()(std::this_thread::get_id())) | 1;
}

class PyConsumer {
 public:
  PyConsumer(const PyRing& ring, const std::string& name, const std::vector<std::string>& after,
             const std::string& wait, const py::dict& params, const std::string& stall_policy,
             bool rejoin_at_cursor, std::int64_t max_lag, double max_lag_s,
             std::optional<std::int64_t> start_at, bool gating, const std::string& journal,
             const std::string& group, std::int64_t claim)
      : ring_(ring.segment) {
    if (!(max_lag_s >= 0) || max_lag_s > 1e9) {
      ThrowStatus(absl::InvalidArgumentError("max_lag_s must be seconds >= 0"));
    }
    ConsumerOptions options{.after = after,
                            .wait = ParseWait(wait, params),
                            .stall_policy = Unwrap(ParseEnum<StallPolicy>(stall_policy)),
                            .rejoin_at_cursor = rejoin_at_cursor,
                            .max_lag = max_lag,
                            .max_lag_ns = static_cast<std::int64_t>(max_lag_s * 1e9),
                            .start_at = start_at.value_or(kAtCursor),
                            .gating = gating,
                            .journal = journal,
                            .group = group,
                            .claim = claim};
    auto registered = Consumer::Register(ring.get(), name, options);
    if (!registered.ok() && !journal.empty() &&
        (registered.status().code() == absl::StatusCode::kDataLoss ||
         registered.status().code() == absl::StatusCode::kNotFound)) {
      ThrowStatus(registered.status(), ErrorSubject::kJournal);
    }
    consumer_.emplace(Unwrap(std::move(registered), ErrorSubject::kConsumer));
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
  // ReleasePending(). After a close (from any thread) it hands out nothing: status "halted".
  // An observer is told "lapped" before a batch already overwritten is handed out, and at the
  // next call after one overwritten while it was read (that batch is not released).
  py::tuple NextRange(std::int64_t limit) {
    Consumer& c = get();
    const bool observer = c.observer();
    if (observer && pending_count_ > 0) {
      const std::int64_t pending_first = pending_last_ - pending_count_ + 1;
      if (c.Lapped(pending_first)) {
        pending_count_ = 0;  // never released: it may hold overwritten events
        return Status(pending_first, WaitStatus::kLapped);
      }
    }
    ReleasePending();
    const std::int64_t first = c.sequence() + 1;
    if (closing_.load(std::memory_order_acquire)) return Status(first, WaitStatus::kHalted);
    if (c.catching_up()) {
      if (std::optional<py::tuple> from_journal = CatchUp(c, first, limit)) return *from_journal;
    }
    if (c.member()) return NextOfRun(c, first, limit);
    const WaitResult waited = Wait(first);
    if (closing_.load(std::memory_order_acquire)) return Status(first, WaitStatus::kHalted);
    if (waited.status != WaitStatus::kOk) return Status(first, waited.status);
    if (observer && c.Lapped(first)) return Status(first, WaitStatus::kLapped);
    const std::int64_t available = waited.available;
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t to_end = capacity - (first & (capacity - 1));
    const std::int64_t count = std::min({available - first + 1, limit, to_end});
    pending_last_ = first + count - 1;
    pending_count_ = count;
    return py::make_tuple(first, count, "ok");
  }

  // The journal batch handed out last ("journal" status of NextRange) as a read-only array;
  // it keeps the journal's mapping alive.
  py::array JournalView(const py::dtype& dtype) const {
    if (journal_batch_.data == nullptr) {
      ThrowStatus(absl::FailedPreconditionError("no journal batch is in hand"));
    }
    auto* keep = new std::shared_ptr<const void>(journal_batch_.keep_alive);
    py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
    py::array view(dtype, {static_cast<py::ssize_t>(journal_batch_.count)},
                   {static_cast<py::ssize_t>(ring_->slot_size())}, journal_batch_.data, base);
    py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return view;
  }

  void ReleasePending() {
    if (pending_count_ > 0 && consumer_) {
      get().Release(pending_last_, static_cast<std::uint64_t>(pending_count_));
    }
    pending_count_ = 0;
  }

  // Releases the batch handed out up to `sequence` now (a handler's sequence callback); the
  // rest is released with the next batch as usual.
  void ReleaseEarly(std::int64_t sequence) {
    if (pending_count_ <= 0 || !consumer_) return;
    const std::int64_t first = pending_last_ - pending_count_ + 1;
    if (sequence < first) return;
    sequence = std::min(sequence, pending_last_);
    get().Release(sequence, static_cast<std::uint64_t>(sequence - first + 1));
    pending_count_ = pending_last_ - sequence;
  }

  // Forgets the batch handed out without releasing it: it will be delivered again.
  void DiscardPending() { pending_count_ = 0; }

  // A loop (iteration, batches(), run()) starts reading this consumer: only one at a time.
  void BeginLoop() {
    get();
    const std::uint64_t self = ThisThread();
    std::uint64_t none = 0;
    if (!loop_thread_.compare_exchange_strong(none, self, std::memory_order_acq_rel)) {
      ThrowStatus(absl::FailedPreconditionError(absl::StrFormat(
          "consumer '%s' is already read by another loop%s; one loop reads a consumer at a "
          "time (give each thread its own consumer name, or finish the first loop)",
          get().name(), none == self ? " in this thread" : " in another thread")));
    }
    if (closing_.load(std::memory_order_acquire)) {
      loop_thread_.store(0, std::memory_order_release);
      ThrowStatus(absl::FailedPreconditionError("the consumer has left the ring"));
    }
  }
  // The loop ended; a close asked for meanwhile happens now.
  void EndLoop() {
    loop_thread_.store(0, std::memory_order_release);
    if (closing_.load(std::memory_order_acquire)) Leave();
  }

  // Available now, without waiting.
  std::int64_t Available() { return get().barrier().Available(); }

  void Release(std::int64_t sequence, std::uint64_t events) { get().Release(sequence, events); }
  void Halt() { get().barrier().Alert(); }
  void ClearHalt() {
    if (!closing_.load(std::memory_order_acquire)) get().barrier().ClearAlert();
  }

  // Leaves the ring (releasing what is pending). While a loop reads this consumer, the loop is
  // halted and leaves when it ends, handed nothing more.
  void Deregister() {
    if (!consumer_) return;
    if (loop_thread_.load(std::memory_order_acquire) != 0) {
      closing_.store(true, std::memory_order_release);
      consumer_->barrier().Alert();
      return;
    }
    Leave();
  }

  // Lets go of the entry as a crash would (Consumer::Abandon): it keeps gating and a
  // registration by this name resumes at its sequence; what is pending is not released.
  void Abandon() {
    if (!consumer_) return;
    if (loop_thread_.load(std::memory_order_acquire) != 0) {
      ThrowStatus(absl::FailedPreconditionError(absl::StrFormat(
          "consumer '%s' is read by a loop; halt it and let the loop end before abandon()",
          consumer_->name())));
    }
    if (!consumer_->forked()) consumer_->Abandon();
    consumer_.reset();  // registered no more: its destructor leaves the entry as it is
    ring_.reset();
  }

  Consumer& get() {
    if (!consumer_) ThrowStatus(absl::FailedPreconditionError("the consumer has left the ring"));
    if (consumer_->forked()) {
      ThrowStatus(absl::FailedPreconditionError(absl::StrFormat(
          "consumer '%s' belongs to the process that registered it before fork(); a forked "
          "process must register its own consumer",
          consumer_->name())));
    }
    return *consumer_;
  }
  bool closed() const { return !consumer_ || closing_.load(std::memory_order_acquire); }

 private:
  // Catching up from a journal: the next batch out of it (status "journal"), or, once it has
  // nothing newer, the join onto the ring (nullopt: go on with the ring). The join is retried
  // while the journal grows; a journal that stops growing with the ring gone past it is
  // "missed-events".
  std::optional<py::tuple> CatchUp(Consumer& c, std::int64_t first, std::int64_t limit) {
    CatchUpSource& source = *c.catch_up();
    std::int64_t stuck_since = 0;
    std::int64_t stuck_last = kInitialSequence;
    std::int64_t next_signal_check = MonotonicNanos() + kPollNs;
    for (;;) {
      // A halt (halt(), a cancelled await) ends it after the batch in hand, as on the ring.
      if (closing_.load(std::memory_order_acquire) || c.barrier().alerted()) {
        return Status(first, WaitStatus::kHalted);
      }
      absl::StatusOr<CatchUpBatch> batch;
      absl::Status joined;
      {
        py::gil_scoped_release release;
        batch = source.Read(first, limit);
        if (batch.ok() && batch->count == 0) joined = c.FinishCatchUp(first);
        // Older than the journal (a recorder started late, or retention): the ring may still
        // hold it; a join there is as good.
        if (!batch.ok() && batch.status().code() == absl::StatusCode::kOutOfRange &&
            c.FinishCatchUp(first).ok()) {
          journal_batch_ = {};
          return std::nullopt;
        }
      }
      if (!batch.ok()) ThrowStatus(batch.status(), ErrorSubject::kJournal);
      if (batch->count > 0) {
        journal_batch_ = *batch;
        pending_last_ = first + batch->count - 1;
        pending_count_ = batch->count;
        return py::make_tuple(first, batch->count, "journal");
      }
      journal_batch_ = {};
      if (joined.ok()) return std::nullopt;
      if (joined.code() != absl::StatusCode::kOutOfRange) ThrowStatus(joined);
      const std::int64_t now = MonotonicNanos();
      const std::int64_t last = source.Last();
      if (stuck_since == 0 || last != stuck_last) {
        stuck_since = now;
        stuck_last = last;
      } else if (now - stuck_since > 5'000'000'000) {
        return Status(first, WaitStatus::kMissedEvents);
      }
      if (now >= next_signal_check) {
        CheckSignals();
        next_signal_check = now + kPollNs;
      }
      py::gil_scoped_release release;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // A worker-group member: the rest of its run, or the next run (Consumer::NextRun, waited
  // for in slices with the GIL released); a batch never wraps the ring's end.
  py::tuple NextOfRun(Consumer& c, std::int64_t first, std::int64_t limit) {
    if (first > run_last_) {
      ClaimedRun run;
      for (;;) {
        {
          py::gil_scoped_release release;
          run = c.NextRun(kPollNs);
        }
        if (run.status != WaitStatus::kCheckpoint) break;
        CheckSignals();
      }
      c.barrier().EndWait();
      if (closing_.load(std::memory_order_acquire)) return Status(first, WaitStatus::kHalted);
      if (run.status != WaitStatus::kOk) return Status(first, run.status);
      first = run.first;
      run_last_ = run.last;
      run_taken_over_ = run.taken_over;
    }
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t to_end = capacity - (first & (capacity - 1));
    const std::int64_t count = std::min({run_last_ - first + 1, limit, to_end});
    pending_last_ = first + count - 1;
    pending_count_ = count;
    return py::make_tuple(first, count, run_taken_over_ ? "taken-over" : "ok");
  }

  static py::tuple Status(std::int64_t first, WaitStatus status) {
    return py::make_tuple(first, 0, std::string(WaitStatusName(status)));
  }

  void Leave() {
    if (!consumer_) return;
    if (consumer_->forked()) {  // the parent's registration: forget it, touch nothing (its
      consumer_.reset();        // destructor sees another process's entry and leaves it)
      ring_.reset();
      return;
    }
    ReleasePending();
    const absl::Status s = consumer_->Deregister();
    consumer_.reset();
    ring_.reset();  // a closed consumer no longer keeps the ring mapped
    if (!s.ok()) ThrowStatus(s);
  }

  // Waits in slices of kPollNs (GIL released), checking for signals in between; the wait's
  // deadlines span the slices (SequenceBarrier keeps the wait open across kCheckpoint).
  WaitResult Wait(std::int64_t sequence) {
    Consumer& c = get();
    for (;;) {
      WaitResult r;
      {
        py::gil_scoped_release release;
        r = c.barrier().WaitFor(sequence, kPollNs);
      }
      if (r.status != WaitStatus::kCheckpoint) {
        c.barrier().EndWait();
        return r;
      }
      try {
        CheckSignals();
      } catch (...) {
        c.barrier().EndWait();
        throw;
      }
    }
  }

  std::shared_ptr<RingSegment> ring_;
  std::optional<Consumer> consumer_;
  std::int64_t pending_last_ = -1;
  std::int64_t pending_count_ = 0;
  std::atomic<std::uint64_t> loop_thread_{0};  // the thread of the loop reading, or 0
  std::atomic<bool> closing_{false};           // close() asked while a loop read
  CatchUpBatch journal_batch_{};               // the journal batch handed out last
  std::int64_t run_last_ = kInitialSequence - 1;  // a member: the end of the run in hand
  bool run_taken_over_ = false;                   // ... and whether it was a dead member's
};

}  // namespace

void RegisterConsumer(py::module_& m) {
  py::class_<PyConsumer>(m, "RawConsumer")
      .def(py::init<const PyRing&, const std::string&, const std::vector<std::string>&,
                    const std::string&, const py::dict&, const std::string&, bool,
                    std::int64_t, double, std::optional<std::int64_t>, bool,
                    const std::string&, const std::string&, std::int64_t>(),
           py::arg("ring"), py::arg("name"), py::arg("after"), py::arg("wait"),
           py::arg("params"), py::arg("stall_policy") = "hold",
           py::arg("rejoin_at_cursor") = false, py::arg("max_lag") = 0,
           py::arg("max_lag_s") = 0.0, py::arg("start_at") = py::none(),
           py::arg("gating") = true, py::arg("journal") = "", py::arg("group") = "",
           py::arg("claim") = 64)
      .def_property_readonly("member", [](PyConsumer& c) { return c.get().member(); })
      .def_property_readonly("group", [](PyConsumer& c) { return c.get().group(); })
      .def_property_readonly("takeovers", [](PyConsumer& c) { return c.get().takeovers(); })
      .def_property_readonly("catching_up", [](PyConsumer& c) { return c.get().catching_up(); })
      .def("journal_view", &PyConsumer::JournalView, py::arg("dtype"))
      .def_property_readonly("observer", [](PyConsumer& c) { return c.get().observer(); })
      .def("lapped", [](PyConsumer& c, std::int64_t first) { return c.get().Lapped(first); },
           py::arg("first"))
      .def_property_readonly("resumed", [](PyConsumer& c) { return c.get().resumed(); })
      .def_property_readonly("missed", [](PyConsumer& c) { return c.get().missed(); })
      .def_property_readonly("handler_errors",
                             [](PyConsumer& c) { return c.get().handler_errors(); })
      .def_property_readonly("events", [](PyConsumer& c) { return c.get().events(); })
      .def("count_handler_error", [](PyConsumer& c) { c.get().CountHandlerError(); })
      .def("wait_for", &PyConsumer::WaitFor, py::arg("sequence"))
      .def("next_range", &PyConsumer::NextRange, py::arg("limit"))
      .def("release_pending", &PyConsumer::ReleasePending)
      .def("release_early", &PyConsumer::ReleaseEarly, py::arg("sequence"))
      .def("discard_pending", &PyConsumer::DiscardPending)
      .def("begin_loop", &PyConsumer::BeginLoop)
      .def("end_loop", &PyConsumer::EndLoop)
      .def("available", &PyConsumer::Available)
      .def("release", &PyConsumer::Release, py::arg("sequence"), py::arg("events"))
      .def("halt", &PyConsumer::Halt)
      .def("clear_halt", &PyConsumer::ClearHalt)
      .def("deregister", &PyConsumer::Deregister)
      .def("abandon", &PyConsumer::Abandon)
      .def_property_readonly("closed", &PyConsumer::closed)
      .def_property_readonly("sequence", [](PyConsumer& c) { return c.get().sequence(); })
      .def_property_readonly("join_sequence",
                             [](PyConsumer& c) { return c.get().join_sequence(); })
      .def_property_readonly("index", [](PyConsumer& c) { return c.get().index(); })
      .def_property_readonly("name", [](PyConsumer& c) { return std::string(c.get().name()); });
}

}  // namespace xdisruptor::python
