#include "agenthost/agent_host_service.h"

#include <fnmatch.h>

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "catalog/card_validation.h"
#include "catalog/remote_catalog.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "rpc/batching.h"
#include "rpc/grpc_status.h"
#include "rpc/unary.h"
#include "rpc/write_queue.h"
#include "tasks/task_state.h"

namespace a2amesh::agenthost {
namespace {

// An agent that stops reading its stream is cut off rather than allowed to
// grow the node's memory without bound.
constexpr size_t kMaxOutbox = 10000;

// Whether `principal` has a role "<kind>GLOB" (e.g. "agent:echo-*") matching
// `name`.
bool Allows(const security::Principal& principal, absl::string_view kind, const std::string& name) {
  for (const std::string& role : principal.roles) {
    if (absl::StartsWith(role, kind) && fnmatch(role.c_str() + kind.size(), name.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

// A gRPC peer ("ipv4:10.0.0.7:51234", "ipv6:[::1]:4000") without its port.
std::string ClientAddress(absl::string_view peer) {
  const size_t colon = peer.rfind(':');
  const size_t scheme = peer.find(':');
  return std::string(colon != absl::string_view::npos && colon > scheme ? peer.substr(0, colon)
                                                                        : peer);
}

// The patterns of kind `kind` a principal has, for an error message.
std::string Allowance(const security::Principal& principal, absl::string_view kind) {
  std::vector<std::string> patterns;
  for (const std::string& role : principal.roles) {
    if (absl::StartsWith(role, kind)) patterns.push_back(role.substr(kind.size()));
  }
  return patterns.empty() ? absl::StrCat("none: give it \"", kind, "...\" roles")
                          : absl::StrJoin(patterns, ", ");
}

}  // namespace

// The state of one agent stream. Shared by the gRPC reactor (until OnDone) and
// by the catalog's LocalAgents, which send through it. Writes go through a
// WriteQueue; reads are started through it too, so that no read follows Finish.
class AgentHostService::Session final : public catalog::AgentLink,
                                        public std::enable_shared_from_this<Session> {
 public:
  using ReactorBase = grpc::ServerBidiReactor<v1::AgentToNode, v1::NodeToAgent>;

  Session(AgentHostService& service, std::string peer, security::Principal principal)
      : service_(service),
        peer_(std::move(peer)),
        address_(ClientAddress(peer_)),
        principal_(std::move(principal)),
        writes_(kMaxOutbox) {
    Touch();
  }

  void Start(ReactorBase* reactor);
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok) {
    writes_.OnWriteDone(ok,
                        grpc::Status(grpc::StatusCode::UNAVAILABLE, "write to the agent failed"));
  }
  void OnCancel() {
    Close(grpc::Status(grpc::StatusCode::CANCELLED, ""), "the stream was cancelled");
  }
  void Shutdown() {
    Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the node is shutting down"),
          "the node is shutting down");
  }
  void OnDone();

  void Send(v1::NodeToAgent message) override;

 private:
  void ReadNext();
  void Handle(v1::AgentToNode& message);
  void Register(const v1::RegisterRequest& request);
  absl::Status CheckRegistration(const v1::RegisterRequest& request,
                                 std::vector<std::shared_ptr<catalog::LocalAgent>>* agents);
  // The policy's decision on registering agent `id` with `card`: each of its
  // skills (or the agent alone, when it declares none) must be allowed.
  absl::Status AuthorizeRegistration(governance::Governor& governor, const std::string& id,
                                     const lf::a2a::v1::AgentCard& card);
  void Update(v1::TaskUpdate& update);
  void Delegate(const v1::DelegateRequest& request);
  absl::Status StartDelegation(const v1::DelegateRequest& request);
  void CancelDelegation(const std::string& request_id);

  friend class DelegationSink;
  // A subtask ended (or failed to start): forget it.
  void DelegationDone(const std::string& request_id);
  void SendDelegationError(const std::string& request_id, const absl::Status& status);
  void Close(const grpc::Status& status, const std::string& reason);
  void Teardown(const std::string& reason);
  void ArmLeaseCheck();
  void CheckLease();
  void Touch() {
    last_seen_ms_.store(absl::ToUnixMillis(service_.clock_.Now()), std::memory_order_relaxed);
  }

  AgentHostService& service_;
  const std::string peer_;
  // peer_ without its port: what --max-agents-per-address counts by.
  const std::string address_;
  // Who the stream proved to be (anonymous with auth off).
  const security::Principal principal_;
  std::atomic<int64_t> last_seen_ms_{0};
  std::atomic<bool> overflowed_{false};
  rpc::WriteQueue<ReactorBase, v1::NodeToAgent> writes_;

  // Touched only by the read path (one read at a time).
  v1::AgentToNode in_;
  bool registered_ = false;
  std::vector<std::string> agent_ids_;

  absl::Mutex mu_;
  std::vector<std::shared_ptr<catalog::LocalAgent>> agents_ ABSL_GUARDED_BY(mu_);
  bool torn_down_ ABSL_GUARDED_BY(mu_) = false;
  // Agents counted for address_ (ReserveAddress), released at teardown.
  int reserved_ ABSL_GUARDED_BY(mu_) = 0;
  // Open delegations: request id -> the subtask's id (once known).
  absl::flat_hash_map<std::string, std::shared_ptr<DelegationSink>> delegations_
      ABSL_GUARDED_BY(mu_);
};

// Relays a subtask's events to the agent that delegated it, as DelegationEvents
// on its stream.
class AgentHostService::DelegationSink final : public tasks::TaskSubscriber {
 public:
  DelegationSink(std::weak_ptr<Session> session, std::string request_id)
      : session_(std::move(session)), request_id_(std::move(request_id)) {}

  void OnEvent(const tasks::TaskEvent& e) override {
    {
      absl::MutexLock lock(&mu_);
      if (task_id_.empty()) {
        task_id_ = e.task_id;
      }
    }
    std::shared_ptr<Session> session = session_.lock();
    if (session == nullptr) {
      return;
    }
    v1::NodeToAgent message;
    message.mutable_delegation_event()->set_request_id(request_id_);
    *message.mutable_delegation_event()->mutable_event() = e.event;
    session->Send(std::move(message));
    if (tasks::IsFinalEvent(e.event) || (e.event.has_task() && IsTerminalState(e.state))) {
      session->DelegationDone(request_id_);
    }
  }
  void OnError(const absl::Status& status) override {
    if (std::shared_ptr<Session> session = session_.lock()) {
      session->SendDelegationError(request_id_, status);
      session->DelegationDone(request_id_);
    }
  }
  std::string task_id() const {
    absl::MutexLock lock(&mu_);
    return task_id_;
  }

 private:
  const std::weak_ptr<Session> session_;
  const std::string request_id_;
  mutable absl::Mutex mu_;
  std::string task_id_ ABSL_GUARDED_BY(mu_);
};

class AgentHostService::Reactor final : public Session::ReactorBase {
 public:
  explicit Reactor(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  void OnReadDone(bool ok) override { session_->OnReadDone(ok); }
  void OnWriteDone(bool ok) override { session_->OnWriteDone(ok); }
  void OnCancel() override { session_->OnCancel(); }
  void OnDone() override {
    session_->OnDone();
    delete this;
  }

 private:
  const std::shared_ptr<Session> session_;
};

void AgentHostService::Session::Start(ReactorBase* reactor) {
  writes_.Attach(reactor);
  ReadNext();
  ArmLeaseCheck();
}

void AgentHostService::Session::ReadNext() {
  writes_.WithOpenReactor([this](ReactorBase* reactor) { reactor->StartRead(&in_); });
}

void AgentHostService::Session::OnReadDone(bool ok) {
  if (!ok) {
    Close(grpc::Status::OK, "the agent closed its stream");
    return;
  }
  Touch();
  Handle(in_);
  ReadNext();
}

AgentHostService::~AgentHostService() {
  // The last OnDone left the map before the server's shutdown returned, an
  // order kept inside gRPC: taking the lock and acquiring the count (which
  // each OnDone releases last) state it.
  open_streams_.load(std::memory_order_acquire);
  absl::MutexLock lock(&mu_);
  sessions_.clear();
}

void AgentHostService::Session::OnDone() {
  writes_.Detach();
  Teardown("the stream ended");
  {
    absl::MutexLock lock(&service_.mu_);
    service_.sessions_.erase(this);
  }
  service_.open_streams_.fetch_sub(1, std::memory_order_release);  // see ~AgentHostService
}

void AgentHostService::Session::Send(v1::NodeToAgent message) {
  if (writes_.Write(std::move(message)) != decltype(writes_)::Result::kFull ||
      overflowed_.exchange(true)) {
    return;
  }
  // Callers hold no lock (task effects run after their task's lock), so the
  // stream closes here and now.
  Close(grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("the agent left ", kMaxOutbox, " messages unread; closing its stream")),
        "the agent stopped reading its stream");
}

void AgentHostService::Session::Close(const grpc::Status& status, const std::string& reason) {
  // Agents leave the catalog before the stream ends, so that an agent that
  // sees its stream end can register again at once.
  Teardown(reason);
  writes_.Finish(status);
}

void AgentHostService::Session::Teardown(const std::string& reason) {
  std::vector<std::shared_ptr<catalog::LocalAgent>> agents;
  int reserved = 0;
  {
    absl::MutexLock lock(&mu_);
    if (torn_down_) {
      return;
    }
    torn_down_ = true;
    agents.swap(agents_);
    reserved = std::exchange(reserved_, 0);
  }
  if (reserved > 0) service_.ReleaseAddress(address_, reserved);
  std::vector<std::string> ids;
  for (const auto& agent : agents) {
    service_.catalog_.Remove(*agent);
    ids.push_back(agent->id());
  }
  if (!principal_.anonymous()) service_.Release(ids);
  for (const auto& agent : agents) {
    A2AMESH_LOG(Info, "agent left").With("agent", agent->id()).With("reason", reason);
    service_.tasks_.AgentDisconnected(agent->id(), reason);
  }
}

void AgentHostService::Session::ArmLeaseCheck() {
  std::weak_ptr<Session> weak = weak_from_this();
  service_.timers_.RunAfter(service_.options_.lease / 2, [weak] {
    if (std::shared_ptr<Session> self = weak.lock()) {
      self->CheckLease();
    }
  });
}

void AgentHostService::Session::CheckLease() {
  if (writes_.finishing()) {
    return;
  }
  absl::Duration silent =
      service_.clock_.Now() - absl::FromUnixMillis(last_seen_ms_.load(std::memory_order_relaxed));
  if (silent > service_.options_.lease) {
    std::string why =
        absl::StrCat("no message from the agent for ", absl::FormatDuration(silent),
                     ", past its lease of ", absl::FormatDuration(service_.options_.lease));
    Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, why + "; send heartbeats"), why);
    return;
  }
  ArmLeaseCheck();
}

void AgentHostService::Session::Handle(v1::AgentToNode& message) {
  switch (message.msg_case()) {
    case v1::AgentToNode::kRegister:
      Register(message.register_());
      return;
    case v1::AgentToNode::kHeartbeat: {
      v1::NodeToAgent reply;
      reply.mutable_heartbeat()->set_unix_ms(absl::ToUnixMillis(service_.clock_.Now()));
      Send(std::move(reply));
      return;
    }
    default:
      break;
  }
  if (!registered_) {
    Close(rpc::ToGrpcStatus(absl::FailedPreconditionError(
              "the first message on AgentHost.Connect must be a RegisterRequest")),
          "it did not register first");
    return;
  }
  switch (message.msg_case()) {
    case v1::AgentToNode::kUpdate:
      Update(*message.mutable_update());
      return;
    case v1::AgentToNode::kReply: {
      // Inside the node a reply is the task's final event (tasks/task_state.h).
      v1::TaskUpdate update;
      update.set_task_id(message.reply().task_id());
      *update.mutable_event() =
          tasks::DirectReplyEvent(std::move(*message.mutable_reply()->mutable_message()));
      Update(update);
      return;
    }
    case v1::AgentToNode::kDelegate:
      Delegate(message.delegate());
      return;
    case v1::AgentToNode::kCancelDelegation:
      CancelDelegation(message.cancel_delegation().request_id());
      return;
    case v1::AgentToNode::kBatch:
      for (v1::AgentToNode& inner : *message.mutable_batch()->mutable_messages()) {
        if (inner.has_register_() || inner.has_batch()) {
          Close(rpc::ToGrpcStatus(InvalidFieldError(
                    "batch.messages", "must not hold a RegisterRequest or another batch")),
                "it sent a bad batch");
          return;
        }
        Handle(inner);
      }
      return;
    default:
      Close(rpc::ToGrpcStatus(InvalidFieldError("msg", "is empty or of an unknown kind")),
            "it sent an unknown message");
      return;
  }
}

absl::Status AgentHostService::Session::CheckRegistration(
    const v1::RegisterRequest& request, std::vector<std::shared_ptr<catalog::LocalAgent>>* agents) {
  const AgentHostOptions& options = service_.options_;
  if (request.agents().empty()) {
    return InvalidFieldError("agents", "needs at least one agent registration");
  }
  const int per_connection = service_.options_.max_agents_per_connection;
  if (per_connection > 0 && request.agents_size() > per_connection) {
    return absl::ResourceExhaustedError(
        absl::StrCat("agents: ", request.agents_size(),
                     " agents on one stream, over the --max-agents-per-connection limit of ",
                     per_connection, "; open another stream for more"));
  }
  absl::flat_hash_set<std::string> ids;
  for (int i = 0; i < request.agents_size(); ++i) {
    const v1::AgentRegistration& reg = request.agents(i);
    std::string field = absl::StrCat("agents[", i, "]");
    if (!reg.has_card()) {
      return InvalidFieldError(field + ".card", "is required");
    }
    size_t card_bytes = reg.card().ByteSizeLong();
    if (static_cast<int64_t>(card_bytes) > options.max_card_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(field, ".card is ", card_bytes,
                       " bytes, over the --max-card-bytes limit of ", options.max_card_bytes));
    }
    absl::Status valid = catalog::ValidateAgentCard(reg.card(), field + ".card");
    if (!valid.ok()) {
      return valid;
    }
    std::string id = reg.agent_id().empty() ? AgentIdFromName(reg.card().name()) : reg.agent_id();
    if (absl::Status id_ok = ValidateAgentId(id); !id_ok.ok()) {
      return InvalidFieldError(field + ".agent_id", id_ok.message());
    }
    if (!ids.insert(id).second) {
      return InvalidFieldError(field + ".agent_id",
                               absl::StrCat("'", id, "' appears twice in this registration"));
    }
    if (!principal_.anonymous()) {
      if (!Allows(principal_, "agent:", id)) {
        return absl::PermissionDeniedError(absl::StrCat(
            field, ".agent_id: ", principal_.subject, " may not register agent '", id,
            "' (its credential allows agent ids ", Allowance(principal_, "agent:"), ")"));
      }
      for (const lf::a2a::v1::AgentSkill& skill : reg.card().skills()) {
        if (!Allows(principal_, "skill:", skill.id())) {
          return absl::PermissionDeniedError(absl::StrCat(
              field, ".card.skills: ", principal_.subject, " may not register skill '", skill.id(),
              "' (its credential allows skills ", Allowance(principal_, "skill:"), ")"));
        }
      }
    }
    if (governance::Governor* governor = options.governor;
        governor != nullptr && governor->active()) {
      if (absl::Status allowed = AuthorizeRegistration(*governor, id, reg.card()); !allowed.ok()) {
        return absl::PermissionDeniedError(absl::StrCat(field, ": ", allowed.message()));
      }
    }
    int max = reg.max_concurrency() == 0 ? options.default_max_concurrency
                                         : static_cast<int>(reg.max_concurrency());
    if (reg.max_concurrency() > static_cast<uint32_t>(options.max_concurrency_limit)) {
      return InvalidFieldError(field + ".max_concurrency",
                               absl::StrCat(reg.max_concurrency(), " is over the node's limit of ",
                                            options.max_concurrency_limit));
    }
    agents->push_back(std::make_shared<catalog::LocalAgent>(id, reg.card(), max, shared_from_this(),
                                                            service_.clock_.Now()));
  }
  return absl::OkStatus();
}

