#include "a2a/http_binding.h"

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "a2a/a2a_service.h"
#include "a2a/http_framing.h"
#include "a2a/jsonrpc_request.h"
#include "a2a/proto_json.h"
#include "a2a/rest_routes.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "http/url.h"
#include "security/auth.h"
#include "trace/span_context.h"
#include "trace/tracer.h"

namespace a2amesh::a2a {

using google::protobuf::Descriptor;
using google::protobuf::Message;

struct HttpBinding::Method {
  std::string name;  // "SendMessage"
  std::string path;  // "/lf.a2a.v1.A2AService/SendMessage"
  const Descriptor* input = nullptr;
  const Descriptor* output = nullptr;
  bool streaming = false;
};

namespace {

// The JSON-RPC endpoint, also with the trailing '/' some clients append.
bool IsJsonRpcPath(absl::string_view path) {
  return path == kJsonRpcPath || (absl::ConsumeSuffix(&path, "/") && path == kJsonRpcPath);
}

// A percent-decoded path segment, or nullopt if it is not percent-encoded
// UTF-8 (an id or tenant that protobuf could not carry as a string).
std::optional<std::string> DecodeSegment(absl::string_view raw) {
  std::optional<std::string> decoded = http::PercentDecode(raw);
  if (decoded.has_value() && !google::protobuf::internal::IsStructurallyValidUTF8(*decoded)) {
    return std::nullopt;
  }
  return decoded;
}

// An A2A request's exchange while tracing is on: its HTTP server span
// (OpenTelemetry's HTTP conventions), child of the request's traceparent,
// whose context the call to the gRPC service carries on (its server span is
// this one: rpc/call_metrics.h starts none for in-process calls). The span
// ends with the response (a stream's: with its end), or when the exchange is
// dropped.
class TracedExchange final : public http::Exchange {
 public:
  TracedExchange(std::shared_ptr<http::Exchange> inner, trace::Tracer& tracer,
                 absl::string_view route)
      : inner_(std::move(inner)) {
    const http::Request& request = inner_->request();
    const std::string* traceparent = request.Header(trace::kTraceparentKey);
    const std::string* tracestate = request.Header(trace::kTracestateKey);
    std::optional<trace::SpanContext> parent;
    if (traceparent != nullptr) {
      parent = trace::ParseTraceContext(*traceparent, tracestate ? *tracestate : "");
    }
    span_ = tracer.StartSpan(request.method, trace::SpanKind::kServer,
                             parent.has_value() ? &*parent : nullptr, /*remote=*/true);
    context_ = span_.context();
    if (context_.sampled()) inner_->NameTrace(context_.TraceIdHex());
    if (!span_.recording()) return;
    span_.SetAttribute("http.request.method", request.method);
    span_.SetAttribute("url.path", request.path);
    span_.SetAttribute("url.scheme", request.client_certificate_subject.empty() ? "http" : "https");
    if (!request.client_address.empty()) {
      span_.SetAttribute("client.address", request.client_address);
    }
    if (const std::string* agent = request.Header("user-agent")) {
      span_.SetAttribute("user_agent.original", *agent);
    }
    Route(route);
  }
  ~TracedExchange() override { EndSpan(0); }

  // The span's context: what the call to the service carries.
  const trace::SpanContext& context() const { return context_; }
  // The route the request matched ("/a2a/rest/tasks/{id}"): the span's name
  // is "METHOD route".
  void Route(absl::string_view route) {
    absl::MutexLock lock(&mu_);
    if (!span_.recording() || route.empty()) return;
    span_.SetAttribute("http.route", route);
    span_.SetName(absl::StrCat(inner_->request().method, " ", route));
  }

  const http::Request& request() const override { return inner_->request(); }
  void Respond(http::Response response) override {
    const int status = response.status;
    inner_->Respond(std::move(response));
    EndSpan(status);
  }
  void StartStream(http::Response head) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = head.status;
    }
    inner_->StartStream(std::move(head));
  }
  void Write(std::string data, std::function<void(bool ok)> written) override {
    inner_->Write(std::move(data), std::move(written));
  }
  void End() override {
    inner_->End();
    EndSpan(0);
  }
  void KeepAlive(std::string piece, absl::Duration every) override {
    inner_->KeepAlive(std::move(piece), every);
  }
  void OnClientGone(std::function<void()> gone) override { inner_->OnClientGone(std::move(gone)); }
  void Name(absl::string_view binding, absl::string_view method) override {
    inner_->Name(binding, method);
    absl::MutexLock lock(&mu_);
    if (span_.recording() && !method.empty()) span_.SetAttribute("a2a.method", method);
  }
  void NameTrace(absl::string_view trace_id) override { inner_->NameTrace(trace_id); }

