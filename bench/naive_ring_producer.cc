// naive_ring_producer — the producer half of the baseline for bench/python_consumer.py: a
// shared-memory ring the way users write one by hand (mmap, a write index and a read index, no
// consumer registry, one reader), publishing the same 64-byte messages as
// `xdisruptor_example_producer --event=message`. Made correct: the slot is written before the
// write index (release), and the producer never laps the reader.
//
//   naive_ring_producer /dev/shm/NAME EVENTS
// The file must exist, be sized by the reader (see python_consumer.py), and the reader sets
// `ready` to 1 before the producer starts writing.
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr std::uint64_t kSlots = 1024;

struct Message {
  std::int64_t sequence;
  std::int64_t timestamp_ns;
  char text[48];
};

struct NaiveRing {
  std::atomic<std::uint64_t> write_index;
  std::atomic<std::uint64_t> read_index;
  std::atomic<std::uint64_t> ready;
  std::uint64_t pad;
  Message slots[kSlots];
};
static_assert(sizeof(Message) == 64 && sizeof(NaiveRing) == 32 + kSlots * 64);

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s /dev/shm/NAME EVENTS\n", argv[0]);
    return 2;
  }
  const std::uint64_t events = std::strtoull(argv[2], nullptr, 10);
  const int fd = ::open(argv[1], O_RDWR);
  if (fd < 0) {
    std::perror("open");
    return 1;
  }
  void* mem = ::mmap(nullptr, sizeof(NaiveRing), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  auto* ring = static_cast<NaiveRing*>(mem);
  while (ring->ready.load(std::memory_order_acquire) == 0) sched_yield();
  for (std::uint64_t w = 0; w < events; ++w) {
    while (w - ring->read_index.load(std::memory_order_acquire) >= kSlots) sched_yield();
    Message& m = ring->slots[w % kSlots];
    m.sequence = static_cast<std::int64_t>(w);
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    m.timestamp_ns = t.tv_sec * 1000000000LL + t.tv_nsec;
    std::memset(m.text, 0, sizeof(m.text));
    std::snprintf(m.text, sizeof(m.text), "message %llu", static_cast<unsigned long long>(w));
    ring->write_index.store(w + 1, std::memory_order_release);
  }
  return 0;
}