absl::Status AgentHostService::Session::AuthorizeRegistration(governance::Governor& governor,
                                                              const std::string& id,
                                                              const lf::a2a::v1::AgentCard& card) {
  governance::Caller caller;
  caller.principal = principal_;
  caller.peer = peer_;
  governance::Resource resource;
  resource.agent_id = id;
  resource.node_id = service_.options_.node_id;
  if (card.skills().empty()) {
    return governor.Authorize(caller, governance::Action::kRegisterAgent, resource);
  }
  for (const lf::a2a::v1::AgentSkill& skill : card.skills()) {
    resource.skill = skill.id();
    resource.tags = &skill.tags();
    A2AMESH_RETURN_IF_ERROR(
        governor.Authorize(caller, governance::Action::kRegisterAgent, resource));
  }
  return absl::OkStatus();
}

void AgentHostService::Session::Register(const v1::RegisterRequest& request) {
  if (registered_) {
    Close(rpc::ToGrpcStatus(absl::FailedPreconditionError(
              "this stream already registered its agents; open another stream for more")),
          "it registered twice");
    return;
  }
  std::vector<std::shared_ptr<catalog::LocalAgent>> agents;
  absl::Status status = CheckRegistration(request, &agents);
  std::vector<std::string> ids;
  for (const auto& agent : agents) ids.push_back(agent->id());
  bool claimed = false;
  bool reserved = false;
  if (status.ok()) {
    status = service_.ReserveAddress(address_, static_cast<int>(agents.size()));
    reserved = status.ok();
  }
  if (status.ok() && !principal_.anonymous()) {
    status = service_.Claim(ids, principal_.subject);
    claimed = status.ok();
  }
  if (status.ok()) {
    status = service_.catalog_.Add(agents);
  }
  if (!status.ok() && claimed) service_.Release(ids);
  if (!status.ok() && reserved) service_.ReleaseAddress(address_, static_cast<int>(agents.size()));
  if (!status.ok()) {
    A2AMESH_LOG(Warning, "agent registration refused").With("peer", peer_).With("error", status);
    Close(rpc::ToGrpcStatus(status), "its registration was refused");
    return;
  }
  registered_ = true;
  if (request.batches()) {
    // Several messages that wait for the stream go out as one.
    writes_.SetCoalesce([](std::deque<v1::NodeToAgent>& queue, v1::NodeToAgent* merged) {
      return rpc::CoalesceIntoBatch(queue, merged, [](const v1::NodeToAgent& message) {
        return !message.has_registered() && !message.has_batch();
      });
    });
  }
  v1::NodeToAgent reply;
  auto* registered = reply.mutable_registered();
  registered->set_node_id(service_.options_.node_id);
  registered->set_batches(true);
  registered->set_lease_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(service_.options_.lease)));
  for (const auto& agent : agents) {
    agent_ids_.push_back(agent->id());
    auto* a = registered->add_agents();
    a->set_agent_id(agent->id());
    a->set_max_concurrency(static_cast<uint32_t>(agent->max_concurrency()));
  }
  bool closed;
  {
    absl::MutexLock lock(&mu_);
    closed = torn_down_;
    if (!closed) {
      agents_ = agents;
      reserved_ = static_cast<int>(agents.size());
    }
  }
  if (closed) {
    // The stream was torn down while we registered: undo.
    for (const auto& agent : agents) {
      service_.catalog_.Remove(*agent);
    }
    if (!principal_.anonymous()) service_.Release(ids);
    service_.ReleaseAddress(address_, static_cast<int>(agents.size()));
    return;
  }
  Send(std::move(reply));
  for (const auto& agent : agents) {
    std::vector<std::string> skills;
    for (const auto& skill : agent->card().skills()) skills.push_back(skill.id());
    A2AMESH_LOG(Info, "agent registered")
        .With("agent", agent->id())
        .With("skills", absl::StrJoin(skills, ","))
        .With("max_concurrency", agent->max_concurrency())
        .With("peer", peer_);
    service_.tasks_.AgentConnected(agent->id());
  }
}

