#include "agenthost/remote_agents.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <utility>

#include "a2a/legacy_v03.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "catalog/card_validation.h"
#include "core/a2a_error.h"
#include "core/extensions.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "http/fetch.h"
#include "http/sse_reader.h"
#include "http/url.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "rpc/grpc_status.h"
#include "tasks/task_state.h"
#include "trace/span_context.h"

namespace a2amesh::agenthost {
namespace {

using lf::a2a::v1::AgentCard;
using lf::a2a::v1::Message;
using lf::a2a::v1::SendMessageRequest;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using lf::a2a::v1::TaskState;

// The longest a card's Cache-Control keeps it from being fetched again: a
// card changed without notice is seen within the hour.
constexpr absl::Duration kMaxFresh = absl::Hours(1);

// One unary gRPC call to a remote agent: what its callback keeps alive.
template <typename Request, typename Response>
struct UnaryCall {
  grpc::ClientContext context;
  Request request;
  Response response;
};

// An event as the mesh's agent would send it: the node fills in the ids.
void ClearIds(StreamResponse* event) {
  auto clear_message = [](Message* message) {
    message->clear_task_id();
    message->clear_context_id();
  };
  switch (event->payload_case()) {
    case StreamResponse::kStatusUpdate:
      event->mutable_status_update()->clear_task_id();
      event->mutable_status_update()->clear_context_id();
      if (event->status_update().status().has_message()) {
        clear_message(event->mutable_status_update()->mutable_status()->mutable_message());
      }
      break;
    case StreamResponse::kArtifactUpdate:
      event->mutable_artifact_update()->clear_task_id();
      event->mutable_artifact_update()->clear_context_id();
      break;
    case StreamResponse::kMessage:
      clear_message(event->mutable_message());
      break;
    default:
      break;
  }
}

StreamResponse Failure(const std::string& text) {
  StreamResponse event;
  auto* status = event.mutable_status_update()->mutable_status();
  status->set_state(lf::a2a::v1::TASK_STATE_FAILED);
  Message* message = status->mutable_message();
  message->set_message_id(NewUuid());
  message->set_role(lf::a2a::v1::ROLE_AGENT);
  message->add_parts()->set_text(text);
  return event;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json);
  return json;
}

// A whole file, or why not (naming it).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " cannot be read: ", std::strerror(errno)));
  }
  return text;
}

// The credentials of a gRPC channel to `target`: TLS when its URL says so
// (grpcs://, https://) or a CA or client certificate is given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcCredentials(
    const RemoteInterface& target, const RemoteCredentials& credentials) {
  if (!target.tls && credentials.ca_file.empty() && credentials.cert_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!credentials.ca_file.empty()) {
    A2AMESH_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadWholeFile(credentials.ca_file, "ca-file"));
  }
  if (!credentials.cert_file.empty()) {
    A2AMESH_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadWholeFile(credentials.cert_file, "cert-file"));
    A2AMESH_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadWholeFile(credentials.key_file, "key-file"));
  }
  return grpc::SslCredentials(ssl);
}

// `text` as protobuf's JSON parser takes it.
google::protobuf::StringPiece Piece(absl::string_view text) {
  return google::protobuf::StringPiece(text.data(), text.size());
}

// The HTTP+JSON path of a v1.0 JSON-RPC method (of the task `task_id`).
std::string RestPath(absl::string_view method, absl::string_view task_id) {
  if (method == "SendStreamingMessage") return "/message:stream";
  if (method == "SendMessage") return "/message:send";
  if (method == "GetTask") return absl::StrCat("/tasks/", http::PercentEncode(task_id));  // GET
  return absl::StrCat("/tasks/", http::PercentEncode(task_id), ":cancel");  // CancelTask
}

// What an HTTP+JSON error answer (`status`, and a google.rpc.Status as
// {"error": {...}} in `body`) says. It is the agent's own answer (`refused`)
// unless it says nothing A2A or came from a gateway (502, 503, 504).
std::string RestError(long status, const std::string& body, bool* refused) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  const rapidjson::Value* error = nullptr;
  if (!doc.HasParseError() && doc.IsObject()) {
    if (auto e = doc.FindMember("error"); e != doc.MemberEnd() && e->value.IsObject()) {
      error = &e->value;
    }
  }
  *refused = error != nullptr && status != 502 && status != 503 && status != 504;
  if (error == nullptr) return absl::StrCat("HTTP ", status);
  auto text = [&](const char* name) -> std::string {
    auto it = error->FindMember(name);
    return it != error->MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  const std::string code = text("status");
  return absl::StrCat("HTTP ", status, code.empty() ? "" : " ", code, ": ", text("message"));
}

// A2A 0.3's name for a v1.0 JSON-RPC method.
absl::string_view LegacyMethod(absl::string_view method) {
  if (method == "SendStreamingMessage") return "message/stream";
  if (method == "SendMessage") return "message/send";
  if (method == "CancelTask") return "tasks/cancel";
  if (method == "GetTask") return "tasks/get";
  return method;
}

}  // namespace

absl::StatusOr<RemoteInterface> ChooseRemoteInterface(const lf::a2a::v1::AgentCard& card,
                                                      const std::string& wanted, bool can_http) {
  std::vector<std::string> offered;
  for (const auto& interface : card.supported_interfaces()) {
    offered.push_back(
        absl::StrCat(interface.protocol_binding(), " ", interface.protocol_version()));
  }
  for (bool legacy : {false, true}) {
    for (const auto& interface : card.supported_interfaces()) {
      const std::string& binding = interface.protocol_binding();
      const std::string& version = interface.protocol_version();
      if ((!wanted.empty() && binding != wanted) || absl::StartsWith(version, "0.") != legacy ||
          (legacy && !absl::StartsWith(version, "0.3"))) {
        continue;
      }
      if (binding == "GRPC" && !legacy) {
        absl::string_view target = interface.url();
        const bool tls =
            absl::ConsumePrefix(&target, "grpcs://") || absl::ConsumePrefix(&target, "https://");
        absl::ConsumePrefix(&target, "grpc://");
        absl::ConsumeSuffix(&target, "/");
        return RemoteInterface{binding, std::string(target), interface.tenant(), version, tls};
      }
      // (0.3's REST binding is another API: /v1/message:send and the like.)
      if ((binding == "JSONRPC" || (binding == "HTTP+JSON" && !legacy)) && can_http) {
        std::string url = interface.url();
        if (binding == "HTTP+JSON" && absl::EndsWith(url, "/")) url.pop_back();  // paths follow
        return RemoteInterface{binding, std::move(url), interface.tenant(), version};
      }
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "its card offers no interface this node can call (it offers ",
      offered.empty() ? "none" : absl::StrJoin(offered, ", "), "); this node calls A2A agents ",
      wanted.empty() ? (can_http ? "over JSONRPC (1.0 or 0.3), GRPC or HTTP+JSON (1.0)"
                                 : "over GRPC (1.0; this build has no libcurl)")
                     : absl::StrCat("over ", wanted, " (--remote-agent-binding)")));
}

