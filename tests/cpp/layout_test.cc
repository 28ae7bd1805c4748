// Layout checks at run time, on a real mapping: what the static_asserts in layout.h pin at
// compile time must also hold for the addresses a process actually gets.
#include "xdisruptor/layout.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "test_util.h"
#include "xdisruptor/ring_segment.h"

namespace xdisruptor {
namespace {

TEST(LayoutTest, ShouldPlaceHotFieldsOnTheirOwnLinesWhenMapped) {
  testing::ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16, .slot_size = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  const auto base = reinterpret_cast<std::uintptr_t>(&ring->header());
  EXPECT_EQ(base % 4096, 0u);
  const auto cursor = reinterpret_cast<std::uintptr_t>(&ring->producer().cursor);
  EXPECT_EQ(cursor - base, kProducerOffset);
  EXPECT_EQ(cursor % kSpacing, 0u);
  for (std::size_t i = 0; i < kMaxConsumers; ++i) {
    const auto seq = reinterpret_cast<std::uintptr_t>(&ring->consumer(i).sequence);
    EXPECT_EQ(seq % kSpacing, 0u);
    EXPECT_EQ(seq - base, kConsumerTableOffset + i * sizeof(ConsumerState));
  }
  const auto slot0 = reinterpret_cast<std::uintptr_t>(ring->slot(0));
  EXPECT_EQ(slot0 % 4096, 0u);
  EXPECT_GE(slot0 - base, kConsumerTableEnd);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(ring->slot(17)) - slot0, 64u);  // 17 & 15 == 1
}

TEST(LayoutTest, ShouldBeLockFreeForEveryAtomicWhenInSharedMemory) {
  testing::ScopedRingName name;
  auto ring = RingSegment::Create({.name = name.get(), .capacity = 16, .slot_size = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_TRUE(ring->header().layout_version.is_lock_free());
  EXPECT_TRUE(ring->producer().cursor.is_lock_free());
  EXPECT_TRUE(ring->producer().gating_mask.is_lock_free());
  EXPECT_TRUE(ring->producer().cursor_notification.futex_word.is_lock_free());
  EXPECT_TRUE(ring->consumer(3).sequence.is_lock_free());
  EXPECT_TRUE(ring->consumer(3).status.is_lock_free());
}

TEST(LayoutTest, ShouldMatchTheDocumentedSizesWhenCompiled) {
  EXPECT_EQ(sizeof(RingHeaderState), 4096u);
  EXPECT_EQ(sizeof(ProducerState), 2048u);
  EXPECT_EQ(sizeof(ConsumerState), 768u);
  EXPECT_EQ(kConsumerTableOffset, 4096u + 2048u);
  EXPECT_GE(kMaxConsumers, 64u);
  auto single = ComputeLayout(1024, 64, SequencerKind::kSingleProducer);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->availability_offset, 0u);
  EXPECT_EQ(single->slots_offset % 4096, 0u);
  EXPECT_EQ(single->segment_size, single->slots_offset + 1024 * 64);
  auto multi = ComputeLayout(1024, 64, SequencerKind::kMultiProducer);
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ(single->stamps_offset, kConsumerTableEnd);
  EXPECT_EQ(multi->stamps_offset, kConsumerTableEnd);
  EXPECT_EQ(multi->availability_offset, kStampTableEnd);
  EXPECT_GE(multi->slots_offset, kStampTableEnd + 1024 * 4);
}

}  // namespace
}  // namespace xdisruptor
