#include "internal/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace xdisruptor::journal {

absl::Status ErrnoStatus(int error, std::string_view what, std::string_view path) {
  const std::string message =
      absl::StrFormat("journal: cannot %s '%s': %s", what, path, std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message + " (the disk is full)");
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status WriteAt(int fd, const void* data, std::size_t n, off_t offset,
                     std::string_view path) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    if (w == 0) return ErrnoStatus(ENOSPC, "write", path);
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += w;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::size_t> ReadAt(int fd, void* data, std::size_t n, off_t offset,
                                   std::string_view path) {
  auto* p = static_cast<char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, p + done, n - done, offset + static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

absl::StatusOr<std::vector<SegmentFiles>> ListSegments(const std::string& directory) {
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, "open the journal directory", directory);
  std::vector<SegmentFiles> out;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    // Exactly 20 digits and the data suffix: anything else in the directory is not ours.
    if (name.size() != 20 + kDataSuffix.size() || name.substr(20) != kDataSuffix) continue;
    std::int64_t first = 0;
    bool digits = true;
    for (char ch : name.substr(0, 20)) {
      if (ch < '0' || ch > '9' || first > (INT64_MAX - 9) / 10) {
        digits = false;
        break;
      }
      first = first * 10 + (ch - '0');
    }
    if (!digits) continue;
    out.push_back({first, directory + "/" + std::string(name),
                   directory + "/" + SegmentFileName(first, kIndexSuffix)});
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end(),
            [](const SegmentFiles& a, const SegmentFiles& b) { return a.first < b.first; });
  return out;
}

absl::Status ReadHeader(int fd, const std::string& path, SegmentHeader* header) {
  auto got = ReadAt(fd, header, sizeof(*header), 0, path);
  if (!got.ok()) return got.status();
  auto bad = [&](std::string_view why) {
    return absl::DataLossError(absl::StrFormat(
        "journal segment '%s' is corrupt: %s; run `xdisruptor journal verify` on its "
        "directory",
        path, why));
  };
  if (*got < sizeof(*header)) return bad("its header is truncated");
  if (header->magic != kMagic) return bad("it does not start with the journal magic");
  if (header->version != kVersion) {
    return bad(absl::StrFormat("format version %d, this build reads %d", header->version,
                               kVersion));
  }
  if (header->header_size != kHeaderSize || header->slot_size == 0 ||
      header->slot_size % 8 != 0 || header->slot_size > (1u << 20) ||
      header->schema_length > kMaxSchema || header->first_sequence < 0 ||
      header->capacity_bytes == 0 || header->capacity_bytes > (1ull << 40) ||
      header->capacity_bytes % header->slot_size != 0) {
    return bad("its header holds impossible values");
  }
  if (header->header_check != HeaderCheck(*header)) return bad("its header checksum fails");
  return absl::OkStatus();
}

bool TornNewSegment(const SegmentFiles& files) {
  struct stat index_st {};
  if (::stat(files.index.c_str(), &index_st) != 0 || index_st.st_size != 0) return false;
  const int fd = ::open(files.data.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  SegmentHeader h{};
  const bool torn = !ReadHeader(fd, files.data, &h).ok();
  ::close(fd);
  return torn;
}

}  // namespace xdisruptor::journal