absl::StatusOr<RemoteAgentSpec> MakeRemoteAgentSpec(absl::string_view card_url,
                                                    absl::string_view agent_id) {
  if (!agent_id.empty()) {
    if (absl::Status valid = ValidateAgentId(agent_id); !valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("the id ", agent_id, ": ", valid.message()));
    }
  }
  if (!absl::StartsWith(card_url, "http://") && !absl::StartsWith(card_url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", card_url, "' is not the URL of an agent card (http:// or https://)"));
  }
  return RemoteAgentSpec{std::string(card_url), std::string(agent_id)};
}

absl::StatusOr<RemoteAgentSpec> ParseRemoteAgent(absl::string_view flag) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--remote-agent ", flag, ": ", why,
                     "; give [ID=]URL [token-file=PATH] [ca-file=PATH] [cert-file=PATH "
                     "key-file=PATH] [max-concurrency=N]"));
  };
  std::vector<absl::string_view> words = absl::StrSplit(flag, ' ', absl::SkipWhitespace());
  if (words.empty()) return invalid("empty");
  absl::string_view url = words[0];
  absl::string_view id;
  if (size_t eq = url.find('=');
      eq != absl::string_view::npos && !absl::StrContains(url.substr(0, eq), "/")) {
    id = url.substr(0, eq);
    url = url.substr(eq + 1);
  }
  absl::StatusOr<RemoteAgentSpec> spec = MakeRemoteAgentSpec(url, id);
  if (!spec.ok()) return invalid(spec.status().message());
  for (size_t i = 1; i < words.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> option =
        absl::StrSplit(words[i], absl::MaxSplits('=', 1));
    if (option.first == "max-concurrency") {
      if (!absl::SimpleAtoi(option.second, &spec->max_concurrency) || spec->max_concurrency < 1) {
        return invalid(absl::StrCat("max-concurrency '", option.second,
                                    "' is not a whole number of at least 1"));
      }
      continue;
    }
    std::string* field = option.first == "token-file"  ? &spec->token_file
                         : option.first == "ca-file"   ? &spec->ca_file
                         : option.first == "cert-file" ? &spec->cert_file
                         : option.first == "key-file"  ? &spec->key_file
                                                       : nullptr;
    if (field == nullptr) {
      return invalid(absl::StrCat("unknown option '", option.first, "'"));
    }
    if (option.second.empty()) return invalid(absl::StrCat(option.first, " needs a path"));
    *field = std::string(option.second);
  }
  if (spec->cert_file.empty() != spec->key_file.empty()) {
    return invalid("cert-file and key-file go together");
  }
  return spec;
}

// Runs the tasks routed to one remote agent: the catalog's link to it.
class RemoteLink final : public catalog::AgentLink,
                         public std::enable_shared_from_this<RemoteLink> {
 public:
  // Over gRPC (`channel`) or JSON-RPC (`http`, for an Interface of that
  // binding). `called` hears whether each call reached the agent.
  RemoteLink(std::string agent_id, std::string card_url, RemoteInterface interface, bool streaming,
             RemoteCredentials credentials, std::shared_ptr<grpc::Channel> channel,
             http::CurlLoop* http, tasks::TaskManager& tasks, Timers* timers,
             std::function<void(const absl::Status& status, absl::Duration duration,
                                absl::string_view trace_id)>
                 called)
      : agent_id_(std::move(agent_id)),
        url_(std::move(card_url)),
        interface_(std::move(interface)),
        credentials_(std::move(credentials)),
        streaming_(streaming),
        stub_(channel != nullptr ? lf::a2a::v1::A2AService::NewStub(std::move(channel)) : nullptr),
        http_(http),
        tasks_(tasks),
        timers_(timers),
        called_(std::move(called)) {}

  void Send(v1::NodeToAgent message) override {
    if (message.has_assignment()) {
      Assign(std::move(*message.mutable_assignment()));
    } else if (message.has_cancel()) {
      Cancel(message.cancel().task_id());
    }
  }

  // An event of the remote task behind `task_id` (a turn's read). Returns
  // whether it ended the turn.
  bool OnEvent(const std::string& task_id, StreamResponse event, bool* started);
  // The call of `task_id`'s turn is over.
  void OnTurnDone(const std::string& task_id, const absl::Status& status, bool ended);

  // Cancels every call and waits until none runs: nothing calls the task
  // manager after it returns. The tasks of the calls cancelled, and later
  // assignments, fail with `why`.
  void Stop(const std::string& why);

 private:
  class StreamTurn;
  class HttpTurn;
  // What an HTTP turn's call answers.
  enum class Answer { kStream, kSendMessage, kTask };
  // The remote side of one of the mesh's tasks.
  struct Mapping {
    std::string remote_task_id;
    std::string remote_context_id;
    // Gives up the turn's call, while it runs (called under mu_: it must
    // not block).
    absl::AnyInvocable<void()> abort;
    // The task ended (a terminal state): forgotten when the turn is done. One
    // waiting for its client is kept: its follow-up goes to the same task.
    bool over = false;
    // When the turn's call began, and its sampled trace (for the call's
    // duration's exemplar).
    absl::Time began;
    std::string trace_id;
    // A task followed by polling: the wait before the next GetTask, and the
    // state last told (the same state again is not).
    absl::Duration poll_wait = kFirstPoll;
    TaskState told = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
  };

  // Between polls of a non-streaming agent's task: the first wait, and the
  // longest (each wait doubles).
  static constexpr absl::Duration kFirstPoll = absl::Milliseconds(10);
  static constexpr absl::Duration kLongestPoll = absl::Seconds(1);
  static constexpr absl::Duration kPollTimeout = absl::Seconds(30);  // one GetTask

  void Assign(v1::TaskAssignment assignment);
  void AssignGrpc(const std::string& task_id, SendMessageRequest request, absl::Time deadline,
                  const std::string& traceparent, const std::string& tracestate);

  // Asks for the remote task behind `task_id` (GetTask) as one more turn,
  // unless it is over or the link stops.
  void Poll(const std::string& task_id);
  // Runs `call` as the turn of `task_id` that answers `answer`.
  void StartHttpTurn(const std::string& task_id, http::CurlLoop::Request call, Answer answer);
  // The A2A version and the bearer token, if any.
  void AddMetadata(grpc::ClientContext* context) const;
  // Metadata, `deadline`, and the turn of `task_id` abortable by cancelling.
  void PrepareGrpc(grpc::ClientContext* context, const std::string& task_id, absl::Time deadline);
  void Cancel(const std::string& task_id);
  // A call begins (false once stopping: make none) and ends.
  bool Begin(std::string* why_not = nullptr) {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      if (why_not != nullptr) *why_not = stopped_why_;
      return false;
    }
    ++calls_;
    return true;
  }
  void End() {
    absl::MutexLock lock(&mu_);
    --calls_;
  }
  // The turn's call can be given up with `abort` from now on.
  void Started(const std::string& task_id, absl::AnyInvocable<void()> abort) {
    absl::MutexLock lock(&mu_);
    Mapping& mapping = tasks_by_id_[task_id];
    mapping.abort = std::move(abort);
    mapping.began = absl::Now();
  }
  // Applies an event as the agent's; a refusal (the task ended meanwhile,
  // e.g. cancelled here) is only logged.
  void Apply(const std::string& task_id, StreamResponse event);
  // A request of `method` (a v1.0 JSON-RPC name: the 0.3 one is sent to a
  // 0.3 agent) to the agent's endpoint, over JSON-RPC or HTTP+JSON; `params`
  // is the request as JSON, `task_id` the task a CancelTask names.
  http::CurlLoop::Request HttpCall(absl::string_view method, const std::string& params, bool stream,
                                   absl::string_view task_id = {}) const;

  const std::string agent_id_;
  const std::string url_;  // its card's
  const RemoteInterface interface_;
  const RemoteCredentials credentials_;
  const bool streaming_;
  const std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub_;  // over gRPC
  http::CurlLoop* const http_;                                 // over HTTP
  tasks::TaskManager& tasks_;
  Timers* const timers_;  // null: a non-streaming agent's task is not polled
  const std::function<void(const absl::Status& status, absl::Duration duration,
                           absl::string_view trace_id)>
      called_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Mapping> tasks_by_id_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;  // running calls
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string stopped_why_ ABSL_GUARDED_BY(mu_);
};

