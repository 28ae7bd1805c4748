// attach_fuzzer — libFuzzer target for the attach path of hostile or stale segments.
//
// Each input patches a valid ring image (header, producer state, consumer table) at
// input-chosen offsets and may cut it short, writes it into a real shared-memory segment, then
// attaches to it and, if attach accepts it, uses it the way a consumer would: registers (which
// reads every consumer entry and `after` list), reads the slots through a barrier, and
// deregisters. Anything but a clean absl::Status is a bug: ASan/UBSan and SIGBUS turn it into a
// crash libFuzzer reports.
//
// Input: byte 0 picks the segment's length (intact, or cut short at one of several places);
// then any number of patches: offset (2 bytes, scaled over the header + tables), length (1
// byte, up to 32), and that many bytes to write there.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "xdisruptor/xdisruptor.h"

namespace {

using namespace xdisruptor;

const std::string& Name() {
  static const std::string name = [] {
    std::atexit([] { ::shm_unlink(("/xdfuzz-" + std::to_string(::getpid())).c_str()); });
    return "xdfuzz-" + std::to_string(::getpid());
  }();
  return name;
}

// A valid image of a small ring, made once by the library itself.
const std::vector<std::byte>& BaseImage(bool multi) {
  static std::vector<std::byte> images[2];
  std::vector<std::byte>& image = images[multi ? 1 : 0];
  if (image.empty()) {
    const std::string name = Name() + "-base";
    RingSegment::Remove(name).IgnoreError();
    auto ring = RingSegment::Create(
        {.name = name,
         .capacity = 16,
         .slot_size = 64,
         .schema = "<i8:seq,<f8:price,S12:symbol,V4:_pad,(2,)<i4:grid,<i8:q,<i8:r",
         .sequencer = multi ? SequencerKind::kMultiProducer : SequencerKind::kSingleProducer});
    if (!ring.ok()) __builtin_trap();
    {
      auto c = Consumer::Register(*ring, "up");
      auto d = Consumer::Register(*ring, "down", {.after = {"up"}});
      if (!c.ok() || !d.ok()) __builtin_trap();
      c->Release(-1, 0);
      const auto size = ring->header().segment_size;
      image.resize(size);
      std::memcpy(image.data(), &ring->header(), size);
    }
    RingSegment::Remove(name).IgnoreError();
  }
  return image;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::vector<std::byte> image = BaseImage((data[0] & 0x80) != 0);
  const std::size_t full = image.size();
  // Where to cut: intact most of the time, else inside the header, the tables or the slots.
  static const std::size_t kCuts[] = {0, 0, 0, 0, 100, 4096, 5000, 6144, 20000, 47000};
  const std::size_t cut = kCuts[data[0] % 10];
  const std::size_t length = cut == 0 || cut > full ? full : cut;
  // Patches land in the header and tables (everything before the slots).
  const std::size_t patchable = std::min<std::size_t>(full, kConsumerTableEnd + 64);
  std::size_t i = 1;
  while (i + 3 <= size) {
    const std::size_t offset =
        (static_cast<std::size_t>(data[i]) << 8 | data[i + 1]) * patchable / 65536;
    const std::size_t len = std::min<std::size_t>(data[i + 2] % 33, size - i - 3);
    i += 3;
    for (std::size_t k = 0; k < len && offset + k < full; ++k) {
      image[offset + k] = static_cast<std::byte>(data[i + k]);
    }
    i += len;
  }

  // The registry lock word is runtime state, not layout: a patched one naming a live process
  // makes every registration wait its 5 s timeout (correct, but it would starve the fuzzer).
  reinterpret_cast<ProducerState*>(image.data() + kProducerOffset)
      ->registry_lock.store(0, std::memory_order_relaxed);

  const std::string& name = Name();
  const int fd = ::shm_open(("/" + name).c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  if (::ftruncate(fd, static_cast<off_t>(length)) == 0 && length > 0) {
    void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      std::memcpy(p, image.data(), length);
      ::munmap(p, length);
    }
  }
  ::close(fd);

  auto ring = RingSegment::Attach(name, {.creation_timeout = absl::Milliseconds(1)});
  if (ring.ok()) {
    // Use it as a consumer would; every value read must have been checked.
    auto consumer = Consumer::Register(*ring, "fuzz", {.after = {"up"}});
    if (!consumer.ok()) consumer = Consumer::Register(*ring, "fuzz");
    if (consumer.ok()) {
      const std::int64_t available = consumer->barrier().Available();
      volatile std::uint8_t sink = 0;
      for (std::int64_t s = 0; s < static_cast<std::int64_t>(ring->capacity()); ++s) {
        sink = sink + static_cast<std::uint8_t>(ring->slot(s)[ring->slot_size() - 1]);
      }
      (void)available;
      consumer->Deregister().IgnoreError();
    }
    (void)ring->schema().size();
  }
  return 0;
}
