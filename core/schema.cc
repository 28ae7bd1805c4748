#include "xdisruptor/schema.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <bit>
#include <cctype>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "xdisruptor/layout.h"

namespace xdisruptor {
namespace {

// Debian's Abseil keeps its own string_view type, so the few string helpers we need are ours.
std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = text.find(sep);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// Splits a field list at the commas that are not inside a shape such as "(2,3)".
std::vector<std::string_view> SplitFields(std::string_view text) {
  std::vector<std::string_view> fields;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')') --depth;
    if (text[i] == ',' && depth == 0) {
      fields.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  fields.push_back(text.substr(start));
  return fields;
}

// A decimal number without sign, at most kMaxSlotSize; false otherwise.
bool ParseCount(std::string_view s, std::uint32_t* out) {
  if (s.empty() || s.size() > 9) return false;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n > kMaxSlotSize) return false;
  *out = static_cast<std::uint32_t>(n);
  return true;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// Parses "(2,3)" at the front of `s`; returns the element count, or 0 on a malformed shape.
std::uint64_t ConsumeShape(std::string_view* s) {
  if (s->empty() || s->front() != '(') return 1;
  std::size_t close = s->find(')');
  if (close == std::string_view::npos) return 0;
  std::uint64_t count = 1;
  for (std::string_view dim : Split(s->substr(1, close - 1), ',')) {
    if (dim.empty()) continue;  // "(3,)" has a trailing comma
    std::uint32_t n = 0;
    if (!ParseCount(dim, &n) || n == 0 || n > kMaxSlotSize) return 0;
    count *= n;
    if (count > kMaxSlotSize) return 0;
  }
  s->remove_prefix(close + 1);
  return count;
}

// Size in bytes of one scalar format ("<f8", "S12", "<M8[ns]"), or 0 when invalid.
std::uint64_t ScalarSize(std::string_view f) {
  if (!f.empty() && (f[0] == '<' || f[0] == '>' || f[0] == '|' || f[0] == '=')) {
    f.remove_prefix(1);
  }
  if (f.empty()) return 0;
  char kind = f[0];
  f.remove_prefix(1);
  if (kind == 'M' || kind == 'm') {  // datetime64 / timedelta64: "8[unit]" or "8"
    if (f.empty() || f.front() != '8') return 0;
    f.remove_prefix(1);
    if (f.empty()) return 8;
    if (f.size() < 3 || f.front() != '[' || f.back() != ']') return 0;
    for (char c : f.substr(1, f.size() - 2)) {
      if (!std::isalnum(static_cast<unsigned char>(c))) return 0;
    }
    return 8;
  }
  std::uint32_t n = 0;
  if (!ParseCount(f, &n) || n == 0 || n > kMaxSlotSize) return 0;
  switch (kind) {
    case 'b': case '?': return n == 1 ? 1 : 0;
    case 'i': case 'u': return (n == 1 || n == 2 || n == 4 || n == 8) ? n : 0;
    case 'f': return (n == 2 || n == 4 || n == 8 || n == 16) ? n : 0;
    case 'c': return (n == 8 || n == 16 || n == 32) ? n : 0;
    case 'S': case 'V': case 'a': return n;
    case 'U': return std::uint64_t{n} * 4;
    default: return 0;
  }
}

// "(3)", "(3,)", "( 3 , )" -> "(3,)"; "(2,3)" -> "(2,3)"; "" -> "".
std::string CanonicalShape(std::string_view shape) {
  if (shape.empty()) return "";
  std::vector<std::string> dims;
  for (std::string_view d : Split(shape.substr(1, shape.size() - 2), ',')) {
    std::string dim(d);
    std::erase(dim, ' ');
    if (!dim.empty()) dims.push_back(dim);
  }
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? "," : "") + dims[i];
  return out + (dims.size() == 1 ? ",)" : ")");
}

// The canonical spelling of one scalar format that ScalarSize accepted.
std::string CanonicalScalar(std::string_view f) {
  char order = 0;
  if (!f.empty() && (f[0] == '<' || f[0] == '>' || f[0] == '|' || f[0] == '=')) {
    order = f[0];
    f.remove_prefix(1);
  }
  std::string kind(1, f[0]);
  std::string rest(f.substr(1));
  if (kind == "?") {
    kind = "b";
    rest = "1";
  }
  if (kind == "a") kind = "S";
  const bool single_byte = kind == "S" || kind == "V" || kind == "b" ||
                           ((kind == "i" || kind == "u") && rest == "1");
  if (single_byte || order == '|') return kind + rest;
  if (order == 0 || order == '=') {
    order = std::endian::native == std::endian::little ? '<' : '>';
  }
  return std::string(1, order) + kind + rest;
}

}  // namespace

bool SameSchema(std::string_view a, std::string_view b) {
  auto pa = ParseSchema(a);
  auto pb = ParseSchema(b);
  return pa.ok() && pb.ok() && pa->canonical == pb->canonical;
}

