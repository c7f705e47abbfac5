#include "rpc/grpc_status.h"

#include <string>

#include "core/a2a_error.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace a2amesh::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  google::rpc::Status details;
  if (std::optional<A2aError> error = GetA2aError(status); error.has_value()) {
    google::rpc::ErrorInfo info;
    info.set_reason(std::string(A2aErrorReason(*error)));
    info.set_domain(std::string(kA2aErrorDomain));
    details.add_details()->PackFrom(info);
  }
  if (std::optional<std::string> field = GetInvalidField(status); field.has_value()) {
    google::rpc::BadRequest bad_request;
    auto* violation = bad_request.add_field_violations();
    violation->set_field(*field);
    violation->set_description(message);
    details.add_details()->PackFrom(bad_request);
  }
  if (std::optional<absl::Duration> delay = GetRetryAfter(status); delay.has_value()) {
    google::rpc::RetryInfo retry;
    const int64_t ms = absl::ToInt64Milliseconds(*delay);
    retry.mutable_retry_delay()->set_seconds(ms / 1000);
    retry.mutable_retry_delay()->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
    details.add_details()->PackFrom(retry);
  }
  if (details.details().empty()) {
    return grpc::Status(code, message);
  }
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  absl::Status result(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return result;
  }
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&retry)) {
      result =
          WithRetryAfter(std::move(result), absl::Seconds(retry.retry_delay().seconds()) +
                                                absl::Nanoseconds(retry.retry_delay().nanos()));
      continue;
    }
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info) && info.domain() == kA2aErrorDomain) {
      if (std::optional<A2aError> error = A2aErrorFromReason(info.reason())) {
        result = WithA2aError(std::move(result), *error);
      }
    }
  }
  return result;
}

}  // namespace a2amesh::rpc
