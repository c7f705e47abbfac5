#include "http/sse_reader.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh::http {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// Feeds `pieces` in order; returns the (event, data) pairs heard.
std::vector<std::pair<std::string, std::string>> Read(const std::vector<std::string>& pieces) {
  SseReader reader;
  std::vector<std::pair<std::string, std::string>> heard;
  for (const std::string& piece : pieces) {
    reader.Feed(piece, [&](absl::string_view event, absl::string_view data) {
      heard.emplace_back(std::string(event), std::string(data));
    });
  }
  return heard;
}

TEST(SseReaderTest, EventsEndAtABlankLineWhateverThePiecesAre) {
  const std::string stream =
      "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n: a comment\nid: 7\nretry: 10\ndata: x\n\n";
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);  // one byte at a time
  EXPECT_THAT(Read(bytes), ElementsAre(Pair("message", "{\"a\":1}"), Pair("message", "{\"b\":2}"),
                                       Pair("message", "x")));
  EXPECT_THAT(Read({stream}), ElementsAre(Pair("message", "{\"a\":1}"),
                                          Pair("message", "{\"b\":2}"), Pair("message", "x")));
}

TEST(SseReaderTest, NamedEventsMultiLineDataAndEveryLineEnding) {
  EXPECT_THAT(Read({"event: error\r\ndata: one\r\ndata:two\r\n\r\n", "data: three\r\r"}),
              ElementsAre(Pair("error", "one\ntwo"), Pair("message", "three")));
}

TEST(SseReaderTest, AnUnfinishedEventIsHeldAndCounted) {
  SseReader reader;
  int heard = 0;
  reader.Feed("data: partial", [&](absl::string_view, absl::string_view) { ++heard; });
  EXPECT_EQ(heard, 0);
  EXPECT_EQ(reader.buffered(), 13u);
  reader.Feed("\n\n", [&](absl::string_view, absl::string_view) { ++heard; });
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(reader.buffered(), 0u);
}

}  // namespace
}  // namespace a2amesh::http
