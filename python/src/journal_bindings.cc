// Journals from Python: xdisruptor.Journal reads a journal directory (zero-copy within a
// segment), also while a recorder appends; JournalRecorder records a ring from a thread.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "bindings.h"

namespace xdisruptor::python {

namespace {

class PyJournal {
 public:
  explicit PyJournal(const std::string& directory) {
    auto opened = JournalReader::Open(directory);
    if (!opened.ok()) ThrowStatus(opened.status(), ErrorSubject::kJournal);
    reader_.emplace(*std::move(opened));
    slot_size_ = reader_->slot_size();  // fixed for the journal's life
  }

  // f(reader) with the GIL released and this journal's lock held: one Journal shared by
  // threads (one reads or verifies while another refreshes) never sees the reader change
  // under it. The lock is taken only without the GIL, so the two cannot deadlock.
  template <typename F>
  auto With(F f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    return f(*reader_);
  }

  // Events start..start+count-1 as one array: a view of the segment's mapping when they lie in
  // one segment (it keeps the mapping alive), else a copy.
  py::array Read(std::int64_t start, std::int64_t count, const py::dtype& dtype) {
    if (count < 0) ThrowStatus(absl::InvalidArgumentError("read a count >= 0 of events"));
    struct Range {
      absl::Status status;
      std::int64_t first, last;
      std::string directory;
    };
    const Range range = With([&](JournalReader& r) {
      absl::Status status;
      if (count > 0 && (start < r.first() || start + count - 1 > r.last())) {
        status = r.Refresh();
      }
      return Range{status, r.first(), r.last(), r.directory()};
    });
    if (!range.status.ok()) ThrowStatus(range.status, ErrorSubject::kJournal);
    if (count > 0 && (start < range.first || start + count - 1 > range.last)) {
      ThrowStatus(absl::OutOfRangeError(absl::StrFormat(
          "journal '%s' holds %d..%d; cannot read %d..%d", range.directory, range.first,
          range.last, start, start + count - 1)));
    }
    const auto slot = static_cast<py::ssize_t>(slot_size_);
    absl::StatusOr<JournalSpan> first_span = JournalSpan{};
    if (count > 0) first_span = With([&](JournalReader& r) { return r.Read(start, count); });
    if (!first_span.ok()) ThrowStatus(first_span.status(), ErrorSubject::kJournal);
    if (first_span->count == count) {
      auto* keep = new std::shared_ptr<const void>(first_span->keep_alive);
      py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
      py::array view(dtype, {static_cast<py::ssize_t>(count)}, {slot},
                     count > 0 ? first_span->data : nullptr, base);
      py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
      return view;
    }
    // Across segments: one copy.
    py::array out(dtype, {static_cast<py::ssize_t>(count)}, {slot});
    auto* dst = static_cast<std::byte*>(out.mutable_data());
    std::int64_t done = 0;
    while (done < count) {
      absl::StatusOr<JournalSpan> span =
          With([&](JournalReader& r) { return r.Read(start + done, count - done); });
      if (!span.ok()) ThrowStatus(span.status(), ErrorSubject::kJournal);
      if (span->count == 0) ThrowStatus(absl::DataLossError("the journal ended early"));
      std::memcpy(dst + done * slot, span->data, static_cast<std::size_t>(span->count * slot));
      done += span->count;
    }
    return out;
  }

  // Up to `max` events from `start`, within one segment (a zero-copy view; fewer at a segment's
  // end; empty past the journal's end).
  py::array Span(std::int64_t start, std::int64_t max, const py::dtype& dtype) {
    absl::StatusOr<JournalSpan> span = With([&](JournalReader& r) -> absl::StatusOr<JournalSpan> {
      if (start > r.last()) {
        if (absl::Status s = r.Refresh(); !s.ok()) return s;
      }
      return r.Read(start, max);
    });
    if (!span.ok()) ThrowStatus(span.status(), ErrorSubject::kJournal);
    auto* keep = new std::shared_ptr<const void>(span->keep_alive);
    py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
    py::array view(dtype, {static_cast<py::ssize_t>(span->count)},
                   {static_cast<py::ssize_t>(slot_size_)},
                   span->count > 0 ? span->data : nullptr, base);
    py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return view;
  }

  void Refresh() {
    const absl::Status s = With([](JournalReader& r) { return r.Refresh(); });
    if (!s.ok()) ThrowStatus(s, ErrorSubject::kJournal);
  }
  void Verify() {
    const absl::Status s = With([](JournalReader& r) { return r.Verify(); });
    if (!s.ok()) ThrowStatus(s, ErrorSubject::kJournal);
  }