absl::StatusOr<Schema> ParseSchema(std::string_view text) {
  Schema schema;
  if (text.empty()) return schema;
  if (text.size() > kMaxSchemaLength) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "schema is %d bytes; at most %d fit in a ring header", text.size(), kMaxSchemaLength));
  }
  std::set<std::string, std::less<>> names;
  std::uint64_t offset = 0;
  for (std::string_view item : SplitFields(text)) {
    std::size_t colon = item.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "schema field '%s' is not FORMAT:NAME (for example \"<f8:price\")", item));
    }
    std::string_view format = item.substr(0, colon);
    std::string_view name = item.substr(colon + 1);
    if (!IsIdentifier(name)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "schema field name '%s' must be an identifier of at most %d characters", name,
          kMaxNameLength));
    }
    if (!names.insert(std::string(name)).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("schema names field '%s' twice", name));
    }
    std::string_view rest = format;
    const std::string_view shape_text = rest.substr(0, rest.find(')') == std::string_view::npos
                                                           ? 0
                                                           : rest.find(')') + 1);
    std::uint64_t count = ConsumeShape(&rest);
    std::uint64_t scalar = ScalarSize(rest);
    if (count == 0 || scalar == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "schema field '%s' has format '%s', which is not a fixed-size numpy type such as "
          "<i8, <f8, S12 or V4",
          name, format));
    }
    std::uint64_t size = count * scalar;
    if (offset + size > kMaxSlotSize) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "schema needs more than %d bytes per event", kMaxSlotSize));
    }
    schema.fields.push_back(SchemaField{std::string(name), std::string(format),
                                        static_cast<std::uint32_t>(offset),
                                        static_cast<std::uint32_t>(size)});
    offset += size;
    if (!schema.canonical.empty()) schema.canonical += ',';
    schema.canonical += CanonicalShape(shape_text) + CanonicalScalar(rest) + ":" + std::string(name);
  }
  schema.itemsize = static_cast<std::uint32_t>(offset);
  return schema;
}

std::uint64_t SchemaHash(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {

std::string Hex(std::span<const std::byte> bytes) {
  std::string out = "\"";
  for (std::byte b : bytes) out += absl::StrFormat("%02x", static_cast<unsigned>(b));
  return out + "\"";
}

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u >= 0x7f) {
      out += absl::StrFormat("\\u%04x", u);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// The bytes of one scalar in this machine's order.
std::array<std::byte, 16> Native(const std::byte* p, std::size_t n, bool big_endian) {
  std::array<std::byte, 16> v{};
  std::memcpy(v.data(), p, n);
  if (big_endian != (std::endian::native == std::endian::big)) std::reverse(v.begin(), v.begin() + n);
  return v;
}

template <typename T>
T As(const std::array<std::byte, 16>& v) {
  T t;
  std::memcpy(&t, v.data(), sizeof(T));
  return t;
}

// One scalar of format `f` (byte-order mark, kind, size; no shape) at `p`, as JSON.
std::string ScalarJson(std::string_view f, const std::byte* p) {
  bool big = false;
  if (!f.empty() && (f[0] == '<' || f[0] == '>' || f[0] == '|' || f[0] == '=')) {
    big = f[0] == '>';
    f.remove_prefix(1);
  }
  const char kind = f.empty() ? 'V' : f[0];
  const std::size_t n = ScalarSize(f);
  const auto v = Native(p, std::min<std::size_t>(n, 16), big);
  switch (kind) {
    case 'b': case '?': return p[0] != std::byte{0} ? "true" : "false";
    case 'i':
      switch (n) {
        case 1: return absl::StrFormat("%d", As<std::int8_t>(v));
        case 2: return absl::StrFormat("%d", As<std::int16_t>(v));
        case 4: return absl::StrFormat("%d", As<std::int32_t>(v));
        default: return absl::StrFormat("%d", As<std::int64_t>(v));
      }
    case 'M': case 'm': return absl::StrFormat("%d", As<std::int64_t>(v));
    case 'u':
      switch (n) {
        case 1: return absl::StrFormat("%d", As<std::uint8_t>(v));
        case 2: return absl::StrFormat("%d", As<std::uint16_t>(v));
        case 4: return absl::StrFormat("%d", As<std::uint32_t>(v));
        default: return absl::StrFormat("%d", As<std::uint64_t>(v));
      }
    case 'f': {
      const double d = n == 4 ? As<float>(v) : n == 8 ? As<double>(v) : std::nan("");
      if (n != 4 && n != 8) return Hex({p, n});  // half and quad precision: the bytes
      return std::isfinite(d) ? absl::StrFormat("%.17g", d) : Quoted(absl::StrFormat("%g", d));
    }
    case 'c':
      if (n == 8 || n == 16) {
        const std::string part = std::string(big ? ">f" : "<f") + (n == 8 ? "4" : "8");
        return "[" + ScalarJson(part, p) + ", " + ScalarJson(part, p + n / 2) + "]";
      }
      return Hex({p, n});
    case 'S': case 'a': {
      std::string_view text(reinterpret_cast<const char*>(p), n);
      return Quoted(text.substr(0, text.find('\0')));
    }
    case 'U': {
      std::string text;
      for (std::size_t i = 0; i + 4 <= n; i += 4) {
        const auto cp = As<std::uint32_t>(Native(p + i, 4, big));
        if (cp == 0) break;
        text += cp < 0x80 ? static_cast<char>(cp) : '?';  // ASCII shown, the rest as '?'
      }
      return Quoted(text);
    }
    default: return Hex({p, n});
  }
}

}  // namespace

std::string EventJson(const Schema& schema, std::span<const std::byte> event) {
  if (schema.fields.empty()) return "{\"bytes\": " + Hex(event) + "}";
  std::string out = "{";
  for (std::size_t i = 0; i < schema.fields.size(); ++i) {
    const SchemaField& field = schema.fields[i];
    std::string_view format = field.format;
    const std::uint64_t count = ConsumeShape(&format);
    const std::uint64_t size = count == 0 ? 0 : ScalarSize(format);
    std::string value;
    if (size == 0 || field.offset + count * size > event.size()) {
      value = "null";
    } else if (field.format.front() == '(') {
      value = "[";
      for (std::uint64_t k = 0; k < count; ++k) {
        value += (k ? ", " : "") + ScalarJson(format, event.data() + field.offset + k * size);
      }
      value += "]";
    } else {
      value = ScalarJson(format, event.data() + field.offset);
    }
    out += (i ? ", " : "") + Quoted(field.name) + ": " + value;
  }
  return out + "}";
}

}  // namespace xdisruptor
