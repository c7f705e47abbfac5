#ifndef A2AMESH_CORE_A2A_ERROR_H_
#define A2AMESH_CORE_A2A_ERROR_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh {

// The errors the A2A v1.0 specification defines. Inside the node they travel as
// absl::Status values whose code follows the v1.0.1 gRPC mapping and whose payload
// names the A2A error; each binding converts them at its edge (rpc/grpc_status.h).
enum class A2aError {
  kTaskNotFound,
  kTaskNotCancelable,
  kPushNotificationNotSupported,
  kUnsupportedOperation,
  kContentTypeNotSupported,
  kInvalidAgentResponse,
  kExtendedAgentCardNotConfigured,
  kExtensionSupportRequired,
  kVersionNotSupported,
};

// An A2A error with the spec's status code and `message` for humans.
absl::Status MakeA2aError(A2aError error, absl::string_view message);

// TaskNotFound for `task_id`: what a caller hears of a task that does not
// exist, and of one it may not see (the two must not differ).
absl::Status TaskNotFoundError(absl::string_view task_id);

// The A2A error `status` carries, if any.
std::optional<A2aError> GetA2aError(const absl::Status& status);

// `status` (its code and message kept) marked as carrying `error`: for errors
// that arrive from elsewhere with their own status code.
absl::Status WithA2aError(absl::Status status, A2aError error);

// The A2A error named by an ErrorInfo reason such as "TASK_NOT_FOUND".
std::optional<A2aError> A2aErrorFromReason(absl::string_view reason);

// "TASK_NOT_FOUND", ...: the google.rpc.ErrorInfo reason.
absl::string_view A2aErrorReason(A2aError error);

// -32001 ... -32009: the JSON-RPC error code.
int A2aErrorJsonRpcCode(A2aError error);

// The domain of A2A ErrorInfo details.
inline constexpr absl::string_view kA2aErrorDomain = "a2a-protocol.org";

// TaskNotFound for a task that node `owner` owns but that node `seen_from`
// cannot reach: to the caller the task does not exist, and the message says why.
absl::Status UnreachableTaskError(absl::string_view task_id, absl::string_view owner,
                                  absl::string_view seen_from);

// INVALID_ARGUMENT that names the offending field (e.g. "message.parts[0]"); the
// field also travels as a payload so that edges can attach a google.rpc.BadRequest.
absl::Status InvalidFieldError(absl::string_view field, absl::string_view description);

// The field named by an InvalidFieldError, if any.
std::optional<std::string> GetInvalidField(const absl::Status& status);

// A status code's name as gRPC and Abseil both spell it ("NOT_FOUND"; they
// share values and names), for a grpc::StatusCode or an absl::StatusCode;
// "UNKNOWN" for a value that is neither.
std::string StatusCodeName(int code);

// `status` marked with how long the caller should wait before it retries (a
// rate limit): edges send it as google.rpc.RetryInfo and HTTP Retry-After.
absl::Status WithRetryAfter(absl::Status status, absl::Duration delay);
std::optional<absl::Duration> GetRetryAfter(const absl::Status& status);

}  // namespace a2amesh

#endif  // A2AMESH_CORE_A2A_ERROR_H_
