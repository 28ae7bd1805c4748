// bridge_wire_fuzzer — libFuzzer target for what `bridge in` reads off the network: the
// headers and body of a message, through DecodeBatch (bridge_wire.cc).
//
// Input: up to seven header values separated by '\n' (Xd-Ring, Xd-Epoch, Xd-First, Xd-Count,
// Xd-Event-Size, Xd-Schema, Xd-Close; an empty value is an absent header), then a '\0' and the
// body. A decoded batch is then read the way `bridge in` reads it: every event of
// `count * event_size` bytes from the body, so a count the body does not hold is an ASan
// crash, as is any overflow UBSan sees.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "xdisruptor/bridge.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xdisruptor::bridge;
  const char* text = reinterpret_cast<const char*>(data);
  const char* end = static_cast<const char*>(std::memchr(text, '\0', size));
  const std::size_t head = end ? static_cast<std::size_t>(end - text) : size;
  std::vector<std::string> values(7);
  std::size_t field = 0;
  for (std::size_t i = 0; i < head && field < values.size(); ++i) {
    if (text[i] == '\n') {
      ++field;
    } else {
      values[field] += text[i];
    }
  }
  const char* keys[] = {kHeaderRing, kHeaderEpoch, kHeaderFirst, kHeaderCount,
                        kHeaderSize, kHeaderSchema, kHeaderClose};
  auto header = [&](const char* key) -> const char* {
    for (std::size_t k = 0; k < values.size(); ++k) {
      if (std::strcmp(key, keys[k]) == 0) return values[k].empty() ? nullptr : values[k].c_str();
    }
    return nullptr;
  };
  // The body in a buffer of its own size, so ASan sees any read past it.
  std::vector<char> body(end ? text + head + 1 : text + size, text + size);
  auto batch = DecodeBatch(header, {body.data(), body.size()});
  if (batch.ok() && batch->count > 0) {
    volatile char sink = 0;
    for (std::int64_t s = batch->first; s <= batch->first + batch->count - 1; ++s) {
      const std::size_t at = static_cast<std::size_t>(s - batch->first) * batch->event_size;
      sink = sink + batch->events[at] + batch->events[at + batch->event_size - 1];
    }
  }
  return 0;
}
