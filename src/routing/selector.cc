#include "routing/selector.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/a2a_error.h"
#include "core/ids.h"

namespace a2amesh::routing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

const Value* Lookup(const lf::a2a::v1::SendMessageRequest& request, absl::string_view key,
                    std::string* where) {
  std::string k(key);
  if (request.has_metadata()) {
    auto it = request.metadata().fields().find(k);
    if (it != request.metadata().fields().end()) {
      *where = absl::StrCat("metadata.", key);
      return &it->second;
    }
  }
  if (request.message().has_metadata()) {
    auto it = request.message().metadata().fields().find(k);
    if (it != request.message().metadata().fields().end()) {
      *where = absl::StrCat("message.metadata.", key);
      return &it->second;
    }
  }
  return nullptr;
}

absl::string_view BareType(absl::string_view type) {
  type = absl::StripAsciiWhitespace(type.substr(0, type.find(';')));
  return type;
}

}  // namespace

bool ModeCovers(absl::string_view mode, absl::string_view type) {
  mode = BareType(mode);
  type = BareType(type);
  if (mode == "*/*" || mode == "*" || absl::EqualsIgnoreCase(mode, type)) {
    return true;
  }
  absl::string_view major = type.substr(0, type.find('/'));
  if (absl::EndsWith(mode, "/*")) {
    return absl::EqualsIgnoreCase(mode.substr(0, mode.size() - 2), major);
  }
  // A bare "text" (older cards) covers every text/ type.
  return mode.find('/') == absl::string_view::npos && absl::EqualsIgnoreCase(mode, major);
}

std::string Selector::Describe() const {
  std::vector<std::string> parts;
  if (!agent_id.empty()) parts.push_back(absl::StrCat("agent '", agent_id, "'"));
  if (!skill.empty()) {
    parts.push_back(absl::StrCat(default_skill ? "default skill '" : "skill '", skill, "'"));
  }
  if (!tags.empty()) parts.push_back(absl::StrCat("tags [", absl::StrJoin(tags, ", "), "]"));
  if (!input_media_types.empty()) {
    parts.push_back(absl::StrCat("input ", absl::StrJoin(input_media_types, ", ")));
  }
  if (!accepted_output_modes.empty()) {
    parts.push_back(absl::StrCat("output one of ", absl::StrJoin(accepted_output_modes, ", ")));
  }
  return parts.empty() ? "any agent" : absl::StrJoin(parts, ", ");
}

absl::StatusOr<std::vector<std::string>> HopsFromRequest(
    const lf::a2a::v1::SendMessageRequest& request) {
  std::vector<std::string> hops;
  std::string where;
  const Value* value = Lookup(request, kHopsKey, &where);
  if (value == nullptr) {
    return hops;
  }
  if (value->kind_case() != Value::kListValue) {
    return InvalidFieldError(where, "must be a list of \"agent@node\" strings");
  }
  for (const Value& hop : value->list_value().values()) {
    if (hop.kind_case() != Value::kStringValue || hop.string_value().empty()) {
      return InvalidFieldError(where, "must be a list of \"agent@node\" strings");
    }
    hops.push_back(hop.string_value());
  }
  return hops;
}

absl::StatusOr<Selector> SelectorFromRequest(const lf::a2a::v1::SendMessageRequest& request,
                                             absl::string_view default_skill) {
  Selector selector;
  selector.agent_id = request.tenant();
  if (!selector.agent_id.empty()) {
    // "agent" or "agent@node": checked before it is echoed in any error.
    const size_t at = selector.agent_id.find('@');
    absl::Status valid = ValidateAgentId(absl::string_view(selector.agent_id).substr(0, at));
    if (valid.ok() && at != std::string::npos) {
      valid = ValidateNodeId(absl::string_view(selector.agent_id).substr(at + 1));
    }
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tenant (the agent asked for): ", valid.message()));
    }
  }
  std::string where;
  if (const Value* skill = Lookup(request, kSkillKey, &where)) {
    if (skill->kind_case() != Value::kStringValue || skill->string_value().empty()) {
      return InvalidFieldError(where, "must be a non-empty string (a skill id)");
    }
    selector.skill = skill->string_value();
  }
  if (const Value* tags = Lookup(request, kTagsKey, &where)) {
    if (tags->kind_case() == Value::kStringValue) {
      for (absl::string_view tag : absl::StrSplit(tags->string_value(), ',', absl::SkipEmpty())) {
        selector.tags.emplace_back(absl::StripAsciiWhitespace(tag));
      }
    } else if (tags->kind_case() == Value::kListValue) {
      for (const Value& tag : tags->list_value().values()) {
        if (tag.kind_case() != Value::kStringValue) {
          return InvalidFieldError(where, "must be a list of strings or a comma-separated string");
        }
        selector.tags.push_back(tag.string_value());
      }
    } else {
      return InvalidFieldError(where, "must be a list of strings or a comma-separated string");
    }
  }
  for (const auto& part : request.message().parts()) {
    std::string type = part.media_type();
    if (type.empty()) {
      if (part.has_text()) {
        type = "text/plain";
      } else if (part.has_data()) {
        type = "application/json";
      }
    }
    if (!type.empty() &&
        std::find(selector.input_media_types.begin(), selector.input_media_types.end(), type) ==
            selector.input_media_types.end()) {
      selector.input_media_types.push_back(type);
    }
  }
  for (const std::string& mode : request.configuration().accepted_output_modes()) {
    selector.accepted_output_modes.push_back(mode);
  }
  if (selector.agent_id.empty() && selector.skill.empty() && selector.tags.empty() &&
      !default_skill.empty()) {
    selector.skill = std::string(default_skill);
    selector.default_skill = true;
  }
  return selector;
}

}  // namespace a2amesh::routing
