#include "internal/segment_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/str_format.h"

namespace xdisruptor::internal {
namespace bip = boost::interprocess;
namespace {

constexpr char kShmDir[] = "/dev/shm";

const char* FileKind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

absl::Status PermissionDenied(std::string_view name, std::string_view action) {
  struct stat st{};
  if (::lstat(SegmentPath(name).c_str(), &st) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("permission denied to %s ring '%s'", action, name));
  }
  return absl::PermissionDeniedError(absl::StrFormat(
      "permission denied to %s ring '%s': %s belongs to uid %d, gid %d with mode %04o and "
      "this process runs as uid %d; ask its owner for access (the ring's mode and group)",
      action, name, SegmentPath(name), st.st_uid, st.st_gid, st.st_mode & 07777, ::geteuid()));
}

absl::Status OpenError(int err, std::string_view name, std::string_view action) {
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(absl::StrFormat(
          "no ring named '%s' exists (looked for %s); create it first or check the name", name,
          SegmentPath(name)));
    case EACCES:
    case EPERM:
      return PermissionDenied(name, action);
    case ELOOP:
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s is a symbolic link, not a ring; refusing to %s it", SegmentPath(name), action));
    default:
      return absl::InternalError(absl::StrFormat("cannot %s ring '%s' (%s): %s", action, name,
                                                 SegmentPath(name), std::strerror(err)));
  }
}

absl::Status NoRoom(std::string_view name, std::uint64_t size, std::uint64_t free) {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "ring '%s' needs %d bytes of shared memory but %s has %d free; make the ring smaller "
      "(capacity x slot size) or free space there (xdisruptor ls, xdisruptor rm)",
      name, size, kShmDir, free));
}

absl::StatusOr<gid_t> ResolveGroup(std::string_view group) {
  const std::string text(group);
  char* end = nullptr;
  const unsigned long number = std::strtoul(text.c_str(), &end, 10);
  if (!text.empty() && *end == '\0') return static_cast<gid_t>(number);
  struct group entry{};
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrnam_r(text.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("no group named '%s' on this machine", group));
  }
  return found->gr_gid;
}

}  // namespace

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

int FileDescriptor::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

std::string SegmentPath(std::string_view name) {
  return absl::StrFormat("%s/%s", kShmDir, name);
}

absl::StatusOr<FileDescriptor> OpenSegmentFile(std::string_view name, bool read_only,
                                               std::string_view action) {
  const int flags = (read_only ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
  FileDescriptor fd(::open(SegmentPath(name).c_str(), flags));
  if (fd.get() < 0) {
    // O_NOFOLLOW on a symbolic link fails with ELOOP; a FIFO opened O_RDONLY|O_NONBLOCK
    // succeeds (and is refused below); ENXIO: a FIFO or device without a peer.
    if (errno == ENXIO) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s is not a ring (a FIFO or device); refusing to %s it", SegmentPath(name), action));
    }
    return OpenError(errno, name, action);
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return OpenError(errno, name, action);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not a ring (%s); refusing to %s it", SegmentPath(name), FileKind(st.st_mode),
        action));
  }
  return fd;
}

absl::StatusOr<FileDescriptor> CreateSegmentFile(std::string_view name, std::uint64_t size,
                                                 std::uint32_t mode, std::string_view group) {
  const std::string path = SegmentPath(name);
  // Refuse what cannot fit before reserving anything (posix_fallocate would fill the file
  // system up to its limit first); the reservation below catches a race with another writer.
  if (const std::uint64_t free = FreeSegmentBytes(); free != 0 && size > free) {
    return NoRoom(name, size, free);
  }
  FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "a ring named '%s' already exists; attach to it, or remove it first "
          "(RingSegment::Remove, xdisruptor rm)",
          name));
    }
    return OpenError(errno, name, "create");
  }
  auto fail = [&](absl::Status status) {
    ::unlink(path.c_str());
    return status;
  };
  if (!group.empty()) {
    auto gid = ResolveGroup(group);
    if (!gid.ok()) return fail(gid.status());
    if (::fchown(fd.get(), static_cast<uid_t>(-1), *gid) != 0) {
      return fail(absl::PermissionDeniedError(absl::StrFormat(
          "cannot give ring '%s' to group '%s': %s (a process may only choose a group it is a "
          "member of)",
          name, group, std::strerror(errno))));
    }
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    return fail(OpenError(errno, name, "create"));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return fail(OpenError(errno, name, "create"));
  }
  if (const int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size)); rc != 0) {
    if (rc == ENOSPC || rc == EFBIG) return fail(NoRoom(name, size, FreeSegmentBytes()));
    return fail(absl::InternalError(absl::StrFormat(
        "cannot reserve %d bytes for ring '%s': %s", size, name, std::strerror(rc))));
  }
  return fd;
}

namespace {
// What boost::interprocess::mapped_region needs to map a descriptor it did not open.
struct DescriptorMapping {
  int fd;
  bip::mode_t mode;
  bip::mapping_handle_t get_mapping_handle() const {
    bip::mapping_handle_t handle;
    handle.handle = fd;
    handle.is_xsi = false;
    return handle;
  }
  bip::mode_t get_mode() const { return mode; }
};
}  // namespace

absl::StatusOr<bip::mapped_region> MapSegmentFile(const FileDescriptor& fd, bool read_only,
                                                  std::string_view name) {
  const bip::mode_t mode = read_only ? bip::read_only : bip::read_write;
  try {
    return bip::mapped_region(DescriptorMapping{fd.get(), mode}, mode);
  } catch (const bip::interprocess_exception& e) {
    return absl::InternalError(
        absl::StrFormat("cannot map ring '%s' (%s): %s", name, SegmentPath(name), e.what()));
  }
}

std::uint64_t ReadMagic(const FileDescriptor& fd) {
  std::uint64_t magic = 0;
  if (::pread(fd.get(), &magic, sizeof(magic), 0) != static_cast<ssize_t>(sizeof(magic))) {
    return 0;
  }
  return magic;
}

std::vector<std::int64_t> MappingProcesses(std::string_view name) {
  std::vector<std::int64_t> pids;
  const std::string needle = " " + SegmentPath(name);
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  const std::int64_t self = ::getpid();
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    std::ifstream maps(absl::StrFormat("/proc/%d/maps", pid));
    for (std::string line; std::getline(maps, line);) {
      const std::size_t at = line.find(needle);
      if (at == std::string::npos) continue;
      const std::string_view rest = std::string_view(line).substr(at + needle.size());
      if (rest.empty() || rest == " (deleted)") {
        pids.push_back(pid);
        break;
      }
    }
  }
  ::closedir(proc);
  return pids;
}

std::uint64_t FreeSegmentBytes() {
  struct statvfs vfs{};
  if (::statvfs(kShmDir, &vfs) != 0) return 0;
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

}  // namespace xdisruptor::internal
