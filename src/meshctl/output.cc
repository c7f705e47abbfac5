#include "meshctl/output.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace a2amesh::meshctl {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr absl::string_view kStatePrefix = "TASK_STATE_";

std::string Quote(absl::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string Number(double value) {
  if (std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string Key(const std::string& key) {
  bool plain = !key.empty() && (absl::ascii_isalpha(key[0]) || key[0] == '_') &&
               std::all_of(key.begin(), key.end(),
                           [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
  // Words YAML 1.1 readers take for booleans or null stay quoted.
  static const char* const kReserved[] = {"y",   "n",    "yes",   "no",  "on",
                                          "off", "true", "false", "null"};
  for (const char* word : kReserved) {
    if (absl::EqualsIgnoreCase(key, word)) plain = false;
  }
  return plain ? key : Quote(key);
}

void EmitMapping(const Struct& mapping, int indent, std::string* out);
void EmitSequence(const ListValue& list, int indent, std::string* out);

// After "key:" or "-": the value inline, or on the lines below.
void EmitValue(const Value& value, int indent, std::string* out) {
  switch (value.kind_case()) {
    case Value::kStructValue:
      if (value.struct_value().fields().empty()) {
        *out += " {}\n";
      } else {
        *out += "\n";
        EmitMapping(value.struct_value(), indent + 2, out);
      }
      return;
    case Value::kListValue:
      if (value.list_value().values().empty()) {
        *out += " []\n";
      } else {
        *out += "\n";
        EmitSequence(value.list_value(), indent + 2, out);
      }
      return;
    case Value::kStringValue:
      *out += " " + Quote(value.string_value()) + "\n";
      return;
    case Value::kNumberValue:
      *out += " " + Number(value.number_value()) + "\n";
      return;
    case Value::kBoolValue:
      *out += value.bool_value() ? " true\n" : " false\n";
      return;
    case Value::kNullValue:
    case Value::KIND_NOT_SET:
      *out += " null\n";
      return;
  }
}

void EmitMapping(const Struct& mapping, int indent, std::string* out) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : mapping.fields()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    *out += std::string(indent, ' ') + Key(key) + ":";
    EmitValue(mapping.fields().at(key), indent, out);
  }
}

void EmitSequence(const ListValue& list, int indent, std::string* out) {
  const std::string dash = std::string(indent, ' ') + "- ";
  for (const Value& item : list.values()) {
    bool block = (item.has_struct_value() && !item.struct_value().fields().empty()) ||
                 (item.has_list_value() && !item.list_value().values().empty());
    if (!block) {
      std::string scalar;
      EmitValue(item, indent, &scalar);  // " value\n"
      *out += std::string(indent, ' ') + "-" + scalar;
      continue;
    }
    // The block at indent + 2, its first line starting with the dash instead.
    std::string nested;
    if (item.has_struct_value()) {
      EmitMapping(item.struct_value(), indent + 2, &nested);
    } else {
      EmitSequence(item.list_value(), indent + 2, &nested);
    }
    *out += dash + nested.substr(dash.size());
  }
}

}  // namespace

absl::StatusOr<OutputFormat> ParseFormat(const std::string& text) {
  OutputFormat output;
  if (text == "table") {
    output.format = Format::kTable;
  } else if (text == "wide") {
    output.format = Format::kWide;
  } else if (text == "json") {
    output.format = Format::kJson;
  } else if (text == "yaml") {
    output.format = Format::kYaml;
  } else if (text == "name") {
    output.format = Format::kName;
  } else if (absl::StartsWith(text, "jsonpath=")) {
    absl::StatusOr<JsonPathTemplate> jsonpath =
        JsonPathTemplate::Parse(text.substr(sizeof("jsonpath=") - 1));
    if (!jsonpath.ok()) return jsonpath.status();
    output.format = Format::kJsonPath;
    output.jsonpath = *std::move(jsonpath);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "-o: '", text,
        "' is not an output format (table, wide, json, yaml, name, jsonpath=TEMPLATE)"));
  }
  return output;
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  // Serialized deterministically (map keys sorted: a Struct's keys, a
  // task's metadata), then printed from the bytes.
  static google::protobuf::util::TypeResolver* const resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool());
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  std::string json;
  // Only fails for messages that cannot exist (an Any of an unknown type).
  if (!google::protobuf::util::BinaryToJsonString(
           resolver, absl::StrCat("type.googleapis.com/", message.GetDescriptor()->full_name()),
           binary, &json, options)
           .ok()) {
    json = "{}";
  }
  if (pretty && !absl::EndsWith(json, "\n")) json += "\n";
  return json;
}

