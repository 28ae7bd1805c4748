// journal_fuzzer — libFuzzer target for the journal open path: hostile, torn or stale segment
// and index files.
//
// Each input patches a valid journal (three segments of 64-byte events, written by the library
// itself: headers, batches, index records) at input-chosen offsets, may cut one file short and
// may re-seal what it patched (recompute the header and index checksums, so the values behind
// them are reached too). The files go into a real directory; then the journal is used the way
// every surface uses it: JournalReader::Open, a read of every event through spans, Verify, and
// JournalWriter::Open (which cuts a torn tail) followed by an Append and a reader's Refresh.
// Anything but a clean absl::Status is a bug: ASan/UBSan and SIGBUS turn it into a crash
// libFuzzer reports.
//
// Input: byte 0 picks what to re-seal (bit 0 headers, bit 1 index records) and which file to
// cut (bits 2..4; 6 and 7 cut nothing); byte 1 how much of it to keep; then any number of
// patches: file (1 byte), offset (2 bytes, scaled over the file), length (1 byte, up to 32),
// and that many bytes to write there.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "xdisruptor/journal.h"
#include "xdisruptor/journal_format.h"

namespace {

using namespace xdisruptor;

constexpr std::uint32_t kSlot = 64;
constexpr char kSchema[] = "<i8:seq,<f8:price,S12:symbol,V4:_pad,(2,)<i4:grid,<i8:q,<i8:r";

struct File {
  std::string name;
  std::vector<std::byte> bytes;
};

std::string Directory(std::string_view what) {
  return "/tmp/xdjfuzz-" + std::to_string(::getpid()) + "-" + std::string(what);
}

// A valid journal, made once by the library: 25 events in batches of 1..4 over segments of
// 10 events, so that there are three segments, the last one partly filled.
const std::vector<File>& BaseJournal() {
  static std::vector<File> files;
  if (!files.empty()) return files;
  const std::string dir = Directory("base");
  std::filesystem::remove_all(dir);
  std::atexit([] {
    std::filesystem::remove_all(Directory("base"));
    std::filesystem::remove_all(Directory("run"));
  });
  {
    auto w = JournalWriter::Open({.directory = dir, .segment_bytes = 10 * kSlot}, kSchema, kSlot,
                                 "fuzz");
    if (!w.ok()) __builtin_trap();
    std::vector<std::byte> events(4 * kSlot);
    std::int64_t next = 0;
    for (int batch = 0; next < 25; ++batch) {
      const std::int64_t n = std::min<std::int64_t>(1 + batch % 4, 25 - next);
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t seq = next + i;
        std::memcpy(events.data() + i * kSlot, &seq, sizeof(seq));
      }
      if (!w->Append(next, events.data(), n).ok()) __builtin_trap();
      next += n;
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (name == ".lock") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    File f{name, std::vector<std::byte>(raw.size())};
    std::memcpy(f.bytes.data(), raw.data(), raw.size());
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.name < b.name; });
  if (files.size() != 6) __builtin_trap();
  return files;
}

bool IsIndex(const File& f) { return f.name.ends_with(journal::kIndexSuffix); }

// Recomputes the checksums over what the patches changed.
void Reseal(File& f, bool headers, bool records) {
  if (!IsIndex(f) && headers && f.bytes.size() >= sizeof(journal::SegmentHeader)) {
    journal::SegmentHeader h;
    std::memcpy(&h, f.bytes.data(), sizeof(h));
    if (h.schema_length <= journal::kMaxSchema) {
      h.header_check = journal::HeaderCheck(h);
      std::memcpy(f.bytes.data(), &h, sizeof(h));
    }
  }
  if (IsIndex(f) && records) {
    for (std::size_t off = 0; off + sizeof(journal::IndexRecord) <= f.bytes.size();
         off += sizeof(journal::IndexRecord)) {
      journal::IndexRecord r;
      std::memcpy(&r, f.bytes.data() + off, sizeof(r));
      r.self_check = journal::RecordCheck(r);
      std::memcpy(f.bytes.data() + off, &r, sizeof(r));
    }
  }
}

// Reads every event the reader offers; each one it hands out must be readable memory.
void ReadAll(JournalReader& r) {
  volatile std::uint8_t sink = 0;
  std::int64_t s = r.first();
  for (int guard = 0; s <= r.last() && guard < 100; ++guard) {
    auto span = r.Read(s, 7);
    if (!span.ok() || span->count <= 0) return;
    for (std::int64_t i = 0; i < span->count; ++i) {
      sink = sink + static_cast<std::uint8_t>(span->data[i * r.slot_size() + r.slot_size() - 1]);
    }
    s += span->count;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::vector<File> files = BaseJournal();
  std::size_t i = 2;
  while (i + 4 <= size) {
    File& f = files[data[i] % files.size()];
    const std::size_t offset =
        (static_cast<std::size_t>(data[i + 1]) << 8 | data[i + 2]) * f.bytes.size() / 65536;
    const std::size_t len = std::min<std::size_t>(data[i + 3] % 33, size - i - 4);
    i += 4;
    for (std::size_t k = 0; k < len && offset + k < f.bytes.size(); ++k) {
      f.bytes[offset + k] = static_cast<std::byte>(data[i + k]);
    }
    i += len;
  }
  for (File& f : files) Reseal(f, (data[0] & 1) != 0, (data[0] & 2) != 0);
  const std::size_t cut = (data[0] >> 2) & 7;
  if (cut < files.size()) {
    File& f = files[cut];
    f.bytes.resize(f.bytes.size() * data[1] / 256);
  }

  const std::string dir = Directory("run");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const File& f : files) {
    const std::string path = dir + "/" + f.name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 0;
    if (!f.bytes.empty() && ::write(fd, f.bytes.data(), f.bytes.size()) < 0) {
      ::close(fd);
      return 0;
    }
    ::close(fd);
  }

  auto reader = JournalReader::Open(dir);
  if (reader.ok()) {
    ReadAll(*reader);
    (void)reader->Verify();
  }
  auto writer = JournalWriter::Open({.directory = dir, .segment_bytes = 10 * kSlot}, kSchema,
                                    kSlot, "fuzz");
  if (writer.ok()) {
    std::vector<std::byte> events(3 * kSlot);
    (void)writer->Append(writer->last() + 1, events.data(), 3);
    (void)writer->Sync();
    if (reader.ok() && reader->Refresh().ok()) ReadAll(*reader);
    auto again = JournalReader::Open(dir);
    if (again.ok()) {
      ReadAll(*again);
      (void)again->Verify();
    }
  }
  return 0;
}
