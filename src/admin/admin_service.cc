#include "admin/admin_service.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/blocking_counter.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/status_macros.h"
#include "core/version.h"
#include "google/protobuf/util/time_util.h"
#include "routing/request_validation.h"
#include "routing/selector.h"
#include "rpc/call_metrics.h"
#include "rpc/grpc_status.h"
#include "rpc/unary.h"
#include "rpc/write_queue.h"
#include "trace/span_context.h"

namespace a2amesh::admin {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MillisecondsToTimestamp(absl::ToUnixMillis(t));
}

std::string StatusText(const lf::a2a::v1::Task& task) {
  std::vector<std::string> texts;
  for (const lf::a2a::v1::Part& part : task.status().message().parts()) {
    if (part.has_text()) {
      texts.push_back(part.text());
    }
  }
  return absl::StrJoin(texts, " ");
}

v1::TaskSummary Summarize(const tasks::TaskRecord& record, bool full) {
  const lf::a2a::v1::Task& task = record.task;
  const v1::TaskInfo& info = record.info;
  v1::TaskSummary s;
  s.set_id(task.id());
  s.set_context_id(task.context_id());
  s.set_state(task.status().state());
  s.set_status_text(StatusText(task));
  if (info.created_unix_us() > 0) {
    *s.mutable_created_at() = TimeUtil::MicrosecondsToTimestamp(info.created_unix_us());
  } else if (info.created_unix_ms() > 0) {
    *s.mutable_created_at() = TimeUtil::MillisecondsToTimestamp(info.created_unix_ms());
  }
  if (task.status().has_timestamp()) {
    *s.mutable_updated_at() = task.status().timestamp();
  }
  s.set_owner_node(std::string(TaskIdOwner(task.id())));
  std::string agent;
  std::string node;
  if (catalog::SplitQualifiedAgentId(info.agent_id(), &agent, &node)) {
    s.set_agent_id(info.agent_id());
    s.set_agent_node(node);
  } else if (!info.agent_id().empty()) {
    s.set_agent_id(catalog::QualifiedAgentId(info.agent_id(), s.owner_node()));
    s.set_agent_node(s.owner_node());
  }
  s.set_skill(info.skill());
  s.set_parent_task_id(info.parent_task_id());
  *s.mutable_hops() = info.hops();
  s.set_principal(info.principal());
  if (auto trace = trace::ParseTraceparent(info.traceparent())) s.set_trace_id(trace->TraceIdHex());
  s.set_artifacts(task.artifacts_size());
  if (full) {
    *s.mutable_task() = task;
  }
  return s;
}

v1::AgentHealth HealthOf(bool draining, int outstanding, int max_concurrency) {
  if (draining) return v1::AGENT_HEALTH_DRAINING;
  if (outstanding >= max_concurrency) return v1::AGENT_HEALTH_BUSY;
  return v1::AGENT_HEALTH_READY;
}

v1::AgentInfo DescribeAgent(const std::string& agent_id, const std::string& node_id, bool local,
                            const lf::a2a::v1::AgentCard& card, int outstanding,
                            int max_concurrency, bool draining, bool include_card) {
  v1::AgentInfo info;
  info.set_id(catalog::QualifiedAgentId(agent_id, node_id));
  info.set_agent_id(agent_id);
  info.set_node_id(node_id);
  info.set_local(local);
  info.set_name(card.name());
  info.set_version(card.version());
  info.set_description(card.description());
  absl::btree_set<std::string> tags;
  for (const lf::a2a::v1::AgentSkill& skill : card.skills()) {
    info.add_skills(skill.id());
    tags.insert(skill.tags().begin(), skill.tags().end());
  }
  for (const std::string& tag : tags) info.add_tags(tag);
  info.set_outstanding(outstanding);
  info.set_max_concurrency(max_concurrency);
  info.set_load(static_cast<double>(outstanding) / std::max(1, max_concurrency));
  info.set_health(HealthOf(draining, outstanding, max_concurrency));
  if (include_card) {
    *info.mutable_card() = card;
  }
  return info;
}

// Whether one of the card's skills carries every tag.
bool HasTags(const lf::a2a::v1::AgentCard& card,
             const google::protobuf::RepeatedPtrField<std::string>& tags) {
  return std::any_of(card.skills().begin(), card.skills().end(), [&](const auto& skill) {
    return std::all_of(tags.begin(), tags.end(), [&](const std::string& tag) {
      return std::find(skill.tags().begin(), skill.tags().end(), tag) != skill.tags().end();
    });
  });
}

bool HasSkill(const lf::a2a::v1::AgentCard& card, const std::string& skill) {
  return std::any_of(card.skills().begin(), card.skills().end(),
                     [&](const auto& s) { return s.id() == skill; });
}

}  // namespace

// The catalog as a watch compares it: nodes by state, agents by skills.
struct AdminService::MeshView {
  std::map<std::string, v1::NodeState> nodes;
  struct Agent {
    std::string node_id;
    std::vector<std::string> skills;
    bool operator==(const Agent& other) const {
      return node_id == other.node_id && skills == other.skills;
    }
  };
  std::map<std::string, Agent> agents;
};

