#ifndef A2AMESH_MESHCTL_JSONPATH_H_
#define A2AMESH_MESHCTL_JSONPATH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"

namespace a2amesh::meshctl {

// `-o jsonpath=TEMPLATE`: the part of kubectl's JSONPath templates that
// scripts use. Text outside braces is printed as it is; inside them:
//   {.agents[*].id}     a path: fields (.name), an index ([0], [-1]) or every
//                       element ([*]); several results are joined by spaces
//   {range .agents[*]}...{end}   the text between, once per result, where
//                       paths start from that result
//   {"\n"} {"\t"}       a quoted string (with \n, \t, \" and \\)
//   {.} {@}             the current value
// Strings print bare, numbers and booleans as JSON does, objects and lists as
// compact JSON. A field the document does not have is an error naming it.
class JsonPathTemplate {
 public:
  // INVALID_ARGUMENT naming what is wrong (an unclosed brace, a range without
  // end, a bad index...).
  static absl::StatusOr<JsonPathTemplate> Parse(const std::string& text);

  absl::StatusOr<std::string> Render(const google::protobuf::Value& document) const;

  struct Node;  // one piece of the parsed template

 private:
  explicit JsonPathTemplate(std::vector<std::shared_ptr<const Node>> nodes)
      : nodes_(std::move(nodes)) {}

  std::vector<std::shared_ptr<const Node>> nodes_;
};

}  // namespace a2amesh::meshctl

#endif  // A2AMESH_MESHCTL_JSONPATH_H_