void AgentHostService::Session::SendDelegationError(const std::string& request_id,
                                                    const absl::Status& status) {
  v1::NodeToAgent reply;
  auto* event = reply.mutable_delegation_event();
  event->set_request_id(request_id);
  event->mutable_error()->set_code(static_cast<int>(status.code()));
  event->mutable_error()->set_message(std::string(status.message()));
  Send(std::move(reply));
}

void AgentHostService::Session::Delegate(const v1::DelegateRequest& request) {
  if (absl::Status status = StartDelegation(request); !status.ok()) {
    A2AMESH_LOG(Debug, "delegation refused")
        .With("parent", request.parent_task_id())
        .With("error", status);
    SendDelegationError(request.request_id(), status);
    DelegationDone(request.request_id());
  }
}

absl::Status AgentHostService::Session::StartDelegation(const v1::DelegateRequest& request) {
  if (request.request_id().empty()) {
    return InvalidFieldError("delegate.request_id", "is required");
  }
  if (!request.has_message()) {
    return InvalidFieldError("delegate.message", "is required");
  }
  if (!request.message().task_id().empty()) {
    return InvalidFieldError("delegate.message.task_id",
                             "must be empty: a delegation starts a new subtask");
  }
  absl::StatusOr<v1::TaskInfo> parent = service_.tasks_.ActiveInfo(request.parent_task_id());
  if (!parent.ok()) {
    return absl::NotFoundError(absl::StrCat("delegate.parent_task_id: task ",
                                            request.parent_task_id(),
                                            " is not running on this node"));
  }
  if (std::find(agent_ids_.begin(), agent_ids_.end(), parent->agent_id()) == agent_ids_.end()) {
    return absl::PermissionDeniedError(absl::StrCat("delegate.parent_task_id: task ",
                                                    request.parent_task_id(),
                                                    " is not run by this stream's agents"));
  }
  lf::a2a::v1::SendMessageRequest subtask;
  subtask.set_tenant(request.selector().agent_id());
  *subtask.mutable_message() = request.message();
  lf::a2a::v1::Message* message = subtask.mutable_message();
  if (message->message_id().empty()) {
    message->set_message_id(NewUuid());
  }
  if (message->role() == lf::a2a::v1::ROLE_UNSPECIFIED) {
    message->set_role(lf::a2a::v1::ROLE_USER);  // the delegating agent is the subtask's client
  }
  auto& fields = *subtask.mutable_metadata()->mutable_fields();
  if (!request.selector().skill().empty()) {
    fields["a2amesh/skill"].set_string_value(request.selector().skill());
  }
  if (!request.selector().tags().empty()) {
    auto* tags = fields["a2amesh/tags"].mutable_list_value();
    for (const std::string& tag : request.selector().tags()) {
      tags->add_values()->set_string_value(tag);
    }
  }
  *subtask.mutable_configuration()->mutable_accepted_output_modes() =
      request.selector().accepted_output_modes();

  routing::DispatchContext context;
  // The subtask is its tree's: it belongs to (and is bounded by) the
  // principal that started the tree.
  context.principal = parent->principal();
  context.principal_roles.assign(parent->principal_roles().begin(),
                                 parent->principal_roles().end());
  context.principal_method = parent->principal_method();
  context.hops.assign(parent->hops().begin(), parent->hops().end());
  context.hops.push_back(catalog::QualifiedAgentId(parent->agent_id(), service_.options_.node_id));
  context.parent_task_id = request.parent_task_id();
  // The subtask's spans are children of the agent's context (its turn's,
  // unless it sent a span of its own).
  if (std::optional<trace::SpanContext> trace =
          trace::ParseTraceContext(request.traceparent(), request.tracestate())) {
    context.trace = *std::move(trace);
  }
  if (parent->deadline_unix_ms() > 0) {
    context.deadline = absl::FromUnixMillis(parent->deadline_unix_ms());
  }
  auto sink = std::make_shared<DelegationSink>(weak_from_this(), request.request_id());
  {
    absl::MutexLock lock(&mu_);
    if (!delegations_.emplace(request.request_id(), sink).second) {
      return InvalidFieldError("delegate.request_id",
                               absl::StrCat("'", request.request_id(), "' is already in use"));
    }
  }
  std::optional<governance::Governor::TaskAdmission> admission;
  if (governance::Governor* governor = service_.options_.governor;
      governor != nullptr && governor->active()) {
    governance::Caller caller;
    caller.principal.subject = parent->principal().empty() ? "anonymous" : parent->principal();
    caller.principal.roles = context.principal_roles;
    caller.principal.method = parent->principal().empty() ? "none" : parent->principal_method();
    caller.agent = parent->agent_id();
    caller.peer = peer_;
    caller.parent_task_id = request.parent_task_id();
    if (context.trace.valid()) caller.trace_id = context.trace.TraceIdHex();
    context.admission = &admission.emplace(*governor, std::move(caller), governance::Action::kSend);
  }
  return service_.dispatcher_.Send(subtask, context, sink);
}

