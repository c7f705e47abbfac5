#ifndef A2AMESH_ROUTING_REQUEST_VALIDATION_H_
#define A2AMESH_ROUTING_REQUEST_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lf/a2a/v1/a2a.pb.h"

// Checks of A2A requests from clients, the same for every binding.
namespace a2amesh::routing {

struct RequestLimits {
  int64_t max_message_bytes = 4 * 1024 * 1024;
  int max_parts = 256;
};

// The protocol versions this node speaks.
inline constexpr absl::string_view kProtocolVersion = "1.0";

// OK for "1.0" (or "1"); VersionNotSupported otherwise. An absent version (the
// empty string) is a 0.3 request (spec §3.6) and is refused too.
absl::Status CheckProtocolVersion(absl::string_view version, bool present);

// SendMessage / SendStreamingMessage: the message's required fields, the part
// and size limits (RESOURCE_EXHAUSTED naming the limit), history_length, and
// a push config only on a message that creates a task.
absl::Status ValidateSendMessage(const lf::a2a::v1::SendMessageRequest& request,
                                 const RequestLimits& limits);

// A required task id (`field` is its name in the request).
absl::Status ValidateTaskId(absl::string_view id, absl::string_view field);

// A history_length, when set, is not negative.
absl::Status ValidateHistoryLength(bool has, int32_t value, absl::string_view field);

}  // namespace a2amesh::routing

#endif  // A2AMESH_ROUTING_REQUEST_VALIDATION_H_
