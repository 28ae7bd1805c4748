#include "xdisruptor/journal_format.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_format.h"
#include "internal/files.h"
#include "xdisruptor/journal.h"

namespace xdisruptor::journal {
namespace {

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ull;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4Full;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ull;
constexpr std::uint64_t kPrime4 = 0x85EBCA77C2B2AE63ull;

inline std::uint64_t Load64(const unsigned char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

inline std::uint64_t Round(std::uint64_t acc, std::uint64_t word) {
  return std::rotl(acc + word * kPrime2, 31) * kPrime1;
}

}  // namespace

std::uint64_t Checksum(const void* data, std::size_t n, std::uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint64_t length = n;
  // Eight Fletcher lanes over 64-byte stripes (one lane per word of a stripe): `sum` adds the
  // words, `pos` adds the running sums, so a flipped bit changes both and a moved or swapped
  // word changes `pos`. Adds only, no carried dependency across lanes: the compiler turns the
  // loop into vector adds and it runs at memory speed.
  std::uint64_t sum[8], pos[8];
  for (int i = 0; i < 8; ++i) {
    sum[i] = seed + kPrime1 * static_cast<std::uint64_t>(i + 1);
    pos[i] = seed ^ kPrime2;
  }
  for (; n >= 64; n -= 64, p += 64) {
    std::uint64_t w[8];
    std::memcpy(w, p, sizeof(w));
    for (int i = 0; i < 8; ++i) {
      sum[i] += w[i];
      pos[i] += sum[i];
    }
  }
  std::uint64_t h = seed + kPrime4 + length;
  for (int i = 0; i < 8; ++i) {
    h = std::rotl(h ^ Round(0, sum[i]), 27) * kPrime1 + kPrime4;
    h = std::rotl(h ^ Round(0, pos[i]), 27) * kPrime1 + kPrime4;
  }
  for (; n >= 8; n -= 8, p += 8) h = std::rotl(h ^ Round(0, Load64(p)), 27) * kPrime1 + kPrime4;
  for (; n > 0; --n, ++p) h = std::rotl(h ^ (*p * kPrime3), 11) * kPrime1;
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

std::uint64_t HeaderCheck(const SegmentHeader& h) {
  const std::uint64_t fixed = Checksum(&h, offsetof(SegmentHeader, header_check), 0x4EAD);
  return Checksum(h.schema, std::min<std::size_t>(h.schema_length, kMaxSchema), fixed);
}

std::string SegmentFileName(std::int64_t first, std::string_view suffix) {
  return absl::StrFormat("%020d%s", first, suffix);
}

}  // namespace xdisruptor::journal

namespace xdisruptor {

absl::Status ParseFsync(std::string_view text, JournalOptions& options) {
  if (text == "none") {
    options.fsync = FsyncPolicy::kNone;
  } else if (text == "batch") {
    options.fsync = FsyncPolicy::kBatch;
  } else if (text.substr(0, 6) == "every:") {
    std::int64_t ms = 0;
    const std::string_view digits = text.substr(6);
    for (char ch : digits) {
      if (ch < '0' || ch > '9' || ms > 100'000'000) ms = -1;
      if (ms < 0) break;
      ms = ms * 10 + (ch - '0');
    }
    if (digits.empty() || ms <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "fsync '%s': give every:MS with MS a whole number of milliseconds > 0", text));
    }
    options.fsync = FsyncPolicy::kInterval;
    options.fsync_interval_ns = ms * 1'000'000;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown fsync policy '%s'; use none, batch or every:MS", text));
  }
  return absl::OkStatus();
}

}  // namespace xdisruptor
