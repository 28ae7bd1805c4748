// peer_event.h — the event the cross-language tests exchange: every field derives from the
// sequence, so either side can check an event without being told what was sent.
#ifndef XDISRUPTOR_TESTS_PEER_PEER_EVENT_H_
#define XDISRUPTOR_TESTS_PEER_PEER_EVENT_H_

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace peer {

struct PeerEvent {
  std::int64_t sequence;
  std::int64_t value;  // sequence * 3 + 1
  double price;        // sequence * 0.5
  std::uint64_t mark;  // 0 when published; sequence * 7 once a marking stage has seen it
  char text[32];       // "event <sequence>", zero-padded
};
static_assert(sizeof(PeerEvent) == 64);

inline constexpr char kPeerSchema[] = "<i8:sequence,<i8:value,<f8:price,<u8:mark,S32:text";

inline void Fill(PeerEvent* e, std::int64_t s) {
  e->sequence = s;
  e->value = s * 3 + 1;
  e->price = static_cast<double>(s) * 0.5;
  e->mark = 0;
  std::memset(e->text, 0, sizeof(e->text));
  std::snprintf(e->text, sizeof(e->text), "event %lld", static_cast<long long>(s));
}

inline bool Verify(const PeerEvent& e, std::int64_t s) {
  char text[32] = {};
  std::snprintf(text, sizeof(text), "event %lld", static_cast<long long>(s));
  return e.sequence == s && e.value == s * 3 + 1 && e.price == static_cast<double>(s) * 0.5 &&
         std::memcmp(text, e.text, sizeof(text)) == 0;
}

inline std::uint64_t Mark(std::int64_t s) { return static_cast<std::uint64_t>(s) * 7; }

}  // namespace peer

#endif  // XDISRUPTOR_TESTS_PEER_PEER_EVENT_H_
