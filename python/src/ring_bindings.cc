// Rings: create, attach, remove, inspect, and zero-copy numpy views of slots.
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bindings.h"
#include "python_ints.h"

namespace xdisruptor::python {

RingSegment& PyRing::get() const {
  if (!segment) ThrowStatus(absl::FailedPreconditionError("the ring is closed in this process"));
  return *segment;
}

py::array PyRing::View(std::int64_t first, std::int64_t count, const py::dtype& dtype,
                       bool writable) const {
  RingSegment& seg = get();
  const auto capacity = static_cast<std::int64_t>(seg.capacity());
  const std::int64_t index = first & (capacity - 1);
  if (first < 0 || count < 0 || index + count > capacity) {
    ThrowStatus(absl::InvalidArgumentError(
        "a view must cover adjacent slots: it cannot wrap around the ring's end"));
  }
  if (writable && seg.read_only()) {
    ThrowStatus(absl::FailedPreconditionError(absl::StrFormat(
        "ring '%s' is attached read-only: its slots cannot be written", seg.name())));
  }
  if (dtype.itemsize() > static_cast<py::ssize_t>(seg.slot_size())) {
    ThrowStatus(absl::InvalidArgumentError("the dtype is larger than a slot"));
  }
  // The view keeps the mapping alive, whatever happens to the Ring object.
  auto* keep = new std::shared_ptr<RingSegment>(segment);
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<RingSegment>*>(p); });
  py::array view(dtype, {static_cast<py::ssize_t>(count)},
                 {static_cast<py::ssize_t>(seg.slot_size())}, seg.slot(first), base);
  if (!writable) {
    py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  }
  return view;
}

namespace {

// One field of a record as TupleReader reads it: where, what kind ('i', 'u', 'f', 'S', 'b'), size.
struct FieldSpec {
  std::size_t offset;
  char kind;
  std::size_t size;
};

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // a fixed size: a load, not a call
  return v;
}

PyObject* FieldValue(const std::byte* p, const FieldSpec& f) {
  switch (f.kind) {
    case 'i': {
      std::int64_t v;
      switch (f.size) {
        case 1: v = Load<std::int8_t>(p); break;
        case 2: v = Load<std::int16_t>(p); break;
        case 4: v = Load<std::int32_t>(p); break;
        default: v = Load<std::int64_t>(p);
      }
      return IntOf(v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v), v < 0);
    }
    case 'u': {
      std::uint64_t v;
      switch (f.size) {
        case 1: v = Load<std::uint8_t>(p); break;
        case 2: v = Load<std::uint16_t>(p); break;
        case 4: v = Load<std::uint32_t>(p); break;
        default: v = Load<std::uint64_t>(p);
      }
      return IntOf(v, false);
    }
    case 'f': {
      if (f.size == 4) {
        float x;
        std::memcpy(&x, p, 4);
        return PyFloat_FromDouble(x);
      }
      double x;
      std::memcpy(&x, p, 8);
      return PyFloat_FromDouble(x);
    }
    case 'b': return PyBool_FromLong(static_cast<long>(*p != std::byte{0}));
    default: {  // 'S': numpy drops trailing NUL bytes
      const char* c = reinterpret_cast<const char*>(p);
      std::size_t n = f.size;
      while (n >= 8) {  // trailing zero words first, then bytes
        std::uint64_t w;
        std::memcpy(&w, c + n - 8, 8);
        if (w != 0) break;
        n -= 8;
      }
      while (n > 0 && c[n - 1] == '\0') --n;
      return PyBytes_FromStringAndSize(c, static_cast<py::ssize_t>(n));
    }
  }
}

// Reads records as lists of tuples, like ndarray.tolist() but straight from the slots (about
// twice as fast for the per-event iteration of consumers). Made once per iteration from the
// fields read (all of the dtype's, or the ones Consumer.values names), so a call per batch does
// not convert them again (that cost ~2 us a call). `bare`: one field, listed as its values
// rather than as 1-tuples.
class TupleReader {
 public:
  TupleReader(py::object ring,
              const std::vector<std::tuple<std::size_t, std::string, std::size_t>>& fields,
              bool bare)
      : owner_(std::move(ring)), ring_(owner_.cast<const PyRing*>()), bare_(bare) {
    const RingSegment& seg = ring_->get();
    for (const auto& [offset, kind, size] : fields) {
      if (kind.size() != 1 || offset + size > seg.slot_size()) {
        ThrowStatus(absl::InvalidArgumentError("bad field spec"));
      }
      spec_.push_back({offset, kind[0], size});
    }
    if (bare_ && spec_.size() != 1) {
      ThrowStatus(absl::InvalidArgumentError("bare values need exactly one field"));
    }
  }

  // The records first..first+count-1 (adjacent slots).
  py::list Read(std::int64_t first, std::int64_t count) const;

 private:
  py::object owner_;  // keeps the ring's Python object (and so ring_) alive
  const PyRing* ring_;
  std::vector<FieldSpec> spec_;
  bool bare_;
};