void RemoteLink::Stop(const std::string& why) {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  stopped_why_ = why;
  for (auto& [id, mapping] : tasks_by_id_) {
    if (mapping.abort) mapping.abort();
  }
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

// One turn over gRPC's SendStreamingMessage: reads every event, then reports.
class RemoteLink::StreamTurn final : public grpc::ClientReadReactor<StreamResponse> {
 public:
  StreamTurn(std::shared_ptr<RemoteLink> link, std::string task_id, SendMessageRequest request)
      : link_(std::move(link)), task_id_(std::move(task_id)), request_(std::move(request)) {}

  grpc::ClientContext* context() { return &context_; }

  void Begin() {
    link_->stub_->async()->SendStreamingMessage(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (link_->OnEvent(task_id_, std::move(event_), &started_)) ended_ = true;
    event_.Clear();
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    link_->OnTurnDone(task_id_, rpc::FromGrpcStatus(status), ended_);
    link_->End();
    delete this;
  }

 private:
  const std::shared_ptr<RemoteLink> link_;
  const std::string task_id_;
  SendMessageRequest request_;
  grpc::ClientContext context_;
  StreamResponse event_;
  bool started_ = false;
  bool ended_ = false;
};

// One turn over HTTP: SendStreamingMessage read as Server-Sent Events (one
// JSON-RPC response per event; over HTTP+JSON, the bare StreamResponse), or
// SendMessage's one response. Its callbacks run on the CurlLoop's thread, one
// at a time.
class RemoteLink::HttpTurn {
 public:
  HttpTurn(std::shared_ptr<RemoteLink> link, std::string task_id, Answer answer)
      : link_(std::move(link)),
        task_id_(std::move(task_id)),
        answer_(answer),
        rest_(link_->interface_.binding == "HTTP+JSON"),
        legacy_(link_->interface_.legacy()) {}

  // The call is `id` (given up at once if Abort came first).
  void Started(http::CurlLoop::Id id) {
    absl::MutexLock lock(&mu_);
    id_ = id;
    if (aborted_) link_->http_->Cancel(id_);
  }
  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
    if (id_ != 0) link_->http_->Cancel(id_);
  }

  void OnData(const http::CurlLoop::Response& response, absl::string_view data) {
    if (!absl::StartsWith(response.content_type, "text/event-stream")) {
      // One JSON-RPC response (an error before any event comes this way too).
      if (body_.size() + data.size() > kMaxBody) {
        TooBig(absl::StrCat("its answer is over ", kMaxBody, " bytes"));
        return;
      }
      body_.append(data.data(), data.size());
      return;
    }
    sse_.Feed(data, [&](absl::string_view, absl::string_view event) { OnResponse(event); });
    if (sse_.buffered() > kMaxBody) TooBig(absl::StrCat("an event is over ", kMaxBody, " bytes"));
  }

  void OnDone(absl::Status status, const http::CurlLoop::Response& response) {
    if (rest_ && status.ok() && (response.status < 200 || response.status > 299)) {
      // HTTP+JSON says what went wrong with the status and a google.rpc.Status.
      error_ = RestError(response.status, body_, &refused_);
      body_.clear();
    }
    if (status.ok() && !body_.empty()) OnResponse(body_);
    if (status.ok() && !ended_ && !refused_ && response.status != 200) {
      error_ = absl::StrCat("HTTP ", response.status);  // whatever its body said
    }
    if ((status.ok() || too_big_) && !error_.empty()) {
      // A JSON-RPC error is the agent's answer; anything else, no answer.
      status = refused_ ? absl::FailedPreconditionError(error_) : absl::UnavailableError(error_);
    }
    link_->OnTurnDone(task_id_, status, ended_);
    link_->End();
  }

 private:
  static constexpr size_t kMaxBody = 64 << 20;

  // Gives up an answer that would not fit in memory, saying why.
  void TooBig(std::string why) {
    if (too_big_) return;
    too_big_ = true;
    if (error_.empty()) error_ = std::move(why);
    Abort();
  }

  // One answer: over HTTP+JSON, a StreamResponse on a stream, else a
  // SendMessageResponse; over JSON-RPC, a response with one of those as its
  // result, or an error.
  void OnResponse(absl::string_view text) {
    if (!error_.empty()) return;
    if (rest_) {
      OnResult(text);
      return;
    }
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      error_ = "its answer is not a JSON-RPC response";
      return;
    }
    if (auto e = doc.FindMember("error"); e != doc.MemberEnd() && e->value.IsObject()) {
      refused_ = true;
      auto code = e->value.FindMember("code");
      auto message = e->value.FindMember("message");
      error_ = absl::StrCat(
          "JSON-RPC error ",
          code != e->value.MemberEnd() && code->value.IsInt() ? code->value.GetInt() : 0, ": ",
          message != e->value.MemberEnd() && message->value.IsString() ? message->value.GetString()
                                                                       : "");
      return;
    }
    auto result = doc.FindMember("result");
    if (result == doc.MemberEnd() || !result->value.IsObject()) {
      error_ = "its answer is a JSON-RPC response with no result";
      return;
    }
    // (The result is printed back to text for protobuf's JSON parser: a
    // second pass over a few hundred bytes, on the client side of a call.)
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    result->value.Accept(writer);
    OnResult(absl::string_view(buffer.GetString(), buffer.GetSize()));
  }

  // A StreamResponse, a SendMessageResponse or a Task (JSON), as `answer_`.
  void OnResult(absl::string_view json) {
    if (legacy_) {  // 0.3: every answer is a task, a message or an update
      absl::StatusOr<StreamResponse> event = a2a::legacy::ParseResult(std::string(json));
      if (!event.ok()) {
        error_ = std::string(event.status().message());
        return;
      }
      if (link_->OnEvent(task_id_, *std::move(event), &started_)) ended_ = true;
      return;
    }
    StreamResponse event;
    google::protobuf::util::JsonParseOptions parse;
    parse.ignore_unknown_fields = true;
    std::string why;  // what protobuf's parser said
    if (answer_ == Answer::kStream) {
      auto parsed = google::protobuf::util::JsonStringToMessage(Piece(json), &event, parse);
      if (!parsed.ok()) why = parsed.message().as_string();
    } else if (answer_ == Answer::kTask) {
      auto parsed =
          google::protobuf::util::JsonStringToMessage(Piece(json), event.mutable_task(), parse);
      if (!parsed.ok()) {
        why = parsed.message().as_string();
      } else if (event.task().id().empty()) {
        why = "it has no id";
      }
    } else {
      lf::a2a::v1::SendMessageResponse answer;
      auto parsed = google::protobuf::util::JsonStringToMessage(Piece(json), &answer, parse);
      if (!parsed.ok()) {
        why = parsed.message().as_string();
      } else if (answer.has_message()) {
        *event.mutable_message() = std::move(*answer.mutable_message());
      } else if (answer.has_task()) {
        *event.mutable_task() = std::move(*answer.mutable_task());
      }
    }
    if (!why.empty() || event.payload_case() == StreamResponse::PAYLOAD_NOT_SET) {
      error_ = absl::StrCat("its answer is not an A2A ",
                            answer_ == Answer::kStream        ? "StreamResponse"
                            : answer_ == Answer::kSendMessage ? "SendMessageResponse"
                                                              : "Task",
                            why.empty() ? "" : absl::StrCat(": ", why));
      return;
    }
    if (link_->OnEvent(task_id_, std::move(event), &started_)) ended_ = true;
  }

  const std::shared_ptr<RemoteLink> link_;
  const std::string task_id_;
  const Answer answer_;
  const bool rest_;    // HTTP+JSON, else JSON-RPC
  const bool legacy_;  // A2A 0.3
  absl::Mutex mu_;
  http::CurlLoop::Id id_ ABSL_GUARDED_BY(mu_) = 0;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  http::SseReader sse_;
  std::string body_;
  std::string error_;     // the first thing wrong with the answer
  bool refused_ = false;  // it was a JSON-RPC error
  bool too_big_ = false;  // given up for its size
  bool started_ = false;
  bool ended_ = false;
};

