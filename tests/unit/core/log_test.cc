#include "core/log.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

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

TEST_F(LogTest, LinesInATraceScopeCarryItsTraceIdAndScopesNest) {
  SetLogFormat(LogFormat::kJson);
  const std::string outer = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string inner = "0af7651916cd43dd8448eb211c80319c";
  A2AMESH_LOG(Info, "before");
  {
    ScopedLogTrace scope(outer);
    A2AMESH_LOG(Info, "outer");
    {
      ScopedLogTrace nested(inner);
      A2AMESH_LOG(Info, "inner");
      nested.Set("");
      A2AMESH_LOG(Info, "none");
    }
    A2AMESH_LOG(Info, "outer again").With("trace_id", "named");
  }
  A2AMESH_LOG(Info, "after");
  ASSERT_EQ(lines_.size(), 6u);
  EXPECT_THAT(lines_[0], Not(HasSubstr("trace_id")));
  EXPECT_THAT(lines_[1], HasSubstr("\"msg\":\"outer\",\"trace_id\":\"" + outer + "\"}"));
  EXPECT_THAT(lines_[2], HasSubstr("\"trace_id\":\"" + inner + "\"}"));
  EXPECT_THAT(lines_[3], Not(HasSubstr("trace_id")));
  EXPECT_THAT(lines_[4], HasSubstr("\"trace_id\":\"named\"}")) << "a line's own trace_id stands";
  EXPECT_THAT(lines_[4], Not(HasSubstr(outer)));
  EXPECT_THAT(lines_[5], Not(HasSubstr("trace_id")));
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
