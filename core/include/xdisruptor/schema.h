// xdisruptor/schema.h — the event layout stored in a ring's header, as numpy-style field text.
//
// Text form: comma-separated `FORMAT:NAME` fields, packed in order with no implicit padding,
// for example "<i8:seq,<f8:price,S12:symbol,V4:_pad". FORMAT is a numpy type string: an
// optional sub-array shape "(2,3)", a byte-order mark (< > | =), a kind and an item size:
//   b1 (bool), i1 i2 i4 i8, u1 u2 u4 u8, f2 f4 f8 f16, c8 c16 c32, Sn (bytes), Un (UCS-4
//   text, 4n bytes), Vn (raw bytes, padding), M8[unit] and m8[unit] (datetime, timedelta).
// Python rebuilds the numpy dtype from it; C++ compares it to what it expects.
// Pure functions; safe from any thread.
#ifndef XDISRUPTOR_SCHEMA_H_
#define XDISRUPTOR_SCHEMA_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace xdisruptor {

struct SchemaField {
  std::string name;
  std::string format;  // as written, e.g. "<f8" or "(3,)<i4"
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
};

struct Schema {
  std::vector<SchemaField> fields;
  std::uint32_t itemsize = 0;  // bytes one event needs
  // The same fields in one spelling: no '|' (not applicable) byte-order mark, '=' written as
  // this machine's order, '?' as b1 and 'a' as S. Two schemas describe the same events
  // exactly when their canonical texts are equal.
  std::string canonical;
};

// Parses and validates schema text; the empty text is the empty schema (raw bytes).
absl::StatusOr<Schema> ParseSchema(std::string_view text);

// True when both texts parse and describe the same events (canonical forms equal).
bool SameSchema(std::string_view a, std::string_view b);

// One event decoded as a JSON object of its fields (numbers, strings for S/U text, hex for V
// and other raw bytes, lists for sub-arrays and complex numbers), for flight records. The
// empty schema gives {"bytes": "<hex>"}. `event` holds at least schema.itemsize bytes.
std::string EventJson(const Schema& schema, std::span<const std::byte> event);

// FNV-1a 64-bit hash, as stored in the header next to the text.
std::uint64_t SchemaHash(std::string_view text);

}  // namespace xdisruptor

#endif  // XDISRUPTOR_SCHEMA_H_