 private:
  // Ends the span with the response's `status` (0: the one StartStream
  // sent, if any). Later calls do nothing.
  void EndSpan(int status) {
    trace::Span span;
    {
      absl::MutexLock lock(&mu_);
      if (status == 0) status = status_;
      span = std::move(span_);
    }
    if (!span.recording()) return;
    if (status != 0) {
      span.SetAttribute("http.response.status_code", static_cast<int64_t>(status));
      // Server spans: 5xx are the server's errors; 4xx the client's.
      if (status >= 500) span.SetError(absl::StrCat("HTTP ", status));
    }
    span.End();
  }

  const std::shared_ptr<http::Exchange> inner_;
  trace::SpanContext context_;  // set in the constructor only
  absl::Mutex mu_;
  trace::Span span_ ABSL_GUARDED_BY(mu_);
  int status_ ABSL_GUARDED_BY(mu_) = 0;
};

// The service parameters of an HTTP request, as the gRPC binding carries them.
void CopyServiceParameters(const http::Exchange& exchange, const std::string& process_secret,
                           grpc::ClientContext* context) {
  const http::Request& request = exchange.request();
  if (!request.client_certificate_subject.empty() && !process_secret.empty()) {
    // The gRPC service cannot see this connection's certificate: say whom it
    // proved, with the secret that shows the claim comes from this process.
    context->AddMetadata(security::Authenticator::kCertificateKey,
                         request.client_certificate_subject);
    context->AddMetadata(security::Authenticator::kSecretKey, process_secret);
  }
  // Who is at the other end, for the audit log: trusted by the service only
  // on its in-process channel (A2aService::CallerOf).
  context->AddMetadata(std::string(kClientAddressKey), request.client_address);
  const std::string* version = request.Header("a2a-version");
  if (version != nullptr) {
    context->AddMetadata("a2a-version", *version);
  } else if (absl::StatusOr<std::vector<std::pair<std::string, std::string>>> query =
                 http::ParseQuery(request.query);
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
  // The trace context goes on: the request's server span's, or with tracing
  // off the caller's, as it came.
  if (const auto* traced = dynamic_cast<const TracedExchange*>(&exchange)) {
    if (std::string traceparent = trace::FormatTraceparent(traced->context());
        !traceparent.empty()) {
      context->AddMetadata(std::string(trace::kTraceparentKey), traceparent);
      if (!traced->context().trace_state.empty()) {
        context->AddMetadata(std::string(trace::kTracestateKey), traced->context().trace_state);
      }
    }
    return;
  }
  for (absl::string_view name : {trace::kTraceparentKey, trace::kTracestateKey}) {
    if (const std::string* value = request.Header(name)) {
      context->AddMetadata(std::string(name), *value);
    }
  }
}

// The id the service put in a streamed event (kEventIdField), if it did.
std::optional<std::string> EventId(const Message& event) {
  const google::protobuf::UnknownFieldSet& unknown = event.GetReflection()->GetUnknownFields(event);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const google::protobuf::UnknownField& field = unknown.field(i);
    if (field.number() == kEventIdField &&
        field.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      return field.length_delimited();
    }
  }
  return std::nullopt;
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
  StreamCall(std::shared_ptr<http::Exchange> exchange, std::shared_ptr<HttpFraming> framing,
             const Method& method, const std::string& process_secret, absl::Duration keep_alive)
      : exchange_(std::move(exchange)),
        framing_(std::move(framing)),
        method_(method),
        context_(std::make_shared<grpc::ClientContext>()),
        process_secret_(process_secret),
        keep_alive_(keep_alive) {}

  void Start(grpc::GenericStub& stub, grpc::ByteBuffer request) {
    request_ = std::move(request);
    CopyServiceParameters(*exchange_, process_secret_, context_.get());
    // Each event's sequence number, for its `id:` line; and where a returning
    // client (EventSource and the like send Last-Event-ID) left off.
    context_->AddMetadata(std::string(kEventIdsKey), "1");
    if (const std::string* last = exchange_->request().Header("last-event-id")) {
      context_->AddMetadata(std::string(kLastEventIdKey), *last);
      // A resumed stream that missed nothing has no first event to wait
      // for: it opens once the service says the subscription is in place.
      resumed_ = true;
    }
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
    OpenStream();
    std::string frame = framing_->Event(*event);
    if (std::optional<std::string> id = EventId(*event)) {
      frame = absl::StrCat("id: ", *id, "\n", frame);
    }
    exchange_->Write(std::move(frame), [this](bool written) {
      if (written) {
        StartRead(&event_);
      } else {
        context_->TryCancel();  // the client has gone
        RemoveHold();
      }
    });
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok && resumed_ &&
        context_->GetServerInitialMetadata().count(
            grpc::string_ref(kSubscribedKey.data(), kSubscribedKey.size())) > 0) {
      OpenStream();
    }
  }

  void OnDone(const grpc::Status& status) override {
    bool started;
    {
      absl::MutexLock lock(&mu_);
      started = started_;
    }
    if (!started) {
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
  // Sends the SSE head, once; from then on, a comment line now and then
  // through a quiet stream, so that proxies and load balancers that cut idle
  // connections leave it open. The first event and the initial metadata may
  // race to it: the head is posted under the lock so that it goes before any
  // event (posting only queues it on the connection's strand).
  void OpenStream() {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
    exchange_->StartStream(SseHead());
    if (keep_alive_ > absl::ZeroDuration()) exchange_->KeepAlive(": keep-alive\n\n", keep_alive_);
  }

  const std::shared_ptr<http::Exchange> exchange_;
  const std::shared_ptr<HttpFraming> framing_;
  const Method& method_;
  // Shared with the client-gone callback, which may outlive the call.
  const std::shared_ptr<grpc::ClientContext> context_;
  const std::string& process_secret_;  // the binding's
  const absl::Duration keep_alive_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer event_;
  bool resumed_ = false;  // set before the call starts
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

HttpBinding::HttpBinding(HttpBindingOptions options, std::shared_ptr<grpc::Channel> a2a_channel,
                         const CardSource& cards)
    : process_secret_(std::move(options.process_secret)),
      max_json_depth_(options.max_json_depth),
      sse_keep_alive_(options.sse_keep_alive),
      ready_(std::move(options.ready)),
      tracer_(options.tracer),
      stub_(std::move(a2a_channel)),
      cards_(std::move(options.cards), cards) {
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
                         std::unique_ptr<Message> request, std::shared_ptr<HttpFraming> framing) {
  grpc::ByteBuffer buffer;
  if (!Serialize(*request, &buffer)) {
    exchange->Respond(
        framing->Failure(grpc::Status(grpc::StatusCode::INTERNAL, "cannot serialize the request")));
    return;
  }
  if (method.streaming) {
    (new StreamCall(exchange, std::move(framing), method, process_secret_, sse_keep_alive_))
        ->Start(stub_, std::move(buffer));
    return;
  }
  auto call = std::make_shared<UnaryCall>();
  call->request = std::move(buffer);
  CopyServiceParameters(*exchange, process_secret_, &call->context);
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
  if (IsJsonRpcPath(path)) {
    exchange->Name("jsonrpc", "");
    if (tracer_->enabled()) {
      exchange = std::make_shared<TracedExchange>(std::move(exchange), *tracer_, kJsonRpcPath);
    }
    return ServeJsonRpc(exchange);
  }
  if (path == kRestPath || absl::StartsWith(path, absl::StrCat(kRestPath, "/"))) {
    exchange->Name("rest", "");
    if (tracer_->enabled()) {
      // Its route is known once matched (ServeRest).
      exchange = std::make_shared<TracedExchange>(std::move(exchange), *tracer_, "");
    }
    return ServeRest(exchange, exchange->request().path.substr(sizeof(kRestPath) - 1));
  }
  if (path == kAgentCardPath) {
    exchange->Name("card", "AgentCard");
    return exchange->Respond(cards_.Serve(request, ""));
  }
  if ((path == "/healthz" || path == "/readyz") &&
      (request.method == "GET" || request.method == "HEAD")) {
    exchange->Name("probe", path.substr(1));
    http::Response probe;
    probe.content_type = "text/plain; charset=utf-8";
    const bool ready = path == "/healthz" || ready_ == nullptr || ready_();
    probe.status = ready ? 200 : 503;
    probe.body = ready ? "ok\n" : "draining: this node takes no new client work\n";
    if (!ready) probe.headers.emplace_back("Retry-After", "1");
    return exchange->Respond(std::move(probe));
  }
  if (absl::StartsWith(path, kAgentsPath) && absl::EndsWith(path, kAgentCardPath)) {
    absl::string_view tenant = absl::string_view(path).substr(
        sizeof(kAgentsPath) - 1, path.size() - (sizeof(kAgentsPath) - 1) - strlen(kAgentCardPath));
    std::optional<std::string> decoded = DecodeSegment(tenant);
    if (decoded.has_value() && !decoded->empty() && !absl::StrContains(*decoded, '/')) {
      exchange->Name("card", "AgentCard");
      return exchange->Respond(cards_.Serve(request, *decoded));
    }
  }
  exchange->Respond(RestError(absl::NotFoundError(
      absl::StrCat("nothing is served at ", path, "; A2A is at ", kJsonRpcPath, " (JSON-RPC), ",
                   kRestPath, " (HTTP+JSON) and ", kAgentCardPath))));
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
  JsonRpcRequest call = ReadJsonRpcRequest(request.body, max_json_depth_);
  if (call.error_code != 0) {
    return exchange->Respond(JsonRpcError(call.id, call.error_code, call.error));
  }
  auto method = methods_.find(call.method);
  if (method == methods_.end()) {
    return exchange->Respond(JsonRpcError(
        call.id, kMethodNotFound,
        absl::StrCat("Method not found: '", call.method,
                     "'. A2A v1.0 methods are SendMessage, SendStreamingMessage, GetTask, "
                     "ListTasks, CancelTask, SubscribeToTask, CreateTaskPushNotificationConfig, "
                     "GetTaskPushNotificationConfig, ListTaskPushNotificationConfigs, "
                     "DeleteTaskPushNotificationConfig and GetExtendedAgentCard")));
  }
  exchange->Name("jsonrpc", method->first);
  std::unique_ptr<Message> params = NewMessage(method->second->input);
  if (!call.params.empty()) {
    // The one parse of the params: straight from the body's text.
    if (auto status = google::protobuf::util::JsonStringToMessage(
            google::protobuf::StringPiece(call.params.data(), call.params.size()), params.get(),
            ProtoJsonParseOptions());
        !status.ok()) {
      return exchange->Respond(JsonRpcError(
          call.id, kInvalidParams,
          absl::StrCat("Invalid params for ", call.method, ": ", status.message().ToString())));
    }
  }
  Invoke(exchange, *method->second, std::move(params), std::make_shared<JsonRpcFraming>(call.id));
}

// --- HTTP+JSON / REST --------------------------------------------------------

void HttpBinding::ServeRest(const std::shared_ptr<http::Exchange>& exchange,
                            const std::string& route_path) {
  const http::Request& request = exchange->request();
  std::vector<std::string> segments;
  for (absl::string_view raw : absl::StrSplit(route_path, '/', absl::SkipEmpty())) {
    std::optional<std::string> segment = DecodeSegment(raw);
    if (!segment.has_value()) {
      return exchange->Respond(RestError(absl::InvalidArgumentError(absl::StrCat(
          "path segment '", raw, "' is not percent-encoded UTF-8 (RFC 3986, RFC 3629)"))));
    }
    segments.push_back(*std::move(segment));
  }
  bool wrong_verb = false;
  std::vector<const char*> allowed;
  std::string tenant;
  std::optional<RestRoute> route = MatchRestRoute(segments, request.method, &wrong_verb, &allowed);
  if (!route.has_value() && !wrong_verb && segments.size() >= 2) {
    // /{tenant}/...
    tenant = segments[0];
    std::vector<std::string> rest(segments.begin() + 1, segments.end());
    route = MatchRestRoute(rest, request.method, &wrong_verb, &allowed);
  }
  if (!route.has_value()) {
    if (wrong_verb) {
      // As grpc-gateway answers a verb with no method: UNIMPLEMENTED, 405.
      http::Response response = RestError(absl::UnimplementedError(absl::StrCat(
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
  exchange->Name("rest", method.name);
  if (auto* traced = dynamic_cast<TracedExchange*>(exchange.get())) {
    traced->Route(
        absl::StrCat(kRestPath, tenant.empty() ? "" : "/{tenant}", RestPattern(method.name)));
  }
  std::unique_ptr<Message> message = NewMessage(method.input);
  if (route->body && !request.body.empty()) {
    if (!JsonContent(request)) {
      http::Response response = RestError(absl::InvalidArgumentError(
          absl::StrCat("Content-Type must be application/a2a+json or application/json, not ",
                       *request.Header("content-type"))));
      response.status = 415;
      return exchange->Respond(std::move(response));
    }
    if (JsonNestsDeeperThan(request.body, max_json_depth_)) {
      return exchange->Respond(RestError(absl::InvalidArgumentError(absl::StrCat(
          "the body nests deeper than ", max_json_depth_, " levels (--max-json-depth)"))));
    }
    if (auto status = google::protobuf::util::JsonStringToMessage(request.body, message.get(),
                                                                  ProtoJsonParseOptions());
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
  if (!route->id.empty()) SetStringField(message.get(), route->id_field, route->id);
  if (!route->config_id.empty()) SetStringField(message.get(), "id", route->config_id);
  if (!tenant.empty()) SetStringField(message.get(), "tenant", tenant);
  Invoke(exchange, method, std::move(message), std::make_shared<RestFraming>());
}

http::Response HttpBinding::ErrorResponse(const http::Request& request, int status,
                                          const std::string& message) const {
  if (IsJsonRpcPath(request.path)) {
    http::Response response = JsonRpcError("null", kInvalidRequest, message);
    response.status = status;
    return response;
  }
  absl::Status error = status == 503                    ? absl::UnavailableError(message)
                       : status == 413 || status == 431 ? absl::ResourceExhaustedError(message)
                                                        : absl::InvalidArgumentError(message);
  return RestError(error, status);
}

}  // namespace a2amesh::a2a
