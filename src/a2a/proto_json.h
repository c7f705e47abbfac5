#ifndef A2AMESH_A2A_PROTO_JSON_H_
#define A2AMESH_A2A_PROTO_JSON_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "core/json_depth.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"

// A2A v1.0's JSON is ProtoJSON of its messages: the printing and parsing the
// HTTP bindings share.
namespace a2amesh::a2a {

// An empty message of `type`.
std::unique_ptr<google::protobuf::Message> NewMessage(const google::protobuf::Descriptor* type);

// How requests are parsed: unknown fields are ignored (the spec: parsers
// SHOULD ignore them).
google::protobuf::util::JsonParseOptions ProtoJsonParseOptions();

// `message` as ProtoJSON ("{}" if it cannot be printed).
std::string ToJson(const google::protobuf::Message& message, bool print_defaults = false);

// core/json_depth.h: a body is checked with it before it reaches protobuf.
using ::a2amesh::JsonNestsDeeperThan;

// `text` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view text);

// The JSON of a call's result. ListTasksResponse keeps its REQUIRED fields
// even when empty (nextPageToken "" on the last page), which default printing
// would omit; an AgentCard prints every field.
std::string ResultJson(const google::protobuf::Message& result);

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_PROTO_JSON_H_
