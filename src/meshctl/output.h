#ifndef A2AMESH_MESHCTL_OUTPUT_H_
#define A2AMESH_MESHCTL_OUTPUT_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "lf/a2a/v1/a2a.pb.h"

// How meshctl prints: aligned tables for people, JSON and YAML for programs.
namespace a2amesh::meshctl {

enum class Format { kTable, kWide, kJson, kYaml };

// "table", "wide", "json" or "yaml"; INVALID_ARGUMENT naming the choices.
absl::StatusOr<Format> ParseFormat(const std::string& text);

// The proto3 JSON mapping of `message` (lowerCamelCase names, enums by name,
// every field present even when it holds its default): stable across
// releases, since fields are only ever added. `pretty`: indented, else one
// line (for streams: one JSON document per line).
std::string ToJson(const google::protobuf::Message& message, bool pretty = true);

// The same document as YAML: mapping keys sorted, strings double-quoted (so
// that no value changes type), ending with a newline.
std::string ToYaml(const google::protobuf::Message& message);

// Prints `message` as JSON or YAML, per `format`.
void PrintDocument(const google::protobuf::Message& message, Format format, std::ostream& out);

// Columns padded to their widest cell, two spaces apart; the last column is
// not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::vector<std::string>> rows_;  // the header first
};

// kubectl-style ages: "45s", "12m", "3h", "5d"; "-" for an unset time.
std::string Age(const google::protobuf::Timestamp& since, absl::Time now);

// "completed", "input-required", ...: a task state as people write it.
std::string StateName(lf::a2a::v1::TaskState state);
// The reverse, also accepting the enum name ("TASK_STATE_COMPLETED") and any
// case; INVALID_ARGUMENT naming the states otherwise.
absl::StatusOr<lf::a2a::v1::TaskState> ParseState(const std::string& text);

// The text of `parts`: text parts as they are, data parts as compact JSON,
// files as "<file name|url>", joined by spaces.
std::string PartsText(const google::protobuf::RepeatedPtrField<lf::a2a::v1::Part>& parts);

}  // namespace a2amesh::meshctl

#endif  // A2AMESH_MESHCTL_OUTPUT_H_