http::CurlLoop::Request RemoteLink::HttpCall(absl::string_view method, const std::string& params,
                                             bool stream, absl::string_view task_id) const {
  const bool legacy = interface_.legacy();
  http::CurlLoop::Request request;
  request.headers = {"Content-Type: application/json",
                     legacy ? "A2A-Version: 0.3" : "A2A-Version: 1.0",
                     stream ? "Accept: text/event-stream" : "Accept: application/json"};
  if (!credentials_.token.empty()) {
    request.headers.push_back(absl::StrCat("Authorization: Bearer ", credentials_.token));
  }
  request.ca_file = credentials_.ca_file;
  request.cert_file = credentials_.cert_file;
  request.key_file = credentials_.key_file;
  if (interface_.binding == "HTTP+JSON") {
    // The operation is the path (under the tenant, if any); the body, the
    // request itself.
    request.url = absl::StrCat(interface_.url, interface_.tenant.empty() ? "" : "/",
                               http::PercentEncode(interface_.tenant), RestPath(method, task_id));
    request.body = params;
    return request;
  }
  request.url = interface_.url;
  request.body =
      absl::StrCat(R"({"jsonrpc":"2.0","id":")", NewUuid(), R"(","method":")",
                   legacy ? LegacyMethod(method) : method, R"(","params":)", params, "}");
  return request;
}

void RemoteLink::Assign(v1::TaskAssignment assignment) {
  const std::string task_id = assignment.task().id();
  if (std::string why_not; !Begin(&why_not)) {
    Apply(task_id,
          Failure(absl::StrCat(why_not, "; the remote agent ", agent_id_, " was not called")));
    return;
  }
  SendMessageRequest request;
  request.set_tenant(interface_.tenant);
  *request.mutable_message() = std::move(*assignment.mutable_message());
  request.mutable_message()->clear_task_id();
  request.mutable_message()->clear_context_id();
  {
    // The turn's sampled trace, for the call's exemplar (a follow-up's turn
    // may be in another trace, or none).
    std::string trace_id = trace::SampledTraceId(assignment.traceparent());
    absl::MutexLock lock(&mu_);
    auto it = tasks_by_id_.find(task_id);
    if (it != tasks_by_id_.end()) {  // a follow-up: to the remote task
      request.mutable_message()->set_task_id(it->second.remote_task_id);
      request.mutable_message()->set_context_id(it->second.remote_context_id);
      it->second.trace_id = std::move(trace_id);
    } else if (!trace_id.empty()) {
      tasks_by_id_[task_id].trace_id = std::move(trace_id);
    }
  }
  *request.mutable_configuration()->mutable_accepted_output_modes() =
      std::move(*assignment.mutable_accepted_output_modes());
  // Not streamed: the answer is the task as it is now, then it is polled
  // (a long task holds no call open).
  if (!streaming_ && timers_ != nullptr) {
    request.mutable_configuration()->set_return_immediately(true);
  }
  if (assignment.has_request_metadata()) {
    *request.mutable_metadata() = std::move(*assignment.mutable_request_metadata());
  }
  const absl::Time deadline = assignment.deadline_unix_ms() > 0
                                  ? absl::FromUnixMillis(assignment.deadline_unix_ms())
                                  : absl::InfiniteFuture();
  // The turn's span is the caller of the agent's spans (docs/tracing.md).
  const std::string& traceparent = assignment.traceparent();
  const std::string& tracestate = assignment.tracestate();
  if (stub_ != nullptr) {
    AssignGrpc(task_id, std::move(request), deadline, traceparent, tracestate);
    return;
  }
  if (interface_.binding == "HTTP+JSON") request.clear_tenant();  // in the path
  http::CurlLoop::Request call =
      HttpCall(streaming_ ? "SendStreamingMessage" : "SendMessage",
               interface_.legacy() ? a2a::legacy::MessageSendParams(request) : ProtoJson(request),
               streaming_);
  if (deadline != absl::InfiniteFuture()) {
    call.timeout = std::max(deadline - absl::Now(), absl::Milliseconds(1));
  }
  if (!traceparent.empty()) {
    call.headers.push_back(absl::StrCat("traceparent: ", traceparent));
    if (!tracestate.empty()) call.headers.push_back(absl::StrCat("tracestate: ", tracestate));
  }
  StartHttpTurn(task_id, std::move(call), streaming_ ? Answer::kStream : Answer::kSendMessage);
}

void RemoteLink::StartHttpTurn(const std::string& task_id, http::CurlLoop::Request call,
                               Answer answer) {
  auto turn = std::make_shared<HttpTurn>(shared_from_this(), task_id, answer);
  call.on_data = [turn](const http::CurlLoop::Response& response, absl::string_view data) {
    turn->OnData(response, data);
  };
  call.on_done = [turn](absl::Status status, const http::CurlLoop::Response& response) {
    turn->OnDone(std::move(status), response);
  };
  // Abortable before it starts: its end cannot come before.
  Started(task_id, [turn] { turn->Abort(); });
  turn->Started(http_->Add(std::move(call)));
}

