// peers — events/s across processes for the Disruptor's topologies, xdisruptor against the
// tools users would pick instead, one (implementation, topology, wait) per invocation so the
// driver (bench/run) can alternate them run by run and take ratios within a round.
//
//   peers --impl=xdisruptor --topology=diamond --wait=blocking --events=10000000
//
// Implementations:
//   xdisruptor  this library: one ring, a gating sequence per consumer, stages by `after`
//   hand        the shared-memory ring users write by hand: mmap, a head index, a tail per
//               reader, spinning or yielding (no blocking, no stage dependencies)
//   mq          Boost.Interprocess message_queue (mutex + condition in shared memory)
//   pipe        a UNIX pipe, events written in 4096-byte chunks (atomic: up to PIPE_BUF)
//   zmq         ZeroMQ over ipc://: PUSH/PULL, PUB/SUB (XPUB_NODROP: no drops) for multicast
// Topologies (the Java Disruptor's five, with processes): unicast 1P-1C, pipeline 1P-3C
// (c0 -> c1 -> c2), multicast 1P-3C, diamond 1P-3C (c0, c1 -> c2), sequencer 3P-1C.
// Every consumer checks every event (its sequence, tag words, and a sum over all words
// compared with the producers'); a run that loses, repeats or tears data prints ok=false
// and exits 1, never a number alone. An implementation that cannot do a topology exits 3
// and says why (the driver records "n/a" with that reason).
//
// Output: one JSON line {"impl", "topology", "wait", "events", "seconds", "events_per_s",
// "ok"} on stdout.
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "boost/interprocess/ipc/message_queue.hpp"
#include "xdisruptor/xdisruptor.h"
#ifdef XDISRUPTOR_HAVE_ZMQ
#include <zmq.h>
#endif

ABSL_FLAG(std::string, impl, "xdisruptor", "xdisruptor, hand, mq, pipe or zmq");
ABSL_FLAG(std::string, topology, "unicast",
          "unicast, pipeline, multicast, diamond or sequencer");
ABSL_FLAG(std::string, wait, "yielding",
          "busy-spin, yielding or blocking (xdisruptor; hand: busy-spin or yielding; the "
          "others always wait in the kernel)");
ABSL_FLAG(int64_t, events, 10'000'000, "events published in total");
ABSL_FLAG(int64_t, capacity, 65536, "ring slots / queue messages");
ABSL_FLAG(int64_t, batch, 64, "events a ring producer claims and publishes at once");
ABSL_FLAG(int64_t, max_batch, 0,
          "most events an xdisruptor consumer handles before it releases them (0: the "
          "library's default, DefaultMaxBatch; >= capacity: no cap), and with --hand_cap the "
          "hand ring's consumers too");
ABSL_FLAG(bool, hand_cap, false, "the hand ring's consumers release every --max_batch events "
          "(the default cap when 0) instead of once per batch");
ABSL_FLAG(std::string, pin, "",
          "a CPU per process, one digit each: the consumers c0, c1, ... then the producers "
          "(e.g. 0110 for a 1P-3C topology: c0 and the producer on CPU 0); empty: the "
          "kernel places them");

