// Rings: create, attach, remove, inspect, and zero-copy numpy views of slots.
#include <utility>

#include "bindings.h"

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

py::dict ConsumerInfo(const RingSegment& ring, std::size_t i) {
  const ConsumerState& c = ring.consumer(i);
  py::dict d;
  d["index"] = i;
  d["name"] = std::string(c.name, std::min<std::size_t>(c.name_length, kMaxNameLength));
  d["pid"] = c.pid.load(std::memory_order_relaxed);
  d["sequence"] = c.sequence.load(std::memory_order_acquire);
  d["events"] = c.events.load(std::memory_order_relaxed);
  d["batches"] = c.batches.load(std::memory_order_relaxed);
  d["waits"] = c.waits.load(std::memory_order_relaxed);
  const WaitParams w = LoadWaitParams(c);
  d["wait"] = std::string(WaitKindName(w.kind));
  py::list after;
  for (std::uint32_t k = 0; k < std::min<std::uint32_t>(c.after_count, kMaxAfter); ++k) {
    const auto up = static_cast<std::size_t>(c.after[k]);
    if (up < kMaxConsumers) {
      const ConsumerState& u = ring.consumer(up);
      after.append(std::string(u.name, std::min<std::size_t>(u.name_length, kMaxNameLength)));
    }
  }
  d["after"] = after;
  d["alive"] = IsProcessAlive(c.pid.load(std::memory_order_relaxed),
                              c.start_time.load(std::memory_order_relaxed));
  return d;
}

}  // namespace

void RegisterRing(py::module_& m) {
  py::class_<PyRing>(m, "RawRing")
      .def_static(
          "create",
          [](const std::string& name, std::uint64_t capacity, std::uint32_t slot_size,
             const std::string& schema, bool multi_producer, std::uint32_t mode) {
            RingOptions options{.name = name,
                                .capacity = capacity,
                                .slot_size = slot_size,
                                .schema = schema,
                                .sequencer = multi_producer ? SequencerKind::kMultiProducer
                                                            : SequencerKind::kSingleProducer,
                                .mode = mode};
            return PyRing{std::make_shared<RingSegment>(
                Unwrap(RingSegment::Create(options), ErrorSubject::kRing))};
          },
          py::arg("name"), py::arg("capacity"), py::arg("slot_size"), py::arg("schema"),
          py::arg("multi_producer"), py::arg("mode"))
      .def_static(
          "attach",
          [](const std::string& name, double creation_timeout) {
            AttachOptions options{.creation_timeout = absl::Seconds(creation_timeout)};
            absl::StatusOr<RingSegment> seg;
            {
              py::gil_scoped_release release;
              seg = RingSegment::Attach(name, options);
            }
            return PyRing{std::make_shared<RingSegment>(Unwrap(std::move(seg), ErrorSubject::kRing))};
          },
          py::arg("name"), py::arg("creation_timeout") = 2.0)
      .def_static("remove",
                  [](const std::string& name) {
                    if (absl::Status s = RingSegment::Remove(name); !s.ok()) {
                      ThrowStatus(s, ErrorSubject::kRing);
                    }
                  })
      .def_static("exists", [](const std::string& name) { return RingSegment::Exists(name); })
      .def("close", [](PyRing& r) { r.segment.reset(); })
      .def_property_readonly("closed", [](const PyRing& r) { return !r.segment; })
      .def_property_readonly("name", [](const PyRing& r) { return std::string(r.get().name()); })
      .def_property_readonly("capacity", [](const PyRing& r) { return r.get().capacity(); })
      .def_property_readonly("slot_size", [](const PyRing& r) { return r.get().slot_size(); })
      .def_property_readonly("schema", [](const PyRing& r) { return std::string(r.get().schema()); })
      .def_property_readonly("multi_producer",
                             [](const PyRing& r) {
                               return r.get().sequencer_kind() == SequencerKind::kMultiProducer;
                             })
      .def_property_readonly(
          "cursor",
          [](const PyRing& r) { return r.get().producer().cursor.load(std::memory_order_acquire); })
      .def_property_readonly("stream_closed",
                             [](const PyRing& r) {
                               return r.get().producer().ring_status.load(
                                          std::memory_order_acquire) ==
                                      static_cast<std::uint32_t>(RingStatus::kClosed);
                             })
      .def_property_readonly("producer_pid",
                             [](const PyRing& r) {
                               return r.get().producer().producer_pid.load(
                                   std::memory_order_relaxed);
                             })
      .def("consumers",
           [](const PyRing& r) {
             const RingSegment& ring = r.get();
             py::list out;
             for (std::size_t i = 0; i < kMaxConsumers; ++i) {
               if (ring.consumer(i).status.load(std::memory_order_acquire) ==
                   static_cast<std::uint32_t>(ConsumerStatus::kActive)) {
                 out.append(ConsumerInfo(ring, i));
               }
             }
             return out;
           })
      .def("view", &PyRing::View, py::arg("first"), py::arg("count"), py::arg("dtype"),
           py::arg("writable"));
}

}  // namespace xdisruptor::python