py::list TupleReader::Read(std::int64_t first, std::int64_t count) const {
  const RingSegment& seg = ring_->get();  // raises once the ring is closed
  const std::vector<FieldSpec>& spec = spec_;
  const auto capacity = static_cast<std::int64_t>(seg.capacity());
  if (first < 0 || count < 0 || (first & (capacity - 1)) + count > capacity) {
    ThrowStatus(absl::InvalidArgumentError("records must be adjacent slots"));
  }
  PyObject* list = PyList_New(static_cast<py::ssize_t>(count));
  if (list == nullptr) throw py::error_already_set();
  const std::byte* slot = seg.slot(first);
  if (bare_) {
    for (std::int64_t i = 0; i < count; ++i, slot += seg.slot_size()) {
      PyObject* v = FieldValue(slot + spec[0].offset, spec[0]);
      if (v == nullptr) {
        Py_DECREF(list);
        throw py::error_already_set();
      }
      PyList_SET_ITEM(list, static_cast<py::ssize_t>(i), v);
    }
    return py::reinterpret_steal<py::list>(list);
  }
  for (std::int64_t i = 0; i < count; ++i, slot += seg.slot_size()) {
    PyObject* tuple = PyTuple_New(static_cast<py::ssize_t>(spec.size()));
    if (tuple == nullptr) {
      Py_DECREF(list);
      throw py::error_already_set();
    }
    for (std::size_t k = 0; k < spec.size(); ++k) {
      PyObject* v = FieldValue(slot + spec[k].offset, spec[k]);
      if (v == nullptr) {
        Py_DECREF(tuple);
        Py_DECREF(list);
        throw py::error_already_set();
      }
      PyTuple_SET_ITEM(tuple, static_cast<py::ssize_t>(k), v);
    }
    // It holds only numbers and bytes, so it can never be part of a reference cycle: keep the
    // cyclic garbage collector from walking millions of them.
    PyObject_GC_UnTrack(tuple);
    PyList_SET_ITEM(list, static_cast<py::ssize_t>(i), tuple);
  }
  return py::reinterpret_steal<py::list>(list);
}

// One consumer as Ring.consumers() shows it: the stats' view (stats.h), the one reader of a
// consumer entry for the tools.
py::dict ConsumerInfo(const ConsumerStats& c) {
  py::dict d;
  d["index"] = c.index;
  d["name"] = c.name;
  d["pid"] = c.pid;
  d["alive"] = c.alive;
  d["sequence"] = c.sequence;
  d["join_sequence"] = c.join_sequence;
  d["events"] = c.events;
  d["batches"] = c.batches;
  d["waits"] = c.waits;
  d["handler_errors"] = c.handler_errors;
  d["wait"] = std::string(WaitKindName(c.wait.kind));
  d["stall_policy"] = std::string(NameOf(c.stall_policy));
  d["observer"] = c.observer;
  d["after"] = c.after;
  d["state"] = std::string(NameOf(c.state));
  d["gating"] = c.gating;
  // Worker groups (docs/worker-groups.md): "group" or "member" (else ""), the group's name,
  // a group's members, a member's claimed run end and its takeovers.
  d["role"] = c.role;
  d["group"] = c.group;
  d["members"] = c.members;
  d["claim_hi"] = c.claim_hi;
  d["takeovers"] = c.takeovers;
  return d;
}

}  // namespace

