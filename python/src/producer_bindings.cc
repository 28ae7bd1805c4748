// Producers: claim, publish (bytes, numpy arrays), close the stream.
//
// Every error is raised with the GIL held. A producer in use by one thread (waiting with the
// GIL released) stays valid until that use ends: close() from another thread waits for it, and
// the waiting call then raises StateError instead of touching a destroyed sequencer.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "bindings.h"
#include "python_ints.h"

namespace xdisruptor::python {

namespace {

// One field of a record packer, compiled once from the ring's dtype (Producer.__init__ passes
// the fields as (offset, kind, size, count, nested) tuples): `count` elements of `size` bytes
// at `offset`; `nested` for a record field (offsets relative to it).
struct PackOp {
  std::size_t offset = 0;
  char kind = 0;  // 'i', 'u', 'f', 'b' (bool), 'S' (bytes), 'R' (a nested record)
  std::size_t size = 0;
  std::size_t count = 1;
  std::vector<PackOp> nested;
};

std::vector<PackOp> CompileOps(const py::list& fields) {
  std::vector<PackOp> ops;
  for (const py::handle f : fields) {
    const auto t = f.cast<py::tuple>();
    PackOp op;
    op.offset = t[0].cast<std::size_t>();
    op.kind = t[1].cast<std::string>().at(0);
    op.size = t[2].cast<std::size_t>();
    op.count = t[3].cast<std::size_t>();
    if (!t[4].is_none()) op.nested = CompileOps(t[4].cast<py::list>());
    ops.push_back(std::move(op));
  }
  return ops;
}

// Writes one Python value of `op`'s kind at `out`; false (a Python error set) when it does not
// convert exactly (the caller then lets numpy try, for its error message or its conversions).
bool PackScalar(const PackOp& op, PyObject* v, char* out) {
  switch (op.kind) {
    case 'i': {
      if (StoreExactInt('i', op.size, v, out)) return true;
      const long long x = PyLong_AsLongLong(v);
      if (x == -1 && PyErr_Occurred()) return false;
      const int bits = static_cast<int>(op.size * 8);
      if (bits < 64 && (x < -(1ll << (bits - 1)) || x >= (1ll << (bits - 1)))) {
        PyErr_SetString(PyExc_OverflowError, "out of range");
        return false;
      }
      std::memcpy(out, &x, op.size);  // little-endian: the low bytes
      return true;
    }
    case 'u': {
      if (StoreExactInt('u', op.size, v, out)) return true;
      if (!PyLong_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "not an int");
        return false;
      }
      const unsigned long long x = PyLong_AsUnsignedLongLong(v);
      if (x == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
      if (op.size < 8 && x >= (1ull << (op.size * 8))) {
        PyErr_SetString(PyExc_OverflowError, "out of range");
        return false;
      }
      std::memcpy(out, &x, op.size);
      return true;
    }
    case 'f': {
      const double x = PyFloat_CheckExact(v) ? PyFloat_AS_DOUBLE(v) : PyFloat_AsDouble(v);
      if (x == -1.0 && PyErr_Occurred()) return false;
      if (op.size == 4) {
        const auto f = static_cast<float>(x);
        std::memcpy(out, &f, 4);
      } else {
        std::memcpy(out, &x, 8);
      }
      return true;
    }
    case 'b': {
      const int x = PyObject_IsTrue(v);
      if (x < 0) return false;
      *out = static_cast<char>(x);
      return true;
    }
    case 'S': {
      if (!PyBytes_Check(v) || static_cast<std::size_t>(PyBytes_GET_SIZE(v)) > op.size) {
        PyErr_SetString(PyExc_TypeError, "not bytes that fit");
        return false;
      }
      std::memcpy(out, PyBytes_AS_STRING(v), static_cast<std::size_t>(PyBytes_GET_SIZE(v)));
      return true;  // the rest stays zero
    }
    default:
      PyErr_SetString(PyExc_TypeError, "no fast path");
      return false;
  }
}

bool PackValues(const std::vector<PackOp>& ops, PyObject* record, char* out);

// `count` elements of a sub-array field, given as a (possibly nested) sequence.
bool PackArray(const PackOp& op, PyObject* v, char* out, std::size_t& done) {
  PyObject* seq = PySequence_Fast(v, "a sub-array field takes a sequence");
  if (seq == nullptr) return false;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  PyObject** items = PySequence_Fast_ITEMS(seq);
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < n; ++i) {
    if (PyList_Check(items[i]) || PyTuple_Check(items[i])) {
      ok = PackArray(op, items[i], out, done);
    } else if (done >= op.count) {
      PyErr_SetString(PyExc_ValueError, "too many values for the sub-array");
      ok = false;
    } else {
      ok = PackScalar(op, items[i], out + done * op.size);
      ++done;
    }
  }
  Py_DECREF(seq);
  return ok;
}

bool PackField(const PackOp& op, PyObject* v, char* out) {
  if (op.kind == 'R') {
    return PyTuple_Check(v) && PackValues(op.nested, v, out + op.offset);
  }
  if (op.count > 1) {
    std::size_t done = 0;
    if (!PackArray(op, v, out + op.offset, done)) return false;
    if (done != op.count) {
      PyErr_SetString(PyExc_ValueError, "wrong number of values for the sub-array");
      return false;
    }
    return true;
  }
  return PackScalar(op, v, out + op.offset);
}

// A tuple in field order into `out` (zeroed by the caller).
bool PackValues(const std::vector<PackOp>& ops, PyObject* record, char* out) {
  if (!PyTuple_Check(record) || static_cast<std::size_t>(PyTuple_GET_SIZE(record)) != ops.size()) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "not a tuple of the fields");
    return false;
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!PackField(ops[i], PyTuple_GET_ITEM(record, static_cast<Py_ssize_t>(i)), out)) {
      return false;
    }
  }
  return true;
}

