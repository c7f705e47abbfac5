#include "core/a2a_error.h"

#include "gtest/gtest.h"

namespace a2amesh {
namespace {

TEST(A2aErrorTest, CarriesReasonCodeAndJsonRpcCode) {
  absl::Status status = MakeA2aError(A2aError::kTaskNotFound, "task x not found");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "task x not found");
  ASSERT_TRUE(GetA2aError(status).has_value());
  EXPECT_EQ(*GetA2aError(status), A2aError::kTaskNotFound);
  EXPECT_EQ(A2aErrorReason(A2aError::kTaskNotFound), "TASK_NOT_FOUND");
  EXPECT_EQ(A2aErrorJsonRpcCode(A2aError::kTaskNotFound), -32001);
}

TEST(A2aErrorTest, FollowsTheV101StatusMapping) {
  struct Case {
    A2aError error;
    absl::StatusCode code;
    int json_rpc;
  } cases[] = {
      {A2aError::kTaskNotCancelable, absl::StatusCode::kFailedPrecondition, -32002},
      {A2aError::kPushNotificationNotSupported, absl::StatusCode::kFailedPrecondition, -32003},
      {A2aError::kUnsupportedOperation, absl::StatusCode::kFailedPrecondition, -32004},
      {A2aError::kContentTypeNotSupported, absl::StatusCode::kInvalidArgument, -32005},
      {A2aError::kInvalidAgentResponse, absl::StatusCode::kInternal, -32006},
      {A2aError::kExtendedAgentCardNotConfigured, absl::StatusCode::kFailedPrecondition, -32007},
      {A2aError::kExtensionSupportRequired, absl::StatusCode::kFailedPrecondition, -32008},
      {A2aError::kVersionNotSupported, absl::StatusCode::kFailedPrecondition, -32009},
  };
  for (const Case& c : cases) {
    absl::Status status = MakeA2aError(c.error, "x");
    EXPECT_EQ(status.code(), c.code) << A2aErrorReason(c.error);
    EXPECT_EQ(A2aErrorJsonRpcCode(c.error), c.json_rpc);
    EXPECT_EQ(GetA2aError(status), c.error);
  }
}

TEST(A2aErrorTest, PlainStatusesAreNotA2aErrors) {
  EXPECT_FALSE(GetA2aError(absl::NotFoundError("x")).has_value());
  EXPECT_FALSE(GetA2aError(absl::OkStatus()).has_value());
}

TEST(A2aErrorTest, InvalidFieldErrorNamesTheField) {
  absl::Status status = InvalidFieldError("message.parts", "must not be empty");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "message.parts: must not be empty");
  EXPECT_EQ(GetInvalidField(status), "message.parts");
  EXPECT_FALSE(GetInvalidField(absl::InvalidArgumentError("x")).has_value());
}

TEST(A2aErrorTest, StatusCodesAreNamedAsGrpcSpellsThem) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(static_cast<int>(absl::StatusCode::kNotFound)), "NOT_FOUND");
  EXPECT_EQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(17), "UNKNOWN");
  EXPECT_EQ(StatusCodeName(-1), "UNKNOWN");
}

}  // namespace
}  // namespace a2amesh
