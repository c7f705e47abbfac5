#include "routing/request_validation.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/a2a_error.h"
#include "core/status_macros.h"

namespace a2amesh::routing {

absl::Status CheckProtocolVersion(absl::string_view version, bool present) {
  if (!present) {
    return MakeA2aError(A2aError::kVersionNotSupported,
                        "the request carries no A2A version, which makes it an A2A 0.3 request; "
                        "this node speaks A2A 1.0: send a2a-version: 1.0");
  }
  version = absl::StripAsciiWhitespace(version);
  if (version == "1.0" || version == "1") {
    return absl::OkStatus();
  }
  return MakeA2aError(
      A2aError::kVersionNotSupported,
      absl::StrCat("A2A version '", version, "' is not supported; this node speaks A2A 1.0"));
}

absl::Status ValidateTaskId(absl::string_view id, absl::string_view field) {
  if (id.empty()) {
    return InvalidFieldError(field, "is required");
  }
  return absl::OkStatus();
}

absl::Status ValidateHistoryLength(bool has, int32_t value, absl::string_view field) {
  if (has && value < 0) {
    return InvalidFieldError(field, "must not be negative");
  }
  return absl::OkStatus();
}

absl::Status ValidateSendMessage(const lf::a2a::v1::SendMessageRequest& request,
                                 const RequestLimits& limits) {
  size_t bytes = request.ByteSizeLong();
  if (static_cast<int64_t>(bytes) > limits.max_message_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the request is ", bytes, " bytes, over the --max-message-bytes limit of ",
                     limits.max_message_bytes));
  }
  if (!request.has_message()) {
    return InvalidFieldError("message", "is required");
  }
  const lf::a2a::v1::Message& message = request.message();
  if (message.message_id().empty()) {
    return InvalidFieldError("message.message_id", "is required");
  }
  if (message.role() == lf::a2a::v1::ROLE_UNSPECIFIED) {
    return InvalidFieldError("message.role", "is required (ROLE_USER)");
  }
  if (message.role() != lf::a2a::v1::ROLE_USER) {
    return InvalidFieldError("message.role", "a client's message is ROLE_USER");
  }
  if (message.parts().empty()) {
    return InvalidFieldError("message.parts", "needs at least one part");
  }
  if (message.parts_size() > limits.max_parts) {
    return absl::ResourceExhaustedError(absl::StrCat("the message has ", message.parts_size(),
                                                     " parts, over the --max-parts limit of ",
                                                     limits.max_parts));
  }
  for (int i = 0; i < message.parts_size(); ++i) {
    if (message.parts(i).content_case() == lf::a2a::v1::Part::CONTENT_NOT_SET) {
      return InvalidFieldError(absl::StrCat("message.parts[", i, "]"),
                               "has no content (text, raw, url or data)");
    }
  }
  const auto& config = request.configuration();
  A2AMESH_RETURN_IF_ERROR(ValidateHistoryLength(
      config.has_history_length(), config.history_length(), "configuration.history_length"));
  if (config.has_task_push_notification_config() && !message.task_id().empty()) {
    return InvalidFieldError(
        "configuration.task_push_notification_config",
        absl::StrCat("comes with the message that creates a task; for task ", message.task_id(),
                     ", call CreateTaskPushNotificationConfig"));
  }
  return absl::OkStatus();
}

}  // namespace a2amesh::routing
