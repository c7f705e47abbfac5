// A JSON-RPC body as a client sends it: the envelope scan, the depth check
// and the one parse of params into the method's request message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "a2a/jsonrpc_request.h"
#include "a2a/proto_json.h"
#include "lf/a2a/v1/a2a.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  a2amesh::a2a::JsonRpcRequest request = a2amesh::a2a::ReadJsonRpcRequest(body);
  if (request.error_code == 0) {
    // A usable envelope names a method, and its params lie within the body.
    if (request.method.empty()) std::abort();
    if (!request.params.empty() &&
        (request.params.data() < body.data() ||
         request.params.data() + request.params.size() > body.data() + body.size())) {
      std::abort();
    }
  } else if (!request.params.empty()) {
    std::abort();  // an error leaves nothing to parse
  }
  if (request.error_code == 0 && !request.params.empty() &&
      !a2amesh::a2a::JsonNestsDeeperThan(request.params, a2amesh::a2a::kDefaultMaxJsonDepth)) {
    lf::a2a::v1::SendMessageRequest message;
    (void)google::protobuf::util::JsonStringToMessage(std::string(request.params), &message,
                                                      a2amesh::a2a::ProtoJsonParseOptions());
  }
  return 0;
}
