// Small POSIX file helpers of the journal: whole reads and writes that retry EINTR and short
// transfers, a listing of a directory's segments, errno as a Status.
#ifndef XDISRUPTOR_JOURNAL_INTERNAL_FILES_H_
#define XDISRUPTOR_JOURNAL_INTERNAL_FILES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xdisruptor/journal_format.h"

namespace xdisruptor::journal {

// errno of `what` on `path` as a Status: ENOSPC/EDQUOT ResourceExhausted (the disk is full),
// ENOENT NotFound, EACCES/EPERM PermissionDenied, others Internal.
absl::Status ErrnoStatus(int error, std::string_view what, std::string_view path);

// Writes all `n` bytes at `offset`.
absl::Status WriteAt(int fd, const void* data, std::size_t n, off_t offset, std::string_view path);
// Reads up to `n` bytes at `offset`; returns how many (fewer only at the end of the file).
absl::StatusOr<std::size_t> ReadAt(int fd, void* data, std::size_t n, off_t offset,
                                   std::string_view path);

// A segment's files, by first sequence.
struct SegmentFiles {
  std::int64_t first = 0;
  std::string data;   // path of <first>.xdj
  std::string index;  // path of <first>.xdx
};
// The segments of `directory`, oldest first (NotFound when it does not exist).
absl::StatusOr<std::vector<SegmentFiles>> ListSegments(const std::string& directory);

// Reads and checks a segment header: DataLoss (with `path`) when it is not a valid one.
absl::Status ReadHeader(int fd, const std::string& path, SegmentHeader* header);

// True for a segment whose creation was cut short (its writer killed between creating the
// files and writing the header): the data file has no valid header and the index is empty,
// so it never held an event.
bool TornNewSegment(const SegmentFiles& files);

}  // namespace xdisruptor::journal

#endif  // XDISRUPTOR_JOURNAL_INTERNAL_FILES_H_
