// Careless and hostile use, each case a regression test of a failure that once hung, crashed
// or lost data: waits run in slices, fork(), FIFOs and foreign files under a ring's name, a
// ring too large for /dev/shm, stray gating bits and garbage in the producer block, read-only
// and foreign-user access, and the slow-consumer limit.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/xdisruptor.h"

namespace xdisruptor {
namespace {

using testing::ForkChild;
using testing::ScopedRingName;
using testing::TestEvent;
using testing::WaitChild;

constexpr std::int64_t kSliceNs = 20'000'000;  // as a binding's signal-check slice

// A consumer process that registers `name` with `options` and then stops until killed.
pid_t RegisterThenPause(const std::string& ring_name, const std::string& name,
                        const ConsumerOptions& options) {
  const pid_t pid = ForkChild([&]() -> int {
    auto ring = Ring<TestEvent>::Attach(ring_name);
    if (!ring.ok()) return 2;
    auto consumer = Consumer::Register(ring->segment(), name, options);
    if (!consumer.ok()) return 3;
    for (;;) ::pause();
  });
  return pid;
}

bool AwaitActive(const RingSegment& ring, const std::string& name) {
  for (int i = 0; i < 10'000; ++i) {
    if (FindConsumer(ring, name).ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(HostileTest, ShouldEvictADeadConsumerWhenTheProducerWaitsInSlices) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const pid_t victim = RegisterThenPause(name.get(), "victim",
                                         {.stall_policy = StallPolicy::kEvict});
  ASSERT_TRUE(AwaitActive(ring->segment(), "victim"));
  ::kill(victim, SIGKILL);
  ASSERT_EQ(WaitChild(victim), 128 + SIGKILL);
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  producer->Publish(*producer->Next(16));  // full: the next claim needs the dead one gone
  // Each slice is shorter than the eviction check (100 ms): the wait's clock must run across
  // slices, as a Python producer's does. 500 slices (10 s) are far more than needed.
  absl::StatusOr<std::int64_t> claimed = producer->NextFor(1, kSliceNs);
  for (int slice = 0; slice < 500 && !claimed.ok(); ++slice) {
    claimed = producer->NextFor(1, kSliceNs);
  }
  ASSERT_TRUE(claimed.ok()) << "the dead evict-policy consumer was never evicted";
  EXPECT_EQ(Stats(ring->segment()).consumers.at(0).state, ConsumerStatus::kEvicted);
}

TEST(HostileTest, ShouldTimeOutByTheStrategyWhenAWaitRunsInSlices) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto consumer = Consumer::Register(
      ring->segment(), "c",
      {.wait = {.kind = WaitKind::kTimeoutBlocking, .timeout_ns = 100'000'000}});
  ASSERT_TRUE(consumer.ok());
  WaitStatus status = WaitStatus::kCheckpoint;
  int slices = 0;
  for (; slices < 500 && status == WaitStatus::kCheckpoint; ++slices) {
    status = consumer->barrier().WaitFor(0, kSliceNs).status;
  }
  EXPECT_EQ(status, WaitStatus::kTimeout) << "after " << slices << " slices of 20 ms";
  EXPECT_GE(slices, 5);  // not before the strategy's 100 ms
}

TEST(HostileTest, ShouldAbortAForkedChildThatPublishesThroughItsParentsProducer) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  auto consumer = Consumer::Register(ring->segment(), "reader");
  ASSERT_TRUE(consumer.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  for (std::int64_t s = 0; s < 10; ++s) {
    producer->Next();
    (*ring)[s].Fill(s);
    producer->Publish(s);
  }
  const pid_t child = ForkChild([&] {
    const std::int64_t s = producer->Next();  // the parent's sequencer: must not be used
    (*ring)[s].Fill(1000);
    producer->Publish(s);
    return 0;
  });
  EXPECT_EQ(WaitChild(child), 128 + SIGABRT);
  const pid_t reader = ForkChild([&] {
    consumer->Release(5, 6);  // the parent's position: must not move
    return 0;
  });
  EXPECT_EQ(WaitChild(reader), 128 + SIGABRT);
  EXPECT_EQ(producer->cursor(), 9);
  EXPECT_EQ(consumer->sequence(), -1);
  producer->Publish(producer->Next());
  (*ring)[10].Fill(10);
  EXPECT_TRUE((*ring)[10].Verify(10));
  EXPECT_TRUE(producer->forked() == false && consumer->forked() == false);
}

TEST(HostileTest, ShouldNeverOpenAFifoPlantedUnderARingsName) {
  ScopedRingName name;
  const std::string path = "/dev/shm/" + name.get();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_FALSE(RingSegment::Exists(name.get()));
  EXPECT_FALSE(RingSegment::IsRing(name.get()));
  auto attached = RingSegment::Attach(name.get());  // would block forever if it opened it
  ASSERT_FALSE(attached.ok());
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(attached.status().message().find("a FIFO"), std::string::npos)
      << attached.status();
  EXPECT_EQ(RingSegment::Remove(name.get()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(RingSegment::Remove(name.get(), {.force = true}).ok());
  struct stat st{};
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
}

TEST(HostileTest, ShouldRefuseToRemoveAFileThatIsNotARingOrARingStillMapped) {
  ScopedRingName name;
  const std::string path = "/dev/shm/" + name.get();
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("somebody else's data", f);
    std::fclose(f);
  }
  const absl::Status foreign = RingSegment::Remove(name.get());
  EXPECT_EQ(foreign.code(), absl::StatusCode::kFailedPrecondition) << foreign;
  EXPECT_NE(foreign.message().find("not an xdisruptor ring"), std::string::npos) << foreign;
  ASSERT_TRUE(RingSegment::Remove(name.get(), {.force = true}).ok());

  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t holder = ForkChild([&]() -> int {
    auto mine = RingSegment::Attach(name.get());
    char c = mine.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    for (;;) ::pause();
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  const absl::Status mapped = RingSegment::Remove(name.get());
  EXPECT_EQ(mapped.code(), absl::StatusCode::kFailedPrecondition) << mapped;
  EXPECT_NE(mapped.message().find(std::to_string(holder)), std::string::npos) << mapped;
  EXPECT_TRUE(RingSegment::Remove(name.get(), {.force = true}).ok());
  ::kill(holder, SIGKILL);
  WaitChild(holder);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(HostileTest, ShouldRefuseARingLargerThanTheFreeSharedMemoryAndLeaveNothing) {
  ScopedRingName name;
  for (SequencerKind kind : {SequencerKind::kSingleProducer, SequencerKind::kMultiProducer}) {
    // 2^30 slots of 1 MiB: far more than any /dev/shm has.
    auto ring = RingSegment::Create({.name = name.get(), .capacity = std::uint64_t{1} << 30,
                                     .slot_size = 1u << 10, .sequencer = kind});
    ASSERT_FALSE(ring.ok());
    EXPECT_EQ(ring.status().code(), absl::StatusCode::kResourceExhausted) << ring.status();
    EXPECT_NE(ring.status().message().find("free"), std::string::npos) << ring.status();
    EXPECT_FALSE(RingSegment::Exists(name.get()));
  }
}

TEST(HostileTest, ShouldClearAStrayGatingBitWhenTheProducerIsBlockedByIt) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  ring->segment().producer().gating_mask.fetch_or(EntryBit(7));  // entry 7 is free
  const RingStats before = Stats(ring->segment());
  ASSERT_EQ(before.consumers.size(), 1u);  // the operator sees who holds the producer back
  EXPECT_TRUE(before.consumers[0].gating);
  EXPECT_EQ(before.consumers[0].state, ConsumerStatus::kFree);
  for (std::int64_t s = 0; s < 48; ++s) {
    absl::StatusOr<std::int64_t> claimed = producer->NextFor(1, kSliceNs);
    for (int slice = 0; slice < 500 && !claimed.ok(); ++slice) {
      claimed = producer->NextFor(1, kSliceNs);
    }
    ASSERT_TRUE(claimed.ok()) << "blocked forever at " << s;
    producer->Publish(*claimed);
  }
  EXPECT_EQ(LoadGatingMask(ring->segment().producer()), 0u);
}

TEST(HostileTest, ShouldClearAStrayGatingBitWhenAProducerAttachesOrAConsumerRegisters) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  ring->segment().producer().gating_mask.fetch_or(EntryBit(5));
  ASSERT_TRUE(SingleProducerSequencer::Attach(ring->segment()).ok());
  EXPECT_EQ(LoadGatingMask(ring->segment().producer()), 0u);
  ring->segment().producer().gating_mask.fetch_or(EntryBit(6));
  auto c = Consumer::Register(ring->segment(), "c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(LoadGatingMask(ring->segment().producer()), EntryBit(c->index()));
}

// The registry lock word names its holder by pid and start time (registry_lock.cc: the pid in
// the low 22 bits, the start time above). A holder that died inside, its pid reused since by a
// live process, is not waited for (with the pid alone, every registration failed after 5 s
// for as long as the new process lived).
TEST(HostileTest, ShouldTakeTheRegistryLockOverFromADeadHolderWhosePidWasReused) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  const ProcessIdentity parent{.pid = ::getppid()};  // alive, and not the holder that died
  const ProcessIdentity self = CurrentProcess();
  ASSERT_GT(self.start_time, 1u);
  const auto word = [](const ProcessIdentity& who, std::uint64_t start) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(who.pid) | (start << 22));
  };
  ring->producer().registry_lock.store(word(parent, 1));  // started 10 ms after boot: not it
  const auto start = std::chrono::steady_clock::now();
  auto c = Consumer::Register(*ring, "after-the-dead-holder");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // A live holder (this process, as if another thread were inside) is waited for.
  ring->producer().registry_lock.store(word(self, self.start_time));
  const auto held = Consumer::Register(*ring, "while-held");
  EXPECT_EQ(held.status().code(), absl::StatusCode::kDeadlineExceeded) << held.status();
  ring->producer().registry_lock.store(0);
}

TEST(HostileTest, ShouldRefuseAttachWhenTheProducerBlockIsGarbage) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  auto consumer = Consumer::Register(ring->segment(), "c");
  ASSERT_TRUE(consumer.ok());
  ProducerState& p = ring->segment().producer();
  auto refused = [&] { return RingSegment::Attach(name.get()).status().code(); };
  p.cursor.store(std::int64_t{1} << 40);  // far past the gating consumer
  EXPECT_EQ(refused(), absl::StatusCode::kDataLoss);
  p.cursor.store(-1);
  p.producers[3].owner.pid.store(-7);
  EXPECT_EQ(refused(), absl::StatusCode::kDataLoss);
  p.producers[3].owner.pid.store(0);
  p.ring_status.store(static_cast<RingStatus>(9));
  EXPECT_EQ(refused(), absl::StatusCode::kDataLoss);
  p.ring_status.store(RingStatus::kOpen);
  EXPECT_TRUE(RingSegment::Attach(name.get()).ok());
}

TEST(HostileTest, ShouldReadButNeverWriteThroughAReadOnlyAttach) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16, .mode = 0644});
  ASSERT_TRUE(ring.ok());
  auto monitor = RingSegment::Attach(name.get(), {.read_only = true});
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  EXPECT_TRUE(monitor->read_only());
  EXPECT_EQ(Stats(*monitor).capacity, 16u);
  EXPECT_EQ(Consumer::Register(*monitor, "c").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SingleProducerSequencer::Attach(*monitor).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EvictConsumer(*monitor, "c").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HostileTest, ShouldSayPermissionDeniedForAnotherUsersRing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16, .mode = 0640});
  ASSERT_TRUE(ring.ok());
  const pid_t child = ForkChild([&] {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 10;
    auto attached = RingSegment::Attach(name.get());
    if (attached.ok()) return 11;
    if (attached.status().code() != absl::StatusCode::kPermissionDenied) return 12;
    return attached.status().message().find("uid 0") == std::string_view::npos ? 13 : 0;
  });
  EXPECT_EQ(WaitChild(child), 0);
}