std::string ToYaml(const google::protobuf::Message& message) {
  Value document;  // our own JSON always parses
  if (!google::protobuf::util::JsonStringToMessage(ToJson(message, /*pretty=*/false), &document)
           .ok()) {
    return "{}\n";
  }
  std::string out;
  if (document.has_struct_value()) {
    if (document.struct_value().fields().empty()) return "{}\n";
    EmitMapping(document.struct_value(), 0, &out);
  } else {
    EmitValue(document, 0, &out);
    out.erase(0, 1);
  }
  return out;
}

void PrintDocument(const google::protobuf::Message& message, Format format, std::ostream& out) {
  out << (format == Format::kYaml ? ToYaml(message) : ToJson(message));
}

Table::Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void Table::AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

// Columns a UTF-8 string takes on a terminal (one per code point: tables hold
// no wide characters).
size_t DisplayWidth(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

void Table::Print(std::ostream& out, bool headers, bool names_only) const {
  if (names_only) {
    for (size_t r = 1; r < rows_.size(); ++r) {
      // A tree's rows are indented: the name is the cell without its branch.
      const std::string& cell = rows_[r].empty() ? std::string() : rows_[r][0];
      const size_t start = cell.find_first_not_of(" \u2502\u251c\u2514\u2500");
      out << (start == std::string::npos ? cell : cell.substr(start)) << "\n";
    }
    return;
  }
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  for (size_t r = headers ? 0 : 1; r < rows_.size(); ++r) {
    const auto& row = rows_[r];
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string Age(const google::protobuf::Timestamp& since, absl::Time now) {
  if (since.seconds() == 0 && since.nanos() == 0) return "-";
  absl::Duration age =
      now - absl::FromUnixMillis(google::protobuf::util::TimeUtil::TimestampToMilliseconds(since));
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  const int64_t seconds = absl::ToInt64Seconds(age);
  if (seconds < 120) return absl::StrCat(seconds, "s");
  if (seconds < 120 * 60) return absl::StrCat(seconds / 60, "m");
  if (seconds < 48 * 3600) return absl::StrCat(seconds / 3600, "h");
  return absl::StrCat(seconds / 86400, "d");
}

std::string StateName(lf::a2a::v1::TaskState state) {
  std::string name = lf::a2a::v1::TaskState_Name(state);
  if (absl::StartsWith(name, kStatePrefix)) name = name.substr(kStatePrefix.size());
  return absl::StrReplaceAll(absl::AsciiStrToLower(name), {{"_", "-"}});
}

absl::StatusOr<lf::a2a::v1::TaskState> ParseState(const std::string& text) {
  std::string name = absl::StrReplaceAll(absl::AsciiStrToUpper(text), {{"-", "_"}});
  if (!absl::StartsWith(name, kStatePrefix)) name = absl::StrCat(kStatePrefix, name);
  lf::a2a::v1::TaskState state;
  if (lf::a2a::v1::TaskState_Parse(name, &state) && state != lf::a2a::v1::TASK_STATE_UNSPECIFIED) {
    return state;
  }
  std::vector<std::string> names;
  for (int i = lf::a2a::v1::TaskState_MIN + 1; i <= lf::a2a::v1::TaskState_MAX; ++i) {
    if (lf::a2a::v1::TaskState_IsValid(i)) {
      names.push_back(StateName(static_cast<lf::a2a::v1::TaskState>(i)));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--state: '", text, "' is not a task state (", absl::StrJoin(names, ", "), ")"));
}

std::string PartsText(const google::protobuf::RepeatedPtrField<lf::a2a::v1::Part>& parts) {
  std::vector<std::string> texts;
  for (const lf::a2a::v1::Part& part : parts) {
    switch (part.content_case()) {
      case lf::a2a::v1::Part::kText:
        texts.push_back(part.text());
        break;
      case lf::a2a::v1::Part::kData:
        texts.push_back(ToJson(part.data(), /*pretty=*/false));
        break;
      case lf::a2a::v1::Part::kUrl:
        texts.push_back(absl::StrCat("<", part.url(), ">"));
        break;
      case lf::a2a::v1::Part::kRaw:
        texts.push_back(absl::StrCat("<", part.filename().empty() ? "file" : part.filename(), ", ",
                                     part.raw().size(), " bytes>"));
        break;
      case lf::a2a::v1::Part::CONTENT_NOT_SET:
        break;
    }
  }
  return absl::StrJoin(texts, " ");
}

}  // namespace a2amesh::meshctl