// One WatchCatalog stream: on every wake-up, compares the catalog with what it
// last sent and sends the difference. Shared by the service (until the call is
// done) and by the refreshes it has scheduled.
class AdminService::Watch final : public grpc::ServerWriteReactor<v1::CatalogEvent>,
                                  public std::enable_shared_from_this<Watch> {
 public:
  Watch(AdminService& service, grpc::CallbackServerContext* context)
      : service_(service), context_(context), writes_(service.options_.max_queued_events) {}

  void Begin() {
    writes_.Attach(this);
    Wake();
  }

  // Schedules a refresh unless one is pending. Never blocks.
  void Wake() {
    {
      absl::MutexLock lock(&mu_);
      if (scheduled_) return;
      scheduled_ = true;
    }
    service_.blocking_.Schedule([self = shared_from_this()] { self->Refresh(); });
  }

  void End(const grpc::Status& status) { writes_.Finish(status); }

  void OnWriteDone(bool ok) override {
    writes_.OnWriteDone(ok, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the client went away"));
  }
  void OnCancel() override {
    writes_.Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  void OnDone() override {
    rpc::NoteStatus(context_, writes_.finish_code());
    writes_.Detach();
    service_.RemoveWatch(this);  // may destroy this
  }

 private:
  void Refresh() {
    {
      absl::MutexLock lock(&mu_);
      scheduled_ = false;
    }
    absl::MutexLock lock(&refresh_mu_);
    MeshView now = service_.View();
    std::vector<v1::CatalogEvent> events;
    const google::protobuf::Timestamp time = ToTimestamp(service_.clock_.Now());
    auto event = [&](v1::CatalogEvent::Kind kind, const std::string& node_id) {
      v1::CatalogEvent& e = events.emplace_back();
      e.set_kind(kind);
      *e.mutable_time() = time;
      e.set_node_id(node_id);
      return &e;
    };
    auto node_event = [&](v1::NodeState state) {
      return state == v1::NODE_STATE_DRAINING ? v1::CatalogEvent::NODE_DRAINING
                                              : v1::CatalogEvent::NODE_UP;
    };
    for (const auto& [id, agent] : last_.agents) {
      auto it = now.agents.find(id);
      if (it == now.agents.end() || !(it->second == agent)) {
        event(v1::CatalogEvent::AGENT_REMOVED, agent.node_id)->set_agent_id(id);
      }
    }
    for (const auto& [id, state] : last_.nodes) {
      if (now.nodes.count(id) == 0) event(v1::CatalogEvent::NODE_DOWN, id);
    }
    for (const auto& [id, state] : now.nodes) {
      auto it = last_.nodes.find(id);
      if (it == last_.nodes.end() || it->second != state) event(node_event(state), id);
    }
    for (const auto& [id, agent] : now.agents) {
      auto it = last_.agents.find(id);
      if (it == last_.agents.end() || !(it->second == agent)) {
        v1::CatalogEvent* e = event(v1::CatalogEvent::AGENT_ADDED, agent.node_id);
        e->set_agent_id(id);
        for (const std::string& skill : agent.skills) e->add_skills(skill);
      }
    }
    if (!synced_) {
      event(v1::CatalogEvent::SYNCED, service_.options_.node_id);
      synced_ = true;
    }
    last_ = std::move(now);
    for (v1::CatalogEvent& e : events) {
      if (writes_.Write(std::move(e)) == Writes::Result::kFull) {
        writes_.Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                    "the client fell too many events behind; watch again"),
                       /*drop_queued=*/true);
        return;
      }
    }
  }

  using Writes = rpc::WriteQueue<grpc::ServerWriteReactor<v1::CatalogEvent>, v1::CatalogEvent>;
  AdminService& service_;
  grpc::CallbackServerContext* const context_;  // the call's, until OnDone
  Writes writes_;
  absl::Mutex mu_;
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex refresh_mu_;
  MeshView last_ ABSL_GUARDED_BY(refresh_mu_);
  bool synced_ ABSL_GUARDED_BY(refresh_mu_) = false;
};

AdminService::AdminService(AdminServiceOptions options, tasks::TaskManager& tasks,
                           catalog::AgentCatalog& local, catalog::RemoteCatalog& remote,
                           peer::PeerManager& peers, routing::Router& router, Executor& blocking,
                           Executor& fanout, Clock& clock, NodeHooks hooks)
    : options_(std::move(options)),
      tasks_(tasks),
      local_(local),
      remote_(remote),
      peers_(peers),
      router_(router),
      blocking_(blocking),
      fanout_(fanout),
      clock_(clock),
      hooks_(std::move(hooks)) {}

AdminService::~AdminService() { Shutdown(); }

void AdminService::SetGrpcAddress(const std::string& address) {
  absl::MutexLock lock(&mu_);
  grpc_address_ = address;
}

void AdminService::CatalogChanged() {
  absl::MutexLock lock(&mu_);
  for (const auto& watch : watches_) {
    watch->Wake();
  }
}

void AdminService::Shutdown() {
  absl::flat_hash_set<std::shared_ptr<Watch>> watches;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    watches = watches_;
  }
  for (const auto& watch : watches) {
    watch->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the node is shutting down"));
  }
}

int64_t AdminService::open_watches() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(watches_.size());
}

void AdminService::RemoveWatch(Watch* watch) {
  std::shared_ptr<Watch> removed;
  absl::MutexLock lock(&mu_);
  for (auto it = watches_.begin(); it != watches_.end(); ++it) {
    if (it->get() == watch) {
      removed = *it;  // destroyed after the lock is released
      watches_.erase(it);
      break;
    }
  }
}