void AgentHostService::Session::CancelDelegation(const std::string& request_id) {
  std::shared_ptr<DelegationSink> sink;
  {
    absl::MutexLock lock(&mu_);
    auto it = delegations_.find(request_id);
    if (it == delegations_.end()) {
      return;
    }
    sink = it->second;
  }
  std::string task_id = sink->task_id();
  if (!task_id.empty()) {
    service_.tasks_.CancelActive(task_id, "the delegating agent canceled it");
  }
}

void AgentHostService::Session::DelegationDone(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  delegations_.erase(request_id);
}

void AgentHostService::Session::Update(v1::TaskUpdate& update) {
  absl::Status status;
  size_t bytes = update.event().ByteSizeLong();
  if (static_cast<int64_t>(bytes) > service_.options_.max_event_bytes) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("the event is ", bytes, " bytes, over the --max-message-bytes limit of ",
                     service_.options_.max_event_bytes));
  } else if (update.task_id().empty()) {
    status = InvalidFieldError("update.task_id", "is required");
  } else {
    status = service_.tasks_.ApplyAgentEvent(agent_ids_, update.task_id(),
                                             std::move(*update.mutable_event()));
  }
  if (status.ok()) {
    return;
  }
  A2AMESH_LOG(Debug, "agent update refused").With("task", update.task_id()).With("error", status);
  v1::NodeToAgent reply;
  auto* rejected = reply.mutable_update_rejected();
  rejected->set_task_id(update.task_id());
  rejected->set_code(static_cast<int>(status.code()));
  rejected->set_reason(std::string(status.message()));
  Send(std::move(reply));
}

