#ifndef A2AMESH_CORE_JSON_DEPTH_H_
#define A2AMESH_CORE_JSON_DEPTH_H_

#include "absl/strings/string_view.h"

namespace a2amesh {

// Whether `json` nests arrays and objects deeper than `limit` anywhere (in one
// linear pass that parses nothing; strings are skipped). Protobuf's JSON
// parser takes more than quadratic time in the depth of nested arrays: JSON
// from outside (a request's body, a policy file) is checked with this before
// it reaches it.
bool JsonNestsDeeperThan(absl::string_view json, int limit);

}  // namespace a2amesh

#endif  // A2AMESH_CORE_JSON_DEPTH_H_
