#include "http/url.h"

#include "gtest/gtest.h"

namespace a2amesh::http {
namespace {

TEST(PercentEncodeTest, OnlyUnreservedBytesStayAsTheyAre) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("a/b c:d?e#f%+"), "a%2Fb%20c%3Ad%3Fe%23f%25%2B");
  EXPECT_EQ(PercentEncode("\xC3\xA9"), "%C3%A9");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(PercentEncodeTest, DecodingGivesBackWhatWasEncoded) {
  for (const char* text : {"tasks/1:cancel", "a b+c", "\x01\xff%", "plain"}) {
    EXPECT_EQ(PercentDecode(PercentEncode(text)), text);
  }
  EXPECT_EQ(PercentDecode("%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
}

}  // namespace
}  // namespace a2amesh::http
