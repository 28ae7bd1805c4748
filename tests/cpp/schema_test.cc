#include "xdisruptor/schema.h"

#include "gtest/gtest.h"

namespace xdisruptor {
namespace {

TEST(SchemaTest, ShouldComputeOffsetsWhenFieldsArePacked) {
  auto s = ParseSchema("<i8:seq,<f8:price,S12:symbol,V4:_pad,(2,3)<i2:grid,<U3:code");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->fields.size(), 6u);
  EXPECT_EQ(s->fields[1].name, "price");
  EXPECT_EQ(s->fields[1].offset, 8u);
  EXPECT_EQ(s->fields[2].size, 12u);
  EXPECT_EQ(s->fields[4].size, 12u);
  EXPECT_EQ(s->fields[5].size, 12u);
  EXPECT_EQ(s->itemsize, 8u + 8 + 12 + 4 + 12 + 12);
}

TEST(SchemaTest, ShouldAcceptDatetimesAndTheEmptySchema) {
  EXPECT_EQ(ParseSchema("<M8[ns]:t,<m8[us]:dt,|b1:flag,<u1:b")->itemsize, 18u);
  EXPECT_EQ(ParseSchema("")->itemsize, 0u);
}

TEST(SchemaTest, ShouldRejectWhenTheTextIsMalformed) {
  for (const char* bad : {"<i8", "<i8:", "<i3:x", "<q8:x", "<i8:a,<i8:a", "<i8:9x", "S0:s",
                          "(0,)<i4:x", "<f8:x,", "O:obj", "<M8[n s]:t", "<i8:a b"}) {
    auto s = ParseSchema(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(SchemaTest, ShouldHashDifferentTextsDifferently) {
  EXPECT_NE(SchemaHash("<i8:a"), SchemaHash("<i8:b"));
  EXPECT_EQ(SchemaHash("<i8:a"), SchemaHash("<i8:a"));
}

}  // namespace
}  // namespace xdisruptor

namespace xdisruptor {
namespace {

TEST(SchemaTest, ShouldTreatSpellingsOfTheSameLayoutAsEqual) {
  EXPECT_TRUE(SameSchema("<i8:a,|S12:s,|b1:f,|u1:c,(3,)<f4:v", "<i8:a,S12:s,b1:f,u1:c,(3)<f4:v"));
  EXPECT_TRUE(SameSchema("=i4:x", "<i4:x"));
  EXPECT_FALSE(SameSchema("<i8:a", "<i8:b"));
  EXPECT_FALSE(SameSchema("<i8:a", ">i8:a"));
  EXPECT_FALSE(SameSchema("<i8:a", "garbage"));
}

}  // namespace
}  // namespace xdisruptor