namespace {

constexpr std::uint64_t kTag = 0x9E3779B97F4A7C15ull;
constexpr int kProducers = 3;  // sequencer topology

struct alignas(64) Event {
  std::uint64_t w[8];
};
static_assert(sizeof(Event) == 64);

// Producer p's k-th event: w[0] = k, w[1] = p, w[2..6] derived, w[7] = k ^ p ^ tag.
inline void Fill(Event* e, std::uint64_t k, std::uint64_t p) {
  e->w[0] = k;
  e->w[1] = p;
  for (int j = 2; j < 7; ++j) e->w[j] = k * 31 + j;
  e->w[7] = k ^ p ^ kTag;
}
inline std::uint64_t Sum(const Event& e) {
  std::uint64_t s = 0;
  for (std::uint64_t w : e.w) s += w;
  return s;
}

// What every consumer does per event: exactly once and in order per producer, untorn.
struct Checker {
  std::uint64_t next[kProducers] = {0, 0, 0};
  std::uint64_t errors = 0;
  std::uint64_t sum = 0;
  std::uint64_t count = 0;
  void Check(const Event& e) {
    const std::uint64_t p = e.w[1];
    if (p >= kProducers || e.w[0] != next[p] || e.w[7] != (e.w[0] ^ p ^ kTag)) [[unlikely]] {
      ++errors;
      return;
    }
    ++next[p];
    sum += Sum(e);
    ++count;
  }
};

struct Report {
  std::uint64_t errors, sum, count;
  double t_end;
};

double Now() { return static_cast<double>(xdisruptor::MonotonicNanos()) * 1e-9; }

// Shared between the launcher and its children: readiness and the start signal.
struct alignas(64) Control {
  std::atomic<int> ready;
  std::atomic<int> go;
};

Control* NewControl() {
  void* mem = ::mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return new (mem) Control{};
}
void AwaitGo(Control* c) {
  c->ready.fetch_add(1);
  while (c->go.load(std::memory_order_acquire) == 0) sched_yield();
}

struct Plan {
  std::string topology;
  int consumers = 1;
  int producers = 1;
  std::uint64_t events = 0;  // in total
  std::uint64_t per_producer = 0;
  std::uint64_t want_sum = 0;  // over every event, as each consumer must see it
};

Plan MakePlan(const std::string& topology, std::uint64_t events) {
  Plan plan;
  plan.topology = topology;
  plan.consumers = topology == "unicast" || topology == "sequencer" ? 1 : 3;
  plan.producers = topology == "sequencer" ? kProducers : 1;
  plan.per_producer = events / static_cast<std::uint64_t>(plan.producers);
  plan.events = plan.per_producer * static_cast<std::uint64_t>(plan.producers);
  Event e;
  for (int p = 0; p < plan.producers; ++p) {
    for (std::uint64_t k = 0; k < plan.per_producer; ++k) {
      Fill(&e, k, static_cast<std::uint64_t>(p));
      plan.want_sum += Sum(e);
    }
  }
  return plan;
}

// Keeps this process on the CPU --pin gives process `i` (the consumers, then the producers).
// With more processes than cores that never sleep, the kernel hardly ever moves them (1-4
// migrations a run), so which ones share a core is set at the start and stays: --pin fixes it.
void PinTo(int i) {
  const std::string pin = absl::GetFlag(FLAGS_pin);
  if (pin.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(pin[static_cast<std::size_t>(i)] - '0', &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    std::perror("sched_setaffinity");
    _exit(2);
  }
}

// Runs `consumer(c, &checker)` in C forked processes and `producer(p)` in P (producer 0 in
// this process), starts them together, and returns the seconds from the
// start to the last consumer's end, or -1 if any check failed.
double Run(const Plan& plan, const std::function<void()>& before_fork,
           const std::function<void(int, Checker*)>& consumer,
           const std::function<void(int)>& producer,
           const std::function<void()>& after_children_ready = [] {}) {
  Control* control = NewControl();
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  before_fork();
  std::vector<pid_t> children;
  for (int c = 0; c < plan.consumers; ++c) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      PinTo(c);
      Checker checker;
      control->ready.fetch_add(1);
      consumer(c, &checker);
      const Report r{checker.errors, checker.sum, checker.count, Now()};
      _exit(::write(fds[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (int p = 1; p < plan.producers; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      PinTo(plan.consumers + p);
      AwaitGo(control);
      producer(p);
      _exit(0);
    }
    children.push_back(pid);
  }
  while (control->ready.load() < plan.consumers + plan.producers - 1) ::usleep(100);
  after_children_ready();
  PinTo(plan.consumers);
  const double t0 = Now();
  control->go.store(1, std::memory_order_release);
  producer(0);
  bool ok = true;
  double end = t0;
  for (int c = 0; c < plan.consumers; ++c) {
    Report r{};
    if (::read(fds[0], &r, sizeof(r)) != sizeof(r)) {
      ok = false;
      continue;
    }
    ok = ok && r.errors == 0 && r.sum == plan.want_sum && r.count == plan.events;
    if (r.errors || r.sum != plan.want_sum || r.count != plan.events) {
      std::fprintf(stderr, "consumer: %llu errors, %llu of %llu events, sum %s\n",
                   static_cast<unsigned long long>(r.errors),
                   static_cast<unsigned long long>(r.count),
                   static_cast<unsigned long long>(plan.events),
                   r.sum == plan.want_sum ? "ok" : "WRONG");
    }
    end = std::max(end, r.t_end);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  ::close(fds[0]);
  ::close(fds[1]);
  ::munmap(control, sizeof(Control));
  return ok ? end - t0 : -1;
}

[[noreturn]] void NotApplicable(const std::string& why) {
  std::printf("{\"impl\": \"%s\", \"topology\": \"%s\", \"na\": \"%s\"}\n",
              absl::GetFlag(FLAGS_impl).c_str(), absl::GetFlag(FLAGS_topology).c_str(),
              why.c_str());
  std::exit(3);
}

// ------------------------------------------------------------------------------ xdisruptor
struct Handler {
  Checker* checker;
  void on_event(const Event& e, std::int64_t, bool) { checker->Check(e); }
};

double RunXdisruptor(const Plan& plan, xdisruptor::WaitKind kind) {
  using namespace xdisruptor;
  const std::string name = absl::StrFormat("xdpeers-%d", ::getpid());
  RingSegment::Remove(name).IgnoreError();
  auto ring = Ring<Event>::Create(
      {.name = name,
       .capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity)),
       .sequencer = plan.producers > 1 ? SequencerKind::kMultiProducer
                                       : SequencerKind::kSingleProducer});
  if (!ring.ok()) return -1;
  const WaitParams wait{.kind = kind};
  const auto batch = absl::GetFlag(FLAGS_batch);
  auto after = [&](int c) -> std::vector<std::string> {
    if (plan.topology == "pipeline" && c > 0) return {absl::StrFormat("c%d", c - 1)};
    if (plan.topology == "diamond" && c == 2) return {"c0", "c1"};
    return {};
  };
  auto consume = [&](int c, Checker* checker) {
    auto mine = Ring<Event>::Attach(name);
    if (!mine.ok()) _exit(2);
    auto consumer = internal::RetryWhileNotFound(5'000'000'000, [&] {
      return Consumer::Register(mine->segment(), absl::StrFormat("c%d", c),
                                {.after = after(c), .wait = wait});
    });
    if (!consumer.ok()) _exit(2);
    Handler handler{checker};
    BatchEventProcessor<Event, Handler> processor(
        *mine, *consumer, handler, {.max_batch = absl::GetFlag(FLAGS_max_batch)});
    if (processor.Run() != WaitStatus::kClosed) ++checker->errors;
  };
  auto produce = [&](int p) {
    auto mine = Ring<Event>::Attach(name);
    if (!mine.ok()) _exit(2);
    const Ring<Event>::Slots slots = mine->slots();
    auto fill = [&](std::int64_t lo, std::int64_t hi, std::uint64_t k) {
      for (std::int64_t s = lo; s <= hi; ++s, ++k) {
        Fill(&slots[s], k, static_cast<std::uint64_t>(p));
      }
    };
    const auto total = static_cast<std::int64_t>(plan.per_producer);
    if (plan.producers == 1) {
      auto producer = SingleProducerSequencer::Attach(mine->segment(), wait);
      if (!producer.ok()) _exit(2);
      for (std::int64_t done = 0; done < total;) {
        const std::int64_t n = std::min(batch, total - done);
        const std::int64_t hi = *producer->Next(n);
        fill(hi - n + 1, hi, static_cast<std::uint64_t>(done));
        producer->Publish(hi - n + 1, hi);
        done += n;
      }
      producer->Close();
      return;
    }
    auto producer = MultiProducerSequencer::Attach(mine->segment(), wait);
    if (!producer.ok()) _exit(2);
    for (std::int64_t done = 0; done < total;) {
      const std::int64_t n = std::min(batch, total - done);
      const std::int64_t hi = *producer->Next(n);
      fill(hi - n + 1, hi, static_cast<std::uint64_t>(done));
      producer->Publish(hi - n + 1, hi);
      done += n;
    }
    producer->Detach().IgnoreError();
  };
  std::atomic<int>* finished = nullptr;
  void* shared = nullptr;
  if (plan.producers > 1) {  // the last producer to finish closes the stream
    shared = ::mmap(nullptr, 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    finished = new (shared) std::atomic<int>(0);
  }
  const double seconds = Run(
      plan, [] {}, consume,
      [&](int p) {
        produce(p);
        if (finished != nullptr && finished->fetch_add(1) + 1 == plan.producers) {
          auto mine = Ring<Event>::Attach(name);
          if (mine.ok()) {
            auto closer = MultiProducerSequencer::Attach(mine->segment(), wait);
            if (closer.ok()) closer->Close();
          }
        }
      },
      [&] {
        while (ActiveConsumerCount(ring->segment()) < plan.consumers) ::usleep(100);
      });
  if (shared != nullptr) ::munmap(shared, 64);
  RingSegment::Remove(name).IgnoreError();
  return seconds;
}

// ------------------------------------------------------------------------ the hand ring
struct alignas(128) Index {
  std::atomic<std::uint64_t> v;
};
struct HandRing {
  Index head;
  Index tail[3];
};

double RunHand(const Plan& plan, bool yield) {
  if (plan.topology == "pipeline" || plan.topology == "diamond") {
    NotApplicable("no stage dependencies: a hand ring has no per-consumer gating to chain on");
  }
  if (plan.producers > 1) NotApplicable("single writer: two indices cannot take 3 producers");
  const auto capacity = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_capacity));
  const auto batch = static_cast<std::uint64_t>(absl::GetFlag(FLAGS_batch));
  const std::size_t bytes = sizeof(HandRing) + capacity * sizeof(Event);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* ring = new (mem) HandRing{};
  auto* slots = reinterpret_cast<Event*>(static_cast<char*>(mem) + sizeof(HandRing));
  const std::uint64_t mask = capacity - 1;
  const std::uint64_t cap =
      !absl::GetFlag(FLAGS_hand_cap) ? UINT64_MAX
      : static_cast<std::uint64_t>(xdisruptor::EffectiveMaxBatch(
            {.max_batch = absl::GetFlag(FLAGS_max_batch)}, capacity));
  auto idle = [yield] { yield ? (void)sched_yield() : xdisruptor::wait::CpuRelax(); };
  const std::uint64_t events = plan.events;
  const int consumers = plan.consumers;
  const double seconds = Run(
      plan, [] {},
      [&](int c, Checker* checker) {
        std::uint64_t r = 0, h = 0;
        while (r < events) {
          while ((h = ring->head.v.load(std::memory_order_acquire)) == r) idle();
          while (r < h) {
            const std::uint64_t end = h - r > cap ? r + cap : h;
            for (; r < end; ++r) checker->Check(slots[r & mask]);
            ring->tail[c].v.store(r, std::memory_order_release);
          }
        }
      },
      [&](int) {
        std::uint64_t min_tail = 0;
        for (std::uint64_t w = 0; w < events; ++w) {
          if (w - min_tail >= capacity) {
            ring->head.v.store(w, std::memory_order_release);
            for (;;) {
              std::uint64_t m = UINT64_MAX;
              for (int c = 0; c < consumers; ++c) {
                m = std::min(m, ring->tail[c].v.load(std::memory_order_acquire));
              }
              min_tail = m;
              if (w - min_tail < capacity) break;
              idle();
            }
          }
          Fill(&slots[w & mask], w, 0);
          if ((w + 1) % batch == 0) ring->head.v.store(w + 1, std::memory_order_release);
        }
        ring->head.v.store(events, std::memory_order_release);
      });
  ::munmap(mem, bytes);
  return seconds;
}

// ------------------------------------------------------------ Boost.Interprocess queue
double RunMq(const Plan& plan) {
  namespace bip = boost::interprocess;
  if (plan.consumers > 1) {
    NotApplicable("a queue hands each message to one receiver: no broadcast, no stages");
  }
  const std::string name = absl::StrFormat("xdpeers-mq-%d", ::getpid());
  bip::message_queue::remove(name.c_str());
  const auto capacity = static_cast<std::size_t>(absl::GetFlag(FLAGS_capacity));
  const double seconds = Run(
      plan,
      [&] { bip::message_queue(bip::create_only, name.c_str(), capacity, sizeof(Event)); },
      [&](int, Checker* checker) {
        bip::message_queue q(bip::open_only, name.c_str());
        Event e;
        for (std::uint64_t i = 0; i < plan.events; ++i) {
          std::size_t got = 0;
          unsigned priority = 0;
          q.receive(&e, sizeof(e), got, priority);
          if (got != sizeof(e)) ++checker->errors;
          checker->Check(e);
        }
      },
      [&](int p) {
        bip::message_queue q(bip::open_only, name.c_str());
        Event e;
        for (std::uint64_t k = 0; k < plan.per_producer; ++k) {
          Fill(&e, k, static_cast<std::uint64_t>(p));
          q.send(&e, sizeof(e), 0);
        }
      });
  bip::message_queue::remove(name.c_str());
  return seconds;
}

// ----------------------------------------------------------------------------- a pipe
bool WriteAll(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

double RunPipe(const Plan& plan) {
  if (plan.consumers > 1) {
    NotApplicable("a pipe delivers each byte to one reader: no broadcast, no stages");
  }
  int p[2];
  if (::pipe(p) != 0) return -1;
  constexpr std::size_t kChunk = 4096 / sizeof(Event);  // PIPE_BUF: writes stay whole
  const double seconds = Run(
      plan, [] {},
      [&](int, Checker* checker) {
        ::close(p[1]);
        static Event buffer[1024];
        std::size_t have = 0;  // bytes in buffer
        std::uint64_t seen = 0;
        while (seen < plan.events) {
          const ssize_t r = ::read(p[0], reinterpret_cast<char*>(buffer) + have,
                                   sizeof(buffer) - have);
          if (r <= 0) break;
          have += static_cast<std::size_t>(r);
          const std::size_t whole = have / sizeof(Event);
          for (std::size_t i = 0; i < whole; ++i) checker->Check(buffer[i]);
          seen += whole;
          const std::size_t rest = have - whole * sizeof(Event);
          std::memmove(buffer, reinterpret_cast<char*>(buffer) + whole * sizeof(Event), rest);
          have = rest;
        }
      },
      [&](int producer) {
        Event chunk[kChunk];
        for (std::uint64_t k = 0; k < plan.per_producer;) {
          const std::size_t n = std::min<std::uint64_t>(kChunk, plan.per_producer - k);
          for (std::size_t i = 0; i < n; ++i) {
            Fill(&chunk[i], k + i, static_cast<std::uint64_t>(producer));
          }
          if (!WriteAll(p[1], chunk, n * sizeof(Event))) _exit(4);
          k += n;
        }
      });
  ::close(p[0]);
  ::close(p[1]);
  return seconds;
}

// --------------------------------------------------------------------------- ZeroMQ
#ifdef XDISRUPTOR_HAVE_ZMQ
double RunZmq(const Plan& plan) {
  if (plan.topology == "pipeline" || plan.topology == "diamond") {
    NotApplicable("no stages over one stream: each hop would be another socket and a copy");
  }
  const bool broadcast = plan.consumers > 1;
  const std::string endpoint = absl::StrFormat("ipc:///tmp/xdpeers-zmq-%d", ::getpid());
  const int hwm = static_cast<int>(absl::GetFlag(FLAGS_capacity));
  void* context = nullptr;  // made per process, after fork
  auto make = [&](int type) {
    void* s = zmq_socket(context, type);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    return s;
  };
  // The receiving side binds (PULL) for fan-in; for broadcast the publisher binds (XPUB).
  const double seconds = Run(
      plan, [] {},
      [&](int, Checker* checker) {
        context = zmq_ctx_new();
        void* s = make(broadcast ? ZMQ_SUB : ZMQ_PULL);
        if (broadcast) {
          zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
          zmq_connect(s, endpoint.c_str());
        } else {
          zmq_bind(s, endpoint.c_str());
        }
        Event e;
        for (std::uint64_t i = 0; i < plan.events; ++i) {
          if (zmq_recv(s, &e, sizeof(e), 0) != sizeof(e)) ++checker->errors;
          checker->Check(e);
        }
        zmq_close(s);
        zmq_ctx_term(context);
      },
      [&](int p) {
        void* ctx = zmq_ctx_new();
        void* s = zmq_socket(ctx, broadcast ? ZMQ_XPUB : ZMQ_PUSH);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        if (broadcast) {
          const int nodrop = 1;  // block at the high-water mark instead of dropping
          zmq_setsockopt(s, ZMQ_XPUB_NODROP, &nodrop, sizeof(nodrop));
          const int verbose = 1;  // every subscriber's subscription, not only the first
          zmq_setsockopt(s, ZMQ_XPUB_VERBOSE, &verbose, sizeof(verbose));
          zmq_bind(s, endpoint.c_str());
          char sub[64];
          for (int c = 0; c < plan.consumers; ++c) zmq_recv(s, sub, sizeof(sub), 0);
        } else {
          zmq_connect(s, endpoint.c_str());
        }
        Event e;
        for (std::uint64_t k = 0; k < plan.per_producer; ++k) {
          Fill(&e, k, static_cast<std::uint64_t>(p));
          while (zmq_send(s, &e, sizeof(e), 0) < 0 && errno == EINTR) {
          }
        }
        const int linger = -1;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_close(s);
        zmq_ctx_term(ctx);
      });
  return seconds;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string impl = absl::GetFlag(FLAGS_impl);
  const std::string topology = absl::GetFlag(FLAGS_topology);
  const std::string wait = absl::GetFlag(FLAGS_wait);
  if (topology != "unicast" && topology != "pipeline" && topology != "multicast" &&
      topology != "diamond" && topology != "sequencer") {
    std::fprintf(stderr, "unknown --topology %s\n", topology.c_str());
    return 2;
  }
  auto kind = xdisruptor::ParseWaitKind(wait);
  if (!kind.ok()) {
    std::fprintf(stderr, "%s\n", std::string(kind.status().message()).c_str());
    return 2;
  }
  const Plan plan = MakePlan(topology, static_cast<std::uint64_t>(absl::GetFlag(FLAGS_events)));
  // Checked before anything starts: a process that could not pin itself later would leave
  // the others waiting for it.
  if (const std::string pin = absl::GetFlag(FLAGS_pin); !pin.empty()) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    bool ok = ::sched_getaffinity(0, sizeof(allowed), &allowed) == 0 &&
              pin.size() == static_cast<std::size_t>(plan.consumers + plan.producers);
    for (const char d : pin) ok = ok && d >= '0' && d <= '9' && CPU_ISSET(d - '0', &allowed);
    if (!ok) {
      std::fprintf(stderr,
                   "--pin wants %d digits (consumers, then producers), each a CPU this process "
                   "may run on\n",
                   plan.consumers + plan.producers);
      return 2;
    }
  }
  double seconds = -1;
  if (impl == "xdisruptor") {
    seconds = RunXdisruptor(plan, *kind);
  } else if (impl == "hand") {
    if (*kind != xdisruptor::WaitKind::kBusySpin && *kind != xdisruptor::WaitKind::kYielding) {
      NotApplicable("spins or yields only: no way to sleep until data arrives");
    }
    seconds = RunHand(plan, *kind == xdisruptor::WaitKind::kYielding);
  } else if (impl == "mq") {
    seconds = RunMq(plan);
  } else if (impl == "pipe") {
    seconds = RunPipe(plan);
  } else if (impl == "zmq") {
#ifdef XDISRUPTOR_HAVE_ZMQ
    seconds = RunZmq(plan);
#else
    NotApplicable("built without libzmq (apt-get install libzmq3-dev)");
#endif
  } else {
    std::fprintf(stderr, "unknown --impl %s\n", impl.c_str());
    return 2;
  }
  const bool ok = seconds > 0;
  std::printf("{\"impl\": \"%s\", \"topology\": \"%s\", \"wait\": \"%s\", \"events\": %llu, "
              "\"seconds\": %.6f, \"events_per_s\": %.1f, \"ok\": %s}\n",
              impl.c_str(), topology.c_str(), wait.c_str(),
              static_cast<unsigned long long>(plan.events), ok ? seconds : 0.0,
              ok ? static_cast<double>(plan.events) / seconds : 0.0, ok ? "true" : "false");
  return ok ? 0 : 1;
}
