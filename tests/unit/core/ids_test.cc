#include "core/ids.h"

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(IdsTest, UuidsAreVersion4AndUnique) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuid();
    EXPECT_THAT(
        id, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

TEST(IdsTest, TimeOrderedUuidsAreVersion7UniqueAndSortByTime) {
  absl::flat_hash_set<std::string> seen;
  const absl::Time t0 = absl::FromUnixMillis(1764547200000);  // 2025-12-01
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewTimeOrderedUuid(t0 + absl::Milliseconds(i));
    EXPECT_THAT(
        id, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
    EXPECT_TRUE(seen.insert(id).second) << id;
    EXPECT_LT(previous, id);  // a later millisecond sorts later, as text too
    previous = id;
  }
  // The first 48 bits are the Unix milliseconds.
  EXPECT_EQ(NewTimeOrderedUuid(t0).substr(0, 13), "019ad735-8400");
}

TEST(IdsTest, TaskIdsCarryTheirOwner) {
  std::string id = MakeTaskId("node-a", absl::Now());
  EXPECT_THAT(id, MatchesRegex("node-a~[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f-]{17}"));
  EXPECT_EQ(TaskIdOwner(id), "node-a");
  EXPECT_EQ(TaskIdOwner("no-owner"), "");
  EXPECT_EQ(TaskIdOwner("~leading"), "");
}

TEST(IdsTest, ValidatesNodeIds) {
  EXPECT_THAT(ValidateNodeId("meshd-0"), IsOk());
  EXPECT_THAT(ValidateNodeId("Node.A_1"), IsOk());
  EXPECT_THAT(ValidateNodeId(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(ValidateNodeId("a~b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contains '~'")));
  EXPECT_THAT(ValidateNodeId("-a"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateNodeId(std::string(64, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 63")));
}

TEST(IdsTest, ValidatesAgentIds) {
  EXPECT_THAT(ValidateAgentId("echo"), IsOk());
  EXPECT_THAT(ValidateAgentId("Echo"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateAgentId("a b"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IdsTest, DerivesAgentIdsFromNames) {
  EXPECT_EQ(AgentIdFromName("Echo Agent"), "echo-agent");
  EXPECT_EQ(AgentIdFromName("  Word  Count! "), "word-count");
  EXPECT_EQ(AgentIdFromName("***"), "");
  EXPECT_THAT(ValidateAgentId(AgentIdFromName(std::string(200, 'x'))), IsOk());
}

}  // namespace
}  // namespace a2amesh
