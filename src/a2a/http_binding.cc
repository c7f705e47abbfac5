#include "a2a/http_binding.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/a2a_error.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "rpc/grpc_status.h"

namespace a2amesh::a2a {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;

struct HttpBinding::Method {
  std::string name;  // "SendMessage"
  std::string path;  // "/lf.a2a.v1.A2AService/SendMessage"
  const Descriptor* input = nullptr;
  const Descriptor* output = nullptr;
  bool streaming = false;
};

namespace {

constexpr char kJsonType[] = "application/json";
constexpr char kA2aJsonType[] = "application/a2a+json";
// JSON-RPC 2.0's own error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;

std::unique_ptr<Message> NewMessage(const Descriptor* type) {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

JsonParseOptions ParseOptions() {
  JsonParseOptions options;
  options.ignore_unknown_fields = true;  // the spec: parsers SHOULD ignore unknown fields
  return options;
}

std::string ToJson(const Message& message, bool print_defaults = false) {
  JsonPrintOptions options;
  options.always_print_primitive_fields = print_defaults;
  std::string json;
  if (!MessageToJsonString(message, &json, options).ok()) {
    return "{}";
  }
  return json;
}

// `text` as a JSON string literal.
std::string JsonString(absl::string_view text) {
  google::protobuf::Value value;
  value.set_string_value(std::string(text));
  return ToJson(value);
}

// The response JSON of a call. The spec wants ListTasksResponse's REQUIRED
// fields present even when empty (nextPageToken "" on the last page), which
// the default ProtoJSON printing would omit; the tasks keep default printing.
std::string ResultJson(const Message& result) {
  if (result.GetDescriptor() == lf::a2a::v1::ListTasksResponse::descriptor()) {
    const auto& list = static_cast<const lf::a2a::v1::ListTasksResponse&>(result);
    std::string json = "{\"tasks\":[";
    for (int i = 0; i < list.tasks_size(); ++i) {
      absl::StrAppend(&json, i > 0 ? "," : "", ToJson(list.tasks(i)));
    }
    absl::StrAppend(&json, "],\"nextPageToken\":", JsonString(list.next_page_token()),
                    ",\"pageSize\":", list.page_size(), ",\"totalSize\":", list.total_size(), "}");
    return json;
  }
  if (result.GetDescriptor() == lf::a2a::v1::AgentCard::descriptor()) {
    return ToJson(result, /*print_defaults=*/true);
  }
  return ToJson(result);
}

// An error as the bindings show it: the status, and its google.rpc details
// (ErrorInfo for A2A errors, BadRequest for invalid fields) as ProtoJSON Any.
struct Error {
  absl::Status status;
  std::vector<std::string> details;
};

Error ErrorFrom(const grpc::Status& status) {
  Error error{rpc::FromGrpcStatus(status), {}};
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      std::string json;
      if (MessageToJsonString(any, &json).ok()) {
        error.details.push_back(std::move(json));
      }
    }
  }
  return error;
}

Error ErrorFrom(const absl::Status& status) { return ErrorFrom(rpc::ToGrpcStatus(status)); }

// The v1.0.1 HTTP mapping: A2A errors by name, the rest by gRPC code.
int HttpStatusFor(const absl::Status& status) {
  if (std::optional<A2aError> error = GetA2aError(status)) {
    switch (*error) {
      case A2aError::kTaskNotFound:
        return 404;
      case A2aError::kInvalidAgentResponse:
        return 500;
      default:
        return 400;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

int JsonRpcCodeFor(const absl::Status& status) {
  if (std::optional<A2aError> error = GetA2aError(status)) {
    return A2aErrorJsonRpcCode(*error);
  }
  return status.code() == absl::StatusCode::kInvalidArgument ? kInvalidParams : kInternalError;
}

std::string RestErrorJson(const Error& error, int http_status) {
  std::string json =
      absl::StrCat("{\"error\":{\"code\":", http_status,
                   ",\"status\":", JsonString(absl::StatusCodeToString(error.status.code())),
                   ",\"message\":", JsonString(error.status.message()));
  if (!error.details.empty()) {
    absl::StrAppend(&json, ",\"details\":[", absl::StrJoin(error.details, ","), "]");
  }
  json += "}}";
  return json;
}

std::string JsonRpcErrorJson(const std::string& id, int code, absl::string_view message,
                             const std::vector<std::string>& details = {}) {
  std::string json = absl::StrCat("{\"jsonrpc\":\"2.0\",\"id\":", id, ",\"error\":{\"code\":", code,
                                  ",\"message\":", JsonString(message));
  if (!details.empty()) {
    absl::StrAppend(&json, ",\"data\":[", absl::StrJoin(details, ","), "]");
  }
  json += "}}";
  return json;
}

http::Response JsonResponse(int status, const char* content_type, std::string body) {
  http::Response response;
  response.status = status;
  response.content_type = content_type;
  response.body = std::move(body);
  return response;
}

http::Response JsonRpcError(const std::string& id, int code, absl::string_view message) {
  return JsonResponse(200, kJsonType, JsonRpcErrorJson(id, code, message));
}

// `status` as a REST error; `http_status` overrides the mapped one (405, 415).
http::Response RestError(const absl::Status& status, int http_status = 0) {
  if (http_status == 0) http_status = HttpStatusFor(status);
  return JsonResponse(http_status, kA2aJsonType, RestErrorJson(ErrorFrom(status), http_status));
}

http::Response SseHead() {
  http::Response head;
  head.content_type = "text/event-stream";
  head.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  return head;
}

// Whether a request body may be taken as JSON: no Content-Type, or a JSON one.
bool JsonContent(const http::Request& request) {
  const std::string* type = request.Header("content-type");
  if (type == nullptr) {
    return true;
  }
  std::string media = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(*type).substr(0, type->find(';'))));
  return media == kJsonType || media == kA2aJsonType;
}

std::optional<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      int value = 0;
      if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
          !absl::ascii_isxdigit(in[i + 2])) {
        return std::nullopt;
      }
      if (!absl::SimpleHexAtoi(in.substr(i + 1, 2), &value)) return std::nullopt;
      out.push_back(static_cast<char>(value));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// The query string's parameters, decoded.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, '=');
    std::optional<std::string> key = PercentDecode(kv.first);
    std::optional<std::string> value = PercentDecode(kv.second);
    if (!key || !value) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter '", pair, "' is not percent-encoded correctly"));
    }
    params.emplace_back(*std::move(key), *std::move(value));
  }
  return params;
}