void RemoteLink::AddMetadata(grpc::ClientContext* context) const {
  context->AddMetadata("a2a-version", "1.0");
  if (!credentials_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", credentials_.token));
  }
}

void RemoteLink::PrepareGrpc(grpc::ClientContext* context, const std::string& task_id,
                             absl::Time deadline) {
  AddMetadata(context);
  if (deadline != absl::InfiniteFuture()) context->set_deadline(absl::ToChronoTime(deadline));
  Started(task_id, [context] { context->TryCancel(); });
}

void RemoteLink::Poll(const std::string& task_id) {
  lf::a2a::v1::GetTaskRequest request;
  {
    absl::MutexLock lock(&mu_);
    auto it = tasks_by_id_.find(task_id);
    if (stopping_ || it == tasks_by_id_.end()) return;
    if (it->second.over) {  // cancelled meanwhile
      tasks_by_id_.erase(it);
      return;
    }
    request.set_id(it->second.remote_task_id);
  }
  if (!Begin()) return;
  request.set_tenant(interface_.tenant);
  if (stub_ != nullptr) {
    auto call = std::make_shared<UnaryCall<lf::a2a::v1::GetTaskRequest, Task>>();
    call->request = std::move(request);
    PrepareGrpc(&call->context, task_id, absl::Now() + kPollTimeout);
    stub_->async()->GetTask(&call->context, &call->request, &call->response,
                            [self = shared_from_this(), call, task_id](grpc::Status status) {
                              bool ended = false;
                              if (status.ok()) {
                                bool started = true;
                                StreamResponse event;
                                *event.mutable_task() = std::move(call->response);
                                ended = self->OnEvent(task_id, std::move(event), &started);
                              }
                              self->OnTurnDone(task_id, rpc::FromGrpcStatus(status), ended);
                              self->End();
                            });
    return;
  }
  // Over HTTP+JSON a GET of /tasks/{id} (no body); over JSON-RPC {"id": ...}
  // (0.3's TaskQueryParams too).
  const bool rest = interface_.binding == "HTTP+JSON";
  const std::string remote_id = request.id();
  if (rest) request.clear_tenant();
  http::CurlLoop::Request call =
      HttpCall("GetTask", rest ? std::string() : ProtoJson(request), /*stream=*/false, remote_id);
  call.timeout = kPollTimeout;
  StartHttpTurn(task_id, std::move(call), Answer::kTask);
}

void RemoteLink::AssignGrpc(const std::string& task_id, SendMessageRequest request,
                            absl::Time deadline, const std::string& traceparent,
                            const std::string& tracestate) {
  auto prepare = [&](grpc::ClientContext* context) {
    if (!traceparent.empty()) {
      context->AddMetadata(std::string(trace::kTraceparentKey), traceparent);
      if (!tracestate.empty()) {
        context->AddMetadata(std::string(trace::kTracestateKey), tracestate);
      }
    }
    PrepareGrpc(context, task_id, deadline);
  };
  if (streaming_) {
    auto* turn = new StreamTurn(shared_from_this(), task_id, std::move(request));
    prepare(turn->context());
    turn->Begin();
    return;
  }
  // SendMessage: the answer is the task as its turn ended (or as it is, to
  // be polled).
  auto call = std::make_shared<UnaryCall<SendMessageRequest, lf::a2a::v1::SendMessageResponse>>();
  call->request = std::move(request);
  prepare(&call->context);
  stub_->async()->SendMessage(
      &call->context, &call->request, &call->response,
      [self = shared_from_this(), call, task_id](grpc::Status status) {
        bool ended = false;
        if (status.ok()) {
          bool started = false;
          StreamResponse event;
          if (call->response.has_message()) {
            *event.mutable_message() = std::move(*call->response.mutable_message());
          } else {
            *event.mutable_task() = std::move(*call->response.mutable_task());
          }
          ended = self->OnEvent(task_id, std::move(event), &started);
        }
        self->OnTurnDone(task_id, rpc::FromGrpcStatus(status), ended);
        self->End();
      });
}
bool RemoteLink::OnEvent(const std::string& task_id, StreamResponse event, bool* started) {
  const bool first = !*started;
  *started = true;
  auto over = [&] {
    absl::MutexLock lock(&mu_);
    tasks_by_id_[task_id].over = true;
  };
  switch (event.payload_case()) {
    case StreamResponse::kTask: {
      Task task = std::move(*event.mutable_task());
      const TaskState state = task.status().state();
      const bool final = IsTerminalState(state) || IsInterruptedState(state);
      bool follow_up;
      bool told;  // polled, and in the state last told
      {
        absl::MutexLock lock(&mu_);
        Mapping& mapping = tasks_by_id_[task_id];
        follow_up = !mapping.remote_task_id.empty();
        mapping.remote_task_id = task.id();
        mapping.remote_context_id = task.context_id();
        told = !streaming_ && !final && mapping.told == state;
        mapping.told = state;
      }
      // A stream's first event in a follow-up turn is the task as the message
      // found it, still waiting for input: the events after it tell the turn.
      if (streaming_ && follow_up && IsInterruptedState(state)) return false;
      if (told) return false;
      if (IsTerminalState(state)) over();
      if (final) {  // a blocking answer: what the turn made, then how it ended
        for (lf::a2a::v1::Artifact& artifact : *task.mutable_artifacts()) {
          StreamResponse update;
          *update.mutable_artifact_update()->mutable_artifact() = std::move(artifact);
          update.mutable_artifact_update()->set_last_chunk(true);
          Apply(task_id, std::move(update));
        }
      }
      if (state != lf::a2a::v1::TASK_STATE_SUBMITTED) {
        StreamResponse status;
        *status.mutable_status_update()->mutable_status() = std::move(*task.mutable_status());
        ClearIds(&status);
        Apply(task_id, std::move(status));
      }
      return final;
    }
    case StreamResponse::kMessage:
      if (first) {
        // A direct Message instead of a task: the mesh passes it on as one.
        ClearIds(&event);
        over();
        Apply(task_id, tasks::DirectReplyEvent(std::move(*event.mutable_message())));
        return true;
      }
      ClearIds(&event);
      Apply(task_id, std::move(event));
      return false;
    case StreamResponse::kStatusUpdate: {
      ClearIds(&event);
      const bool final = tasks::IsFinalEvent(event);
      if (IsTerminalState(event.status_update().status().state())) over();
      if (event.status_update().status().state() != lf::a2a::v1::TASK_STATE_SUBMITTED) {
        Apply(task_id, std::move(event));
      }
      return final;
    }
    case StreamResponse::kArtifactUpdate:
      ClearIds(&event);
      Apply(task_id, std::move(event));
      return false;
    case StreamResponse::PAYLOAD_NOT_SET:
      break;
  }
  return false;
}