TEST(HostileTest, ShouldEvictALiveSlowConsumerAndTellItExactlyWhatItMissed) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  const ConsumerOptions slow{.stall_policy = StallPolicy::kEvict,
                             .max_lag = 8,
                             .max_lag_ns = 50'000'000};
  auto consumer = Consumer::Register(ring->segment(), "slow", slow);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto producer = SingleProducerSequencer::Attach(ring->segment());
  ASSERT_TRUE(producer.ok());
  producer->Publish(*producer->Next(4));
  consumer->Release(3, 4);  // it read 4, then stops reading
  // Finishes only once the slow consumer was evicted (on this thread: a single producer's
  // claims come from one thread, which debug builds check).
  for (int i = 0; i < 40; ++i) producer->Publish(producer->Next());
  EXPECT_EQ(consumer->barrier().WaitFor(4).status, WaitStatus::kEvicted);
  ASSERT_TRUE(consumer->Deregister().ok());
  auto refused = Consumer::Register(ring->segment(), "slow", slow);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kOutOfRange);
  ConsumerOptions rejoin = slow;
  rejoin.rejoin_at_cursor = true;
  auto back = Consumer::Register(ring->segment(), "slow", rejoin);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->missed(), 43u - 3u);  // from its last release (3) to the cursor (43)
  EXPECT_EQ(back->sequence(), 43);
  EXPECT_EQ(Stats(ring->segment()).consumers.at(0).evictions, 1u);
}

TEST(HostileTest, ShouldRefuseASlowConsumerLimitThatCannotWork) {
  ScopedRingName name;
  auto ring = Ring<TestEvent>::Create({.name = name.get(), .capacity = 16});
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(Consumer::Register(ring->segment(), "a", {.max_lag = 4}).status().code(),
            absl::StatusCode::kInvalidArgument);  // hold policy: nothing to evict
  EXPECT_EQ(Consumer::Register(ring->segment(), "b",
                               {.stall_policy = StallPolicy::kEvict, .max_lag = 16})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);  // never reached: lag <= capacity
  auto c = Consumer::Register(ring->segment(), "c", {.stall_policy = StallPolicy::kEvict});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(LimitConsumer(ring->segment(), "c", 4, 1'000'000).ok());
  const ConsumerStats st = Stats(ring->segment()).consumers.at(0);
  EXPECT_EQ(st.max_lag, 4);
  EXPECT_EQ(st.max_lag_ns, 1'000'000);
}

}  // namespace
}  // namespace xdisruptor