// A request message from query parameters (camelCase or snake_case names;
// repeated values repeated or comma-separated; enums by name; timestamps in
// RFC 3339). Parameters that name no field (e.g. A2A-Version) are ignored.
absl::Status ApplyQuery(absl::string_view query, Message* message) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> params = ParseQuery(query);
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
    if (auto status = JsonStringToMessage(json, part.get()); !status.ok()) {
      return InvalidFieldError(
          key, absl::StrCat("'", value, "' is not valid: ", status.message().ToString()));
    }
    message->MergeFrom(*part);
  }
  return absl::OkStatus();
}

void SetString(Message* message, const std::string& name, const std::string& value) {
  const FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(name);
  if (field != nullptr && field->type() == FieldDescriptor::TYPE_STRING && !field->is_repeated()) {
    message->GetReflection()->SetString(message, field, value);
  }
}

// FNV-1a: a stable content hash for ETags.
uint64_t Fnv1a(absl::string_view data) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : data) {
    hash = (hash ^ c) * 1099511628211ull;
  }
  return hash;
}

}  // namespace

// How one binding shapes results, errors and stream events.
class HttpBinding::Framing {
 public:
  virtual ~Framing() = default;
  virtual http::Response Result(const Message& result) const = 0;
  virtual http::Response Failure(const grpc::Status& status) const = 0;
  virtual std::string Event(const Message& event) const = 0;
  virtual std::string FailureEvent(const grpc::Status& status) const = 0;
};

