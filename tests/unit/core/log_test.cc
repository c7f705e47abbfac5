#include "core/log.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSinkForTesting([this](LogLevel, absl::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    SetLogSinkForTesting(nullptr);
    SetLogFormat(LogFormat::kText);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, TextLinesCarryFields) {
  A2AMESH_LOG(Info, "agent registered").With("agent", "echo").With("skills", 2).With("ok", true);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], MatchesRegex("[0-9T:.Z-]+ info  agent registered agent=echo skills=2 "
                                      "ok=true\n"));
}

TEST_F(LogTest, TextQuotesValuesWithSpaces) {
  A2AMESH_LOG(Warning, "task failed").With("reason", "agent went away");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], HasSubstr("warn  task failed reason=\"agent went away\""));
}

TEST_F(LogTest, JsonLinesAreObjects) {
  SetLogFormat(LogFormat::kJson);
  A2AMESH_LOG(Error, "store \"write\" failed").With("path", "/x").With("n", 3);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], MatchesRegex("\\{\"ts\":\"[^\"]+\",\"level\":\"error\",\"msg\":\"store "
                                      "\\\\\"write\\\\\" failed\",\"path\":\"/x\",\"n\":3\\}\n"));
}

TEST_F(LogTest, LinesBelowTheLevelAreSkipped) {
  SetLogLevel(LogLevel::kWarning);
  A2AMESH_LOG(Info, "hidden");
  A2AMESH_LOG(Debug, "hidden");
  A2AMESH_LOG(Warning, "shown");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], HasSubstr("shown"));
}

}  // namespace
}  // namespace a2amesh