AgentHostService::AgentHostService(AgentHostOptions options, catalog::AgentCatalog& catalog,
                                   tasks::TaskManager& tasks, routing::Dispatcher& dispatcher,
                                   Timers& timers, Clock& clock)
    : options_(std::move(options)),
      catalog_(catalog),
      tasks_(tasks),
      dispatcher_(dispatcher),
      timers_(timers),
      clock_(clock) {}

absl::Status AgentHostService::Claim(const std::vector<std::string>& ids,
                                     const std::string& principal) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (const std::string& id : ids) {
    auto it = holders_.find(id);
    if (it != holders_.end() && it->second.principal != principal && it->second.until > now) {
      return absl::PermissionDeniedError(
          absl::StrCat("agent id '", id, "' is held by another principal",
                       it->second.until == absl::InfiniteFuture()
                           ? ""
                           : absl::StrCat(" for ", absl::FormatDuration(it->second.until - now),
                                          " more (its tasks wait for it to reconnect)")));
    }
  }
  for (const std::string& id : ids) holders_[id] = Holder{principal, absl::InfiniteFuture()};
  return absl::OkStatus();
}

absl::Status AgentHostService::ReserveAddress(const std::string& address, int count) {
  const int max = options_.max_agents_per_address;
  absl::MutexLock lock(&mu_);
  int& registered = agents_by_address_[address];
  if (max > 0 && registered + count > max) {
    const int already = registered;
    if (registered == 0) agents_by_address_.erase(address);
    return absl::ResourceExhaustedError(
        absl::StrCat("agents: ", address, " has ", already, " agents registered; ", count,
                     " more would pass the --max-agents-per-address limit of ", max));
  }
  registered += count;
  return absl::OkStatus();
}