 private:
  std::optional<JournalReader> reader_;
  std::mutex mu_;
  std::uint32_t slot_size_ = 0;
};

// A property of the journal read under its lock (PyJournal::With), as a copy.
template <typename R>
auto Locked(R (JournalReader::*get)() const) {
  return [get](PyJournal& j) {
    return j.With([get](JournalReader& r) { return std::decay_t<R>((r.*get)()); });
  };
}

// A recorder from Python: start() registers, run() records with the GIL released until the
// stream ends or halt() (any thread).
class PyRecorder {
 public:
  PyRecorder(const PyRing& ring, const std::string& directory, const std::string& name,
             const std::string& fsync, std::int64_t segment_bytes, std::int64_t retain_bytes,
             double retain_seconds, const std::string& stall_policy,
             const std::vector<std::string>& after)
      : ring_(ring.segment) {
    JournalOptions o{.directory = directory,
                     .name = name,
                     .segment_bytes = segment_bytes,
                     .retain_bytes = retain_bytes,
                     .retain_ns = static_cast<std::int64_t>(retain_seconds * 1e9),
                     .after = after};
    if (absl::Status s = ParseFsync(fsync, o); !s.ok()) ThrowStatus(s);
    o.stall_policy = Unwrap(ParseEnum<StallPolicy>(stall_policy));
    auto started = JournalRecorder::Start(ring.get(), o);
    if (!started.ok()) ThrowStatus(started.status(), ErrorSubject::kJournal);
    recorder_.emplace(*std::move(started));
  }
  std::string Run() {
    WaitStatus why;
    {
      py::gil_scoped_release release;
      why = recorder_->Run();
    }
    failed_ = why != WaitStatus::kClosed && why != WaitStatus::kHalted;
    return std::string(WaitStatusName(why));
  }
  void Halt() { recorder_->Halt(); }
  std::int64_t recorded() const { return recorder_->recorded(); }
  std::int64_t last() { return recorder_->writer().last(); }
  // Leaves the ring; after a failed run (a write error) it keeps its entry, as a recorder that
  // crashed: the ring holds what it did not record, and a restart goes on without a gap.
  void Close() {
    if (recorder_ && failed_) {
      recorder_->consumer().Abandon();
    } else if (recorder_) {
      (void)recorder_->consumer().Deregister();
    }
    recorder_.reset();
    ring_.reset();
  }

 private:
  std::shared_ptr<RingSegment> ring_;
  std::optional<JournalRecorder> recorder_;
  bool failed_ = false;
};

}  // namespace

void RegisterJournal(py::module_& m) {
  py::class_<PyJournal>(m, "RawJournal")
      .def(py::init<const std::string&>(), py::arg("directory"))
      .def_property_readonly("directory", Locked(&JournalReader::directory))
      .def_property_readonly("schema", Locked(&JournalReader::schema))
      .def_property_readonly("slot_size", Locked(&JournalReader::slot_size))
      .def_property_readonly("ring_name", Locked(&JournalReader::ring_name))
      .def_property_readonly("first", Locked(&JournalReader::first))
      .def_property_readonly("last", Locked(&JournalReader::last))
      .def_property_readonly("segments", Locked(&JournalReader::segments))
      .def_property_readonly("bytes", Locked(&JournalReader::bytes))
      .def("refresh", &PyJournal::Refresh)
      .def("verify", &PyJournal::Verify)
      .def("read", &PyJournal::Read, py::arg("start"), py::arg("count"), py::arg("dtype"))
      .def("span", &PyJournal::Span, py::arg("start"), py::arg("max"), py::arg("dtype"));
  py::class_<PyRecorder>(m, "RawRecorder")
      .def(py::init<const PyRing&, const std::string&, const std::string&, const std::string&,
                    std::int64_t, std::int64_t, double, const std::string&,
                    const std::vector<std::string>&>(),
           py::arg("ring"), py::arg("directory"), py::arg("name"), py::arg("fsync"),
           py::arg("segment_bytes"), py::arg("retain_bytes"), py::arg("retain_seconds"),
           py::arg("stall_policy"), py::arg("after"))
      .def("run", &PyRecorder::Run)
      .def("halt", &PyRecorder::Halt)
      .def("close", &PyRecorder::Close)
      .def_property_readonly("recorded", &PyRecorder::recorded)
      .def_property_readonly("last", &PyRecorder::last);
}

}  // namespace xdisruptor::python
