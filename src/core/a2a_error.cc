#include "core/a2a_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace a2amesh {
namespace {

constexpr absl::string_view kA2aErrorPayload = "a2amesh.dev/a2a-error";
constexpr absl::string_view kFieldPayload = "a2amesh.dev/invalid-field";
constexpr absl::string_view kRetryPayload = "a2amesh.dev/retry-after-ms";

struct ErrorSpec {
  A2aError error;
  absl::string_view reason;
  int json_rpc_code;
  absl::StatusCode code;  // v1.0.1 mapping
};

constexpr ErrorSpec kSpecs[] = {
    {A2aError::kTaskNotFound, "TASK_NOT_FOUND", -32001, absl::StatusCode::kNotFound},
    {A2aError::kTaskNotCancelable, "TASK_NOT_CANCELABLE", -32002,
     absl::StatusCode::kFailedPrecondition},
    {A2aError::kPushNotificationNotSupported, "PUSH_NOTIFICATION_NOT_SUPPORTED", -32003,
     absl::StatusCode::kFailedPrecondition},
    {A2aError::kUnsupportedOperation, "UNSUPPORTED_OPERATION", -32004,
     absl::StatusCode::kFailedPrecondition},
    {A2aError::kContentTypeNotSupported, "CONTENT_TYPE_NOT_SUPPORTED", -32005,
     absl::StatusCode::kInvalidArgument},
    {A2aError::kInvalidAgentResponse, "INVALID_AGENT_RESPONSE", -32006,
     absl::StatusCode::kInternal},
    {A2aError::kExtendedAgentCardNotConfigured, "EXTENDED_AGENT_CARD_NOT_CONFIGURED", -32007,
     absl::StatusCode::kFailedPrecondition},
    {A2aError::kExtensionSupportRequired, "EXTENSION_SUPPORT_REQUIRED", -32008,
     absl::StatusCode::kFailedPrecondition},
    {A2aError::kVersionNotSupported, "VERSION_NOT_SUPPORTED", -32009,
     absl::StatusCode::kFailedPrecondition},
};

const ErrorSpec& SpecOf(A2aError error) { return kSpecs[static_cast<int>(error)]; }

}  // namespace

absl::Status MakeA2aError(A2aError error, absl::string_view message) {
  return WithA2aError(absl::Status(SpecOf(error).code, message), error);
}

absl::Status WithA2aError(absl::Status status, A2aError error) {
  status.SetPayload(kA2aErrorPayload, absl::Cord(SpecOf(error).reason));
  return status;
}

std::optional<A2aError> A2aErrorFromReason(absl::string_view reason) {
  for (const ErrorSpec& spec : kSpecs) {
    if (spec.reason == reason) {
      return spec.error;
    }
  }
  return std::nullopt;
}

std::optional<A2aError> GetA2aError(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kA2aErrorPayload);
  if (!payload.has_value()) {
    return std::nullopt;
  }
  return A2aErrorFromReason(std::string(*payload));
}

absl::string_view A2aErrorReason(A2aError error) { return SpecOf(error).reason; }

int A2aErrorJsonRpcCode(A2aError error) { return SpecOf(error).json_rpc_code; }

absl::Status UnreachableTaskError(absl::string_view task_id, absl::string_view owner,
                                  absl::string_view seen_from) {
  return MakeA2aError(A2aError::kTaskNotFound,
                      absl::StrCat("task ", task_id, " not found: it belongs to node ", owner,
                                   ", which is not a reachable member of the mesh (seen from node ",
                                   seen_from, ")"));
}

absl::Status InvalidFieldError(absl::string_view field, absl::string_view description) {
  absl::Status status = absl::InvalidArgumentError(absl::StrCat(field, ": ", description));
  status.SetPayload(kFieldPayload, absl::Cord(field));
  return status;
}

std::optional<std::string> GetInvalidField(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kFieldPayload);
  if (!payload.has_value()) {
    return std::nullopt;
  }
  return std::string(*payload);
}

absl::Status TaskNotFoundError(absl::string_view task_id) {
  return MakeA2aError(A2aError::kTaskNotFound, absl::StrCat("task ", task_id, " not found"));
}

absl::Status WithRetryAfter(absl::Status status, absl::Duration delay) {
  status.SetPayload(kRetryPayload, absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(delay))));
  return status;
}

std::optional<absl::Duration> GetRetryAfter(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryPayload);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms)) return std::nullopt;
  return absl::Milliseconds(ms);
}

std::string StatusCodeName(int code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace a2amesh
