#include "a2a/rest_routes.h"

#include <cstring>
#include <memory>
#include <utility>

#include "a2a/proto_json.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/a2a_error.h"
#include "google/protobuf/descriptor.h"
#include "http/url.h"

namespace a2amesh::a2a {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::optional<RestRoute> MatchRestRoute(const std::vector<std::string>& segments,
                                        const std::string& verb, bool* wrong_verb,
                                        std::vector<const char*>* allowed) {
  std::vector<RestRoute> candidates;
  const size_t n = segments.size();
  if (n == 1 && segments[0] == "message:send") {
    candidates.push_back({"SendMessage", {"POST"}, true});
  } else if (n == 1 && segments[0] == "message:stream") {
    candidates.push_back({"SendStreamingMessage", {"POST"}, true});
  } else if (n == 1 && segments[0] == "tasks") {
    candidates.push_back({"ListTasks", {"GET"}, false});
  } else if (n == 1 && segments[0] == "extendedAgentCard") {
    candidates.push_back({"GetExtendedAgentCard", {"GET"}, false});
  } else if (n == 2 && segments[0] == "tasks") {
    const std::string& last = segments[1];
    if (absl::EndsWith(last, ":cancel")) {
      candidates.push_back(
          {"CancelTask", {"POST"}, true, last.substr(0, last.size() - strlen(":cancel"))});
    } else if (absl::EndsWith(last, ":subscribe")) {
      candidates.push_back({"SubscribeToTask",
                            {"GET", "POST"},
                            false,
                            last.substr(0, last.size() - strlen(":subscribe"))});
    } else {
      candidates.push_back({"GetTask", {"GET"}, false, last});
    }
  } else if (n == 3 && segments[0] == "tasks" && segments[2] == "pushNotificationConfigs") {
    candidates.push_back(
        {"CreateTaskPushNotificationConfig", {"POST"}, true, segments[1], "", "task_id"});
    candidates.push_back(
        {"ListTaskPushNotificationConfigs", {"GET"}, false, segments[1], "", "task_id"});
  } else if (n == 4 && segments[0] == "tasks" && segments[2] == "pushNotificationConfigs") {
    candidates.push_back(
        {"GetTaskPushNotificationConfig", {"GET"}, false, segments[1], segments[3], "task_id"});
    candidates.push_back({"DeleteTaskPushNotificationConfig",
                          {"DELETE"},
                          false,
                          segments[1],
                          segments[3],
                          "task_id"});
  }
  for (const RestRoute& route : candidates) {
    for (const char* allowed_verb : route.verbs) {
      if (verb == allowed_verb || (verb == "HEAD" && std::string(allowed_verb) == "GET")) {
        return route;
      }
      allowed->push_back(allowed_verb);
    }
  }
  *wrong_verb = !candidates.empty();
  return std::nullopt;
}

const char* RestPattern(absl::string_view method) {
  static constexpr std::pair<const char*, const char*> kPatterns[] = {
      {"SendMessage", "/message:send"},
      {"SendStreamingMessage", "/message:stream"},
      {"ListTasks", "/tasks"},
      {"GetExtendedAgentCard", "/extendedAgentCard"},
      {"CancelTask", "/tasks/{id}:cancel"},
      {"SubscribeToTask", "/tasks/{id}:subscribe"},
      {"GetTask", "/tasks/{id}"},
      {"CreateTaskPushNotificationConfig", "/tasks/{task_id}/pushNotificationConfigs"},
      {"ListTaskPushNotificationConfigs", "/tasks/{task_id}/pushNotificationConfigs"},
      {"GetTaskPushNotificationConfig", "/tasks/{task_id}/pushNotificationConfigs/{config_id}"},
      {"DeleteTaskPushNotificationConfig", "/tasks/{task_id}/pushNotificationConfigs/{config_id}"},
  };
  for (const auto& [name, pattern] : kPatterns) {
    if (method == name) return pattern;
  }
  return "";
}

absl::Status ApplyQuery(absl::string_view query, Message* message) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> params = http::ParseQuery(query);
  if (!params.ok()) return params.status();
  const Descriptor* type = message->GetDescriptor();
  for (const auto& [key, value] : *params) {
    const FieldDescriptor* field = type->FindFieldByName(key);
    for (int i = 0; field == nullptr && i < type->field_count(); ++i) {
      if (type->field(i)->json_name() == key) field = type->field(i);
    }
    if (field == nullptr || field->name() == "tenant") {
      continue;
    }
    std::string json;
    if (field->is_repeated()) {
      std::vector<std::string> items;
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        items.push_back(JsonString(item));
      }
      json = absl::StrCat("{\"", field->json_name(), "\":[", absl::StrJoin(items, ","), "]}");
    } else if (field->type() == FieldDescriptor::TYPE_BOOL) {
      if (value != "true" && value != "false") {
        return InvalidFieldError(key, absl::StrCat("must be true or false, not '", value, "'"));
      }
      json = absl::StrCat("{\"", field->json_name(), "\":", value, "}");
    } else {
      json = absl::StrCat("{\"", field->json_name(), "\":", JsonString(value), "}");
    }
    std::unique_ptr<Message> part(message->New());
    if (auto status = google::protobuf::util::JsonStringToMessage(json, part.get()); !status.ok()) {
      return InvalidFieldError(
          key, absl::StrCat("'", value, "' is not valid: ", status.message().ToString()));
    }
    message->MergeFrom(*part);
  }
  return absl::OkStatus();
}

void SetStringField(Message* message, const std::string& name, const std::string& value) {
  const FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(name);
  if (field != nullptr && field->type() == FieldDescriptor::TYPE_STRING && !field->is_repeated()) {
    message->GetReflection()->SetString(message, field, value);
  }
}

}  // namespace a2amesh::a2a
