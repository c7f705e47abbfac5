// What a remote A2A 0.3 agent sends (its card, each JSON-RPC result):
// translated to v1.0 (a2a/legacy_v03.h) and validated as the node would.
// Also the way back: whatever v1.0 message parses is sent in 0.3's shape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "a2a/legacy_v03.h"
#include "catalog/card_validation.h"
#include "lf/a2a/v1/a2a.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<lf::a2a::v1::AgentCard> card = a2amesh::a2a::legacy::ParseAgentCard(json);
  if (card.ok()) (void)a2amesh::catalog::ValidateAgentCard(*card, "card");
  absl::StatusOr<lf::a2a::v1::StreamResponse> event = a2amesh::a2a::legacy::ParseResult(json);
  if (event.ok()) {
    lf::a2a::v1::SendMessageRequest request;
    if (event->has_message()) *request.mutable_message() = event->message();
    (void)a2amesh::a2a::legacy::MessageSendParams(request);
  }
  return 0;
}
