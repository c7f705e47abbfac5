#include "a2a/legacy_v03.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/json_depth.h"
#include "google/protobuf/util/json_util.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace a2amesh::a2a::legacy {
namespace {

using rapidjson::StringRef;
using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// Deeper than any A2A object; checked before rapidjson's recursive parser.
constexpr int kMaxDepth = 64;

const Value* Member(const Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

absl::string_view String(const Value* value) {
  return value != nullptr && value->IsString()
             ? absl::string_view(value->GetString(), value->GetStringLength())
             : absl::string_view();
}

// Copies `from`'s member `name` (if any) into `to` as `to_name`.
void Copy(const Value& from, const char* name, Value& to, Allocator& a,
          const char* to_name = nullptr) {
  if (const Value* value = Member(from, name)) {
    to.AddMember(StringRef(to_name != nullptr ? to_name : name), Value(*value, a), a);
  }
}

void Set(Value& to, const char* name, absl::string_view text, Allocator& a) {
  // (An empty view may hold no pointer; rapidjson copies from it regardless.)
  to.AddMember(StringRef(name),
               Value(text.empty() ? "" : text.data(), static_cast<unsigned>(text.size()), a), a);
}

absl::Status Invalid(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

std::string Write(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::Status Parse(absl::string_view json, rapidjson::Document* doc) {
  if (JsonNestsDeeperThan(json, kMaxDepth)) {
    return absl::InvalidArgumentError(absl::StrCat("nests deeper than ", kMaxDepth, " levels"));
  }
  doc->Parse(json.data(), json.size());
  if (doc->HasParseError() || !doc->IsObject()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  return absl::OkStatus();
}

template <typename ProtoMessage>
absl::StatusOr<ProtoMessage> FromProtoJson(const std::string& json, absl::string_view what) {
  ProtoMessage message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (auto parsed = google::protobuf::util::JsonStringToMessage(json, &message, options);
      !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an A2A ", what, ": ", parsed.message().as_string()));
  }
  return message;
}

// ---- 0.3 -> v1.0 ----

absl::Status PartToV1(const Value& in, Value& out, Allocator& a, const std::string& path) {
  out.SetObject();
  const absl::string_view kind = String(Member(in, "kind"));
  if (kind == "text") {
    const Value* text = Member(in, "text");
    if (text == nullptr || !text->IsString()) return Invalid(path, "a text part with no text");
    Copy(in, "text", out, a);
  } else if (kind == "file") {
    const Value* file = Member(in, "file");
    if (file == nullptr || !file->IsObject()) return Invalid(path, "a file part with no file");
    if (Member(*file, "uri") != nullptr) {
      Copy(*file, "uri", out, a, "url");
    } else if (Member(*file, "bytes") != nullptr) {
      Copy(*file, "bytes", out, a, "raw");  // base64 in both
    } else {
      return Invalid(path, "a file part with neither uri nor bytes");
    }
    Copy(*file, "mimeType", out, a, "mediaType");
    Copy(*file, "name", out, a, "filename");
  } else if (kind == "data") {
    if (Member(in, "data") == nullptr) return Invalid(path, "a data part with no data");
    Copy(in, "data", out, a);
  } else {
    return Invalid(path, absl::StrCat("a part of kind \"", kind, "\" (0.3 has text, file, data)"));
  }
  Copy(in, "metadata", out, a);
  return absl::OkStatus();
}

absl::Status PartsToV1(const Value& in, Value& out, Allocator& a, const std::string& path) {
  const Value* parts = Member(in, "parts");
  if (parts == nullptr) return absl::OkStatus();
  if (!parts->IsArray()) return Invalid(path, "parts is not an array");
  Value translated(rapidjson::kArrayType);
  for (rapidjson::SizeType i = 0; i < parts->Size(); ++i) {
    Value part;
    if (absl::Status s = PartToV1((*parts)[i], part, a, absl::StrCat(path, ".parts[", i, "]"));
        !s.ok()) {
      return s;
    }
    translated.PushBack(std::move(part), a);
  }
  out.AddMember("parts", std::move(translated), a);
  return absl::OkStatus();
}

absl::Status MessageToV1(const Value& in, Value& out, Allocator& a, const std::string& path) {
  if (!in.IsObject()) return Invalid(path, "not an object");
  out.SetObject();
  for (const char* name :
       {"messageId", "contextId", "taskId", "metadata", "extensions", "referenceTaskIds"}) {
    Copy(in, name, out, a);
  }
  const absl::string_view role = String(Member(in, "role"));
  if (role == "user") {
    Set(out, "role", "ROLE_USER", a);
  } else if (role == "agent") {
    Set(out, "role", "ROLE_AGENT", a);
  } else {
    return Invalid(path, absl::StrCat("role \"", role, "\" is neither user nor agent"));
  }
  return PartsToV1(in, out, a, path);
}

absl::StatusOr<absl::string_view> StateToV1(absl::string_view state) {
  static constexpr std::pair<absl::string_view, absl::string_view> kStates[] = {
      {"submitted", "TASK_STATE_SUBMITTED"},
      {"working", "TASK_STATE_WORKING"},
      {"input-required", "TASK_STATE_INPUT_REQUIRED"},
      {"completed", "TASK_STATE_COMPLETED"},
      {"canceled", "TASK_STATE_CANCELED"},
      {"failed", "TASK_STATE_FAILED"},
      {"rejected", "TASK_STATE_REJECTED"},
      {"auth-required", "TASK_STATE_AUTH_REQUIRED"},
      {"unknown", "TASK_STATE_UNSPECIFIED"},
  };
  for (const auto& [v03, v1] : kStates) {
    if (state == v03) return v1;
  }
  return absl::InvalidArgumentError(absl::StrCat("state \"", state, "\" is not an A2A 0.3 state"));
}

absl::Status StatusToV1(const Value& in, Value& out, Allocator& a, const std::string& path) {
  if (!in.IsObject()) return Invalid(path, "not an object");
  out.SetObject();
  absl::StatusOr<absl::string_view> state = StateToV1(String(Member(in, "state")));
  if (!state.ok()) return Invalid(path, state.status().message());
  Set(out, "state", *state, a);
  if (const Value* message = Member(in, "message"); message != nullptr && !message->IsNull()) {
    Value translated;
    if (absl::Status s = MessageToV1(*message, translated, a, absl::StrCat(path, ".message"));
        !s.ok()) {
      return s;
    }
    out.AddMember("message", std::move(translated), a);
  }
  Copy(in, "timestamp", out, a);
  return absl::OkStatus();
}

absl::Status ArtifactToV1(const Value& in, Value& out, Allocator& a, const std::string& path) {
  if (!in.IsObject()) return Invalid(path, "not an object");
  out.SetObject();
  for (const char* name : {"artifactId", "name", "description", "metadata", "extensions"}) {
    Copy(in, name, out, a);
  }
  return PartsToV1(in, out, a, path);
}

// Each element of `in`'s array `name`, translated by `to_v1`.
template <typename Translate>
absl::Status ArrayToV1(const Value& in, const char* name, Value& out, Allocator& a,
                       const std::string& path, Translate to_v1) {
  const Value* items = Member(in, name);
  if (items == nullptr || items->IsNull()) return absl::OkStatus();
  if (!items->IsArray()) return Invalid(path, absl::StrCat(name, " is not an array"));
  Value translated(rapidjson::kArrayType);
  for (rapidjson::SizeType i = 0; i < items->Size(); ++i) {
    Value item;
    if (absl::Status s = to_v1((*items)[i], item, a, absl::StrCat(path, ".", name, "[", i, "]"));
        !s.ok()) {
      return s;
    }
    translated.PushBack(std::move(item), a);
  }
  out.AddMember(StringRef(name), std::move(translated), a);
  return absl::OkStatus();
}

absl::Status TaskToV1(const Value& in, Value& out, Allocator& a, const std::string& path) {
  out.SetObject();
  for (const char* name : {"id", "contextId", "metadata"}) Copy(in, name, out, a);
  const Value* status = Member(in, "status");
  if (status == nullptr) return Invalid(path, "a task with no status");
  Value translated;
  if (absl::Status s = StatusToV1(*status, translated, a, absl::StrCat(path, ".status")); !s.ok()) {
    return s;
  }
  out.AddMember("status", std::move(translated), a);
  if (absl::Status s = ArrayToV1(in, "artifacts", out, a, path, ArtifactToV1); !s.ok()) return s;
  return ArrayToV1(in, "history", out, a, path, MessageToV1);
}

// ---- v1.0 -> 0.3 ----

void PartToV03(const Value& in, Value& out, Allocator& a) {
  out.SetObject();
  if (Member(in, "text") != nullptr) {
    Set(out, "kind", "text", a);
    Copy(in, "text", out, a);
  } else if (Member(in, "url") != nullptr || Member(in, "raw") != nullptr) {
    Set(out, "kind", "file", a);
    Value file(rapidjson::kObjectType);
    Copy(in, "url", file, a, "uri");
    Copy(in, "raw", file, a, "bytes");
    Copy(in, "mediaType", file, a, "mimeType");
    Copy(in, "filename", file, a, "name");
    out.AddMember("file", std::move(file), a);
  } else {
    Set(out, "kind", "data", a);
    const Value* data = Member(in, "data");
    if (data != nullptr && data->IsObject()) {
      Copy(in, "data", out, a);
    } else {  // 0.3's data is an object: any other value is wrapped
      Value wrapped(rapidjson::kObjectType);
      wrapped.AddMember("value", data != nullptr ? Value(*data, a) : Value(), a);
      out.AddMember("data", std::move(wrapped), a);
    }
  }
  Copy(in, "metadata", out, a);
}

void MessageToV03(const Value& in, Value& out, Allocator& a) {
  out.SetObject();
  Set(out, "kind", "message", a);
  for (const char* name :
       {"messageId", "contextId", "taskId", "metadata", "extensions", "referenceTaskIds"}) {
    Copy(in, name, out, a);
  }
  Set(out, "role", String(Member(in, "role")) == "ROLE_AGENT" ? "agent" : "user", a);
  Value parts(rapidjson::kArrayType);
  if (const Value* in_parts = Member(in, "parts"); in_parts != nullptr && in_parts->IsArray()) {
    for (const Value& part : in_parts->GetArray()) {
      Value translated;
      PartToV03(part, translated, a);
      parts.PushBack(std::move(translated), a);
    }
  }
  out.AddMember("parts", std::move(parts), a);
}

}  // namespace

absl::StatusOr<lf::a2a::v1::AgentCard> ParseAgentCard(absl::string_view json) {
  rapidjson::Document in;
  if (absl::Status parsed = Parse(json, &in); !parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not an A2A agent card: ", parsed.message()));
  }
  if (Member(in, "supportedInterfaces") != nullptr || Member(in, "url") == nullptr) {
    return FromProtoJson<lf::a2a::v1::AgentCard>(std::string(json), "agent card");
  }
  // A 0.3 card.
  rapidjson::Document out(rapidjson::kObjectType);
  Allocator& a = out.GetAllocator();
  for (const char* name : {"name", "description", "version", "documentationUrl", "iconUrl",
                           "provider", "defaultInputModes", "defaultOutputModes"}) {
    Copy(in, name, out, a);
  }
  if (const Value* capabilities = Member(in, "capabilities")) {
    Value translated(rapidjson::kObjectType);
    for (const char* name : {"streaming", "pushNotifications", "extensions"}) {
      Copy(*capabilities, name, translated, a);
    }
    out.AddMember("capabilities", std::move(translated), a);
  }
  if (const Value* skills = Member(in, "skills"); skills != nullptr && skills->IsArray()) {
    Value translated(rapidjson::kArrayType);
    for (const Value& skill : skills->GetArray()) {
      Value one(rapidjson::kObjectType);
      for (const char* name :
           {"id", "name", "description", "tags", "examples", "inputModes", "outputModes"}) {
        Copy(skill, name, one, a);
      }
      translated.PushBack(std::move(one), a);
    }
    out.AddMember("skills", std::move(translated), a);
  }
  absl::string_view version = String(Member(in, "protocolVersion"));
  if (version.empty()) version = "0.3.0";  // cards before 0.3 named none
  if (!absl::StartsWith(version, "0.")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an A2A agent card: protocolVersion \"", version,
        "\" with a card-level url (a 1.0 card lists supportedInterfaces, each with its version)"));
  }
  Value interfaces(rapidjson::kArrayType);
  auto add = [&](absl::string_view url, absl::string_view binding) {
    if (url.empty() || binding.empty()) return;  // not one (validation says so if none is)
    for (const Value& listed : interfaces.GetArray()) {
      if (String(Member(listed, "url")) == url &&
          String(Member(listed, "protocolBinding")) == binding) {
        return;
      }
    }
    Value interface(rapidjson::kObjectType);
    Set(interface, "url", url, a);
    Set(interface, "protocolBinding", binding, a);
    Set(interface, "protocolVersion", version, a);
    interfaces.PushBack(std::move(interface), a);
  };
  // The card's url first: 0.3 calls its transport the preferred one.
  const absl::string_view preferred = String(Member(in, "preferredTransport"));
  add(String(Member(in, "url")), preferred.empty() ? "JSONRPC" : preferred);
  if (const Value* more = Member(in, "additionalInterfaces"); more != nullptr && more->IsArray()) {
    for (const Value& interface : more->GetArray()) {
      add(String(Member(interface, "url")), String(Member(interface, "transport")));
    }
  }
  out.AddMember("supportedInterfaces", std::move(interfaces), a);
  return FromProtoJson<lf::a2a::v1::AgentCard>(Write(out), "agent card (translated from 0.3)");
}

std::string MessageSendParams(const lf::a2a::v1::SendMessageRequest& request) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(request, &json);
  rapidjson::Document in;
  in.Parse(json.data(), json.size());
  rapidjson::Document out(rapidjson::kObjectType);
  Allocator& a = out.GetAllocator();
  Value message;
  const Value none(rapidjson::kObjectType);
  const Value* in_message = Member(in, "message");
  MessageToV03(in_message != nullptr ? *in_message : none, message, a);
  out.AddMember("message", std::move(message), a);
  Value configuration(rapidjson::kObjectType);
  bool blocking = true;
  if (const Value* config = Member(in, "configuration")) {
    Copy(*config, "acceptedOutputModes", configuration, a);
    Copy(*config, "historyLength", configuration, a);
    // v1.0's returnImmediately is 0.3's blocking, the other way round.
    if (const Value* now = Member(*config, "returnImmediately"); now != nullptr && now->IsBool()) {
      blocking = !now->GetBool();
    }
  }
  configuration.AddMember("blocking", blocking, a);
  out.AddMember("configuration", std::move(configuration), a);
  Copy(in, "metadata", out, a);
  return Write(out);
}

absl::StatusOr<lf::a2a::v1::StreamResponse> ParseResult(absl::string_view json) {
  rapidjson::Document in;
  if (absl::Status parsed = Parse(json, &in); !parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("an A2A 0.3 result: ", parsed.message()));
  }
  rapidjson::Document out(rapidjson::kObjectType);
  Allocator& a = out.GetAllocator();
  const absl::string_view kind = String(Member(in, "kind"));
  Value event(rapidjson::kObjectType);
  absl::Status translated;
  const char* member = nullptr;
  if (kind == "task") {
    member = "task";
    translated = TaskToV1(in, event, a, "task");
  } else if (kind == "message") {
    member = "message";
    translated = MessageToV1(in, event, a, "message");
  } else if (kind == "status-update") {
    member = "statusUpdate";
    for (const char* name : {"taskId", "contextId", "metadata"}) Copy(in, name, event, a);
    const Value* status = Member(in, "status");
    Value v1;
    translated = status == nullptr ? Invalid("status-update", "no status")
                                   : StatusToV1(*status, v1, a, "status-update.status");
    if (translated.ok()) event.AddMember("status", std::move(v1), a);
  } else if (kind == "artifact-update") {
    member = "artifactUpdate";
    for (const char* name : {"taskId", "contextId", "append", "lastChunk", "metadata"}) {
      Copy(in, name, event, a);
    }
    const Value* artifact = Member(in, "artifact");
    Value v1;
    translated = artifact == nullptr ? Invalid("artifact-update", "no artifact")
                                     : ArtifactToV1(*artifact, v1, a, "artifact-update.artifact");
    if (translated.ok()) event.AddMember("artifact", std::move(v1), a);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("an A2A 0.3 result of kind \"", kind,
                     "\" (0.3 answers with a task, message, status-update or artifact-update)"));
  }
  if (!translated.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("an A2A 0.3 result: ", translated.message()));
  }
  out.AddMember(StringRef(member), std::move(event), a);
  return FromProtoJson<lf::a2a::v1::StreamResponse>(Write(out), "event (translated from 0.3)");
}

}  // namespace a2amesh::a2a::legacy
