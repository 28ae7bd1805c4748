// The bridge's wire format (bridge_wire.cc): what `bridge in` accepts as a batch and what it
// refuses — every message off the network goes through DecodeBatch first.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "xdisruptor/bridge.h"

namespace xdisruptor::bridge {
namespace {

struct Message {
  std::map<std::string, std::string> headers;
  std::vector<char> body;

  absl::StatusOr<WireBatch> Decode() const {
    return DecodeBatch(
        [this](const char* key) -> const char* {
          auto it = headers.find(key);
          return it == headers.end() ? nullptr : it->second.c_str();
        },
        {body.data(), body.size()});
  }
};

Message Batch(std::int64_t first, std::int64_t count, std::int64_t size) {
  Message m;
  m.headers = {{kHeaderRing, "ticks"},
               {kHeaderEpoch, "1700000000000000000"},
               {kHeaderFirst, std::to_string(first)},
               {kHeaderCount, std::to_string(count)},
               {kHeaderSize, std::to_string(size)},
               {kHeaderSchema, "<i8:a,<i8:b"}};
  m.body.assign(static_cast<std::size_t>(count * size), 'x');
  return m;
}

TEST(BridgeWireTest, ShouldDecodeAWholeBatch) {
  auto b = Batch(100, 4, 16).Decode();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ring, "ticks");
  EXPECT_EQ(b->epoch, 1700000000000000000);
  EXPECT_EQ(b->first, 100);
  EXPECT_EQ(b->count, 4);
  EXPECT_EQ(b->event_size, 16u);
  EXPECT_EQ(b->schema, "<i8:a,<i8:b");
  EXPECT_EQ(b->events.size(), 64u);
  EXPECT_EQ(b->close_at, -1);
}

TEST(BridgeWireTest, ShouldDecodeTheCloseMarker) {
  Message m;
  m.headers = {{kHeaderRing, "ticks"}, {kHeaderEpoch, "7"}, {kHeaderClose, "999"}};
  auto b = m.Decode();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->count, 0);
  EXPECT_EQ(b->close_at, 999);
  m.body = {'x'};  // a close marker carries no events
  EXPECT_EQ(m.Decode().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BridgeWireTest, ShouldRefuseTruncatedOrPaddedBodies) {
  Message m = Batch(0, 4, 16);
  m.body.pop_back();
  EXPECT_NE(m.Decode().status().message().find("truncated"), std::string::npos);
  m.body.push_back('x');
  m.body.push_back('x');
  EXPECT_EQ(m.Decode().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BridgeWireTest, ShouldRefuseCountsWhoseByteSizeOverflows) {
  // 2^60 events of 16 bytes: the product wraps to 0; an empty body must not pass for it.
  Message m = Batch(0, 1, 16);
  m.headers[kHeaderCount] = std::to_string(std::int64_t{1} << 60);
  m.body.clear();
  EXPECT_EQ(m.Decode().status().code(), absl::StatusCode::kInvalidArgument);
  m = Batch(0, 1, 16);
  m.headers[kHeaderFirst] = std::to_string(INT64_MAX);  // first + count - 1 overflows
  EXPECT_EQ(m.Decode().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BridgeWireTest, ShouldRefuseMissingOrMalformedHeaders) {
  for (const char* key : {kHeaderRing, kHeaderEpoch, kHeaderFirst, kHeaderCount, kHeaderSize}) {
    Message m = Batch(0, 2, 8);
    m.headers.erase(key);
    EXPECT_EQ(m.Decode().status().code(), absl::StatusCode::kInvalidArgument) << key;
  }
  for (const auto& [key, value] : std::vector<std::pair<const char*, const char*>>{
           {kHeaderEpoch, "12x"}, {kHeaderFirst, "-1"}, {kHeaderCount, "0"},
           {kHeaderCount, "-3"}, {kHeaderSize, "0"}, {kHeaderSize, "2000000"},
           {kHeaderFirst, " 1"}, {kHeaderCount, "99999999999999999999"}}) {
    Message m = Batch(0, 2, 8);
    m.headers[key] = value;
    EXPECT_EQ(m.Decode().status().code(), absl::StatusCode::kInvalidArgument)
        << key << "=" << value;
  }
}

TEST(BridgeWireTest, ShouldNameEachBatchByEpochFirstAndCount) {
  EXPECT_EQ(MessageId(17, 1024, 256), "17-1024-256");
  EXPECT_NE(MessageId(17, 1024, 256), MessageId(18, 1024, 256));  // a re-created ring
}

}  // namespace
}  // namespace xdisruptor::bridge
