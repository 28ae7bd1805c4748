// test_util.h — helpers shared by the tests: unique ring names, child processes, test events.
#ifndef XDISRUPTOR_TESTS_TEST_UTIL_H_
#define XDISRUPTOR_TESTS_TEST_UTIL_H_

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "gtest/gtest.h"
#include "xdisruptor/consumer.h"
#include "xdisruptor/ring.h"
#include "xdisruptor/ring_segment.h"
#include "xdisruptor/sequencer.h"

namespace xdisruptor::testing {

// A ring name unique to this process and test, removed again when the guard goes.
class ScopedRingName {
 public:
  ScopedRingName() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info ? info->name() : "t";
    if (test.size() > 30) test.resize(30);
    name_ = "xdt-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + test;
    RingSegment::Remove(name_).IgnoreError();
  }
  ~ScopedRingName() { RingSegment::Remove(name_).IgnoreError(); }
  const std::string& get() const { return name_; }

 private:
  std::string name_;
};

// Removes the rings ScopedRingName named for `test` in processes that are gone (a death
// test's child that aborted holding one).
inline void RemoveRingsOfDeadTestProcesses(std::string test) {
  if (test.size() > 30) test.resize(30);
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string file = f.path().filename().string();
    int pid = 0;
    if (file.rfind("xdt-", 0) != 0 || !file.ends_with("-" + test) ||
        std::sscanf(file.c_str(), "xdt-%d-", &pid) != 1) {
      continue;
    }
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) ::shm_unlink(("/" + file).c_str());
  }
}

// A fresh temporary directory, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/xdtest-XXXXXX";
    path_ = ::mkdtemp(templ);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& get() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Runs `body` in a forked child, which exits with its return value.
inline pid_t ForkChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    ::_exit(code);
  }
  return pid;
}

// Waits for a child; kills it and returns -1 if it is still running after `timeout`.
inline int WaitChild(pid_t pid, std::chrono::seconds timeout = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (r < 0) return -2;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Waits (up to 30 s) until `count` consumers are active, so none misses the first event.
inline bool AwaitConsumers(const RingSegment& ring, int count) {
  for (int i = 0; i < 30000 && ActiveConsumerCount(ring) < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ActiveConsumerCount(ring) >= count;
}

// A 64-byte event whose every word derives from its sequence, so a torn, stale or
// overwritten slot is caught by Verify.
struct TestEvent {
  static constexpr std::uint64_t kTag = 0x9E3779B97F4A7C15ull;
  std::int64_t sequence;
  std::uint64_t payload[5];
  std::uint64_t stage_mark;  // written in place by an upstream stage in pipeline tests
  std::uint64_t check;

  void Fill(std::int64_t s) {
    sequence = s;
    for (int i = 0; i < 5; ++i) payload[i] = static_cast<std::uint64_t>(s) * 31 + i;
    stage_mark = 0;
    check = static_cast<std::uint64_t>(s) ^ kTag;
  }
  bool Verify(std::int64_t s) const {
    if (sequence != s || check != (static_cast<std::uint64_t>(s) ^ kTag)) return false;
    for (int i = 0; i < 5; ++i) {
      if (payload[i] != static_cast<std::uint64_t>(s) * 31 + i) return false;
    }
    return true;
  }
  std::uint64_t Sum() const {
    std::uint64_t sum = static_cast<std::uint64_t>(sequence) + check;
    for (auto p : payload) sum += p;
    return sum;
  }
  static std::uint64_t StageMark(std::int64_t s) { return static_cast<std::uint64_t>(s) * 7 + 1; }
};

// Publishes `n` events one claim each, every one filled with its sequence (any ring size).
template <typename Producer>
void PublishEach(Ring<TestEvent>& ring, Producer& producer, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t s = producer.Next();
    ring[s].Fill(s);
    producer.Publish(s);
  }
}
static_assert(sizeof(TestEvent) == 64);

// Publishes `events` TestEvents in claims of `batch` from one producer, then closes the stream.
inline void Produce(Ring<TestEvent>& ring, std::int64_t events, std::int64_t batch) {
  auto producer = SingleProducerSequencer::Attach(ring.segment());
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (std::int64_t done = 0; done < events;) {
    const std::int64_t n = std::min(batch, events - done);
    const std::int64_t hi = *producer->Next(n);
    for (std::int64_t s = hi - n + 1; s <= hi; ++s) ring[s].Fill(s);
    producer->Publish(hi - n + 1, hi);
    done += n;
  }
  producer->Close();
}

}  // namespace xdisruptor::testing

#endif  // XDISRUPTOR_TESTS_TEST_UTIL_H_
