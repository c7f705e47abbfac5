#include "rpc/grpc_status.h"

#include "core/a2a_error.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace a2amesh::rpc {
namespace {

TEST(GrpcStatusTest, OkStaysOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, A2aErrorsCarryErrorInfo) {
  grpc::Status status = ToGrpcStatus(MakeA2aError(A2aError::kTaskNotFound, "task x not found"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "task x not found");
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(details.message(), "task x not found");
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "TASK_NOT_FOUND");
  EXPECT_EQ(info.domain(), "a2a-protocol.org");
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.ErrorInfo");
}

TEST(GrpcStatusTest, InvalidFieldsCarryABadRequest) {
  grpc::Status status = ToGrpcStatus(InvalidFieldError("message.parts", "needs a part"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  google::rpc::BadRequest bad;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad));
  EXPECT_EQ(bad.field_violations(0).field(), "message.parts");
}

TEST(GrpcStatusTest, PlainErrorsHaveNoDetails) {
  grpc::Status status = ToGrpcStatus(absl::UnavailableError("draining"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(status.error_details().empty());
}

TEST(GrpcStatusTest, RoundTripKeepsTheA2aErrorAndTheWireCode) {
  absl::Status back =
      FromGrpcStatus(ToGrpcStatus(MakeA2aError(A2aError::kVersionNotSupported, "old")));
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetA2aError(back), A2aError::kVersionNotSupported);
  // A v1.0.0 server answers VersionNotSupported with UNIMPLEMENTED: keep its code.
  google::rpc::Status details;
  google::rpc::ErrorInfo info;
  info.set_reason("VERSION_NOT_SUPPORTED");
  info.set_domain("a2a-protocol.org");
  details.add_details()->PackFrom(info);
  absl::Status old = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "old", details.SerializeAsString()));
  EXPECT_EQ(old.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(GetA2aError(old), A2aError::kVersionNotSupported);
  EXPECT_FALSE(GetA2aError(FromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "x", "junk")))
                   .has_value());
}

}  // namespace
}  // namespace a2amesh::rpc
