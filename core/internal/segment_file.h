// internal/segment_file.h — the file under /dev/shm that holds a ring: opening it without ever
// blocking (a FIFO or a device planted under a ring's name is refused, not opened), creating it
// with its whole size reserved and the permissions asked for, mapping it, and finding who maps
// it. Private to core; RingSegment is the interface.
#ifndef XDISRUPTOR_CORE_INTERNAL_SEGMENT_FILE_H_
#define XDISRUPTOR_CORE_INTERNAL_SEGMENT_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/interprocess/mapped_region.hpp"

namespace xdisruptor::internal {

// Closes its descriptor when it goes.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();
  int get() const { return fd_; }
  int release();

 private:
  int fd_;
};

// "/dev/shm/NAME".
std::string SegmentPath(std::string_view name);

// Opens the existing segment `name` read-write or read-only, with O_NONBLOCK and O_NOFOLLOW,
// and only if it is a regular file. NotFound, PermissionDenied (naming the owner and mode) or
// FailedPrecondition (not a regular file) otherwise; `action` goes into the message.
absl::StatusOr<FileDescriptor> OpenSegmentFile(std::string_view name, bool read_only,
                                               std::string_view action);

// Creates `name` exclusively with exactly `mode` (the umask does not apply) and, if `group` is
// not empty, that group (a name or a number); sizes it to `size` and reserves every byte
// (posix_fallocate), so a ring that does not fit is refused now (ResourceExhausted, saying
// what it needed and what was free) instead of killing a process with SIGBUS later. On any
// failure nothing is left behind.
absl::StatusOr<FileDescriptor> CreateSegmentFile(std::string_view name, std::uint64_t size,
                                                 std::uint32_t mode, std::string_view group);

// Maps all of `fd` (its size now), shared, read-write or read-only.
absl::StatusOr<boost::interprocess::mapped_region> MapSegmentFile(const FileDescriptor& fd,
                                                                  bool read_only,
                                                                  std::string_view name);

// The first 8 bytes of the file (0 if it is shorter).
std::uint64_t ReadMagic(const FileDescriptor& fd);

// Processes (other than this one) that map /dev/shm/NAME now, from /proc/*/maps (processes of
// other users that /proc hides are not seen).
std::vector<std::int64_t> MappingProcesses(std::string_view name);

// Bytes free for unprivileged users on the file system of /dev/shm.
std::uint64_t FreeSegmentBytes();

}  // namespace xdisruptor::internal

#endif  // XDISRUPTOR_CORE_INTERNAL_SEGMENT_FILE_H_
