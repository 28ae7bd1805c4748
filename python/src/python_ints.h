// Python ints to and from 64-bit fields without the C API's generic loops: on CPython 3.11
// (30-bit digits) the digits are read and written directly; elsewhere the readers say "not
// here" (the callers take the API path) and IntOf uses the API. The per-record hot paths of
// producers (packing) and consumers (tuples) share them.
#ifndef XDISRUPTOR_PYTHON_INTS_H_
#define XDISRUPTOR_PYTHON_INTS_H_

#include <Python.h>

#include <cstdint>
#include <cstring>

namespace xdisruptor::python {

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && PYLONG_BITS_IN_DIGIT == 30
#define XDISRUPTOR_INT_DIGITS 1
#endif

// An exact int of at most 64 bits as sign and magnitude (PyLong_AsUnsignedLongLong goes
// through _PyLong_AsByteArray: about 40 instructions a field more). False for what the API
// path must judge (not an exact int, more than 64 bits, another CPython).
inline bool DigitsOf(PyObject* v, std::uint64_t& magnitude, bool& negative) {
#ifdef XDISRUPTOR_INT_DIGITS
  if (!PyLong_CheckExact(v)) return false;
  const Py_ssize_t size = Py_SIZE(v);
  const digit* d = reinterpret_cast<PyLongObject*>(v)->ob_digit;
  negative = size < 0;
  switch (negative ? -size : size) {
    case 0: magnitude = 0; return true;
    case 1: magnitude = d[0]; return true;
    case 2: magnitude = d[0] | static_cast<std::uint64_t>(d[1]) << 30; return true;
    case 3:
      if ((d[2] >> 4) != 0) return false;  // more than 64 bits
      magnitude = d[0] | static_cast<std::uint64_t>(d[1]) << 30 |
                  static_cast<std::uint64_t>(d[2]) << 60;
      return true;
    default: return false;
  }
#else
  (void)v, (void)magnitude, (void)negative;
  return false;
#endif
}

template <typename T>
inline void Store(char* out, T v) {
  std::memcpy(out, &v, sizeof v);  // a fixed size: a store, not a call
}

// Writes `v` as a field of kind 'i' or 'u' and `size` bytes (1, 2, 4, 8) when it is an exact
// int that fits; false (no Python error set) otherwise: the caller's API path converts it or
// says why not.
inline bool StoreExactInt(char kind, std::size_t size, PyObject* v, char* out) {
  std::uint64_t m;
  bool negative;
  if (!DigitsOf(v, m, negative)) return false;
  if (kind == 'u') {
    if (negative || (size < 8 && m >> (size * 8) != 0)) return false;
  } else {
    const std::uint64_t limit = std::uint64_t{1} << (size * 8 - 1);  // |min|; max is limit - 1
    if (negative ? m > limit : m >= limit) return false;
    m = negative ? 0 - m : m;  // two's complement: the low bytes are the field
  }
  switch (size) {
    case 8: Store(out, m); break;
    case 4: Store(out, static_cast<std::uint32_t>(m)); break;
    case 2: Store(out, static_cast<std::uint16_t>(m)); break;
    default: Store(out, static_cast<std::uint8_t>(m)); break;
  }
  return true;
}

// A Python int of `magnitude` (negated when `negative`): below 2**30 through PyLong_FromLong
// (its small-int cache and one-digit path), above it with the digits written directly
// (PyLong_FromUnsignedLongLong counts and writes them in loops: about a third of the cost of
// a per-event tuple of 8-byte ints).
inline PyObject* IntOf(std::uint64_t magnitude, bool negative) {
#ifdef XDISRUPTOR_INT_DIGITS
  constexpr std::uint64_t kMask = (std::uint64_t{1} << 30) - 1;
  if (magnitude <= kMask) {
    return PyLong_FromLong(negative ? -static_cast<long>(magnitude) : static_cast<long>(magnitude));
  }
  const Py_ssize_t n = magnitude >> 60 ? 3 : 2;
  PyLongObject* v = _PyLong_New(n);
  if (v == nullptr) return nullptr;
  v->ob_digit[0] = static_cast<digit>(magnitude & kMask);
  v->ob_digit[1] = static_cast<digit>((magnitude >> 30) & kMask);
  if (n == 3) v->ob_digit[2] = static_cast<digit>(magnitude >> 60);
  if (negative) Py_SET_SIZE(v, -n);
  return reinterpret_cast<PyObject*>(v);
#else
  if (!negative) return PyLong_FromUnsignedLongLong(magnitude);
  return PyLong_FromLongLong(static_cast<long long>(0 - magnitude));
#endif
}

}  // namespace xdisruptor::python

#endif  // XDISRUPTOR_PYTHON_INTS_H_
