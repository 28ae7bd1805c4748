// xdisruptor/journal_format.h — the on-disk format of a journal directory (docs/journal.md).
//
// A journal is a directory of segments. Segment `F` (its first sequence) is two files:
//   <F as 20 digits>.xdj  a 4096-byte header, then the events back to back (slot_size bytes
//                         each): sequence S sits at 4096 + (S - F) * slot_size
//   <F as 20 digits>.xdx  the index: one 32-byte record per batch written, appended after the
//                         batch's events: first and last sequence, a checksum of the batch's
//                         bytes, and a checksum of the record itself
// A batch counts as journaled once its index record is complete and both checksums match;
// a torn tail (a recorder killed mid-write) is cut at open. Segments are never rewritten, so
// readers map them and read while the recorder appends.
#ifndef XDISRUPTOR_JOURNAL_FORMAT_H_
#define XDISRUPTOR_JOURNAL_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace xdisruptor::journal {

inline constexpr std::uint64_t kMagic = 0x314C4E524A445858ull;  // "XXDJRNL1", little endian
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::uint32_t kHeaderSize = 4096;
inline constexpr std::size_t kMaxSchema = 3072;
inline constexpr std::string_view kDataSuffix = ".xdj";
inline constexpr std::string_view kIndexSuffix = ".xdx";

struct SegmentHeader {
  std::uint64_t magic;            // 0
  std::uint32_t version;          // 8
  std::uint32_t header_size;      // 12
  std::uint32_t slot_size;        // 16: bytes per event, a multiple of 8
  std::uint32_t schema_length;    // 20
  std::int64_t first_sequence;    // 24
  std::uint64_t schema_hash;      // 32: SchemaHash(schema)
  std::int64_t created_unix_ns;   // 40
  std::uint64_t capacity_bytes;   // 48: the most bytes this segment's data file will hold
  std::uint64_t header_check;     // 56: Checksum of bytes 0..55 and of the schema text
  char ring[64];                  // 64: the ring it was recorded from (informational)
  // 128: which life of that ring: its creation time, or, for a ring a bridge feeds, the
  // source's (RingEpoch). 0 in journals written before it was recorded. Not in header_check
  // (a field added in reserved space; a damaged one refuses, it never accepts).
  std::int64_t ring_epoch;
  std::uint8_t reserved[1024 - 136];
  char schema[kMaxSchema];        // 1024
};
static_assert(sizeof(SegmentHeader) == kHeaderSize);
static_assert(offsetof(SegmentHeader, first_sequence) == 24 &&
              offsetof(SegmentHeader, header_check) == 56 && offsetof(SegmentHeader, ring) == 64 &&
              offsetof(SegmentHeader, ring_epoch) == 128 &&
              offsetof(SegmentHeader, schema) == 1024);

struct IndexRecord {
  std::int64_t first;       // 0
  std::int64_t last;        // 8
  std::uint64_t checksum;   // 16: Checksum of the batch's (last - first + 1) * slot_size bytes
  std::uint64_t self_check; // 24: Checksum of bytes 0..23
};
static_assert(sizeof(IndexRecord) == 32);

// A 64-bit checksum of `n` bytes (any n): eight Fletcher lanes (a sum and a sum of sums per
// word of each 64-byte stripe), the rest word by word, then a multiply-rotate mix of it all.
// Not cryptographic; it catches torn writes, flipped bits and moved words, at memory speed.
std::uint64_t Checksum(const void* data, std::size_t n, std::uint64_t seed = 0);

inline std::uint64_t RecordCheck(const IndexRecord& r) { return Checksum(&r, 24, 0x5EED); }
std::uint64_t HeaderCheck(const SegmentHeader& h);

// "00000000000000001234.xdj" for first sequence 1234.
std::string SegmentFileName(std::int64_t first, std::string_view suffix);

}  // namespace xdisruptor::journal

#endif  // XDISRUPTOR_JOURNAL_FORMAT_H_