// A dtype of scalar fields only (ints, floats, bools, bytes; no sub-arrays or nested records),
// flattened: a tuple of exact Python values packs in one tight loop with fixed-size stores.
struct FlatOp {
  std::uint32_t offset;
  char kind;  // 'i', 'u', 'f', 'b', 'S'
  std::uint32_t size;
};

std::vector<FlatOp> Flatten(const std::vector<PackOp>& ops) {
  std::vector<FlatOp> flat;
  for (const PackOp& op : ops) {
    const bool sized = op.kind == 'S' || op.kind == 'b' ||
                       (op.kind == 'f' ? op.size == 4 || op.size == 8
                                       : op.size == 1 || op.size == 2 || op.size == 4 || op.size == 8);
    if (op.kind == 'R' || op.count != 1 || !sized) return {};
    flat.push_back({static_cast<std::uint32_t>(op.offset), op.kind,
                    static_cast<std::uint32_t>(op.size)});
  }
  return flat;
}

// False (no Python error set) for anything but exact ints/floats/bools/bytes that fit: the
// general packer then converts it or says why not.
bool PackFlat(const std::vector<FlatOp>& flat, PyObject* tuple, char* out) {
  if (static_cast<std::size_t>(PyTuple_GET_SIZE(tuple)) != flat.size()) return false;
  for (std::size_t i = 0; i < flat.size(); ++i) {
    const FlatOp& op = flat[i];
    PyObject* v = PyTuple_GET_ITEM(tuple, static_cast<Py_ssize_t>(i));
    char* at = out + op.offset;
    switch (op.kind) {
      case 'u':
      case 'i':
        if (!StoreExactInt(op.kind, op.size, v, at)) return false;
        break;
      case 'f':
        if (!PyFloat_CheckExact(v)) return false;
        if (op.size == 8) {
          Store(at, PyFloat_AS_DOUBLE(v));
        } else {
          Store(at, static_cast<float>(PyFloat_AS_DOUBLE(v)));
        }
        break;
      case 'b':
        if (v != Py_True && v != Py_False) return false;
        *at = static_cast<char>(v == Py_True);
        break;
      default:  // 'S'
        if (!PyBytes_CheckExact(v) || static_cast<std::size_t>(PyBytes_GET_SIZE(v)) > op.size) {
          return false;
        }
        std::memcpy(at, PyBytes_AS_STRING(v), static_cast<std::size_t>(PyBytes_GET_SIZE(v)));
        break;
    }
  }
  return true;
}

