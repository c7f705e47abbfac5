#ifndef A2AMESH_A2A_JSONRPC_REQUEST_H_
#define A2AMESH_A2A_JSONRPC_REQUEST_H_

#include <string>

#include "absl/strings/string_view.h"

namespace a2amesh::a2a {

// A JSON-RPC 2.0 request envelope, read in one pass over the body (RapidJSON's
// SAX reader: nothing is built), with its params left as the raw JSON text
// they were sent as, for the one parse into the method's request message.
struct JsonRpcRequest {
  // The id as JSON, to echo: a number exactly as written (every digit: an id of
  // 9007199254740993 comes back as sent), a string literal, or null.
  std::string id = "null";
  std::string method;
  // The params object's text within the body; empty if there were none.
  absl::string_view params;
  // 0, or the JSON-RPC error code (-32700 parse error, -32600 invalid request,
  // -32602 invalid params) with `error` saying what was wrong.
  int error_code = 0;
  std::string error;
};

// How deep a request body may nest by default (--max-json-depth): deeper than
// any A2A message needs, shallow enough that no parser behind it spends more
// than linear time.
inline constexpr int kDefaultMaxJsonDepth = 64;

// Reads the envelope of `body`. `body` must outlive the result's params.
// Nesting deeper than `max_depth` anywhere in the body is refused (-32600)
// before any of it is parsed into a message.
JsonRpcRequest ReadJsonRpcRequest(absl::string_view body, int max_depth = kDefaultMaxJsonDepth);

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_JSONRPC_REQUEST_H_
