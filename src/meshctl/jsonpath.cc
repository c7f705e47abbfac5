#include "meshctl/jsonpath.h"

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"

namespace a2amesh::meshctl {

using google::protobuf::Value;

// A path step: a field, an index, or every element.
struct Step {
  enum class Kind { kField, kIndex, kAll } kind;
  std::string field;
  int64_t index = 0;
};

struct JsonPathTemplate::Node {
  enum class Kind { kText, kPath, kRange } kind;
  std::string text;                               // kText
  std::vector<Step> path;                         // kPath, kRange
  std::vector<std::shared_ptr<const Node>> body;  // kRange
};

namespace {

using Node = JsonPathTemplate::Node;
using NodeList = std::vector<std::shared_ptr<const Node>>;

absl::Status Bad(const std::string& text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("-o jsonpath='", text, "': ", why));
}

// ".a.b[0][*]", "@.a", "$.a", "." or "@" (the current value).
absl::StatusOr<std::vector<Step>> ParsePath(const std::string& whole, absl::string_view path) {
  std::vector<Step> steps;
  if (!absl::ConsumePrefix(&path, "@") && !absl::ConsumePrefix(&path, "$") &&
      !absl::StartsWith(path, ".") && !absl::StartsWith(path, "[")) {
    return Bad(whole, absl::StrCat("'", path, "' is not a path (they start with . or @)"));
  }
  if (path == ".") return steps;
  while (!path.empty()) {
    if (absl::ConsumePrefix(&path, ".")) {
      size_t end = 0;
      while (end < path.size() && path[end] != '.' && path[end] != '[') ++end;
      if (end == 0) return Bad(whole, "a '.' names no field");
      if (path.substr(0, end) == "*") {
        steps.push_back({Step::Kind::kAll, "", 0});
      } else {
        steps.push_back({Step::Kind::kField, std::string(path.substr(0, end)), 0});
      }
      path.remove_prefix(end);
    } else if (absl::ConsumePrefix(&path, "[")) {
      const size_t close = path.find(']');
      if (close == absl::string_view::npos) return Bad(whole, "a '[' is not closed");
      absl::string_view inside = absl::StripAsciiWhitespace(path.substr(0, close));
      path.remove_prefix(close + 1);
      int64_t index = 0;
      if (inside == "*") {
        steps.push_back({Step::Kind::kAll, "", 0});
      } else if ((absl::StartsWith(inside, "'") && absl::EndsWith(inside, "'") &&
                  inside.size() >= 2) ||
                 (absl::StartsWith(inside, "\"") && absl::EndsWith(inside, "\"") &&
                  inside.size() >= 2)) {
        steps.push_back({Step::Kind::kField, std::string(inside.substr(1, inside.size() - 2)), 0});
      } else if (absl::SimpleAtoi(inside, &index)) {
        steps.push_back({Step::Kind::kIndex, "", index});
      } else {
        return Bad(whole, absl::StrCat("[", inside, "] is not an index, [*] or ['field']"));
      }
    } else {
      return Bad(whole, absl::StrCat("unexpected '", path.substr(0, 1), "' in a path"));
    }
  }
  return steps;
}

absl::StatusOr<std::string> Unquote(const std::string& whole, absl::string_view quoted) {
  std::string out;
  for (size_t i = 1; i + 1 < quoted.size(); ++i) {
    char c = quoted[i];
    if (c == '\\' && i + 2 < quoted.size()) {
      switch (quoted[++i]) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        case '"':
        case '\\':
          c = quoted[i];
          break;
        default:
          return Bad(whole, absl::StrCat("\\", quoted.substr(i, 1), " is not an escape"));
      }
    }
    out += c;
  }
  return out;
}

// Parses nodes up to the end of `text` (top level) or an {end} (in a range).
absl::StatusOr<NodeList> ParseNodes(const std::string& whole, absl::string_view* text,
                                    bool in_range) {
  NodeList nodes;
  while (!text->empty()) {
    const size_t open = text->find('{');
    if (open != 0) {
      const size_t n = open == absl::string_view::npos ? text->size() : open;
      auto node = std::make_shared<Node>();
      node->kind = Node::Kind::kText;
      node->text = std::string(text->substr(0, n));
      nodes.push_back(std::move(node));
      text->remove_prefix(n);
      continue;
    }
    const size_t close = text->find('}');
    if (close == absl::string_view::npos) return Bad(whole, "a '{' is not closed");
    absl::string_view inside = absl::StripAsciiWhitespace(text->substr(1, close - 1));
    text->remove_prefix(close + 1);
    auto node = std::make_shared<Node>();
    if (inside == "end") {
      if (!in_range) return Bad(whole, "{end} without {range}");
      return nodes;
    }
    if (absl::ConsumePrefix(&inside, "range ")) {
      node->kind = Node::Kind::kRange;
      absl::StatusOr<std::vector<Step>> path = ParsePath(whole, absl::StripAsciiWhitespace(inside));
      if (!path.ok()) return path.status();
      node->path = *std::move(path);
      absl::StatusOr<NodeList> body = ParseNodes(whole, text, /*in_range=*/true);
      if (!body.ok()) return body.status();
      node->body = *std::move(body);
    } else if (absl::StartsWith(inside, "\"") && absl::EndsWith(inside, "\"") &&
               inside.size() >= 2) {
      node->kind = Node::Kind::kText;
      absl::StatusOr<std::string> literal = Unquote(whole, inside);
      if (!literal.ok()) return literal.status();
      node->text = *std::move(literal);
    } else {
      node->kind = Node::Kind::kPath;
      absl::StatusOr<std::vector<Step>> path = ParsePath(whole, inside);
      if (!path.ok()) return path.status();
      node->path = *std::move(path);
    }
    nodes.push_back(std::move(node));
  }
  if (in_range) return Bad(whole, "a {range} has no {end}");
  return nodes;
}