void RemoteLink::OnTurnDone(const std::string& task_id, const absl::Status& status, bool ended) {
  absl::Time began = absl::Now();
  std::string trace_id;
  std::string stopped_why;  // the call was cancelled by Stop
  // Not streamed, answered with a task still under way: asked again later.
  std::optional<absl::Duration> poll;
  // Cancelled here while the call ran: that it ended first says nothing.
  bool over = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && status.code() == absl::StatusCode::kCancelled) stopped_why = stopped_why_;
    auto it = tasks_by_id_.find(task_id);
    if (it != tasks_by_id_.end()) {
      Mapping& mapping = it->second;
      began = mapping.began;
      trace_id = mapping.trace_id;
      mapping.abort = nullptr;
      if (status.ok() && !ended && !streaming_ && timers_ != nullptr && !stopping_ &&
          !mapping.over && !mapping.remote_task_id.empty()) {
        poll = mapping.poll_wait;
        mapping.poll_wait = std::min(mapping.poll_wait * 2, kLongestPoll);
      } else if (mapping.over || !ended) {
        over = mapping.over;
        tasks_by_id_.erase(it);
      }
    }
  }
  if (poll.has_value()) {
    called_(status, absl::Now() - began, trace_id);
    timers_->RunAfter(*poll, [self = shared_from_this(), task_id] { self->Poll(task_id); });
    return;
  }
  if (over && status.ok()) {  // cancelled here meanwhile: nothing to tell
    called_(status, absl::Now() - began, trace_id);
    return;
  }
  called_(
      status.ok() && !ended ? absl::DataLossError("the stream ended before the task did") : status,
      absl::Now() - began, trace_id);
  if (ended) return;
  if (!stopped_why.empty()) {
    Apply(task_id, Failure(stopped_why));
    return;
  }
  Apply(task_id,
        Failure(status.ok() ? absl::StrCat("the remote agent ", agent_id_, " (", url_,
                                           ") ended its stream before the task ended")
                            : absl::StrCat("the remote agent ", agent_id_, " (", url_,
                                           ") failed: ", absl::StatusCodeToString(status.code()),
                                           ": ", status.message())));
}

void RemoteLink::Cancel(const std::string& task_id) {
  std::string remote_id;
  {
    absl::MutexLock lock(&mu_);
    auto it = tasks_by_id_.find(task_id);
    if (it == tasks_by_id_.end()) return;
    remote_id = it->second.remote_task_id;
    if (!it->second.abort) {
      tasks_by_id_.erase(it);
    } else if (remote_id.empty()) {
      // Not started there yet: giving up the call is all there is to do.
      it->second.abort();
      return;
    } else {
      it->second.over = true;  // forgotten when its call ends
    }
  }
  if (remote_id.empty() || !Begin()) return;
  auto not_cancelled = [self = shared_from_this(), remote_id](const absl::Status& status) {
    if (!status.ok()) {
      A2AMESH_LOG(Info, "remote agent did not cancel its task")
          .With("agent", self->agent_id_)
          .With("remote_task", remote_id)
          .With("error", status);
    }
  };
  lf::a2a::v1::CancelTaskRequest request;
  request.set_tenant(interface_.tenant);
  request.set_id(remote_id);
  if (stub_ == nullptr) {
    // ({"id": ...}: 0.3's TaskIdParams too.)
    if (interface_.binding == "HTTP+JSON") request.clear_tenant();  // in the path
    http::CurlLoop::Request call =
        HttpCall("CancelTask", ProtoJson(request), /*stream=*/false, remote_id);
    call.timeout = absl::Seconds(10);
    auto error = std::make_shared<std::string>();  // the answer, kept to say what went wrong
    call.on_data = [error](const http::CurlLoop::Response&, absl::string_view data) {
      if (error->size() < 65536) error->append(data.data(), data.size());
    };
    call.on_done = [self = shared_from_this(), error, not_cancelled](
                       absl::Status status, const http::CurlLoop::Response& response) {
      rapidjson::Document answer;
      answer.Parse(error->data(), error->size());
      const bool refused =
          answer.HasParseError() || !answer.IsObject() || answer.HasMember("error");
      if (status.ok() && (response.status != 200 || refused)) {
        status = absl::UnavailableError(absl::StrCat("HTTP ", response.status, ": ", *error));
      }
      not_cancelled(status);
      self->End();
    };
    http_->Add(std::move(call));
    return;
  }
  auto call = std::make_shared<UnaryCall<lf::a2a::v1::CancelTaskRequest, Task>>();
  call->request = std::move(request);
  AddMetadata(&call->context);
  call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  stub_->async()->CancelTask(&call->context, &call->request, &call->response,
                             [self = shared_from_this(), call, not_cancelled](grpc::Status status) {
                               not_cancelled(rpc::FromGrpcStatus(status));
                               self->End();
                             });
}

void RemoteLink::Apply(const std::string& task_id, StreamResponse event) {
  absl::Status applied = tasks_.ApplyAgentEvent({agent_id_}, task_id, std::move(event));
  if (!applied.ok()) {
    A2AMESH_LOG(Debug, "remote agent event not applied")
        .With("agent", agent_id_)
        .With("task", task_id)
        .With("error", applied);
  }
}

struct RemoteAgents::Remote {
  RemoteAgentSpec spec;
  // In the catalog while its card answers.
  std::shared_ptr<catalog::LocalAgent> agent;
  // Every link it was registered with (one per registration), stopped with
  // the node.
  std::vector<std::shared_ptr<RemoteLink>> links;
  // The rest is guarded by RemoteAgents::mu_.
  // The card it is registered with (serialized), to see a new one.
  std::string card;
  // As it was last fetched, the id it was registered under and the
  // interface called.
  AgentCard last_card;
  std::string agent_id;
  RemoteInterface target;
  // Why it is out of routing.
  std::string last_error;
  // Calls in a row that did not reach the agent.
  int failures = 0;
  // The ETag last_card came with (sent as If-None-Match), and until when its
  // Cache-Control says it stays fresh (not fetched again before then while
  // in routing).
  std::string etag;
  absl::Time fresh_until = absl::InfinitePast();
  // No longer hosted: nothing registers it again.
  bool removed = false;
  // Held by a fetch and its registration, and while it is stopped.
  absl::Mutex refresh_mu;
};

std::vector<catalog::HostedRemoteAgent> RemoteAgents::Describe() const {
  std::vector<catalog::HostedRemoteAgent> hosted;
  absl::MutexLock lock(&mu_);
  for (const auto& remote : remotes_) {
    catalog::HostedRemoteAgent& agent = hosted.emplace_back();
    agent.agent_id = !remote->agent_id.empty()        ? remote->agent_id
                     : !remote->spec.agent_id.empty() ? remote->spec.agent_id
                                                      : remote->spec.card_url;
    agent.card = remote->last_card;
    agent.remote.set_card_url(remote->spec.card_url);
    agent.remote.set_binding(remote->target.binding);
    agent.remote.set_url(remote->target.url);
    agent.remote.set_protocol_version(remote->target.version);
    agent.remote.set_failures(remote->failures);
    agent.in_routing = remote->agent != nullptr;
    if (!agent.in_routing) {
      agent.remote.set_error(remote->last_error.empty() ? "its card was not fetched yet"
                                                        : remote->last_error);
    }
  }
  return hosted;
}

