#ifndef A2AMESH_A2A_LEGACY_V03_H_
#define A2AMESH_A2A_LEGACY_V03_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lf/a2a/v1/a2a.pb.h"

// A2A 0.3's JSON, for calling agents that still speak it (the official SDKs'
// 0.3.x releases), translated to and from v1.0's messages. The differences
// (the 0.3 JSON schema against v1.0's ProtoJSON):
//   - objects are told apart by a "kind" member ("task", "message",
//     "status-update", "artifact-update"; parts "text", "file", "data") where
//     v1.0 names the member ({"statusUpdate": ...}, {"text": ...});
//   - enums are lowercase words ("input-required", "agent") where v1.0 has
//     their proto names ("TASK_STATE_INPUT_REQUIRED", "ROLE_AGENT");
//   - a file part nests {uri | bytes, mimeType, name} under "file" where v1.0
//     has url | raw, mediaType and filename on the part; a data part's data is
//     an object (v1.0: any JSON value);
//   - a status update carries "final" (v1.0 drops it: the state says it);
//   - the card names one "url" with its "preferredTransport" and
//     "additionalInterfaces" ({url, transport}) and one "protocolVersion" for
//     all, where v1.0 lists "supportedInterfaces" with a version each;
//   - JSON-RPC methods are "message/send", "message/stream", "tasks/get",
//     "tasks/cancel", "tasks/resubscribe" (v1.0: SendMessage, ...).
// Members this node does not use (0.3 security schemes, push configs) are
// dropped, not translated.
namespace a2amesh::a2a::legacy {

// A card, in either version: a v1.0 card (it lists supportedInterfaces) is
// parsed as it is; a 0.3 card (a "url", a 0.x "protocolVersion") is
// translated, each of its interfaces declaring the card's protocolVersion.
// INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<lf::a2a::v1::AgentCard> ParseAgentCard(absl::string_view json);

// The params of 0.3's message/send and message/stream for `request`.
std::string MessageSendParams(const lf::a2a::v1::SendMessageRequest& request);

// The result of a 0.3 call (message/send, message/stream, tasks/get,
// tasks/cancel), as the v1.0 event it is: a Task, a Message, a status update
// (its "final" dropped) or an artifact update. `json` is the JSON-RPC
// response's "result" member. INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<lf::a2a::v1::StreamResponse> ParseResult(absl::string_view json);

}  // namespace a2amesh::a2a::legacy

#endif  // A2AMESH_A2A_LEGACY_V03_H_
