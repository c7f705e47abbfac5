// An agent card as an agent registers it (protobuf bytes on the AgentHost
// stream) or as a remote agent serves it (JSON): parsed and validated.
#include <cstddef>
#include <cstdint>
#include <string>

#include "a2a/jsonrpc_request.h"
#include "a2a/proto_json.h"
#include "catalog/card_validation.h"
#include "lf/a2a/v1/a2a.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lf::a2a::v1::AgentCard card;
  if (card.ParseFromArray(data, static_cast<int>(size))) {
    (void)a2amesh::catalog::ValidateAgentCard(card, "card");
  }
  const std::string json(reinterpret_cast<const char*>(data), size);
  lf::a2a::v1::AgentCard from_json;
  if (!a2amesh::a2a::JsonNestsDeeperThan(json, a2amesh::a2a::kDefaultMaxJsonDepth) &&
      google::protobuf::util::JsonStringToMessage(json, &from_json,
                                                  a2amesh::a2a::ProtoJsonParseOptions())
          .ok()) {
    (void)a2amesh::catalog::ValidateAgentCard(from_json, "card");
  }
  return 0;
}