void AdminService::OnAgentsAdded(const std::vector<std::shared_ptr<catalog::LocalAgent>>&) {
  CatalogChanged();
}

void AdminService::OnAgentRemoved(const std::shared_ptr<catalog::LocalAgent>&) { CatalogChanged(); }

v1::AgentInfo AdminService::DescribeHosted(const catalog::HostedRemoteAgent& hosted,
                                           bool include_card) const {
  v1::AgentInfo info = DescribeAgent(hosted.agent_id, options_.node_id, /*local=*/true, hosted.card,
                                     0, 0, false, include_card);
  info.set_max_concurrency(0);
  info.set_health(v1::AGENT_HEALTH_UNAVAILABLE);
  *info.mutable_remote() = hosted.remote;
  return info;
}

std::vector<v1::AgentInfo> AdminService::Agents(bool include_cards) const {
  std::vector<v1::AgentInfo> agents;
  const bool draining = peers_.draining();
  // Agents hosted by URL: how their calls go now, and those out of routing.
  absl::flat_hash_map<std::string, v1::RemoteEndpoint> hosted;
  if (hooks_.remote_agents) {
    for (catalog::HostedRemoteAgent& agent : hooks_.remote_agents()) {
      if (agent.in_routing) {
        hosted[agent.agent_id] = std::move(agent.remote);
      } else {
        agents.push_back(DescribeHosted(agent, include_cards));
      }
    }
  }
  for (const auto& agent : *local_.snapshot()) {
    v1::AgentInfo& info = agents.emplace_back(
        DescribeAgent(agent->id(), options_.node_id, /*local=*/true, agent->card(),
                      agent->outstanding(), agent->max_concurrency(), draining, include_cards));
    *info.mutable_registered_at() = ToTimestamp(agent->registered_at());
    if (agent->remote() != nullptr) {
      auto it = hosted.find(agent->id());
      *info.mutable_remote() = it != hosted.end() ? it->second : *agent->remote();
    }
  }
  absl::flat_hash_set<std::string> draining_nodes;
  for (const catalog::RemoteNodeInfo& node : remote_.nodes()) {
    if (node.draining) draining_nodes.insert(node.node_id);
  }
  for (const auto& agent : remote_.all_agents()) {
    v1::AgentInfo& info = agents.emplace_back(DescribeAgent(
        agent->agent_id(), agent->node_id(), /*local=*/false, agent->card(), agent->outstanding(),
        agent->max_concurrency(), draining_nodes.contains(agent->node_id()), include_cards));
    if (agent->remote() != nullptr) *info.mutable_remote() = *agent->remote();
  }
  std::sort(agents.begin(), agents.end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return agents;
}

AdminService::MeshView AdminService::View() const {
  MeshView view;
  view.nodes[options_.node_id] = peers_.draining() ? v1::NODE_STATE_DRAINING : v1::NODE_STATE_UP;
  for (const catalog::RemoteNodeInfo& node : remote_.nodes()) {
    view.nodes[node.node_id] = node.draining ? v1::NODE_STATE_DRAINING : v1::NODE_STATE_UP;
  }
  for (const v1::AgentInfo& agent : Agents(/*include_cards=*/false)) {
    view.agents[agent.id()] =
        MeshView::Agent{agent.node_id(), {agent.skills().begin(), agent.skills().end()}};
  }
  return view;
}

std::unique_ptr<v1::Admin::Stub> AdminService::StubFor(const std::string& node_id,
                                                       absl::Status* error) {
  std::shared_ptr<grpc::Channel> channel = peers_.ChannelTo(node_id);
  if (channel == nullptr) {
    *error = absl::NotFoundError(absl::StrCat("node ", node_id,
                                              " is not a reachable member of the mesh (seen from "
                                              "node ",
                                              options_.node_id, ")"));
    return nullptr;
  }
  return v1::Admin::NewStub(std::move(channel));
}

template <typename Start>
grpc::ServerUnaryReactor* AdminService::ForwardTo(grpc::CallbackServerContext* context,
                                                  const std::string& node_id,
                                                  const absl::Status& unreachable, Start start) {
  absl::Status error;
  std::unique_ptr<v1::Admin::Stub> stub = StubFor(node_id, &error);
  if (stub == nullptr) {
    return rpc::FinishNow(context, unreachable.ok() ? error : unreachable);
  }
  return rpc::Relay(context, OnBehalfOf(*context), std::move(stub), std::move(start));
}

template <typename Start>
grpc::ServerUnaryReactor* AdminService::ForwardIfElsewhere(grpc::CallbackServerContext* context,
                                                           const std::string& node_id,
                                                           Start start) {
  if (node_id.empty() || node_id == options_.node_id) return nullptr;
  if (rpc::WasForwarded(*context)) {
    return rpc::FinishNow(context,
                          absl::NotFoundError(absl::StrCat("node ", node_id, " is not this node")));
  }
  return ForwardTo(context, node_id, absl::OkStatus(), std::move(start));
}

std::unique_ptr<grpc::ClientContext> AdminService::OnBehalfOf(
    const grpc::CallbackServerContext& context) const {
  std::unique_ptr<grpc::ClientContext> forward = rpc::ForwardingContext(context, options_.node_id);
  // Admin calls are an operator's, few: the caller is proven again here rather
  // than carried through every fan-out.
  if (absl::StatusOr<security::Principal> caller = options_.auth->AuthenticateCall(context);
      caller.ok()) {
    options_.auth->Forward(context, *caller, forward.get());
  }
  return forward;
}

std::unique_ptr<grpc::ClientContext> AdminService::PeerContext(
    const grpc::CallbackServerContext& context) {
  std::unique_ptr<grpc::ClientContext> forward = OnBehalfOf(context);
  // The caller's deadline still holds if it is sooner.
  forward->set_deadline(absl::ToChronoTime(clock_.Now() + options_.peer_call_timeout));
  return forward;
}

absl::Status AdminService::Admit(const grpc::CallbackServerContext& context,
                                 governance::Action action) const {
  absl::StatusOr<security::Principal> caller = options_.auth->AuthenticateCall(context);
  if (!caller.ok() || options_.governor == nullptr || !options_.governor->active()) {
    return caller.status();
  }
  governance::Caller who;
  who.principal = *std::move(caller);
  who.peer = context.peer();
  governance::Resource resource;
  resource.node_id = options_.node_id;
  return options_.governor->Authorize(who, action, resource);
}

grpc::ServerUnaryReactor* AdminService::GetNode(grpc::CallbackServerContext* context,
                                                const v1::GetNodeRequest*, v1::NodeInfo* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "GetNode");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  const absl::Time now = clock_.Now();
  response->set_node_id(options_.node_id);
  response->set_version(Version());
  response->set_incarnation(peers_.incarnation());
  *response->mutable_started_at() = ToTimestamp(options_.started_at);
  *response->mutable_uptime() =
      TimeUtil::MillisecondsToDuration(absl::ToInt64Milliseconds(now - options_.started_at));
  {
    absl::MutexLock lock(&mu_);
    response->set_grpc_address(grpc_address_);
  }
  response->set_advertise_address(peers_.options().advertise_address);
  response->set_draining(peers_.draining());
  response->set_agents(static_cast<int32_t>(local_.size()));
  std::vector<peer::MemberState> members = peers_.members();
  response->set_peers_known(static_cast<int32_t>(members.size()));
  response->set_peers_up(static_cast<int32_t>(
      std::count_if(members.begin(), members.end(), [](const auto& m) { return m.up; })));
  response->set_active_tasks(static_cast<int64_t>(tasks_.active_tasks()));
  response->set_running_tasks(static_cast<int64_t>(tasks_.running_tasks()));
  response->set_store(options_.store);
  response->set_default_skill(options_.default_skill);
  for (const auto& [source, addresses] : peers_.discovered()) {
    v1::DiscoveredAddresses* d = response->add_discovery();
    d->set_source(source);
    for (const std::string& address : addresses) d->add_addresses(address);
  }
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::ListNodes(grpc::CallbackServerContext* context,
                                                  const v1::ListNodesRequest*,
                                                  v1::ListNodesResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "ListNodes");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  v1::NodeSummary* self = response->add_nodes();
  self->set_node_id(options_.node_id);
  self->set_address(peers_.options().advertise_address);
  self->set_state(peers_.draining() ? v1::NODE_STATE_DRAINING : v1::NODE_STATE_UP);
  self->set_self(true);
  self->set_agents(static_cast<int32_t>(local_.size()));
  self->set_incarnation(peers_.incarnation());
  for (const peer::MemberState& member : peers_.members()) {
    v1::NodeSummary* node = response->add_nodes();
    node->set_node_id(member.node_id);
    node->set_address(member.address);
    node->set_state(!member.up        ? v1::NODE_STATE_DOWN
                    : member.draining ? v1::NODE_STATE_DRAINING
                                      : v1::NODE_STATE_UP);
    if (member.up) {
      node->set_agents(member.agents);
      if (std::optional<catalog::RemoteNodeInfo> info = remote_.node(member.node_id)) {
        node->set_incarnation(info->incarnation);
      }
    } else if (member.down_since != absl::InfinitePast()) {
      *node->mutable_down_since() = ToTimestamp(member.down_since);
    }
  }
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::ListAgents(grpc::CallbackServerContext* context,
                                                   const v1::ListAgentsRequest* request,
                                                   v1::ListAgentsResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "ListAgents");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  for (v1::AgentInfo& agent : Agents(/*include_cards=*/true)) {
    if ((!request->skill().empty() && !HasSkill(agent.card(), request->skill())) ||
        (!request->tags().empty() && !HasTags(agent.card(), request->tags())) ||
        (!request->node_id().empty() && agent.node_id() != request->node_id())) {
      continue;
    }
    if (!request->include_cards()) {
      agent.clear_card();
    }
    *response->add_agents() = std::move(agent);
  }
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::GetAgent(grpc::CallbackServerContext* context,
                                                 const v1::GetAgentRequest* request,
                                                 v1::AgentInfo* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "GetAgent");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (request->id().empty()) {
    return rpc::FinishNow(context,
                          InvalidFieldError("id", "is empty: name an agent or agent@node"));
  }
  std::vector<v1::AgentInfo> agents = Agents(/*include_cards=*/true);
  std::vector<v1::AgentInfo*> matches;
  const bool qualified = request->id().find('@') != std::string::npos;
  for (v1::AgentInfo& agent : agents) {
    if (qualified ? agent.id() == request->id() : agent.agent_id() == request->id()) {
      matches.push_back(&agent);
    }
  }
  // A bare id names this node's agent first.
  auto local = std::find_if(matches.begin(), matches.end(), [](auto* a) { return a->local(); });
  if (local != matches.end()) {
    matches = {*local};
  }
  if (matches.empty()) {
    std::vector<std::string> ids;
    for (const v1::AgentInfo& agent : agents) ids.push_back(agent.id());
    return rpc::FinishNow(
        context, absl::NotFoundError(
                     absl::StrCat("no agent '", request->id(), "' in the mesh; agents: ",
                                  ids.empty() ? std::string("none") : absl::StrJoin(ids, ", "))));
  }
  if (matches.size() > 1) {
    std::vector<std::string> ids;
    for (const v1::AgentInfo* agent : matches) ids.push_back(agent->id());
    return rpc::FinishNow(
        context, InvalidFieldError(
                     "id", absl::StrCat("'", request->id(), "' is on several nodes; name one of ",
                                        absl::StrJoin(ids, ", "))));
  }
  *response = std::move(*matches.front());
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::ListSkills(grpc::CallbackServerContext* context,
                                                   const v1::ListSkillsRequest*,
                                                   v1::ListSkillsResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "ListSkills");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  struct Skill {
    v1::SkillInfo info;
    absl::btree_set<std::string> tags;
  };
  absl::btree_map<std::string, Skill> skills;
  for (const v1::AgentInfo& agent : Agents(/*include_cards=*/true)) {
    for (const lf::a2a::v1::AgentSkill& s : agent.card().skills()) {
      Skill& skill = skills[s.id()];
      if (skill.info.id().empty()) {
        skill.info.set_id(s.id());
        skill.info.set_name(s.name());
        skill.info.set_description(s.description());
      }
      skill.tags.insert(s.tags().begin(), s.tags().end());
      if (skill.info.agents().empty() || skill.info.agents().rbegin()->compare(agent.id()) != 0) {
        skill.info.add_agents(agent.id());
        if (agent.health() == v1::AGENT_HEALTH_READY) {
          skill.info.set_ready(skill.info.ready() + 1);
        }
      }
    }
  }
  for (auto& [id, skill] : skills) {
    for (const std::string& tag : skill.tags) skill.info.add_tags(tag);
    *response->add_skills() = std::move(skill.info);
  }
  return rpc::FinishNow(context, absl::OkStatus());
}