// A buffer's bytes, when they are C-contiguous (ok() false, no error set, when they are not:
// numpy says so with ValueError, other exporters with BufferError). Asked for without a
// format: numpy builds the format string of a structured dtype on every request that wants
// one (pybind11's buffer::request does), ~7 us for 8 fields, more than copying 256 records.
class ContiguousBytes {
 public:
  explicit ContiguousBytes(PyObject* obj) {
    ok_ = PyObject_GetBuffer(obj, &view_, PyBUF_C_CONTIGUOUS) == 0;
    if (ok_) return;
    if (!PyErr_ExceptionMatches(PyExc_BufferError) && !PyErr_ExceptionMatches(PyExc_ValueError)) {
      throw py::error_already_set();
    }
    PyErr_Clear();
  }
  ~ContiguousBytes() {
    if (ok_) PyBuffer_Release(&view_);
  }
  ContiguousBytes(const ContiguousBytes&) = delete;
  ContiguousBytes& operator=(const ContiguousBytes&) = delete;

  bool ok() const { return ok_; }
  const Py_buffer& view() const { return view_; }

  // The bytes of `count` records of `itemsize`: they must be contiguous and exactly that long.
  const char* Records(std::int64_t count, std::int64_t itemsize) const {
    if (!ok_) ThrowStatus(absl::InvalidArgumentError("the records are not contiguous in memory"));
    if (view_.len != count * itemsize) {
      ThrowStatus(absl::InvalidArgumentError("buffer size is not count * itemsize"));
    }
    return static_cast<const char*>(view_.buf);
  }

 private:
  Py_buffer view_;
  bool ok_ = false;
};

class PyProducer {
 private:
  // One use of the sequencer (a claim to its publish, a close, a query), counted in busy_ and
  // holding claim_mutex_ for its whole length, so that threads sharing this producer (asyncio's
  // helper beside the loop's thread, or any two Python threads) never claim at once: the
  // sequencer is one thread's at a time, and its claims would otherwise hand out a sequence
  // twice. Made with the GIL held; it never blocks on the mutex holding it (the holder may be
  // waiting for the GIL): it tries, then lets the GIL go to wait. busy_ is raised before the
  // mutex is waited for and lowered after it is let go, both with the GIL held or with a
  // release, so that PublishRecord's fast path, which reads busy_ == 0 with the GIL held,
  // knows nobody holds or waits for the mutex (nobody can start without the GIL).
  class Usage {
   public:
    static constexpr std::int64_t kForever = -1;
    // `wait_ns`: how long to wait for another thread to let go of the producer: kForever, or
    // 0 (give up at once), or that many ns; owns() is false when it gave up.
    explicit Usage(PyProducer& p, std::int64_t wait_ns = kForever, bool ending = false)
        : p_(p), lock_(p.claim_mutex_, std::defer_lock) {
      p.CheckUsable(ending);
      p.CheckNotReentered();
      p_.busy_.fetch_add(1, std::memory_order_acq_rel);
      if (!lock_.try_lock() && wait_ns != 0) {
        py::gil_scoped_release release;
        if (wait_ns == kForever) {
          lock_.lock();
        } else {
          (void)lock_.try_lock_for(std::chrono::nanoseconds(wait_ns));
        }
      }
      if (!lock_.owns_lock()) return;
      p.holder_.store(std::this_thread::get_id(), std::memory_order_relaxed);
      // Closed or ended while this one waited for the producer.
      try {
        p.CheckUsable(ending);
      } catch (...) {
        Release();
        throw;
      }
    }
    ~Usage() { Release(); }
    Usage(const Usage&) = delete;
    Usage& operator=(const Usage&) = delete;
    bool owns() const { return lock_.owns_lock(); }

   private:
    void Release() {
      if (!counted_) return;
      counted_ = false;
      if (lock_.owns_lock()) {
        p_.holder_.store(std::thread::id(), std::memory_order_relaxed);
        lock_.unlock();
      }
      p_.busy_.fetch_sub(1, std::memory_order_acq_rel);
    }