namespace {

class JsonRpcFraming final : public HttpBinding::Framing {
 public:
  explicit JsonRpcFraming(std::string id) : id_(std::move(id)) {}

  http::Response Result(const Message& result) const override {
    return JsonResponse(200, kJsonType, Envelope(ResultJson(result)));
  }
  http::Response Failure(const grpc::Status& status) const override {
    return JsonResponse(200, kJsonType, ErrorJson(status));
  }
  std::string Event(const Message& event) const override {
    return absl::StrCat("data: ", Envelope(ToJson(event)), "\n\n");
  }
  std::string FailureEvent(const grpc::Status& status) const override {
    return absl::StrCat("event: error\ndata: ", ErrorJson(status), "\n\n");
  }

 private:
  std::string Envelope(const std::string& result) const {
    return absl::StrCat("{\"jsonrpc\":\"2.0\",\"id\":", id_, ",\"result\":", result, "}");
  }
  std::string ErrorJson(const grpc::Status& status) const {
    Error error = ErrorFrom(status);
    return JsonRpcErrorJson(id_, JsonRpcCodeFor(error.status), error.status.message(),
                            error.details);
  }

  const std::string id_;  // as JSON
};

class RestFraming final : public HttpBinding::Framing {
 public:
  http::Response Result(const Message& result) const override {
    return JsonResponse(200, kA2aJsonType, ResultJson(result));
  }
  http::Response Failure(const grpc::Status& status) const override {
    Error error = ErrorFrom(status);
    const int http_status = HttpStatusFor(error.status);
    return JsonResponse(http_status, kA2aJsonType, RestErrorJson(error, http_status));
  }
  std::string Event(const Message& event) const override {
    return absl::StrCat("data: ", ToJson(event), "\n\n");
  }
  std::string FailureEvent(const grpc::Status& status) const override {
    Error error = ErrorFrom(status);
    return absl::StrCat("event: error\ndata: ", RestErrorJson(error, HttpStatusFor(error.status)),
                        "\n\n");
  }
};

// The service parameters of an HTTP request, as the gRPC binding carries them.
void CopyServiceParameters(const http::Request& request, grpc::ClientContext* context) {
  const std::string* version = request.Header("a2a-version");
  if (version != nullptr) {
    context->AddMetadata("a2a-version", *version);
  } else if (absl::StatusOr<std::vector<std::pair<std::string, std::string>>> query =
                 ParseQuery(request.query);
             query.ok()) {
    // Spec §3.6.1 also allows the version as a query parameter.
    for (const auto& [key, value] : *query) {
      if (absl::EqualsIgnoreCase(key, "A2A-Version")) {
        context->AddMetadata("a2a-version", value);
        break;
      }
    }
  }
  for (const char* name : {"a2a-extensions", "authorization"}) {
    if (const std::string* value = request.Header(name)) {
      context->AddMetadata(name, *value);
    }
  }
}

bool Serialize(const Message& message, grpc::ByteBuffer* buffer) {
  bool own = false;
  return grpc::SerializationTraits<Message>::Serialize(message, buffer, &own).ok();
}

bool Deserialize(grpc::ByteBuffer* buffer, Message* message) {
  return grpc::SerializationTraits<Message>::Deserialize(buffer, message).ok();
}

}  // namespace

// A unary call; lives until its completion callback has answered.
class HttpBinding::UnaryCall {
 public:
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

// A streaming call relayed as server-sent events. Reads one event at a time
// and asks for the next once the previous one is on the client's socket, so a
// slow HTTP client slows the stream down (the gRPC side cuts it off if it
// falls too far behind, as for a gRPC client). Deletes itself in OnDone.
class HttpBinding::StreamCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCall(std::shared_ptr<http::Exchange> exchange, std::shared_ptr<Framing> framing,
             const Method& method)
      : exchange_(std::move(exchange)),
        framing_(std::move(framing)),
        method_(method),
        context_(std::make_shared<grpc::ClientContext>()) {}

