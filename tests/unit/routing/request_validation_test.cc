#include "routing/request_validation.h"

#include "core/a2a_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/proto_builders.h"
#include "testing/status_matchers.h"

namespace a2amesh::routing {
namespace {

using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::StatusIs;
using ::testing::HasSubstr;

TEST(RequestValidationTest, VersionMustBeOnePointZero) {
  EXPECT_THAT(CheckProtocolVersion("1.0", true), IsOk());
  EXPECT_THAT(CheckProtocolVersion(" 1 ", true), IsOk());
  absl::Status absent = CheckProtocolVersion("", false);
  EXPECT_EQ(GetA2aError(absent), A2aError::kVersionNotSupported);
  EXPECT_THAT(absent.message(), HasSubstr("A2A 0.3 request"));
  absl::Status old = CheckProtocolVersion("0.3", true);
  EXPECT_EQ(GetA2aError(old), A2aError::kVersionNotSupported);
  EXPECT_THAT(old.message(), HasSubstr("'0.3' is not supported"));
  EXPECT_EQ(GetA2aError(CheckProtocolVersion("2.0", true)), A2aError::kVersionNotSupported);
}

TEST(RequestValidationTest, AcceptsAPlainMessage) {
  EXPECT_THAT(ValidateSendMessage(SendText("hi"), RequestLimits()), IsOk());
}

TEST(RequestValidationTest, LimitsNameTheFlag) {
  RequestLimits limits;
  limits.max_message_bytes = 100;
  EXPECT_THAT(ValidateSendMessage(SendText(std::string(200, 'x')), limits),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("over the --max-message-bytes limit of 100")));
  limits = RequestLimits();
  limits.max_parts = 1;
  lf::a2a::v1::SendMessageRequest two = SendText("a");
  two.mutable_message()->add_parts()->set_text("b");
  EXPECT_THAT(ValidateSendMessage(two, limits),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("2 parts, over the --max-parts limit of 1")));
}

TEST(RequestValidationTest, AgentRoleIsNotAClientRole) {
  lf::a2a::v1::SendMessageRequest request = SendText("a");
  request.mutable_message()->set_role(lf::a2a::v1::ROLE_AGENT);
  EXPECT_THAT(ValidateSendMessage(request, RequestLimits()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message.role")));
}

TEST(RequestValidationTest, TaskIdsAndHistoryLengths) {
  EXPECT_THAT(ValidateTaskId("n~1", "id"), IsOk());
  EXPECT_THAT(ValidateTaskId("", "task_id"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("task_id: is required")));
  EXPECT_THAT(ValidateHistoryLength(false, -5, "history_length"), IsOk());
  EXPECT_THAT(ValidateHistoryLength(true, 0, "history_length"), IsOk());
  EXPECT_THAT(ValidateHistoryLength(true, -1, "history_length"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must not be negative")));
}

}  // namespace
}  // namespace a2amesh::routing