absl::Status AdminService::ListOwnTasks(const v1::ListTasksAdminRequest& request,
                                        v1::ListTasksAdminResponse* response) {
  TaskQuery query;
  query.state = request.state();
  query.skill = request.skill();
  query.context_id = request.context_id();
  // "echo" is that agent wherever it ran; "echo@n2" the one on n2, which
  // n2's own store holds as "echo".
  std::string agent;
  std::string node;
  if (catalog::SplitQualifiedAgentId(request.agent_id(), &agent, &node)) {
    query.agent_id = node == options_.node_id ? agent : request.agent_id();
  } else {
    query.agent_id = request.agent_id();
    query.agent_on_any_node = true;
  }
  query.page_size = request.limit() > 0 ? request.limit() : 50;
  A2AMESH_ASSIGN_OR_RETURN(tasks::TaskList list, tasks_.List(query, ""));
  for (const tasks::TaskRecord& record : list.tasks) {
    *response->add_tasks() = Summarize(record, /*full=*/false);
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AdminService::ListTasks(grpc::CallbackServerContext* context,
                                                  const v1::ListTasksAdminRequest* request,
                                                  v1::ListTasksAdminResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "ListTasks");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (request->limit() < 0 || request->limit() > 1000) {
    return rpc::FinishNow(context, InvalidFieldError("limit", "must be between 1 and 1000"));
  }
  if (!lf::a2a::v1::TaskState_IsValid(request->state())) {
    return rpc::FinishNow(context, InvalidFieldError("state", "is not a task state"));
  }
  if (!request->all_nodes() || rpc::WasForwarded(*context)) {
    return rpc::FinishOn(blocking_, context,
                         [this, request, response] { return ListOwnTasks(*request, response); });
  }
  return rpc::FinishOn(fanout_, context, [this, context, request, response]() -> absl::Status {
    struct PeerCall {
      std::string node_id;
      std::unique_ptr<v1::Admin::Stub> stub;
      std::unique_ptr<grpc::ClientContext> context;
      v1::ListTasksAdminResponse response;
      grpc::Status status;
    };
    std::vector<std::unique_ptr<PeerCall>> calls;
    for (const peer::MemberState& member : peers_.members()) {
      if (!member.up) {
        // Say so: a down member's tasks are missing from the list.
        if (!member.node_id.empty()) {
          response->add_errors(absl::StrCat(
              "node ", member.node_id, " is down",
              member.down_since == absl::InfinitePast()
                  ? ""
                  : absl::StrCat(
                        " (since ",
                        absl::FormatTime(absl::RFC3339_sec, member.down_since, absl::UTCTimeZone()),
                        ")"),
              ": its tasks are not listed"));
        }
        continue;
      }
      auto call = std::make_unique<PeerCall>();
      call->node_id = member.node_id;
      absl::Status error;
      call->stub = StubFor(member.node_id, &error);
      if (call->stub == nullptr) {
        response->add_errors(std::string(error.message()));
        continue;
      }
      call->context = PeerContext(*context);
      calls.push_back(std::move(call));
    }
    absl::BlockingCounter pending(static_cast<int>(calls.size()));
    for (auto& call : calls) {
      PeerCall* c = call.get();
      c->stub->async()->ListTasks(c->context.get(), request, &c->response,
                                  [c, &pending](grpc::Status status) {
                                    c->status = std::move(status);
                                    pending.DecrementCount();
                                  });
    }
    absl::Status own = ListOwnTasks(*request, response);
    pending.Wait();
    if (!own.ok()) {
      response->add_errors(absl::StrCat("node ", options_.node_id, ": ", own.message()));
    }
    for (auto& call : calls) {
      if (!call->status.ok()) {
        response->add_errors(
            absl::StrCat("node ", call->node_id, ": ", call->status.error_message()));
        continue;
      }
      for (v1::TaskSummary& task : *call->response.mutable_tasks()) {
        *response->add_tasks() = std::move(task);
      }
    }
    auto* tasks = response->mutable_tasks();
    std::sort(tasks->begin(), tasks->end(), [](const auto& a, const auto& b) {
      return std::make_pair(TimeUtil::TimestampToMilliseconds(a.updated_at()), a.id()) >
             std::make_pair(TimeUtil::TimestampToMilliseconds(b.updated_at()), b.id());
    });
    const int limit = request->limit() > 0 ? request->limit() : 50;
    while (tasks->size() > limit) tasks->RemoveLast();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<v1::TaskSummary>> AdminService::SubtasksOn(
    const std::string& node_id, const std::string& parent_id,
    const grpc::CallbackServerContext& ctx) {
  std::vector<v1::TaskSummary> subtasks;
  if (node_id == options_.node_id) {
    TaskQuery query;
    query.parent_id = parent_id;
    query.page_size = options_.max_tree_tasks;
    A2AMESH_ASSIGN_OR_RETURN(tasks::TaskList list, tasks_.List(query, ""));
    for (const tasks::TaskRecord& record : list.tasks) {
      subtasks.push_back(Summarize(record, /*full=*/true));
    }
  } else {
    absl::Status error;
    std::unique_ptr<v1::Admin::Stub> stub = StubFor(node_id, &error);
    if (stub == nullptr) {
      return error;
    }
    v1::ListSubtasksRequest request;
    request.set_parent_task_id(parent_id);
    v1::ListSubtasksResponse response;
    std::unique_ptr<grpc::ClientContext> context = PeerContext(ctx);
    grpc::Status status = stub->ListSubtasks(context.get(), request, &response);
    if (!status.ok()) {
      return rpc::FromGrpcStatus(status);
    }
    subtasks.assign(response.tasks().begin(), response.tasks().end());
  }
  // Oldest first: the order they were delegated in.
  std::sort(subtasks.begin(), subtasks.end(), [](const auto& a, const auto& b) {
    return std::make_pair(TimeUtil::TimestampToMicroseconds(a.created_at()), a.id()) <
           std::make_pair(TimeUtil::TimestampToMicroseconds(b.created_at()), b.id());
  });
  return subtasks;
}

void AdminService::Expand(v1::TaskTree* tree, int depth, int* budget,
                          const grpc::CallbackServerContext& ctx) {
  const v1::TaskSummary& task = tree->task();
  // Subtasks are made, and owned, by the node of the agent that delegated them.
  const std::string& node_id = task.agent_node();
  if (node_id.empty()) {
    return;
  }
  if (depth >= options_.max_depth) {
    tree->add_errors(absl::StrCat("subtasks deeper than ", options_.max_depth, " are not shown"));
    return;
  }
  absl::StatusOr<std::vector<v1::TaskSummary>> subtasks = SubtasksOn(node_id, task.id(), ctx);
  if (!subtasks.ok()) {
    tree->add_errors(absl::StrCat("subtasks on node ", node_id,
                                  " could not be listed: ", subtasks.status().message()));
    return;
  }
  for (v1::TaskSummary& subtask : *subtasks) {
    if (*budget <= 0) {
      tree->add_errors(absl::StrCat("the tree has more than ", options_.max_tree_tasks,
                                    " tasks; not all shown"));
      return;
    }
    --*budget;
    v1::TaskTree* child = tree->add_subtasks();
    *child->mutable_task() = std::move(subtask);
    Expand(child, depth + 1, budget, ctx);
  }
}

grpc::ServerUnaryReactor* AdminService::GetTaskTree(grpc::CallbackServerContext* context,
                                                    const v1::GetTaskTreeRequest* request,
                                                    v1::TaskTree* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "GetTaskTree");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (absl::Status id = routing::ValidateTaskId(request->task_id(), "task_id"); !id.ok()) {
    return rpc::FinishNow(context, id);
  }
  const std::string owner(TaskIdOwner(request->task_id()));
  if (!owner.empty() && owner != options_.node_id && !rpc::WasForwarded(*context)) {
    return ForwardTo(context, owner,
                     UnreachableTaskError(request->task_id(), owner, options_.node_id),
                     [request, response](auto* async, grpc::ClientContext* ctx, auto done) {
                       async->GetTaskTree(ctx, request, response, std::move(done));
                     });
  }
  return rpc::FinishOn(fanout_, context, [this, context, request, response]() -> absl::Status {
    A2AMESH_ASSIGN_OR_RETURN(tasks::TaskRecord record, tasks_.GetRecord(request->task_id()));
    *response->mutable_task() = Summarize(record, /*full=*/true);
    int budget = options_.max_tree_tasks - 1;
    Expand(response, 0, &budget, *context);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListSubtasks(grpc::CallbackServerContext* context,
                                                     const v1::ListSubtasksRequest* request,
                                                     v1::ListSubtasksResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "ListSubtasks");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (absl::Status id = routing::ValidateTaskId(request->parent_task_id(), "parent_task_id");
      !id.ok()) {
    return rpc::FinishNow(context, id);
  }
  return rpc::FinishOn(blocking_, context, [this, request, response]() -> absl::Status {
    TaskQuery query;
    query.parent_id = request->parent_task_id();
    query.page_size = options_.max_tree_tasks;
    A2AMESH_ASSIGN_OR_RETURN(tasks::TaskList list, tasks_.List(query, ""));
    for (const tasks::TaskRecord& record : list.tasks) {
      *response->add_tasks() = Summarize(record, /*full=*/true);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ExplainRoute(grpc::CallbackServerContext* context,
                                                     const v1::ExplainRouteRequest* request,
                                                     v1::RouteExplanation* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "ExplainRoute");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  routing::Selector selector;
  selector.agent_id = request->agent_id();
  selector.skill = request->skill();
  selector.tags.assign(request->tags().begin(), request->tags().end());
  selector.input_media_types.assign(request->input_modes().begin(), request->input_modes().end());
  if (selector.input_media_types.empty()) {
    selector.input_media_types.push_back("text/plain");
  }
  selector.accepted_output_modes.assign(request->accepted_output_modes().begin(),
                                        request->accepted_output_modes().end());
  if (selector.agent_id.empty() && selector.skill.empty() && selector.tags.empty() &&
      !options_.default_skill.empty()) {
    selector.skill = options_.default_skill;
    selector.default_skill = true;
  }
  *response = router_.Explain(selector, {request->hops().begin(), request->hops().end()});
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::CatalogEvent>* AdminService::WatchCatalog(
    grpc::CallbackServerContext* context, const v1::WatchCatalogRequest*) {
  rpc::Meter(context, v1::Admin::service_full_name(), "WatchCatalog");
  if (absl::Status admitted = Admit(*context, governance::Action::kInspect); !admitted.ok()) {
    return rpc::RefuseWrites<v1::CatalogEvent>(context, rpc::ToGrpcStatus(admitted));
  }
  auto watch = std::make_shared<Watch>(*this, context);
  bool shut_down;
  {
    absl::MutexLock lock(&mu_);
    shut_down = shut_down_;
    watches_.insert(watch);  // until OnDone
  }
  watch->Begin();
  if (shut_down) {
    watch->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the node is shutting down"));
  }
  return watch.get();
}

grpc::ServerUnaryReactor* AdminService::Drain(grpc::CallbackServerContext* context,
                                              const v1::DrainRequest* request,
                                              v1::DrainResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "Drain");
  if (absl::Status admitted = Admit(*context, governance::Action::kDrain); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (auto* forwarded =
          ForwardIfElsewhere(context, request->node_id(),
                             [request, response](auto* async, grpc::ClientContext* ctx, auto done) {
                               async->Drain(ctx, request, response, std::move(done));
                             })) {
    return forwarded;
  }
  if (request->undo()) {
    if (hooks_.stop_draining) {
      if (absl::Status undone = hooks_.stop_draining(); !undone.ok()) {
        return rpc::FinishNow(context, undone);
      }
    }
  } else if (hooks_.start_draining) {
    hooks_.start_draining();
  }
  CatalogChanged();
  response->set_node_id(options_.node_id);
  response->set_running_tasks(static_cast<int64_t>(tasks_.running_tasks()));
  response->set_draining(peers_.draining());
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::AddRemoteAgent(grpc::CallbackServerContext* context,
                                                       const v1::AddRemoteAgentRequest* request,
                                                       v1::AgentInfo* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "AddRemoteAgent");
  if (absl::Status admitted = Admit(*context, governance::Action::kRegisterAgent); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (auto* forwarded =
          ForwardIfElsewhere(context, request->node_id(),
                             [request, response](auto* async, grpc::ClientContext* ctx, auto done) {
                               async->AddRemoteAgent(ctx, request, response, std::move(done));
                             })) {
    return forwarded;
  }
  if (request->card_url().empty()) {
    return rpc::FinishNow(context, InvalidFieldError("card_url", "is required"));
  }
  if (!hooks_.add_remote_agent) {
    return rpc::FinishNow(context, absl::UnimplementedError("this node hosts no remote agents"));
  }
  // The card is fetched now: on the executor that waits on other hosts.
  return rpc::FinishOn(fanout_, context, [this, request, response]() -> absl::Status {
    absl::StatusOr<catalog::HostedRemoteAgent> added = hooks_.add_remote_agent(*request);
    if (!added.ok()) {
      return absl::Status(added.status().code(),
                          absl::StrCat("the remote agent of ", request->card_url(),
                                       " was not added: ", added.status().message()));
    }
    for (v1::AgentInfo& agent : Agents(/*include_cards=*/true)) {
      if (agent.local() && agent.agent_id() == added->agent_id) {
        *response = std::move(agent);
        return absl::OkStatus();
      }
    }
    *response = DescribeHosted(*added, /*include_card=*/true);  // out of routing already
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::RemoveRemoteAgent(
    grpc::CallbackServerContext* context, const v1::RemoveRemoteAgentRequest* request,
    v1::RemoveRemoteAgentResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "RemoveRemoteAgent");
  if (absl::Status admitted = Admit(*context, governance::Action::kRegisterAgent); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  if (auto* forwarded =
          ForwardIfElsewhere(context, request->node_id(),
                             [request, response](auto* async, grpc::ClientContext* ctx, auto done) {
                               async->RemoveRemoteAgent(ctx, request, response, std::move(done));
                             })) {
    return forwarded;
  }
  if (request->agent().empty()) {
    return rpc::FinishNow(context, InvalidFieldError("agent", "is required"));
  }
  if (!hooks_.remove_remote_agent) {
    return rpc::FinishNow(context, absl::UnimplementedError("this node hosts no remote agents"));
  }
  // Waits for its calls to end.
  return rpc::FinishOn(fanout_, context,
                       [this, request] { return hooks_.remove_remote_agent(request->agent()); });
}

grpc::ServerUnaryReactor* AdminService::TailAudit(grpc::CallbackServerContext* context,
                                                  const v1::TailAuditRequest* request,
                                                  v1::TailAuditResponse* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "TailAudit");
  if (absl::Status admitted = Admit(*context, governance::Action::kAudit); !admitted.ok()) {
    return rpc::FinishNow(context, admitted);
  }
  governance::AuditLog* log =
      options_.governor != nullptr ? options_.governor->audit_log() : nullptr;
  if (log == nullptr) {
    return rpc::FinishNow(context, absl::FailedPreconditionError(
                                       "this node keeps no audit log: start it with --audit-log "
                                       "FILE (or - for standard output)"));
  }
  if (request->limit() < 0 || request->limit() > 10000) {
    return rpc::FinishNow(context, InvalidFieldError("limit", "must be between 0 and 10000"));
  }
  const size_t limit = request->limit() == 0 ? 100 : static_cast<size_t>(request->limit());
  std::vector<governance::AuditLog::Line> lines =
      log->Tail(limit, request->after_sequence(), [request](const governance::AuditEntry& e) {
        return (request->principal().empty() || e.principal == request->principal()) &&
               (request->action().empty() || e.action == request->action()) &&
               (request->decision().empty() || e.decision == request->decision()) &&
               (request->task_id().empty() || e.task_id == request->task_id());
      });
  response->set_last_sequence(lines.empty() ? request->after_sequence() : lines.back().sequence);
  for (governance::AuditLog::Line& line : lines) response->add_lines(std::move(line.json));
  response->set_dropped(log->dropped());
  return rpc::FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::DecideApproval(grpc::CallbackServerContext* context,
                                                       const v1::DecideApprovalRequest* request,
                                                       lf::a2a::v1::Task* response) {
  rpc::Meter(context, v1::Admin::service_full_name(), "DecideApproval");
  absl::StatusOr<security::Principal> caller = options_.auth->AuthenticateCall(*context);
  if (!caller.ok()) {
    return rpc::FinishNow(context, caller.status());
  }
  if (absl::Status id = routing::ValidateTaskId(request->task_id(), "task_id"); !id.ok()) {
    return rpc::FinishNow(context, id);
  }
  if (!request->approve() && request->reason().empty()) {
    return rpc::FinishNow(context, InvalidFieldError("reason", "is required to deny a task"));
  }
  const std::string owner(TaskIdOwner(request->task_id()));
  if (!owner.empty() && owner != options_.node_id && !rpc::WasForwarded(*context)) {
    return ForwardTo(context, owner,
                     UnreachableTaskError(request->task_id(), owner, options_.node_id),
                     [request, response](auto* async, grpc::ClientContext* ctx, auto done) {
                       async->DecideApproval(ctx, request, response, std::move(done));
                     });
  }
  governance::Caller who;
  who.principal = *std::move(caller);
  who.peer = context->peer();
  return rpc::FinishOn(
      blocking_, context, [this, request, response, who = std::move(who)]() -> absl::Status {
        A2AMESH_ASSIGN_OR_RETURN(tasks::TaskRecord record, tasks_.GetRecord(request->task_id()));
        if (!record.info.has_approval() || options_.governor == nullptr) {
          return absl::FailedPreconditionError(
              absl::StrCat("task ", request->task_id(), " waits for no approval"));
        }
        A2AMESH_RETURN_IF_ERROR(
            options_.governor->MayApprove(who, record.info.approval(), request->task_id()));
        A2AMESH_RETURN_IF_ERROR(tasks_.DecideApproval(request->task_id(), request->approve(),
                                                      who.principal.subject, request->reason()));
        governance::AuditEntry entry;
        entry.kind = "approval";
        entry.principal = who.principal.subject;
        entry.method = who.principal.method;
        entry.peer = who.peer;
        entry.action = "approve";
        entry.decision = request->approve() ? "approved" : "denied";
        entry.rule = record.info.approval().rule();
        entry.reason = request->reason();
        entry.task_id = request->task_id();
        entry.parent_task_id = record.info.parent_task_id();
        options_.governor->Audit(std::move(entry));
        A2AMESH_ASSIGN_OR_RETURN(tasks::TaskRecord after, tasks_.GetRecord(request->task_id()));
        *response = std::move(after.task);
        return absl::OkStatus();
      });
}

}  // namespace a2amesh::admin