    PyProducer& p_;
    std::unique_lock<std::timed_mutex> lock_;
    bool counted_ = true;
  };

  // Runs f on whichever sequencer this producer has.
  template <typename F>
  decltype(auto) Dispatch(F&& f) {
    if (single_) return f(*single_);
    return f(*multi_);
  }
  // Dispatch, counted as a use for its whole length.
  template <typename F>
  decltype(auto) Use(F&& f) {
    Usage usage(*this);
    return Dispatch(std::forward<F>(f));
  }

  // This thread holds the producer already: a Python signal handler that runs while a publish
  // of this thread waits for room (CheckSignals) and uses the producer. Waiting for it (a
  // lock, or Detach's wait for the uses to end) would hang this thread for good.
  void CheckNotReentered() const {
    if (holder_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
      ThrowStatus(absl::FailedPreconditionError(
          "this thread is already inside a call of this producer (a signal handler while a "
          "publish waits for room?): it may not use the producer until that call returns"));
    }
  }

  // `ending`: for close() itself, which may end a stream already ended.
  void CheckUsable(bool ending = false) const {
    if (closed()) ThrowStatus(absl::FailedPreconditionError("the producer is closed"));
    if (closing_.load(std::memory_order_relaxed)) {
      ThrowStatus(absl::FailedPreconditionError(
          "the producer was closed by another thread while this call was under way"));
    }
    if (!ending && ended_.load(std::memory_order_relaxed)) {
      ThrowStatus(absl::FailedPreconditionError(
          "the producer ended the stream (close()): nothing more can be published"));
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

  // Records of at least this many bytes are copied with the GIL released (~100 ns to release
  // and take again; 64 KiB take ~5 us to copy), smaller ones holding it.
  static constexpr std::int64_t kReleaseGilBytes = 64 * 1024;

  // Copies records lo..hi (claimed), `itemsize` bytes each back to back in `data`, into their
  // slots: records that fill their slots go as one memcpy per run of adjacent slots (at most
  // two: the ring's end), smaller ones slot by slot.
  void CopyIn(const char* data, std::int64_t lo, std::int64_t hi, std::int64_t itemsize) {
    const auto slot_size = static_cast<std::int64_t>(ring_->slot_size());
    if (itemsize != slot_size) {
      for (std::int64_t seq = lo; seq <= hi; ++seq, data += itemsize) {
        std::memcpy(ring_->slot(seq), data, static_cast<std::size_t>(itemsize));
      }
      return;
    }
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    while (lo <= hi) {
      const std::int64_t run = std::min(hi - lo + 1, capacity - (lo & (capacity - 1)));
      std::memcpy(ring_->slot(lo), data, static_cast<std::size_t>(run * itemsize));
      data += run * itemsize;
      lo += run;
    }
  }

  // Publishes `count` records of `itemsize` bytes laid out back to back in `data`. Returns
  // the last one's sequence (with other producers on the ring, the cursor may be past it;
  // with no records, the cursor).
  std::int64_t PublishRecords(const char* data, std::int64_t count, std::int64_t itemsize) {
    CheckUsable();
    if (itemsize <= 0 || itemsize > static_cast<std::int64_t>(ring_->slot_size())) {
      ThrowStatus(absl::InvalidArgumentError("record size does not fit the ring's slots"));
    }
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t chunk = std::max<std::int64_t>(1, capacity / 2);
    // Fast, as PublishRecord's: one claim with room now, copied holding the GIL, nobody else
    // using the producer (busy_ 0, read with the GIL this holds throughout): no Usage.
    if (count >= 1 && count <= chunk && count * itemsize < kReleaseGilBytes &&
        busy_.load(std::memory_order_acquire) == 0) {
      const std::optional<std::int64_t> fast =
          Dispatch([&](auto& s) -> std::optional<std::int64_t> {
            const absl::StatusOr<std::int64_t> hi = s.TryNext(count);
            if (!hi.ok()) {
              if (hi.status().code() != absl::StatusCode::kResourceExhausted) {
                ThrowStatus(hi.status());
              }
              return std::nullopt;  // full: wait below, as a use
            }
            CopyIn(data, *hi - count + 1, *hi, itemsize);
            s.Publish(*hi - count + 1, *hi);
            return *hi;
          });
      if (fast) return *fast;
    }
    return Use([&](auto& s) {
      std::int64_t last = s.cursor();
      for (std::int64_t done = 0; done < count;) {
        const std::int64_t n = std::min(chunk, count - done);
        const std::int64_t hi = Claim(s, n);
        {
          std::optional<py::gil_scoped_release> release;
          if (n * itemsize >= kReleaseGilBytes) release.emplace();
          CopyIn(data, hi - n + 1, hi, itemsize);
        }
        data += n * itemsize;
        s.Publish(hi - n + 1, hi);
        done += n;
        last = hi;
      }
      return last;
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
    // Not waiting: another thread holding the producer (asyncio's helper waiting for room)
    // counts as no room, so the loop's thread never blocks on it.
    Usage usage(*this, max_wait_ns > 0 ? Usage::kForever : 0);
    if (!usage.owns()) return std::nullopt;
    return Dispatch([&](auto& s) -> std::optional<std::int64_t> {
      absl::StatusOr<std::int64_t> hi;
      {
        py::gil_scoped_release release;
        hi = max_wait_ns > 0 ? s.NextFor(count, max_wait_ns) : s.TryNext(count);
        if (hi.ok()) {
          CopyIn(data, *hi - count + 1, *hi, itemsize);
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

  // publish_batch's fast case (see PublishArray): arrays of exactly `array_type` whose dtype is
  // `dtype` (or equal to it: the last such dtype object is remembered); everything else goes
  // to `fallback` (Producer.publish_batch, the general path).
  void SetBatchPath(py::object dtype, py::object array_type, py::object fallback) {
    CheckUsable();
    batch_dtype_ = std::move(dtype);
    batch_equal_dtype_ = batch_dtype_;
    batch_array_type_ = std::move(array_type);
    batch_fallback_ = std::move(fallback);
  }

  // A 1-D C-contiguous array of the ring's dtype, published as it is: the cursor after it, or
  // nullopt when `records` is anything else (the caller hands it to the general path).
  std::optional<std::int64_t> PublishArray(PyObject* records) {
    if (batch_fallback_.is_none() || itemsize_ == 0) {
      ThrowStatus(absl::FailedPreconditionError("no batch path (set_packer, set_batch_path)"));
    }
    if (reinterpret_cast<PyObject*>(Py_TYPE(records)) != batch_array_type_.ptr()) {
      return std::nullopt;
    }
    const py::object dtype = py::reinterpret_steal<py::object>(
        PyObject_GetAttrString(records, "dtype"));
    if (!dtype) throw py::error_already_set();
    if (!dtype.is(batch_dtype_) && !dtype.is(batch_equal_dtype_)) {
      const int equal = PyObject_RichCompareBool(dtype.ptr(), batch_dtype_.ptr(), Py_EQ);
      if (equal < 0) throw py::error_already_set();
      if (equal == 0) return std::nullopt;
      batch_equal_dtype_ = dtype;  // the next array of it skips the compare
    }
    const ContiguousBytes bytes(records);
    if (!bytes.ok()) return std::nullopt;  // strided: the general path makes it contiguous
    const Py_buffer& view = bytes.view();
    const auto itemsize = static_cast<std::int64_t>(itemsize_);  // the dtype's (SetPacker)
    if (view.ndim != 1 || view.len != view.shape[0] * itemsize) return std::nullopt;
    if (view.shape[0] == 0) return Cursor();
    return PublishRecords(static_cast<const char*>(view.buf), view.shape[0], itemsize);
  }

  const py::object& batch_fallback() const { return batch_fallback_; }

  // The record packer (CompileOps of the dtype's fields, or None: numpy packs everything) and
  // the Python function that packs anything else (Producer._pack_one: raises RecordError).
  void SetPacker(const py::object& fields, std::size_t itemsize, py::object fallback) {
    CheckUsable();
    if (itemsize == 0 || itemsize > ring_->slot_size()) {
      ThrowStatus(absl::InvalidArgumentError("record size does not fit the ring's slots"));
    }
    has_ops_ = !fields.is_none();
    ops_ = has_ops_ ? CompileOps(fields.cast<py::list>()) : std::vector<PackOp>{};
    flat_ = Flatten(ops_);
    itemsize_ = itemsize;
    fallback_ = std::move(fallback);
    record_.assign(itemsize, 0);
  }

  // Producer.publish: one record (a tuple in field order fast, anything else through the
  // fallback packer), claimed, written and published with no Python frame in between.
  // Returns the cursor after it (the record's sequence on a single-producer ring).
  std::int64_t PublishRecord(const py::handle record) {
    const char* data = Pack(record);
    CheckUsable();
    const auto publish = [&](auto& s) {
      // Fast, without Usage (two locked instructions and a lock, a fifth of the call): with
      // busy_ at 0 nobody holds or waits for the producer, and nobody can start to before
      // this returns, as that takes the GIL this holds throughout (Usage). Detach, which
      // takes the GIL back before it lets go of the sequencer, cannot come in between; one
      // that began earlier has set closing_, which CheckUsable reports.
      if (busy_.load(std::memory_order_acquire) == 0) {
        const absl::StatusOr<std::int64_t> hi = s.TryNext(1);
        if (hi.ok()) {
          std::memcpy(ring_->slot(*hi), data, itemsize_);
          s.Publish(*hi, *hi);
          return single_ ? *hi : s.cursor();
        }
        if (hi.status().code() != absl::StatusCode::kResourceExhausted) ThrowStatus(hi.status());
      }
      // Full, or another thread uses the producer: wait for both with the GIL released;
      // another thread may pack meanwhile, so the record waits in a copy of its own.
      const std::vector<char> copy(data, data + itemsize_);
      Usage usage(*this);
      const std::int64_t hi = Claim(s, 1);
      std::memcpy(ring_->slot(hi), copy.data(), itemsize_);
      s.Publish(hi, hi);
      return single_ ? hi : s.cursor();
    };
    return Dispatch(publish);
  }

  // Producer.publish_many: every record of an iterable, claimed in runs of up to half the
  // ring at once. Returns the cursor after the last.
  std::int64_t PublishMany(const py::iterable& records) {
    CheckUsable();
    const auto capacity = static_cast<std::int64_t>(ring_->capacity());
    const std::int64_t chunk = std::max<std::int64_t>(1, capacity / 2);
    std::vector<char> packed;
    std::int64_t n = 0;
    std::int64_t last = Cursor();
    auto flush = [&] {
      if (n == 0) return;
      last = Use([&](auto& s) {
        const std::int64_t hi = Claim(s, n);
        const char* p = packed.data();
        for (std::int64_t seq = hi - n + 1; seq <= hi; ++seq, p += itemsize_) {
          std::memcpy(ring_->slot(seq), p, itemsize_);
        }
        s.Publish(hi - n + 1, hi);
        return single_ ? hi : s.cursor();
      });
      packed.clear();
      n = 0;
    };
    for (const py::handle record : records) {
      const char* data = Pack(record);
      packed.insert(packed.end(), data, data + itemsize_);
      if (++n == chunk) flush();
    }
    flush();
    return last;
  }

  // Waits at most `max_wait_ns` (> 0, GIL released) until n slots can be claimed, claiming
  // nothing: true when there is room (asyncio's helper; the claim follows in the loop's
  // thread, so a task cancelled while it waits has claimed nothing).
  bool WaitForRoom(std::int64_t n, std::int64_t max_wait_ns) {
    CheckSize(n);
    if (max_wait_ns <= 0) ThrowStatus(absl::InvalidArgumentError("max_wait_s must be > 0"));
    // Another thread's publish may hold the producer while it waits for room itself: that
    // counts as no room within the slice (the caller may be cancelled between slices).
    Usage usage(*this, max_wait_ns);
    if (!usage.owns()) return false;
    return Dispatch([&](auto& s) {
      absl::StatusOr<bool> room;
      {
        py::gil_scoped_release release;
        room = s.WaitForRoom(n, max_wait_ns);
      }
      if (!room.ok()) ThrowStatus(room.status());
      return *room;
    });
  }

  // Ends the stream (consumers drain it, then stop). A claim another thread is waiting for
  // gives up at its next slice (StateError) rather than publish after the end.
  void Close() {
    CheckNotReentered();  // before the stream counts as ended: nothing was ended then
    ended_.store(true, std::memory_order_relaxed);
    Usage usage(*this, Usage::kForever, /*ending=*/true);
    Dispatch([](auto& s) { s.Close(); });
  }

  // Gives up the producer role. Another thread waiting in a claim is told (StateError) and
  // this call waits for it to let go first. In a forked child it only forgets the parent's.
  void Detach() {
    if (closed()) return;
    CheckNotReentered();
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

  // A load of the ring's cursor: no use of the sequencer, so it never waits for another
  // thread's publish (asyncio reads it in the loop's thread). The GIL, held throughout, keeps
  // Detach from letting go of the sequencer meanwhile (as PublishRecord's fast path).
  std::int64_t Cursor() {
    CheckUsable(/*ending=*/true);
    return Dispatch([](auto& s) { return s.cursor(); });
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
  // One record packed into record_ (the fast path for tuples), or into the fallback's buffer.
  const char* Pack(const py::handle record) {
    if (fallback_.is_none()) ThrowStatus(absl::FailedPreconditionError("no packer set"));
    if (has_ops_ && PyTuple_Check(record.ptr())) {
      std::memset(record_.data(), 0, itemsize_);
      if (!flat_.empty() && PackFlat(flat_, record.ptr(), record_.data())) return record_.data();
      if (PackValues(ops_, record.ptr(), record_.data())) return record_.data();
      PyErr_Clear();  // numpy may still convert it (or say why not)
    }
    if (PyBytes_CheckExact(record.ptr()) &&
        static_cast<std::size_t>(PyBytes_GET_SIZE(record.ptr())) == itemsize_) {
      return PyBytes_AS_STRING(record.ptr());  // one record already packed: copied as it is
    }
    fallback_bytes_ = fallback_(record);
    const py::buffer_info info = py::cast<py::buffer>(fallback_bytes_).request();
    if (static_cast<std::size_t>(info.size * info.itemsize) != itemsize_) {
      ThrowStatus(absl::InvalidArgumentError("the packed record is not one record long"));
    }
    return static_cast<const char*>(info.ptr);
  }

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
  std::atomic<int> busy_{0};  // uses in progress or waiting for claim_mutex_ (Usage)
  std::timed_mutex claim_mutex_;  // held by the use in progress (Usage)
  std::atomic<std::thread::id> holder_{};  // the thread holding claim_mutex_ (re-entry check)
  std::atomic<bool> closing_{false};
  std::atomic<bool> ended_{false};  // close() ended the stream: no claim after it
  bool has_ops_ = false;
  std::vector<PackOp> ops_;
  std::vector<FlatOp> flat_;  // ops_ flattened when every field is a scalar
  std::size_t itemsize_ = 0;
  py::object fallback_ = py::none();
  py::object fallback_bytes_;  // keeps the fallback's buffer alive until it is copied
  py::object batch_dtype_ = py::none();
  py::object batch_equal_dtype_ = py::none();
  py::object batch_array_type_ = py::none();
  py::object batch_fallback_ = py::none();
  std::vector<char> record_;
};

// Runs `body` (returning a new reference) for a builtin below, turning C++ exceptions into the
// Python error they stand for.
template <typename Body>
PyObject* Guarded(PyObject* capsule, Body body) {
  auto* p = static_cast<PyProducer*>(PyCapsule_GetPointer(capsule, nullptr));
  if (p == nullptr) return nullptr;
  try {
    return body(*p);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

// Producer.publish as a builtin function of one argument (METH_O) bound to the producer: a
// call costs what calling len() does, not pybind11's dispatch (argument loaders, overloads).
PyObject* PublishOne(PyObject* capsule, PyObject* record) {
  return Guarded(capsule,
                 [&](PyProducer& p) { return PyLong_FromLongLong(p.PublishRecord(record)); });
}

PyMethodDef kPublishOne = {"publish", PublishOne, METH_O,
                           "publish(record) -> int: one record (see Producer.publish)"};

// Producer.publish_batch as a builtin function of one argument, as publish: an array of the
// ring's dtype goes to the ring without a Python frame or pybind11's dispatch (~1 us of the
// ~4.6 us a batch of 256 took); anything else to the general path in Python.
PyObject* PublishBatch(PyObject* capsule, PyObject* records) {
  return Guarded(capsule, [&](PyProducer& p) -> PyObject* {
    if (const std::optional<std::int64_t> last = p.PublishArray(records)) {
      return PyLong_FromLongLong(*last);
    }
    const py::object general = p.batch_fallback();  // a reference of its own for the call
    return PyObject_CallOneArg(general.ptr(), records);
  });
}

PyMethodDef kPublishBatch = {
    "publish_batch", PublishBatch, METH_O,
    "publish_batch(records) -> int: many records (see Producer.publish_batch)"};

// A builtin of `method` bound to the C++ producer of `owner`: a capsule holding the producer
// and, as its context, a reference to its Python owner.
py::object BoundFunction(const py::object& owner, PyMethodDef* method) {
  auto* p = owner.cast<PyProducer*>();
  PyObject* capsule = PyCapsule_New(p, nullptr, [](PyObject* c) {
    Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(c)));
  });
  if (capsule == nullptr) throw py::error_already_set();
  Py_INCREF(owner.ptr());
  PyCapsule_SetContext(capsule, owner.ptr());
  PyObject* f = PyCFunction_New(method, capsule);
  Py_DECREF(capsule);  // the function holds it
  if (f == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(f);
}

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
            const ContiguousBytes bytes(data.ptr());
            return p.PublishRecords(bytes.Records(count, itemsize), count, itemsize);
          },
          py::arg("data"), py::arg("count"), py::arg("itemsize"))
      .def(
          "publish_bytes_for",
          [](PyProducer& p, const py::buffer& data, std::int64_t count, std::int64_t itemsize,
             double max_wait_s) {
            const ContiguousBytes bytes(data.ptr());
            return p.PublishRecordsFor(bytes.Records(count, itemsize), count, itemsize,
                                       static_cast<std::int64_t>(max_wait_s * 1e9));
          },
          py::arg("data"), py::arg("count"), py::arg("itemsize"), py::arg("max_wait_s"))
      .def(
          "wait_for_room",
          [](PyProducer& p, std::int64_t n, double max_wait_s) {
            return p.WaitForRoom(n, static_cast<std::int64_t>(max_wait_s * 1e9));
          },
          py::arg("n"), py::arg("max_wait_s"))
      .def("set_packer", &PyProducer::SetPacker, py::arg("fields"), py::arg("itemsize"),
           py::arg("fallback"))
      .def("publish_record", &PyProducer::PublishRecord, py::arg("record"))
      .def("publish_function",
           [](const py::object& self) { return BoundFunction(self, &kPublishOne); })
      .def("set_batch_path", &PyProducer::SetBatchPath, py::arg("dtype"), py::arg("array_type"),
           py::arg("fallback"))
      .def("publish_batch_function",
           [](const py::object& self) { return BoundFunction(self, &kPublishBatch); })
      .def("publish_many", &PyProducer::PublishMany, py::arg("records"))
      .def("close", &PyProducer::Close)
      .def("detach", &PyProducer::Detach)
      .def_property_readonly("closed", &PyProducer::closed)
      .def_property_readonly("cursor", &PyProducer::Cursor)
      .def_property_readonly("remaining_capacity", &PyProducer::Remaining)
      .def("has_available_capacity", &PyProducer::HasAvailableCapacity, py::arg("n"))
      .def("claim_sequence", &PyProducer::ClaimSequence, py::arg("sequence"));
}

}  // namespace xdisruptor::python