  void Start(grpc::GenericStub& stub, grpc::ByteBuffer request) {
    request_ = std::move(request);
    CopyServiceParameters(exchange_->request(), context_.get());
    exchange_->OnClientGone([context = std::weak_ptr<grpc::ClientContext>(context_)] {
      if (auto live = context.lock()) live->TryCancel();
    });
    stub.PrepareBidiStreamingCall(context_.get(), method_.path, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    // The read flow continues from write callbacks, outside reactions.
    AddHold();
    StartRead(&event_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();
      return;
    }
    std::unique_ptr<Message> event = NewMessage(method_.output);
    if (!Deserialize(&event_, event.get())) {
      context_->TryCancel();
      RemoveHold();
      return;
    }
    if (!started_) {
      started_ = true;
      exchange_->StartStream(SseHead());
    }
    exchange_->Write(framing_->Event(*event), [this](bool written) {
      if (written) {
        StartRead(&event_);
      } else {
        context_->TryCancel();  // the client has gone
        RemoveHold();
      }
    });
  }

  void OnDone(const grpc::Status& status) override {
    if (!started_) {
      // An error before the first event is a plain error response, not SSE.
      if (!status.ok()) {
        exchange_->Respond(framing_->Failure(status));
      } else {
        exchange_->StartStream(SseHead());
        exchange_->End();
      }
    } else {
      if (!status.ok()) {
        exchange_->Write(framing_->FailureEvent(status), nullptr);
      }
      exchange_->End();
    }
    delete this;
  }

 private:
  const std::shared_ptr<http::Exchange> exchange_;
  const std::shared_ptr<Framing> framing_;
  const Method& method_;
  // Shared with the client-gone callback, which may outlive the call.
  const std::shared_ptr<grpc::ClientContext> context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer event_;
  bool started_ = false;
};

HttpBinding::HttpBinding(HttpBindingOptions options, std::shared_ptr<grpc::Channel> a2a_channel,
                         const CardSource& cards)
    : options_(std::move(options)), stub_(std::move(a2a_channel)), cards_(cards) {
  const google::protobuf::ServiceDescriptor* a2a =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("lf.a2a.v1.A2AService");
  for (int i = 0; i < a2a->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = a2a->method(i);
    auto method = std::make_unique<Method>();
    method->name = m->name();
    method->path = absl::StrCat("/", a2a->full_name(), "/", m->name());
    method->input = m->input_type();
    method->output = m->output_type();
    method->streaming = m->server_streaming();
    methods_[method->name] = std::move(method);
  }
}

HttpBinding::~HttpBinding() = default;

void HttpBinding::Invoke(const std::shared_ptr<http::Exchange>& exchange, const Method& method,
                         std::unique_ptr<Message> request, std::shared_ptr<Framing> framing) {
  grpc::ByteBuffer buffer;
  if (!Serialize(*request, &buffer)) {
    exchange->Respond(
        framing->Failure(grpc::Status(grpc::StatusCode::INTERNAL, "cannot serialize the request")));
    return;
  }
  if (method.streaming) {
    (new StreamCall(exchange, std::move(framing), method))->Start(stub_, std::move(buffer));
    return;
  }
  auto call = std::make_shared<UnaryCall>();
  call->request = std::move(buffer);
  CopyServiceParameters(exchange->request(), &call->context);
  exchange->OnClientGone([weak = std::weak_ptr<UnaryCall>(call)] {
    if (auto live = weak.lock()) live->context.TryCancel();
  });
  UnaryCall* raw = call.get();
  stub_.UnaryCall(&raw->context, method.path, grpc::StubOptions(), &raw->request, &raw->response,
                  [call = std::move(call), exchange, framing = std::move(framing),
                   &method](grpc::Status status) {
                    if (!status.ok()) {
                      exchange->Respond(framing->Failure(status));
                      return;
                    }
                    std::unique_ptr<Message> response = NewMessage(method.output);
                    if (!Deserialize(&call->response, response.get())) {
                      exchange->Respond(framing->Failure(grpc::Status(
                          grpc::StatusCode::INTERNAL, "cannot parse the service's response")));
                      return;
                    }
                    exchange->Respond(framing->Result(*response));
                  });
}

void HttpBinding::Handle(std::shared_ptr<http::Exchange> exchange) {
  const http::Request& request = exchange->request();
  const std::string& path = request.path;
  if (path == kJsonRpcPath) {
    return ServeJsonRpc(exchange);
  }
  if (path == kRestPath || absl::StartsWith(path, absl::StrCat(kRestPath, "/"))) {
    return ServeRest(exchange, path.substr(sizeof(kRestPath) - 1));
  }
  if (path == kAgentCardPath) {
    return ServeCard(exchange, "");
  }
  if (absl::StartsWith(path, kAgentsPath) && absl::EndsWith(path, kAgentCardPath)) {
    absl::string_view tenant = absl::string_view(path).substr(
        sizeof(kAgentsPath) - 1, path.size() - (sizeof(kAgentsPath) - 1) - strlen(kAgentCardPath));
    std::optional<std::string> decoded = PercentDecode(tenant);
    if (decoded.has_value() && !decoded->empty() && !absl::StrContains(*decoded, '/')) {
      return ServeCard(exchange, *decoded);
    }
  }
  exchange->Respond(RestError(absl::NotFoundError(
      absl::StrCat("nothing is served at ", path, "; A2A is at ", kJsonRpcPath, " (JSON-RPC), ",
                   kRestPath, " (HTTP+JSON) and ", kAgentCardPath))));
}

// --- Agent cards -------------------------------------------------------------

std::vector<lf::a2a::v1::AgentInterface> HttpBinding::Interfaces(const http::Request& request,
                                                                 const std::string& tenant) const {
  const std::string* host_header = request.Header("host");
  const std::string host =
      host_header != nullptr && !host_header->empty() ? *host_header : "localhost";
  std::string base = options_.public_http_url;
  if (base.empty()) {
    base = absl::StrCat("http://", host);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string grpc_url = options_.public_grpc_url;
  if (grpc_url.empty()) {
    std::string name = host.substr(0, host.front() == '[' ? host.find(']') + 1 : host.find(':'));
    grpc_url = absl::StrCat(name, ":", options_.grpc_port);
  }
  std::vector<lf::a2a::v1::AgentInterface> interfaces(3);
  interfaces[0].set_url(base + kJsonRpcPath);
  interfaces[0].set_protocol_binding("JSONRPC");
  interfaces[1].set_url(base + kRestPath);
  interfaces[1].set_protocol_binding("HTTP+JSON");
  interfaces[2].set_url(grpc_url);
  interfaces[2].set_protocol_binding("GRPC");
  for (auto& interface : interfaces) {
    interface.set_tenant(tenant);
    interface.set_protocol_version("1.0");
  }
  return interfaces;
}

lf::a2a::v1::AgentCard HttpBinding::MeshCard(const http::Request& request) const {
  lf::a2a::v1::AgentCard card;
  card.set_name(absl::StrCat("a2a-mesh node ", options_.node_id));
  card.set_description(
      "An a2a-mesh node: it routes each task to an agent of the mesh that declared the skill "
      "the task needs (metadata \"a2amesh/skill\"), or to the agent named by the tenant.");
  card.set_version(options_.version);
  card.mutable_capabilities()->set_streaming(true);
  card.mutable_capabilities()->set_push_notifications(options_.push_notifications);
  card.mutable_capabilities()->set_extended_agent_card(false);
  absl::flat_hash_map<std::string, lf::a2a::v1::AgentSkill*> skills;
  std::vector<std::string> input_modes;
  std::vector<std::string> output_modes;
  auto add_modes = [](std::vector<std::string>& modes, const auto& more) {
    for (const std::string& mode : more) {
      if (std::find(modes.begin(), modes.end(), mode) == modes.end()) modes.push_back(mode);
    }
  };
  for (const auto& [tenant, agent] : cards_.Agents()) {
    add_modes(input_modes, agent.default_input_modes());
    add_modes(output_modes, agent.default_output_modes());
    for (const lf::a2a::v1::AgentSkill& skill : agent.skills()) {
      auto [it, added] = skills.try_emplace(skill.id(), nullptr);
      if (added) {
        it->second = card.add_skills();
        *it->second = skill;
        continue;
      }
      std::vector<std::string> tags(it->second->tags().begin(), it->second->tags().end());
      add_modes(tags, skill.tags());
      it->second->clear_tags();
      for (const std::string& tag : tags) it->second->add_tags(tag);
    }
  }
  std::sort(card.mutable_skills()->begin(), card.mutable_skills()->end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  if (input_modes.empty()) input_modes.push_back("text/plain");
  if (output_modes.empty()) output_modes.push_back("text/plain");
  for (const std::string& mode : input_modes) card.add_default_input_modes(mode);
  for (const std::string& mode : output_modes) card.add_default_output_modes(mode);
  for (auto& interface : Interfaces(request, "")) {
    *card.add_supported_interfaces() = std::move(interface);
  }
  return card;
}

void HttpBinding::ServeCard(const std::shared_ptr<http::Exchange>& exchange,
                            const std::string& tenant) {
  const http::Request& request = exchange->request();
  if (request.method != "GET" && request.method != "HEAD") {
    http::Response response = RestError(absl::InvalidArgumentError(absl::StrCat(
                                            "agent cards are read with GET, not ", request.method)),
                                        405);
    response.headers.emplace_back("Allow", "GET, HEAD");
    return exchange->Respond(std::move(response));
  }
  lf::a2a::v1::AgentCard card;
  if (tenant.empty()) {
    card = MeshCard(request);
  } else {
    std::optional<lf::a2a::v1::AgentCard> found = cards_.Find(tenant);
    if (!found.has_value()) {
      return exchange->Respond(RestError(
          absl::NotFoundError(absl::StrCat("no agent '", tenant, "' is registered in the mesh"))));
    }
    card = *std::move(found);
    card.clear_supported_interfaces();
    for (auto& interface : Interfaces(request, tenant)) {
      *card.add_supported_interfaces() = std::move(interface);
    }
    // Whatever the agent declared, the node streams and (if enabled) pushes.
    card.mutable_capabilities()->set_streaming(true);
    card.mutable_capabilities()->set_push_notifications(options_.push_notifications);
    card.mutable_capabilities()->set_extended_agent_card(false);
  }
  http::Response response = JsonResponse(200, kJsonType, ResultJson(card));
  const std::string etag =
      absl::StrCat("W/\"", absl::Hex(Fnv1a(response.body), absl::kZeroPad16), "\"");
  response.headers = {{"ETag", etag},
                      {"Cache-Control", absl::StrCat("public, max-age=",
                                                     absl::ToInt64Seconds(options_.card_max_age))}};
  if (const std::string* match = request.Header("if-none-match")) {
    for (absl::string_view candidate : absl::StrSplit(*match, ',')) {
      candidate = absl::StripAsciiWhitespace(candidate);
      if (candidate == "*" || candidate == etag || absl::StrCat("W/", candidate) == etag) {
        response.status = 304;
        response.body.clear();
        break;
      }
    }
  }
  exchange->Respond(std::move(response));
}

// --- JSON-RPC 2.0 ------------------------------------------------------------

void HttpBinding::ServeJsonRpc(const std::shared_ptr<http::Exchange>& exchange) {
  const http::Request& request = exchange->request();
  if (request.method != "POST") {
    http::Response response =
        JsonRpcError("null", kInvalidRequest,
                     absl::StrCat("JSON-RPC requests are POSTed, not sent with ", request.method));
    response.status = 405;
    response.headers.emplace_back("Allow", "POST");
    return exchange->Respond(std::move(response));
  }
  if (!JsonContent(request)) {
    http::Response response =
        JsonRpcError("null", kInvalidRequest,
                     absl::StrCat("Content-Type must be application/json, not ",
                                  *request.Header("content-type")));
    response.status = 415;
    return exchange->Respond(std::move(response));
  }
  google::protobuf::Struct envelope;
  if (!JsonStringToMessage(request.body, &envelope, ParseOptions()).ok()) {
    google::protobuf::Value json;
    if (auto status = JsonStringToMessage(request.body, &json); !status.ok()) {
      return exchange->Respond(JsonRpcError(
          "null", kParseError,
          absl::StrCat("Parse error: the body is not JSON: ", status.message().ToString())));
    }
    return exchange->Respond(JsonRpcError(
        "null", kInvalidRequest,
        json.kind_case() == google::protobuf::Value::kListValue
            ? "Invalid Request: batch requests are not supported; send one request per POST"
            : "Invalid Request: the body must be a JSON-RPC 2.0 request object"));
  }
  const auto& fields = envelope.fields();
  std::string id = "null";
  if (auto it = fields.find("id"); it != fields.end()) {
    const google::protobuf::Value& value = it->second;
    if (value.kind_case() != google::protobuf::Value::kStringValue &&
        value.kind_case() != google::protobuf::Value::kNumberValue &&
        value.kind_case() != google::protobuf::Value::kNullValue) {
      return exchange->Respond(JsonRpcError(
          "null", kInvalidRequest, "Invalid Request: id must be a string, a number or null"));
    }
    id = ToJson(value);
  }
  auto jsonrpc = fields.find("jsonrpc");
  if (jsonrpc == fields.end() || jsonrpc->second.string_value() != "2.0") {
    return exchange->Respond(
        JsonRpcError(id, kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\""));
  }
  auto method_field = fields.find("method");
  if (method_field == fields.end() ||
      method_field->second.kind_case() != google::protobuf::Value::kStringValue ||
      method_field->second.string_value().empty()) {
    return exchange->Respond(JsonRpcError(
        id, kInvalidRequest, "Invalid Request: \"method\" must be a non-empty string"));
  }
  const std::string& name = method_field->second.string_value();
  auto method = methods_.find(name);
  if (method == methods_.end()) {
    return exchange->Respond(JsonRpcError(
        id, kMethodNotFound,
        absl::StrCat("Method not found: '", name,
                     "'. A2A v1.0 methods are SendMessage, SendStreamingMessage, GetTask, "
                     "ListTasks, CancelTask, SubscribeToTask, CreateTaskPushNotificationConfig, "
                     "GetTaskPushNotificationConfig, ListTaskPushNotificationConfigs, "
                     "DeleteTaskPushNotificationConfig and GetExtendedAgentCard")));
  }
  std::unique_ptr<Message> params = NewMessage(method->second->input);
  if (auto it = fields.find("params"); it != fields.end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStructValue) {
      return exchange->Respond(
          JsonRpcError(id, kInvalidParams, "Invalid params: \"params\" must be an object"));
    }
    if (auto status = JsonStringToMessage(ToJson(it->second), params.get(), ParseOptions());
        !status.ok()) {
      return exchange->Respond(JsonRpcError(
          id, kInvalidParams,
          absl::StrCat("Invalid params for ", name, ": ", status.message().ToString())));
    }
  }
  Invoke(exchange, *method->second, std::move(params), std::make_shared<JsonRpcFraming>(id));
}

// --- HTTP+JSON / REST --------------------------------------------------------

namespace {

// A REST route matched against a path (without tenant).
struct Route {
  const char* method = nullptr;  // the A2A method
  std::vector<const char*> verbs;
  bool body = false;      // the request message comes in the body (else the query)
  std::string id;         // {id} or {task_id}
  std::string config_id;  // {config_id}
  // Where `id` goes in the request message.
  const char* id_field = "id";
};

// The routes for `verb` on `segments`; a route with another verb if only
// that matched (→ 405), nullopt if none (→ 404).
std::optional<Route> MatchRoute(const std::vector<std::string>& segments, const std::string& verb,
                                bool* wrong_verb, std::vector<const char*>* allowed) {
  std::vector<Route> candidates;
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
  for (const Route& route : candidates) {
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

}  // namespace

void HttpBinding::ServeRest(const std::shared_ptr<http::Exchange>& exchange,
                            const std::string& route_path) {
  const http::Request& request = exchange->request();
  std::vector<std::string> segments;
  for (absl::string_view raw : absl::StrSplit(route_path, '/', absl::SkipEmpty())) {
    std::optional<std::string> segment = PercentDecode(raw);
    if (!segment.has_value()) {
      return exchange->Respond(RestError(absl::InvalidArgumentError(
          absl::StrCat("path segment '", raw, "' is not percent-encoded correctly"))));
    }
    segments.push_back(*std::move(segment));
  }
  bool wrong_verb = false;
  std::vector<const char*> allowed;
  std::string tenant;
  std::optional<Route> route = MatchRoute(segments, request.method, &wrong_verb, &allowed);
  if (!route.has_value() && !wrong_verb && segments.size() >= 2) {
    // /{tenant}/...
    tenant = segments[0];
    std::vector<std::string> rest(segments.begin() + 1, segments.end());
    route = MatchRoute(rest, request.method, &wrong_verb, &allowed);
  }
  if (!route.has_value()) {
    if (wrong_verb) {
      http::Response response = RestError(absl::InvalidArgumentError(absl::StrCat(
                                              request.method, " is not allowed on ", request.path)),
                                          405);
      response.headers.emplace_back("Allow", absl::StrJoin(allowed, ", "));
      return exchange->Respond(std::move(response));
    }
    return exchange->Respond(RestError(absl::NotFoundError(absl::StrCat(
        "no A2A route ", request.method, " ", request.path,
        " (see the HTTP+JSON binding: /message:send, /message:stream, /tasks, /tasks/{id}, "
        "/tasks/{id}:cancel, /tasks/{id}:subscribe, /tasks/{id}/pushNotificationConfigs, "
        "/extendedAgentCard, each also under /{tenant})"))));
  }
  const Method& method = *methods_.at(route->method);
  std::unique_ptr<Message> message = NewMessage(method.input);
  if (route->body && !request.body.empty()) {
    if (!JsonContent(request)) {
      http::Response response = RestError(absl::InvalidArgumentError(
          absl::StrCat("Content-Type must be application/a2a+json or application/json, not ",
                       *request.Header("content-type"))));
      response.status = 415;
      return exchange->Respond(std::move(response));
    }
    if (auto status = JsonStringToMessage(request.body, message.get(), ParseOptions());
        !status.ok()) {
      return exchange->Respond(RestError(
          absl::InvalidArgumentError(absl::StrCat("the body is not a valid ", method.input->name(),
                                                  " in JSON: ", status.message().ToString()))));
    }
  } else if (route->body && method.name != "CancelTask") {
    return exchange->Respond(RestError(absl::InvalidArgumentError(absl::StrCat(
        request.method, " ", request.path, " needs a JSON body (", method.input->name(), ")"))));
  }
  if (absl::Status status = ApplyQuery(request.query, message.get()); !status.ok()) {
    return exchange->Respond(RestError(status));
  }
  if (!route->id.empty()) SetString(message.get(), route->id_field, route->id);
  if (!route->config_id.empty()) SetString(message.get(), "id", route->config_id);
  if (!tenant.empty()) SetString(message.get(), "tenant", tenant);
  Invoke(exchange, method, std::move(message), std::make_shared<RestFraming>());
}

http::Response HttpBinding::ErrorResponse(const http::Request& request, int status,
                                          const std::string& message) const {
  if (request.path == kJsonRpcPath) {
    http::Response response = JsonRpcError("null", kInvalidRequest, message);
    response.status = status;
    return response;
  }
  absl::Status error = status == 503                    ? absl::UnavailableError(message)
                       : status == 413 || status == 431 ? absl::ResourceExhaustedError(message)
                                                        : absl::InvalidArgumentError(message);
  return JsonResponse(status, kA2aJsonType, RestErrorJson(ErrorFrom(error), status));
}

}  // namespace a2amesh::a2a
