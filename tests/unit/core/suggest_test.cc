#include "core/suggest.h"

#include "gtest/gtest.h"

namespace a2amesh {
namespace {

TEST(EditDistanceTest, CountsEditsAndSwapsOfNeighbours) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("agents", "agents"), 0);
  EXPECT_EQ(EditDistance("agnets", "agents"), 1);  // a swap is one edit
  EXPECT_EQ(EditDistance("http-adress", "http-address"), 1);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("abc", ""), 3);
}

TEST(ClosestMatchTest, SuggestsATypoOrAnUnambiguousPrefixOnly) {
  const std::vector<std::string> verbs = {"agents", "nodes", "tasks", "task", "send", "drain"};
  EXPECT_EQ(ClosestMatch("agnets", verbs), "agents");
  EXPECT_EQ(ClosestMatch("nodse", verbs), "nodes");
  EXPECT_EQ(ClosestMatch("tsk", verbs), "task");
  EXPECT_EQ(ClosestMatch("dr", verbs), "drain");  // the only one it begins
  EXPECT_EQ(ClosestMatch("xyzzy", verbs), "");    // nothing near
  EXPECT_EQ(ClosestMatch("", verbs), "");
  EXPECT_EQ(ClosestMatch("status", {"stats", "statuses"}), "stats");
  EXPECT_EQ(ClosestMatch("x", {}), "");
}

}  // namespace
}  // namespace a2amesh
