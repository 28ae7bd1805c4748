#include "xdisruptor/ring_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/ring.h"

namespace xdisruptor {
namespace {

using testing::ScopedRingName;
using testing::TestEvent;

TEST(RingSegmentTest, ShouldShareSlotsWhenAttachedByName) {
  ScopedRingName name;
  auto created = RingSegment::Create(
      {.name = name.get(), .capacity = 8, .slot_size = 16, .schema = "<i8:a,<f8:b"});
  ASSERT_TRUE(created.ok()) << created.status();
  auto attached = RingSegment::Attach(name.get());
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ(attached->capacity(), 8u);
  EXPECT_EQ(attached->slot_size(), 16u);
  EXPECT_EQ(attached->schema(), "<i8:a,<f8:b");
  EXPECT_EQ(attached->producer().cursor.load(), -1);
  std::memcpy(created->slot(3), "hello", 6);
  EXPECT_STREQ(reinterpret_cast<const char*>(attached->slot(11)), "hello");
}

TEST(RingSegmentTest, ShouldCreateWithMode0600WhenNotTold) {
  ScopedRingName name;
  ASSERT_TRUE(RingSegment::Create({.name = name.get()}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm/" + name.get()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ScopedRingName other;
  ASSERT_TRUE(RingSegment::Create({.name = other.get(), .mode = 0640}).ok());
  ASSERT_EQ(::stat(("/dev/shm/" + other.get()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(RingSegmentTest, ShouldRejectWhenOptionsAreInvalid) {
  ScopedRingName name;
  EXPECT_EQ(RingSegment::Create({.name = name.get(), .capacity = 1000}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RingSegment::Create({.name = name.get(), .slot_size = 12}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RingSegment::Create({.name = name.get(), .slot_size = 8, .schema = "<i8:a,<i8:b"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"", "a/b", "..", "sp ace", "ümlaut",
                          "x2345678901234567890123456789012345678901234567890123456789012345"}) {
    auto s = RingSegment::Create({.name = bad});
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(RingSegment::Exists(name.get()));
}

TEST(RingSegmentTest, ShouldFailClearlyWhenRingIsMissingOrExists) {
  ScopedRingName name;
  auto missing = RingSegment::Attach(name.get());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(name.get()), absl::string_view::npos);
  ASSERT_TRUE(RingSegment::Create({.name = name.get()}).ok());
  EXPECT_EQ(RingSegment::Create({.name = name.get()}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(RingSegment::Remove(name.get()).ok());
  EXPECT_EQ(RingSegment::Remove(name.get()).code(), absl::StatusCode::kNotFound);
}

TEST(RingSegmentTest, ShouldRefuseTypedAccessWhenEventDoesNotFit) {
  ScopedRingName name;
  ASSERT_TRUE(RingSegment::Create({.name = name.get(), .slot_size = 32}).ok());
  EXPECT_EQ(Ring<TestEvent>::Attach(name.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ScopedRingName typed;
  ASSERT_TRUE(RingSegment::Create({.name = typed.get(), .slot_size = 64, .schema = "<i8:a"}).ok());
  EXPECT_EQ(Ring<TestEvent>::Attach(typed.get()).status().code(),
            absl::StatusCode::kFailedPrecondition);  // 8-byte schema, 64-byte type
  EXPECT_EQ(Ring<std::int64_t>::Attach(typed.get(), {.expected_schema = "<i8:b"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Ring<std::int64_t>::Attach(typed.get(), {.expected_schema = "<i8:a"}).ok());
}

// Opens the segment behind the library's back, as a hostile or broken process would.
class RawSegment {
 public:
  explicit RawSegment(const std::string& name) : name_("/" + name) {
    fd_ = ::shm_open(name_.c_str(), O_RDWR | O_CREAT, 0600);
  }
  // Unlinked here too: RingSegment::Remove leaves what is not a ring (no magic) alone.
  ~RawSegment() {
    ::close(fd_);
    ::shm_unlink(name_.c_str());
  }
  void Truncate(off_t size) { ASSERT_EQ(::ftruncate(fd_, size), 0); }
  template <typename F>
  void Edit(F&& edit) {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    ASSERT_NE(p, MAP_FAILED);
    edit(*static_cast<RingHeaderState*>(p));
    ::munmap(p, 4096);
  }

 private:
  std::string name_;
  int fd_;
};

TEST(RingSegmentTest, ShouldRefuseWhenHeaderIsCorrupt) {
  ScopedRingName name;
  ASSERT_TRUE(RingSegment::Create({.name = name.get(), .capacity = 64}).ok());
  RawSegment raw(name.get());
  raw.Edit([](RingHeaderState& h) { h.layout_version.store(7); });
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  raw.Edit([](RingHeaderState& h) { h.layout_version.store(kLayoutVersion); h.capacity = 48; });
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(), absl::StatusCode::kDataLoss);
  raw.Edit([](RingHeaderState& h) { h.capacity = 1u << 20; });  // bigger than the segment
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(), absl::StatusCode::kDataLoss);
  raw.Edit([](RingHeaderState& h) { h.capacity = 64; h.schema_length = 5000; });
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(), absl::StatusCode::kDataLoss);
  raw.Edit([](RingHeaderState& h) { h.schema_length = 0; h.magic = 42; });
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  raw.Edit([](RingHeaderState& h) { h.magic = kMagic; });
  EXPECT_TRUE(RingSegment::Attach(name.get()).ok());
}

TEST(RingSegmentTest, ShouldRefuseWithoutTouchingSlotsWhenSegmentIsTruncated) {
  ScopedRingName name;
  ASSERT_TRUE(RingSegment::Create({.name = name.get(), .capacity = 1024}).ok());
  RawSegment raw(name.get());
  raw.Truncate(8192);  // header intact, slots gone: touching them would be SIGBUS
  auto attached = RingSegment::Attach(name.get());
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(attached.status().message().find("truncated"), absl::string_view::npos);
  raw.Truncate(100);  // not even a header
  EXPECT_EQ(RingSegment::Attach(name.get(), {.creation_timeout = absl::Milliseconds(20)})
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

TEST(RingSegmentTest, ShouldTimeOutClearlyWhenCreatorNeverFinished) {
  ScopedRingName name;
  RawSegment raw(name.get());
  raw.Truncate(65536);
  raw.Edit([](RingHeaderState& h) { h.magic = kMagic; });  // version still 0
  auto attached = RingSegment::Attach(name.get(), {.creation_timeout = absl::Milliseconds(50)});
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(attached.status().message().find("creator"), absl::string_view::npos);
}

TEST(RingSegmentTest, ShouldWaitNotFailWhenTheCreatorHasNotWrittenTheMagicYet) {
  ScopedRingName name;
  RawSegment raw(name.get());
  raw.Truncate(65536);  // sized, all zero: the creator has not written anything yet
  auto attached = RingSegment::Attach(name.get(), {.creation_timeout = absl::Milliseconds(30)});
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kUnavailable);
}

TEST(RingSegmentTest, ShouldRefuseWhenConsumerTableIsCorrupt) {
  ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 64});
  ASSERT_TRUE(ring.ok());
  ring->consumer(5).after_count = 3;
  ring->consumer(5).after[1] = 64;
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(), absl::StatusCode::kDataLoss);
  ring->consumer(5).after_count = 0;
  ring->consumer(9).name_length = 65;
  EXPECT_EQ(RingSegment::Attach(name.get()).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace xdisruptor