void AgentHostService::ReleaseAddress(const std::string& address, int count) {
  absl::MutexLock lock(&mu_);
  auto it = agents_by_address_.find(address);
  if (it == agents_by_address_.end()) return;
  it->second -= count;
  if (it->second <= 0) agents_by_address_.erase(it);
}

void AgentHostService::Release(const std::vector<std::string>& ids) {
  const absl::Time until = clock_.Now() + options_.grace;
  absl::MutexLock lock(&mu_);
  for (const std::string& id : ids) {
    auto it = holders_.find(id);
    if (it != holders_.end()) it->second.until = until;
  }
}

grpc::ServerBidiReactor<v1::AgentToNode, v1::NodeToAgent>* AgentHostService::Connect(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<security::Principal> principal = options_.auth->AuthenticateCall(*context);
  if (!principal.ok()) {
    return rpc::RefuseStream<v1::AgentToNode, v1::NodeToAgent>(
        rpc::ToGrpcStatus(principal.status()));
  }
  open_streams_.fetch_add(1, std::memory_order_relaxed);
  auto session = std::make_shared<Session>(*this, context->peer(), *std::move(principal));
  auto* reactor = new Reactor(session);
  bool shut_down;
  {
    absl::MutexLock lock(&mu_);
    shut_down = shut_down_;
    sessions_[session.get()] = session;
  }
  session->Start(reactor);
  if (shut_down) {
    session->Shutdown();
  }
  return reactor;
}

void AgentHostService::Shutdown() {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (const auto& [ptr, weak] : sessions_) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) {
    session->Shutdown();
  }
}

int64_t AgentHostService::open_streams() const {
  return open_streams_.load(std::memory_order_relaxed);
}

}  // namespace a2amesh::agenthost