RemoteAgents::RemoteAgents(RemoteAgentsOptions options, catalog::AgentCatalog& catalog,
                           tasks::TaskManager& tasks)
    : options_(std::move(options)), catalog_(catalog), tasks_(tasks) {
  absl::MutexLock lock(&mu_);
  for (const RemoteAgentSpec& spec : options_.agents) {
    auto remote = std::make_shared<Remote>();
    remote->spec = spec;
    remotes_.push_back(std::move(remote));
  }
}

RemoteAgents::~RemoteAgents() { Shutdown(); }

void RemoteAgents::Shutdown() {
  std::vector<std::shared_ptr<Remote>> remotes;
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // An Add under way stops what it registered once it sees stopping_.
    auto no_adds = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return adding_ == 0; };
    mu_.Await(absl::Condition(&no_adds));
    remotes = remotes_;
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
  for (const auto& remote : remotes) Stop(*remote, "the node is stopping");
}

http::CurlLoop* RemoteAgents::Http() {
  absl::MutexLock lock(&http_mu_);
  if (http_ == nullptr) {
    if (absl::StatusOr<std::unique_ptr<http::CurlLoop>> loop = http::CurlLoop::Start(); loop.ok()) {
      http_ = std::move(loop).value();
    }
  }
  return http_.get();
}

void RemoteAgents::Start() {
  absl::MutexLock lock(&mu_);
  if (remotes_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void RemoteAgents::Loop() {
  auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
  while (true) {
    std::vector<std::shared_ptr<Remote>> remotes;
    {
      absl::MutexLock lock(&mu_);
      remotes = remotes_;
    }
    for (const auto& remote : remotes) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      (void)Refresh(*remote);
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.refresh)) return;
  }
}

absl::StatusOr<catalog::HostedRemoteAgent> RemoteAgents::Add(RemoteAgentSpec spec) {
  auto remote = std::make_shared<Remote>();
  remote->spec = std::move(spec);
  auto taken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (stopping_) return absl::UnavailableError("the node is stopping");
    for (const auto& other : remotes_) {
      if (other->spec.card_url == remote->spec.card_url) {
        return absl::AlreadyExistsError(
            absl::StrCat("the agent of ", remote->spec.card_url, " is hosted here already"));
      }
    }
    return absl::OkStatus();
  };
  {
    absl::MutexLock lock(&mu_);
    A2AMESH_RETURN_IF_ERROR(taken());
    ++adding_;
  }
  absl::Cleanup added = [this] {
    absl::MutexLock lock(&mu_);
    --adding_;
  };
  if (absl::Status registered = Refresh(*remote); !registered.ok()) {
    Stop(*remote, std::string(registered.message()));
    return registered;
  }
  absl::Status free;
  {
    absl::MutexLock lock(&mu_);
    free = taken();  // not added meanwhile
    if (free.ok()) {
      remotes_.push_back(remote);
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    }
  }
  if (!free.ok()) {
    Stop(*remote, std::string(free.message()));
    return free;
  }
  for (catalog::HostedRemoteAgent& hosted : Describe()) {
    if (hosted.remote.card_url() == remote->spec.card_url) return hosted;
  }
  return absl::InternalError("the agent just added is gone");
}

absl::Status RemoteAgents::Remove(const std::string& which) {
  std::shared_ptr<Remote> remote;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = remotes_.begin(); it != remotes_.end(); ++it) {
      if ((*it)->spec.card_url == which || (*it)->agent_id == which ||
          (*it)->spec.agent_id == which) {
        remote = *it;
        remotes_.erase(it);
        break;
      }
    }
    if (remote == nullptr) {
      std::vector<std::string> hosted;
      for (const auto& r : remotes_) {
        hosted.push_back(r->agent_id.empty() ? r->spec.card_url : r->agent_id);
      }
      return absl::NotFoundError(absl::StrCat(
          "no remote agent ", which, " is hosted by this node (it hosts ",
          hosted.empty() ? "none" : absl::StrJoin(hosted, ", "), "); give its id or card URL"));
    }
  }
  Stop(*remote, absl::StrCat("the remote agent ", which, " was removed from this node"));
  A2AMESH_LOG(Info, "remote agent removed").With("url", remote->spec.card_url);
  return absl::OkStatus();
}

void RemoteAgents::Stop(Remote& remote, const std::string& why) {
  absl::MutexLock refreshing(&remote.refresh_mu);  // no fetch registers it again
  std::shared_ptr<catalog::LocalAgent> agent;
  std::vector<std::shared_ptr<RemoteLink>> links;
  {
    absl::MutexLock lock(&mu_);
    agent = std::move(remote.agent);
    remote.agent = nullptr;
    remote.card.clear();
    remote.removed = true;
    links = remote.links;
  }
  if (agent != nullptr) {
    catalog_.Remove(*agent);
    tasks_.AgentDisconnected(agent->id(), why);
  }
  for (const auto& link : links) link->Stop(why);
}

