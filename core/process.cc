#include "xdisruptor/process.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <mutex>

namespace xdisruptor {
namespace {

struct StatFields {
  char state = '?';
  std::uint64_t start_time = 0;
};

// Reads the state (field 3) and start time (field 22) of /proc/PID/stat. The command name
// (field 2) may hold spaces and parentheses, so parsing starts after the last ')'.
bool ReadStat(std::int64_t pid, StatFields* out) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%lld/stat", static_cast<long long>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  const int read_errno = errno;
  ::close(fd);
  if (n <= 0) {
    errno = n == 0 ? EINVAL : read_errno;
    return false;
  }
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') {
    errno = EINVAL;
    return false;
  }
  p += 2;  // now at field 3
  out->state = *p;
  for (int field = 3; field < 22; ++field) {  // skip to field 22
    p = std::strchr(p, ' ');
    if (p == nullptr) {
      errno = EINVAL;
      return false;
    }
    ++p;
  }
  out->start_time = std::strtoull(p, nullptr, 10);
  return true;
}

}  // namespace

void WatchForks() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::pthread_atfork(nullptr, nullptr,
                     [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
  });
}

void ForkedUse(std::string_view what, std::string_view ring) {
  std::fprintf(stderr,
               "xdisruptor: process %d used %.*s of ring '%.*s' that its parent registered "
               "before fork(); a forked process must attach and register its own\n",
               static_cast<int>(::getpid()), static_cast<int>(what.size()), what.data(),
               static_cast<int>(ring.size()), ring.data());
  std::abort();
}

ProcessIdentity CurrentProcess() {
  WatchForks();
  ProcessIdentity self;
  self.pid = ::getpid();
  StatFields fields;
  if (ReadStat(self.pid, &fields)) self.start_time = fields.start_time;
  return self;
}

bool IsProcessAlive(std::int64_t pid, std::uint64_t start_time) {
  if (pid <= 0) return false;
  StatFields fields;
  if (!ReadStat(pid, &fields)) {
    // No entry need not mean gone: /proc mounted with hidepid hides other users' processes
    // (a ring shared by a group of users), and anything else (unreadable, out of file
    // descriptors) must not declare a live process dead either. The kernel answers: only
    // ESRCH means gone (EPERM: it lives, as another user's).
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
  }
  if (fields.state == 'Z' || fields.state == 'X') return false;
  return start_time == 0 || fields.start_time == start_time;
}

bool IsAlive(const ProcessIdentity& who) { return IsProcessAlive(who.pid, who.start_time); }

ProcessIdentity LoadOwner(const OwnerState& owner) {
  ProcessIdentity who;
  who.pid = owner.pid.load(std::memory_order_acquire);
  who.start_time = owner.start_time.load(std::memory_order_relaxed);
  return who;
}

void StoreOwner(OwnerState& owner, const ProcessIdentity& who) {
  owner.start_time.store(who.start_time, std::memory_order_relaxed);
  owner.pid.store(who.pid, std::memory_order_release);
}

void ClearOwner(OwnerState& owner) {
  owner.pid.store(0, std::memory_order_release);
  owner.start_time.store(0, std::memory_order_relaxed);
}

Liveness OwnerLiveness(const OwnerState& owner) {
  const ProcessIdentity who = LoadOwner(owner);
  if (who.pid == 0) return Liveness::kNobody;
  return IsAlive(who) ? Liveness::kAlive : Liveness::kDead;
}

bool OwnedByMe(const OwnerState& owner) {
  return owner.pid.load(std::memory_order_relaxed) == ::getpid();
}

}  // namespace xdisruptor