void RegisterRing(py::module_& m) {
  py::class_<TupleReader>(m, "TupleReader")
      .def("__call__", &TupleReader::Read, py::arg("first"), py::arg("count"));
  py::class_<PyRing>(m, "RawRing")
      .def_static(
          "create",
          [](const std::string& name, std::uint64_t capacity, std::uint32_t slot_size,
             const std::string& schema, bool multi_producer, std::uint32_t mode,
             const std::string& group, std::uint32_t latency_sample_every, double flight_wait,
             const std::string& flight_dir, std::uint32_t flight_events) {
            RingOptions options{.name = name,
                                .capacity = capacity,
                                .slot_size = slot_size,
                                .schema = schema,
                                .sequencer = multi_producer ? SequencerKind::kMultiProducer
                                                            : SequencerKind::kSingleProducer,
                                .mode = mode,
                                .group = group,
                                .latency_sample_every = latency_sample_every,
                                .flight_wait = absl::Seconds(flight_wait),
                                .flight_dir = flight_dir,
                                .flight_events = flight_events};
            return PyRing{std::make_shared<RingSegment>(
                Unwrap(RingSegment::Create(options), ErrorSubject::kRing))};
          },
          py::arg("name"), py::arg("capacity"), py::arg("slot_size"), py::arg("schema"),
          py::arg("multi_producer"), py::arg("mode"), py::arg("group") = "",
          py::arg("latency_sample_every") = kDefaultLatencySampleEvery,
          py::arg("flight_wait") = 1.0, py::arg("flight_dir") = "",
          py::arg("flight_events") = 16)
      .def_static(
          "attach",
          [](const std::string& name, double creation_timeout, bool read_only) {
            AttachOptions options{.creation_timeout = absl::Seconds(creation_timeout),
                                  .read_only = read_only};
            absl::StatusOr<RingSegment> seg;
            {
              py::gil_scoped_release release;
              seg = RingSegment::Attach(name, options);
            }
            return PyRing{std::make_shared<RingSegment>(Unwrap(std::move(seg), ErrorSubject::kRing))};
          },
          py::arg("name"), py::arg("creation_timeout") = 2.0, py::arg("read_only") = false)
      .def_static(
          "remove",
          [](const std::string& name, bool force) {
            if (absl::Status s = RingSegment::Remove(name, {.force = force}); !s.ok()) {
              ThrowStatus(s, ErrorSubject::kRing);
            }
          },
          py::arg("name"), py::arg("force") = false)
      .def_static("mapping_processes", &RingSegment::MappingProcesses, py::arg("name"))
      .def_static("exists", [](const std::string& name) { return RingSegment::Exists(name); })
      .def("close", [](PyRing& r) { r.segment.reset(); })
      .def_property_readonly("closed", [](const PyRing& r) { return !r.segment; })
      .def_property_readonly("read_only", [](const PyRing& r) { return r.get().read_only(); })
      .def_property_readonly("name", [](const PyRing& r) { return std::string(r.get().name()); })
      .def_property_readonly("capacity", [](const PyRing& r) { return r.get().capacity(); })
      .def_property_readonly("slot_size", [](const PyRing& r) { return r.get().slot_size(); })
      .def_property_readonly("schema", [](const PyRing& r) { return std::string(r.get().schema()); })
      .def_property_readonly("multi_producer",
                             [](const PyRing& r) {
                               return r.get().sequencer_kind() == SequencerKind::kMultiProducer;
                             })
      // A multi-producer ring's cursor is the highest claimed sequence (layout_access.h).
      .def_property_readonly("cursor",
                             [](const PyRing& r) { return LoadCursor(r.get().producer()); })
      .def_property_readonly("stream_closed",
                             [](const PyRing& r) { return IsClosed(r.get().producer()); })
      .def_property_readonly("producer_pids",
                             [](const PyRing& r) { return Stats(r.get()).producer_pids; })
      .def("consumers",
           [](const PyRing& r) {
             py::list out;
             for (const ConsumerStats& c : Stats(r.get()).consumers) {
               if (c.state == ConsumerStatus::kActive) out.append(ConsumerInfo(c));
             }
             return out;
           })
      .def("stats_json", [](const PyRing& r) { return StatsJson(Stats(r.get())); })
      .def("is_available",
           [](const PyRing& r, std::int64_t sequence) { return IsAvailable(r.get(), sequence); },
           py::arg("sequence"))
      .def("highest_published",
           [](const PyRing& r, std::int64_t lo, std::int64_t hi) {
             return HighestPublished(r.get(), lo, hi);
           },
           py::arg("lo"), py::arg("hi"))
      .def_property_readonly("minimum_gating_sequence",
                             [](const PyRing& r) { return MinimumGatingSequence(r.get()); })
      .def(
          "tuple_reader",
          [](py::object self,
             const std::vector<std::tuple<std::size_t, std::string, std::size_t>>& fields,
             bool bare) { return TupleReader(std::move(self), fields, bare); },
          py::arg("fields"), py::arg("bare") = false)
      .def("view", &PyRing::View, py::arg("first"), py::arg("count"), py::arg("dtype"),
           py::arg("writable"));
}

// The metric families of the rings named (metrics.h), for xdisruptor.metrics: a list of
// (name, type, help, points), each point (labels, value, buckets, count, sum).
py::list MetricFamiliesOf(const std::vector<std::string>& names) {
  std::vector<RingSnapshot> snapshots;
  {
    py::gil_scoped_release release;
    for (const std::string& name : names) {
      RingSnapshot s;
      s.name = name;
      auto ring = RingSegment::Attach(name, {.creation_timeout = absl::Milliseconds(10),
                                             .read_only = true});
      if (ring.ok()) {
        s.readable = true;
        s.stats = Stats(*ring);
      }
      snapshots.push_back(std::move(s));
    }
  }
  py::list out;
  for (const MetricFamilyData& f : MetricFamilies(snapshots)) {
    py::list points;
    for (const MetricPoint& p : f.points) {
      py::dict labels;
      for (const auto& [k, v] : p.labels) labels[py::str(k)] = v;
      points.append(py::make_tuple(labels, p.value, p.buckets, p.count, p.sum));
    }
    out.append(py::make_tuple(f.name, std::string(MetricTypeName(f.type)), f.help, points));
  }
  return out;
}

void RegisterMetrics(py::module_& m) {
  m.def("metric_families", &MetricFamiliesOf, py::arg("rings"),
        "The metric families of the rings named (the names and values `xdisruptor metrics` "
        "serves): [(name, type, help, [(labels, value, buckets, count, sum)])].");
}

}  // namespace xdisruptor::python
