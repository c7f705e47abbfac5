#ifndef A2AMESH_MESHCTL_OUTPUT_H_
#define A2AMESH_MESHCTL_OUTPUT_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "meshctl/jsonpath.h"

// How meshctl prints: aligned tables for people, JSON and YAML for programs.
namespace a2amesh::meshctl {

// kName: each row's first column (what names it), no header. kJsonPath: a
// template (meshctl/jsonpath.h) applied to the JSON document.
enum class Format { kTable, kWide, kJson, kYaml, kName, kJsonPath };

struct OutputFormat {
  Format format = Format::kTable;
  std::optional<JsonPathTemplate> jsonpath;  // with kJsonPath
};

// "table", "wide", "json", "yaml", "name" or "jsonpath=TEMPLATE";
// INVALID_ARGUMENT naming the choices, or what is wrong with the template.
absl::StatusOr<OutputFormat> ParseFormat(const std::string& text);

// The proto3 JSON mapping of `message` (lowerCamelCase names, enums by name,
// every field present even when it holds its default): stable across
// releases, since fields are only ever added, and from run to run (fields in
// their declared order, map keys sorted). `pretty`: indented, else one line
// (for streams: one JSON document per line).
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
  // `headers`: the first row too. `names_only`: the first column alone.
  void Print(std::ostream& out, bool headers = true, bool names_only = false) const;
  bool empty() const { return rows_.size() <= 1; }

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