absl::Status RemoteAgents::Refresh(Remote& remote) {
  absl::MutexLock refreshing(&remote.refresh_mu);
  std::string etag;  // of the card known, if any
  {
    absl::MutexLock lock(&mu_);
    if (remote.removed) return absl::CancelledError("removed");
    // Fresh by its Cache-Control: while it is in routing, its calls tell
    // whether it answers.
    if (remote.agent != nullptr && absl::Now() < remote.fresh_until) return absl::OkStatus();
    etag = remote.etag;
  }
  std::optional<absl::Duration> fresh;  // as its answer's Cache-Control says
  const std::string& url = remote.spec.card_url;
  RemoteCredentials credentials{remote.spec.token, remote.spec.ca_file, remote.spec.cert_file,
                                remote.spec.key_file};
  auto fetch_card = [&]() -> absl::StatusOr<AgentCard> {
    if (credentials.token.empty() && !remote.spec.token_file.empty()) {
      A2AMESH_ASSIGN_OR_RETURN(std::string token,
                               ReadWholeFile(remote.spec.token_file, "its token file"));
      credentials.token = std::string(absl::StripAsciiWhitespace(token));
      if (credentials.token.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("its token file ", remote.spec.token_file, " is empty"));
      }
    }
    http::FetchOptions fetch;
    fetch.url = url;
    fetch.protocols = "http,https";
    fetch.timeout = options_.timeout;
    fetch.bearer_token = credentials.token;
    fetch.ca_file = credentials.ca_file;
    fetch.cert_file = credentials.cert_file;
    fetch.key_file = credentials.key_file;
    fetch.if_none_match = etag;
    A2AMESH_ASSIGN_OR_RETURN(http::FetchResult result, http::Fetch(fetch));
    fresh = http::FreshFor(result.cache_control);
    if (result.status == 304 && !etag.empty()) {
      if (!result.etag.empty()) etag = result.etag;
      absl::MutexLock lock(&mu_);
      return remote.last_card;  // not modified: checked when it came
    }
    etag = result.etag;
    if (result.status != 200) {
      return absl::UnavailableError(absl::StrCat(url, ": HTTP ", result.status));
    }
    // A 0.3 card comes translated: its interfaces say 0.3.
    absl::StatusOr<AgentCard> card = a2a::legacy::ParseAgentCard(result.body);
    if (!card.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(url, ": ", card.status().message()));
    }
    A2AMESH_RETURN_IF_ERROR(catalog::ValidateAgentCard(*card, "card"));
    return card;
  };
  absl::StatusOr<AgentCard> card = fetch_card();
  absl::StatusOr<RemoteInterface> target =
      card.ok() ? ChooseRemoteInterface(*card, options_.binding, http::CurlLoop::Available())
                : absl::StatusOr<RemoteInterface>(card.status());
  std::shared_ptr<catalog::LocalAgent> leaving;
  if (!target.ok()) {
    const std::string error(target.status().message());
    bool news;
    {
      absl::MutexLock lock(&mu_);
      leaving = std::move(remote.agent);
      remote.agent = nullptr;
      remote.card.clear();
      news = leaving != nullptr || error != remote.last_error;
      remote.last_error = error;
    }
    if (news) {
      A2AMESH_LOG(Warning, "remote agent unavailable; out of routing until its card answers")
          .With("url", url)
          .With("error", error);
    }
    if (leaving != nullptr) {
      catalog_.Remove(*leaving);
      tasks_.AgentDisconnected(leaving->id(), absl::StrCat("the remote agent's card (", url,
                                                           ") does not answer: ", error));
    }
    return target.status();
  }
  // (A new token registers the agent again: its calls use it from then on.)
  const std::string serialized = absl::StrCat(card->SerializeAsString(), credentials.token);
  std::shared_ptr<catalog::LocalAgent> replaced;
  {
    absl::MutexLock lock(&mu_);
    remote.last_card = *card;
    remote.target = *target;
    remote.etag = etag;
    remote.fresh_until =
        fresh.has_value() ? absl::Now() + std::min(*fresh, kMaxFresh) : absl::InfinitePast();
    if (remote.agent != nullptr && remote.card == serialized) {
      return absl::OkStatus();  // as registered
    }
    replaced = remote.agent;
  }
  const std::string id =
      remote.spec.agent_id.empty() ? AgentIdFromName(card->name()) : remote.spec.agent_id;
  // Any A2A agent may answer with a direct Message.
  AgentCard hosted = *card;
  if (!catalog::DeclaresExtension(hosted, kDirectRepliesExtension)) {
    hosted.mutable_capabilities()->add_extensions()->set_uri(kDirectRepliesExtension);
  }
  std::shared_ptr<grpc::Channel> channel;
  if (target->binding == "GRPC") {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials =
        GrpcCredentials(*target, credentials);
    if (!channel_credentials.ok()) {
      absl::MutexLock lock(&mu_);
      remote.last_error = std::string(channel_credentials.status().message());
      return channel_credentials.status();
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    channel = grpc::CreateCustomChannel(target->url, *channel_credentials, args);
  }  // (The link's calls end before this object does: Stop.)
  auto registered = std::make_shared<const catalog::LocalAgent*>(nullptr);
  const bool over_http = target->binding != "GRPC";
  http::CurlLoop* http = over_http ? Http() : nullptr;
  if (over_http && http == nullptr) {
    return absl::UnimplementedError("this meshd cannot make HTTP calls (built without libcurl)");
  }
  auto link = std::make_shared<RemoteLink>(
      id, url, *target, card->capabilities().streaming(), credentials, std::move(channel), http,
      tasks_, options_.timers,
      [this, &remote, registered, id](const absl::Status& status, absl::Duration duration,
                                      absl::string_view trace_id) {
        Called(remote, id, *registered, status, duration, trace_id);
      });
  v1::RemoteEndpoint endpoint;
  endpoint.set_card_url(url);
  endpoint.set_binding(target->binding);
  endpoint.set_url(target->url);
  endpoint.set_protocol_version(target->version);
  auto agent = std::make_shared<catalog::LocalAgent>(
      id, std::move(hosted),
      remote.spec.max_concurrency > 0 ? remote.spec.max_concurrency : options_.max_concurrency,
      link, absl::Now(), std::move(endpoint));
  *registered = agent.get();
  // A new card replaces the old registration; tasks under way keep their call.
  if (replaced != nullptr) catalog_.Remove(*replaced);
  if (absl::Status added = catalog_.Add({agent}); !added.ok()) {
    A2AMESH_LOG(Warning, "remote agent not registered")
        .With("url", url)
        .With("agent", id)
        .With("error", added);
    absl::MutexLock lock(&mu_);
    remote.agent = nullptr;
    remote.card.clear();
    remote.last_error = std::string(added.message());
    return added;
  }
  {
    absl::MutexLock lock(&mu_);
    remote.agent = agent;
    remote.agent_id = id;
    remote.links.push_back(link);
    remote.card = serialized;
    remote.failures = 0;
    remote.last_error.clear();
  }
  tasks_.AgentConnected(id);
  A2AMESH_LOG(Info, replaced != nullptr ? "remote agent's card changed; registered again"
                                        : "remote agent registered")
      .With("agent", id)
      .With("url", url)
      .With("binding", target->binding)
      .With("version", target->version)
      .With("endpoint", target->url)
      .With("skills", card->skills_size());
  return absl::OkStatus();
}

void RemoteAgents::Called(Remote& remote, const std::string& agent_id,
                          const catalog::LocalAgent* agent, const absl::Status& status,
                          absl::Duration duration, absl::string_view trace_id) {
  const bool reached = status.code() != absl::StatusCode::kUnavailable;
  const char* outcome = status.ok()                                     ? "ok"
                        : status.code() == absl::StatusCode::kCancelled ? "cancelled"
                        : reached                                       ? "failed"
                                                                        : "unreachable";
  // (`agent` may be gone, replaced by a new card: compared, never read.)
  options_.telemetry->RemoteAgentCall(agent_id, outcome, duration, trace_id);
  // A call given up here (CANCELLED) says nothing of the agent.
  if (status.code() == absl::StatusCode::kCancelled) return;
  std::shared_ptr<catalog::LocalAgent> leaving;
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    if (reached) {
      remote.failures = 0;
      return;
    }
    // Fresh or not, its card is asked at the next refresh: if it does not
    // answer either, the agent leaves routing then.
    remote.fresh_until = absl::InfinitePast();
    const int failures = ++remote.failures;
    // Only the registration the call was made under, once.
    if (options_.max_failures > 0 && failures >= options_.max_failures && agent != nullptr &&
        remote.agent.get() == agent) {
      leaving = std::move(remote.agent);
      remote.agent = nullptr;
      remote.card.clear();
      why =
          absl::StrCat("the remote agent ", leaving->id(), " (", remote.spec.card_url, ") failed ",
                       failures, " calls in a row; out of routing until its card answers again");
      remote.last_error = why;
    }
  }
  if (leaving == nullptr) return;
  A2AMESH_LOG(Warning, "remote agent unreachable").With("agent", leaving->id()).With("why", why);
  catalog_.Remove(*leaving);
  tasks_.AgentDisconnected(leaving->id(), why);
}

}  // namespace a2amesh::agenthost