// Every value `path` reaches from `from`.
absl::StatusOr<std::vector<const Value*>> Follow(const std::vector<Step>& path, const Value& from) {
  std::vector<const Value*> current = {&from};
  std::string where;
  for (const Step& step : path) {
    std::vector<const Value*> next;
    for (const Value* value : current) {
      switch (step.kind) {
        case Step::Kind::kField: {
          if (!value->has_struct_value() || value->struct_value().fields().count(step.field) == 0) {
            return absl::NotFoundError(
                absl::StrCat("-o jsonpath: ", where.empty() ? "the document" : where,
                             " has no field '", step.field, "'"));
          }
          next.push_back(&value->struct_value().fields().at(step.field));
          break;
        }
        case Step::Kind::kIndex: {
          if (!value->has_list_value()) {
            return absl::NotFoundError(absl::StrCat("-o jsonpath: ", where, " is not a list"));
          }
          const auto& items = value->list_value().values();
          const int64_t i = step.index < 0 ? items.size() + step.index : step.index;
          if (i < 0 || i >= items.size()) {
            return absl::NotFoundError(absl::StrCat("-o jsonpath: ", where, "[", step.index,
                                                    "] is past its ", items.size(), " items"));
          }
          next.push_back(&items[static_cast<int>(i)]);
          break;
        }
        case Step::Kind::kAll:
          if (value->has_list_value()) {
            for (const Value& item : value->list_value().values()) next.push_back(&item);
          } else if (value->has_struct_value()) {
            // In key order: a map's own order changes from run to run.
            std::map<std::string, const Value*> sorted;
            for (const auto& [key, item] : value->struct_value().fields()) sorted[key] = &item;
            for (const auto& [key, item] : sorted) next.push_back(item);
          }
          break;
      }
    }
    absl::StrAppend(&where, step.kind == Step::Kind::kField   ? absl::StrCat(".", step.field)
                            : step.kind == Step::Kind::kIndex ? absl::StrCat("[", step.index, "]")
                                                              : "[*]");
    current = std::move(next);
  }
  return current;
}

std::string Print(const Value& value) {
  switch (value.kind_case()) {
    case Value::kStringValue:
      return value.string_value();
    case Value::kNullValue:
      return "";
    default: {
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(value, &json);
      return json;
    }
  }
}

absl::Status RenderNodes(const NodeList& nodes, const Value& current, std::string* out) {
  for (const auto& node : nodes) {
    switch (node->kind) {
      case Node::Kind::kText:
        *out += node->text;
        break;
      case Node::Kind::kPath: {
        absl::StatusOr<std::vector<const Value*>> values = Follow(node->path, current);
        if (!values.ok()) return values.status();
        std::vector<std::string> printed;
        for (const Value* value : *values) printed.push_back(Print(*value));
        *out += absl::StrJoin(printed, " ");
        break;
      }
      case Node::Kind::kRange: {
        absl::StatusOr<std::vector<const Value*>> values = Follow(node->path, current);
        if (!values.ok()) return values.status();
        for (const Value* value : *values) {
          if (absl::Status body = RenderNodes(node->body, *value, out); !body.ok()) return body;
        }
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JsonPathTemplate> JsonPathTemplate::Parse(const std::string& text) {
  absl::string_view rest = text;
  absl::StatusOr<NodeList> nodes = ParseNodes(text, &rest, /*in_range=*/false);
  if (!nodes.ok()) return nodes.status();
  return JsonPathTemplate(*std::move(nodes));
}

absl::StatusOr<std::string> JsonPathTemplate::Render(const Value& document) const {
  std::string out;
  if (absl::Status rendered = RenderNodes(nodes_, document, &out); !rendered.ok()) {
    return rendered;
  }
  return out;
}

}  // namespace a2amesh::meshctl
