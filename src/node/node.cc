#include "node/node.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "a2a/a2a_service.h"
#include "a2a/http_binding.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "admin/admin_service.h"
#include "agenthost/agent_host_service.h"
#include "agenthost/remote_agents.h"
#include "catalog/agent_catalog.h"
#include "catalog/remote_catalog.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"
#include "core/version.h"
#include "discovery/discovery_source.h"
#include "discovery/dns_discovery_source.h"
#include "governance/governor.h"
#include "grpcpp/grpcpp.h"
#include "http/fetch.h"
#include "http/http_server.h"
#include "http/tls_context.h"
#include "metrics/metrics.h"
#include "peer/peer_manager.h"
#include "peer/peer_service.h"
#include "push/push_notifier.h"
#include "routing/dispatcher.h"
#include "routing/router.h"
#include "rpc/call_metrics.h"
#include "store/memory_task_store.h"
#include "store/sqlite_task_store.h"
#include "tasks/retention.h"
#include "tasks/task_manager.h"

namespace a2amesh {
namespace {

std::string LocalHostName() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  return name;
}

// grpc.health.v1 service names.
constexpr char kReadinessService[] = "";
constexpr char kLivenessService[] = "liveness";

absl::Status CheckOptions(const NodeOptions& o) {
  for (const std::string& flag : o.remote_agents) {
    A2AMESH_RETURN_IF_ERROR(agenthost::ParseRemoteAgent(flag).status());
    if (!http::CanFetch()) {
      return absl::InvalidArgumentError(
          "--remote-agent: this meshd was built without libcurl (a fully static build), which "
          "fetches remote agents' cards");
    }
  }
  if (absl::Status id = ValidateNodeId(o.node_id); !id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--node-id: ", id.message()));
  }
  if (o.grpc_address.empty() || o.grpc_address.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grpc-address: '", o.grpc_address, "' is not host:port"));
  }
  if (!o.ephemeral && o.data_dir.empty()) {
    return absl::InvalidArgumentError("--data-dir: is empty (pass a directory, or --ephemeral)");
  }
  struct Positive {
    const char* flag;
    int64_t value;
  };
  for (const Positive& p :
       {Positive{"--max-message-bytes", o.max_message_bytes}, Positive{"--max-parts", o.max_parts},
        Positive{"--max-card-bytes", o.max_card_bytes}, Positive{"--max-agents", o.max_agents},
        Positive{"--max-open-streams", o.max_open_streams},
        Positive{"--default-max-concurrency", o.default_max_concurrency},
        Positive{"--push-max-queued", o.push_max_queued},
        Positive{"--push-max-attempts", o.push_max_attempts}}) {
    if (p.value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(p.flag, ": must be positive, not ", p.value));
    }
  }
  if (o.agent_lease < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError("--agent-lease: must be at least 100ms");
  }
  for (const std::string& peer : o.peers) {
    size_t colon = peer.rfind(':');
    if (peer.empty() || colon == std::string::npos || colon == 0 || colon + 1 == peer.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--peers: '", peer, "' is not host:port"));
    }
  }
  if (o.peer_timeout <= o.peer_heartbeat) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--peer-timeout (", absl::FormatDuration(o.peer_timeout),
        ") must be longer than --peer-heartbeat (", absl::FormatDuration(o.peer_heartbeat), ")"));
  }
  if (o.max_hops < 1) {
    return absl::InvalidArgumentError("--max-hops: must be at least 1");
  }
  if (o.tls.enabled() && !o.tls.mutual() && (!o.peers.empty() || !o.discovery_dns.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        !o.peers.empty() ? "--peers" : "--discovery-dns",
        " with TLS needs --tls-client-ca: peers prove who they are with certificates of the "
        "mesh CA"));
  }
  if (o.auth.client_certificates && !o.tls.mutual()) {
    return absl::InvalidArgumentError(
        "--auth-client-certs needs --tls-cert, --tls-key and --tls-client-ca (the CA client "
        "certificates must chain to)");
  }
  return security::CheckTlsFiles(o.tls, o.node_id);
}

// The agent cards the HTTP binding publishes: this node's agents by id, other
// nodes' as "id@node".
class CatalogCards final : public a2a::CardSource {
 public:
  CatalogCards(const catalog::AgentCatalog& local, const catalog::RemoteCatalog& remote)
      : local_(local), remote_(remote) {}

  std::vector<std::pair<std::string, lf::a2a::v1::AgentCard>> Agents() const override {
    std::vector<std::pair<std::string, lf::a2a::v1::AgentCard>> agents;
    for (const auto& agent : *local_.snapshot()) {
      agents.emplace_back(agent->id(), agent->card());
    }
    for (const auto& agent : *remote_.snapshot()) {
      agents.emplace_back(agent->qualified_id(), agent->card());
    }
    // A stable order: the node's card (and its ETag) changes only with the agents.
    std::sort(agents.begin(), agents.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return agents;
  }

  std::optional<lf::a2a::v1::AgentCard> Find(const std::string& tenant) const override {
    std::string agent_id;
    std::string node_id;
    if (catalog::SplitQualifiedAgentId(tenant, &agent_id, &node_id)) {
      if (auto agent = remote_.Find(node_id, agent_id)) return agent->card();
      return std::nullopt;
    }
    if (auto agent = local_.Find(tenant)) return agent->card();
    return std::nullopt;
  }

 private:
  const catalog::AgentCatalog& local_;
  const catalog::RemoteCatalog& remote_;
};

}  // namespace

Node::Node(NodeOptions options) : options_(std::move(options)) {}

int Node::metrics_port() const { return metrics_server_ != nullptr ? metrics_server_->port() : 0; }

int Node::http_port() const { return http_server_ != nullptr ? http_server_->port() : 0; }

metrics::NodeSample Node::Sample() const {
  metrics::NodeSample sample;
  if (remote_agents_ != nullptr) {
    for (const catalog::HostedRemoteAgent& agent : remote_agents_->Describe()) {
      sample.remote_agent_up[agent.agent_id] = agent.in_routing ? 1 : 0;
      sample.remote_agent_failures[agent.agent_id] = agent.remote.failures();
    }
  }
  for (const char* state : {"up", "draining", "down"}) sample.peers[state] = 0;
  for (const peer::MemberState& member : peers_->members()) {
    ++sample.peers[!member.up ? "down" : member.draining ? "draining" : "up"];
  }
  catalog::AgentCatalog::Snapshot local = catalog_->snapshot();
  std::vector<std::shared_ptr<catalog::RemoteAgent>> remote = remote_catalog_->all_agents();
  sample.agents["local"] = static_cast<int64_t>(local->size());
  sample.agents["remote"] = static_cast<int64_t>(remote.size());
  absl::flat_hash_set<std::string> skills;
  for (const auto& agent : *local) {
    for (const auto& skill : agent->card().skills()) {
      skills.insert(skill.id());
      sample.skill_capacity[skill.id()] += agent->max_concurrency();
      sample.skill_running[skill.id()] += agent->outstanding();
      sample.skill_waiting[skill.id()];  // every skill served here has the series
    }
  }
  for (const auto& agent : remote) {
    for (const auto& skill : agent->card().skills()) skills.insert(skill.id());
  }
  sample.skills = static_cast<int64_t>(skills.size());
  sample.open_streams["a2a"] = a2a_->open_streams();
  sample.open_streams["agent_host"] = agent_host_->open_streams();
  sample.open_streams["peer"] = peers_->peers_up();
  sample.open_streams["admin_watch"] = admin_->open_watches();
  for (const char* state : {"submitted", "working", "input-required", "auth-required"}) {
    sample.tasks[state] = 0;  // every series exists from the start
  }
  for (const auto& [state, count] : tasks_->active_by_state()) sample.tasks[state] = count;
  for (const auto& [skill, count] : tasks_->submitted_by_skill()) {
    sample.skill_waiting[skill] = count;
  }
  sample.draining = peers_->draining();
  sample.push_queued = push_ != nullptr ? push_->queued() : 0;
  if (governor_->governs()) sample.approvals_pending = tasks_->pending_approvals();
  if (!options_.ephemeral) {
    int64_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code error;
      const uintmax_t size =
          std::filesystem::file_size(absl::StrCat(options_.data_dir, "/tasks.db", suffix), error);
      if (!error) bytes += static_cast<int64_t>(size);
    }
    sample.store_bytes = bytes;
  }
  if (const http::Server* http = http_server_for_metrics_.load(std::memory_order_acquire)) {
    sample.http_connections_shed = http->shed_connections();
  }
  return sample;
}

std::string Node::StoreDescription() const {
  return options_.ephemeral ? std::string("memory")
                            : absl::StrCat("sqlite:", options_.data_dir, "/tasks.db");
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  A2AMESH_RETURN_IF_ERROR(CheckOptions(options));
  std::unique_ptr<Node> node(new Node(std::move(options)));
  A2AMESH_RETURN_IF_ERROR(node->Init());
  return node;
}

absl::Status Node::Init() {
  const absl::Time started_at = clock_.Now();
  metrics_ = std::make_unique<metrics::Metrics>([this] { return Sample(); });
  if (!options_.otlp.endpoint.empty()) {
    A2AMESH_ASSIGN_OR_RETURN(std::unique_ptr<trace::SpanExporter> exporter,
                             trace::MakeOtlpExporter(options_.otlp));
    trace::TracerOptions tracing;
    tracing.sample_ratio = options_.trace_sample_ratio;
    tracing.telemetry = metrics_.get();
    tracing.resource = {{"service.name", "meshd"},
                        {"service.instance.id", options_.node_id},
                        {"service.version", Version()}};
    for (const auto& attribute : options_.trace_resource) tracing.resource.push_back(attribute);
    tracer_ = std::make_unique<trace::Tracer>(std::move(tracing), std::move(exporter));
  }
  timers_ = std::make_unique<TimerThread>();
  blocking_ = std::make_unique<ThreadPool>(std::max(1, options_.blocking_threads));
  fanout_ = std::make_unique<ThreadPool>(2);
  if (options_.tls.enabled()) {
    http::TlsFiles files{options_.tls.cert_file, options_.tls.key_file, options_.tls.client_ca_file,
                         options_.tls.reload_interval};
    absl::StatusOr<std::shared_ptr<http::TlsContextSource>> tls =
        http::TlsContextSource::Create(std::move(files));
    if (!tls.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-cert/--tls-key: ", tls.status().message()));
    }
    http_tls_ = *std::move(tls);
  }
  security::AuthOptions auth = options_.auth;
  if (options_.tls.mutual()) auth.trust_domain = options_.tls.trust_domain;
  auth.reload_interval = std::min(auth.reload_interval, options_.tls.reload_interval);
  A2AMESH_ASSIGN_OR_RETURN(auth_, security::Authenticator::Create(std::move(auth)));
  if (!auth_->enabled()) {
    A2AMESH_LOG(Warning,
                "no authentication configured: anyone who reaches this node may send, read and "
                "cancel tasks, register agents and drain it (see --auth-token-file, "
                "docs/security.md)");
  }
  governance::GovernorOptions governance;
  governance.node_id = options_.node_id;
  governance.policy_file = options_.policy_file;
  governance.reload_interval = options_.tls.reload_interval;
  governance.audit.path = options_.audit_log;
  governance.audit.max_bytes = options_.audit_max_bytes;
  governance.audit.max_files = options_.audit_max_files;
  governance.audit.max_queued = static_cast<size_t>(options_.audit_max_queued);
  governance.telemetry = metrics_.get();
  A2AMESH_ASSIGN_OR_RETURN(governor_, governance::Governor::Create(std::move(governance)));
  if (governor_->governs() && !options_.tls.mutual() &&
      (!options_.peers.empty() || !options_.discovery_dns.empty())) {
    A2AMESH_LOG(Warning,
                "a policy is loaded but peers are not authenticated (no --tls-client-ca): a "
                "handoff's caller is taken as the sending node claims it; give the mesh mutual "
                "TLS (docs/security.md)");
  }
  if (std::shared_ptr<const governance::Policy> policy = governor_->policy()) {
    A2AMESH_LOG(Info, "policy loaded")
        .With("file", options_.policy_file)
        .With("rules", policy->rule_count())
        .With("digest", policy->digest());
  }
  if (options_.ephemeral) {
    store_ = std::make_unique<store::MemoryTaskStore>();
  } else {
    std::error_code error;
    std::filesystem::create_directories(options_.data_dir, error);
    if (error) {
      return absl::UnavailableError(
          absl::StrCat("--data-dir: cannot create ", options_.data_dir, ": ", error.message()));
    }
    store::SqliteTaskStore::Options store_options;
    store_options.path = options_.data_dir + "/tasks.db";
    store_options.fsync = options_.store_fsync;
    store_options.telemetry = metrics_.get();
    A2AMESH_ASSIGN_OR_RETURN(store_, store::SqliteTaskStore::Open(store_options));
  }
  tasks::RetentionOptions retention;
  const absl::Duration ttl = options_.task_retention.value_or(
      options_.ephemeral ? absl::Minutes(10) : absl::Hours(24 * 7));
  retention.ttl = ttl == absl::ZeroDuration() ? absl::InfiniteDuration() : ttl;
  retention.max_finished = options_.max_finished_tasks.value_or(options_.ephemeral ? 10000 : 0);
  retention.telemetry = metrics_.get();
  retention.interval = retention.ttl == absl::InfiniteDuration()
                           ? options_.housekeeping_interval
                           : std::min(std::max(retention.ttl / 4, absl::Milliseconds(10)),
                                      options_.housekeeping_interval);
  if (retention.max_finished > 0) {
    // A cap holds only as often as it is enforced: at thousands of tasks a
    // second, a minute would let hundreds of thousands pile up in between.
    retention.interval = std::min(retention.interval, absl::Seconds(1));
  }
  retention.trim_memory = true;
  retention_ = std::make_unique<tasks::Retention>(*store_, retention);
  catalog_ = std::make_unique<catalog::AgentCatalog>(options_.max_agents);
  remote_catalog_ = std::make_unique<catalog::RemoteCatalog>();
  routing::RouterOptions router_options;
  router_options.node_id = options_.node_id;
  router_options.max_hops = options_.max_hops;
  router_options.telemetry = metrics_.get();
  router_ = std::make_unique<routing::Router>(router_options, *catalog_, *remote_catalog_);
  tasks::TaskManagerOptions task_options;
  task_options.node_id = options_.node_id;
  task_options.agent_grace = options_.agent_grace;
  task_options.recovery_grace = options_.recovery_grace;
  auto limit = [](absl::Duration d) {
    return d == absl::ZeroDuration() ? absl::InfiniteDuration() : d;
  };
  task_options.max_turn = limit(options_.max_turn);
  for (const auto& [skill, max] : options_.skill_max_turn) {
    task_options.skill_max_turn[skill] = limit(max);
  }
  task_options.agent_idle_timeout = limit(options_.agent_idle_timeout);
  task_options.interrupted_ttl = limit(options_.interrupted_task_ttl);
  task_options.telemetry = metrics_.get();
  task_options.tracer = tracer();
  if (options_.push_notifications) {
    push::PushOptions push_options;
    push_options.allow_private_targets = options_.push_allow_private_targets;
    push_options.max_queued = options_.push_max_queued;
    push_options.max_attempts = options_.push_max_attempts;
    push_options.initial_backoff = options_.push_initial_backoff;
    push_options.request_timeout = options_.push_timeout;
    push_options.telemetry = metrics_.get();
    push_options.tracer = tracer();
    push_ = std::make_unique<push::PushNotifier>(push_options, *store_);
    task_options.push = push_.get();
  }
  tasks_ = std::make_unique<tasks::TaskManager>(task_options, *store_, *router_, *timers_, clock_);
  A2AMESH_RETURN_IF_ERROR(tasks_->Recover());
  if (push_ != nullptr) {
    push_->SetTaskManager(tasks_.get());
    A2AMESH_RETURN_IF_ERROR(push_->Recover());
  }

  routing::RequestLimits limits;
  limits.max_message_bytes = options_.max_message_bytes;
  limits.max_parts = options_.max_parts;
  dispatcher_ = std::make_unique<routing::Dispatcher>(options_.default_skill, limits, *router_,
                                                      *tasks_, tracer());

  peer::PeerOptions peer_options;
  peer_options.node_id = options_.node_id;
  peer_options.heartbeat = options_.peer_heartbeat;
  peer_options.timeout = options_.peer_timeout;
  peer_options.forget_down_after = options_.forget_down_after;
  peer_options.max_hops = options_.max_hops;
  peer_options.handoff_grace = options_.handoff_grace;
  peer_options.telemetry = metrics_.get();
  if (options_.tls.enabled()) {
    // With TLS, the Peer service is for nodes proven by the mesh CA only.
    peer_options.authenticate = true;
    peer_options.trust_domain = options_.tls.trust_domain;
    if (options_.tls.mutual()) {
      peer_options.credentials = security::PeerChannelCredentials(options_.tls);
    }
  }
  peers_ = std::make_unique<peer::PeerManager>(peer_options, *catalog_, *remote_catalog_, *tasks_,
                                               *timers_, clock_);
  router_->SetRemoteRunners(peers_.get());
  peer_service_ = std::make_unique<peer::PeerService>(
      peer::HandoffServerOptions{options_.node_id, options_.max_hops, options_.handoff_grace,
                                 governor_.get()},
      *peers_, *catalog_, *tasks_);

  a2a::A2aServiceOptions a2a_options;
  a2a_options.node_id = options_.node_id;
  a2a_options.max_open_streams = options_.max_open_streams;
  a2a_options.auth = auth_;
  a2a_options.governor = governor_.get();
  a2a_options.extended_card =
      [this](const std::string& tenant) -> absl::StatusOr<lf::a2a::v1::AgentCard> {
    const a2a::AgentCards* cards = extended_cards_.load(std::memory_order_acquire);
    if (cards == nullptr) {
      return absl::UnavailableError("the node serves no HTTP bindings, or is starting");
    }
    return cards->ExtendedCard(extended_card_host_, tenant);
  };
  a2a_ = std::make_unique<a2a::A2aService>(
      a2a_options, *tasks_, *dispatcher_, *blocking_,
      [peers = peers_.get()](const std::string& node_id) { return peers->ChannelTo(node_id); },
      push_.get());

  agenthost::AgentHostOptions host_options;
  host_options.node_id = options_.node_id;
  host_options.default_max_concurrency = options_.default_max_concurrency;
  host_options.lease = options_.agent_lease;
  host_options.max_card_bytes = options_.max_card_bytes;
  host_options.max_event_bytes = options_.max_message_bytes;
  host_options.auth = auth_;
  host_options.governor = governor_.get();
  host_options.grace = options_.agent_grace;
  host_options.max_agents_per_connection = options_.max_agents_per_connection;
  host_options.max_agents_per_address = options_.max_agents_per_address;
  agent_host_ = std::make_unique<agenthost::AgentHostService>(host_options, *catalog_, *tasks_,
                                                              *dispatcher_, *timers_, clock_);

  admin::AdminServiceOptions admin_options;
  admin_options.node_id = options_.node_id;
  admin_options.default_skill = options_.default_skill;
  admin_options.store = StoreDescription();
  admin_options.started_at = started_at;
  admin_options.max_depth = options_.max_hops + 1;
  admin_options.auth = auth_;
  admin_options.governor = governor_.get();
  agenthost::RemoteAgentsOptions remote;
  for (const std::string& flag : options_.remote_agents) {
    A2AMESH_ASSIGN_OR_RETURN(agenthost::RemoteAgentSpec spec, agenthost::ParseRemoteAgent(flag));
    remote.agents.push_back(std::move(spec));
  }
  remote.refresh = options_.remote_agent_refresh;
  remote.max_concurrency = options_.remote_agent_max_concurrency;
  remote.max_failures = options_.remote_agent_max_failures;
  remote.telemetry = metrics_.get();
  remote.timers = timers_.get();
  if (options_.remote_agent_binding != "auto") {
    remote.binding = absl::AsciiStrToUpper(options_.remote_agent_binding);
  }
  // Always there (Admin AddRemoteAgent); its threads start with its first agent.
  remote_agents_ = std::make_unique<agenthost::RemoteAgents>(std::move(remote), *catalog_, *tasks_);
  admin::NodeHooks hooks;
  hooks.start_draining = [this] { StartDraining(); };
  hooks.stop_draining = [this] { return StopDraining(); };
  hooks.remote_agents = [this] { return remote_agents_->Describe(); };
  hooks.add_remote_agent =
      [this](
          const v1::AddRemoteAgentRequest& request) -> absl::StatusOr<catalog::HostedRemoteAgent> {
    A2AMESH_ASSIGN_OR_RETURN(
        agenthost::RemoteAgentSpec spec,
        agenthost::MakeRemoteAgentSpec(request.card_url(), request.agent_id()));
    spec.token = request.bearer_token();
    if (request.max_concurrency() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("max_concurrency ", request.max_concurrency(),
                                                     " is negative (0: the node's default)"));
    }
    spec.max_concurrency = request.max_concurrency();
    return remote_agents_->Add(std::move(spec));
  };
  hooks.remove_remote_agent = [this](const std::string& which) {
    return remote_agents_->Remove(which);
  };
  admin_ = std::make_unique<admin::AdminService>(admin_options, *tasks_, *catalog_,
                                                 *remote_catalog_, *peers_, *router_, *blocking_,
                                                 *fanout_, clock_, std::move(hooks));
  catalog_->AddListener(admin_.get());
  remote_catalog_->SetChangeListener([admin = admin_.get()] { admin->CatalogChanged(); });

  // grpc.health.v1.Health, for load balancers and Kubernetes probes: SERVING
  // until the node drains.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_address,
                           options_.tls.enabled() ? security::ServerCredentials(options_.tls)
                                                  : grpc::InsecureServerCredentials(),
                           &grpc_port_);
  builder.RegisterService(a2a_.get());
  builder.RegisterService(agent_host_.get());
  builder.RegisterService(peer_service_.get());
  builder.RegisterService(admin_.get());
  // The A2A and Admin calls counted by method and status code
  // (a2amesh_grpc_requests_total; rpc/call_metrics.h says why not by an
  // interceptor).
  builder.SetContextAllocator(std::make_unique<rpc::CallContexts>(
      [metrics = metrics_.get()](absl::string_view service, absl::string_view method,
                                 grpc::StatusCode code, absl::Duration duration,
                                 absl::string_view trace_id) {
        metrics->GrpcHandled(service, method, code, duration, trace_id);
      },
      tracer()));
  // Our own size check names the flag; gRPC's limit sits above it.
  const int64_t wire_limit =
      std::min<int64_t>(2 * options_.max_message_bytes + (1 << 20), INT32_MAX);
  builder.SetMaxReceiveMessageSize(static_cast<int>(wire_limit));
  // A second server on a busy port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Keepalive both ways: the node pings a connection silent for 30 s (a dead
  // agent or peer is found in 40 s even with no stream talking); clients may
  // ping every 5 s (ours do every 10 s), and one that pings faster is cut off
  // after two strikes.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  if (options_.grpc_max_streams_per_connection > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               options_.grpc_max_streams_per_connection);
  }
  auto millis = [](absl::Duration d) {
    return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
  };
  if (options_.grpc_max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               millis(options_.grpc_max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               millis(options_.drain_timeout));
  }
  if (options_.grpc_max_connection_idle > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               millis(options_.grpc_max_connection_idle));
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("--grpc-address: cannot listen on ",
                                               options_.grpc_address,
                                               " (in use, or not an address of this machine)"));
  }
  // The overall status ("") is readiness: NOT_SERVING once draining. "liveness"
  // stays SERVING while the process serves at all (a drain is not a failure).
  server_->GetHealthCheckService()->SetServingStatus(kLivenessService, true);
  std::string host = options_.grpc_address.substr(0, options_.grpc_address.rfind(':'));
  grpc_address_ = absl::StrCat(host, ":", grpc_port_);
  admin_->SetGrpcAddress(grpc_address_);
  std::string advertise = options_.advertise_address;
  if (advertise.empty()) {
    bool wildcard = host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::";
    advertise = wildcard ? absl::StrCat(LocalHostName(), ":", grpc_port_) : grpc_address_;
  }
  peers_->SetAdvertiseAddress(advertise);
  advertise_host_ = advertise.substr(0, advertise.rfind(':'));
  if (!options_.metrics_address.empty()) {
    A2AMESH_ASSIGN_OR_RETURN(
        metrics_server_,
        metrics::MetricsServer::Start(options_.metrics_address, *metrics_,
                                      options_.tls.metrics ? http_tls_ : nullptr,
                                      [peers = peers_.get()] { return !peers->draining(); }));
    metrics_address_ =
        absl::StrCat(options_.metrics_address.substr(0, options_.metrics_address.rfind(':')), ":",
                     metrics_server_->port());
  }
  if (!options_.http_address.empty()) {
    A2AMESH_RETURN_IF_ERROR(StartHttp());
  }
  peers_->Start();
  remote_agents_->Start();
  if (!options_.peers.empty()) {
    discovery_.push_back(std::make_unique<discovery::StaticDiscoverySource>(options_.peers));
  }
  if (!options_.discovery_dns.empty()) {
    discovery::DnsDiscoveryOptions dns;
    dns.name = options_.discovery_dns;
    dns.port = options_.discovery_dns_port > 0 ? options_.discovery_dns_port : grpc_port_;
    dns.interval = options_.discovery_interval;
    dns.server = options_.discovery_dns_server;
    A2AMESH_ASSIGN_OR_RETURN(auto source, discovery::DnsDiscoverySource::Create(dns));
    discovery_.push_back(std::move(source));
  }
  for (auto& source : discovery_) {
    source->Start(
        [peers = peers_.get(), name = source->name()](const std::vector<std::string>& addresses) {
          peers->SetAddresses(name, addresses);
        });
  }
  A2AMESH_LOG(Info, "meshd serving")
      .With("node", options_.node_id)
      .With("grpc_address", grpc_address_)
      .With("advertise", advertise)
      .With("http", http_address_.empty() ? std::string("off") : http_address_)
      .With("metrics", metrics_address_.empty() ? std::string("off") : metrics_address_)
      .With("store", StoreDescription());
  return absl::OkStatus();
}

absl::Status Node::StartHttp() {
  cards_ = std::make_unique<CatalogCards>(*catalog_, *remote_catalog_);
  a2a::HttpBindingOptions binding;
  binding.cards.node_id = options_.node_id;
  binding.cards.version = Version();
  binding.cards.public_http_url = options_.public_http_url;
  binding.cards.public_grpc_url = options_.public_grpc_url;
  binding.cards.grpc_port = grpc_port_;
  binding.cards.push_notifications = push_ != nullptr;
  binding.cards.tls = http_tls_ != nullptr;
  binding.cards.security.bearer = !options_.auth.token_file.empty() || options_.auth.jwt.enabled();
  binding.cards.security.jwt = options_.auth.jwt.enabled();
  if (absl::StartsWith(options_.auth.jwt.issuer, "https://")) {
    binding.cards.security.oidc_issuer = options_.auth.jwt.issuer;
  }
  binding.cards.security.mtls = options_.auth.client_certificates;
  binding.process_secret = auth_->process_secret();
  binding.max_json_depth = options_.max_json_depth;
  binding.sse_keep_alive = options_.sse_keep_alive;
  binding.ready = [peers = peers_.get()] { return !peers->draining(); };
  binding.tracer = tracer();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  http_binding_ = std::make_unique<a2a::HttpBinding>(std::move(binding),
                                                     server_->InProcessChannel(args), *cards_);
  http::ServerOptions server;
  // A JSON body is bigger than the same message in protobuf; the node's own
  // size checks (--max-message-bytes) apply after parsing.
  server.max_body_bytes = static_cast<size_t>(2 * options_.max_message_bytes + (1 << 20));
  server.max_connections = static_cast<size_t>(options_.max_open_streams + 1024);
  server.max_connections_per_address =
      static_cast<size_t>(std::max(0, options_.http_max_connections_per_address));
  server.tls = http_tls_;
  server.error_response = [binding = http_binding_.get()](const http::Request& request, int status,
                                                          const std::string& message) {
    return binding->ErrorResponse(request, status, message);
  };
  server.on_response = [metrics = metrics_.get()](
                           absl::string_view binding, absl::string_view method, int status,
                           absl::Duration elapsed, absl::string_view trace_id) {
    metrics->HttpHandled(binding, method, status, elapsed, trace_id);
  };
  absl::StatusOr<std::unique_ptr<http::Server>> started = http::Server::Start(
      options_.http_address, std::move(server),
      [binding = http_binding_.get()](std::shared_ptr<http::Exchange> exchange) {
        binding->Handle(std::move(exchange));
      });
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("--http-address: ", started.status().message()));
  }
  http_server_ = *std::move(started);
  http_address_ = absl::StrCat(options_.http_address.substr(0, options_.http_address.rfind(':')),
                               ":", http_server_->port());
  // GetExtendedAgentCard's cards point clients at the advertised host.
  extended_card_host_ = absl::StrCat(advertise_host_, ":", http_server_->port());
  extended_cards_.store(&http_binding_->cards(), std::memory_order_release);
  http_server_for_metrics_.store(http_server_.get(), std::memory_order_release);
  return absl::OkStatus();
}

void Node::StartDraining() {
  {
    absl::MutexLock lock(&drain_mu_);
    if (peers_->draining()) {
      return;
    }
    dispatcher_->SetDraining();
    peers_->SetDraining();
    if (server_ != nullptr && server_->GetHealthCheckService() != nullptr) {
      server_->GetHealthCheckService()->SetServingStatus(kReadinessService, false);
    }
  }
  admin_->CatalogChanged();
  A2AMESH_LOG(Info, "draining: new client work is refused").With("node", options_.node_id);
}

absl::Status Node::StopDraining() {
  {
    absl::MutexLock lock(&drain_mu_);
    if (stopping_.load()) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", options_.node_id, " is stopping: its drain cannot be undone"));
    }
    if (!peers_->draining()) return absl::OkStatus();
    dispatcher_->SetDraining(false);
    peers_->SetDraining(false);
    if (server_ != nullptr && server_->GetHealthCheckService() != nullptr) {
      server_->GetHealthCheckService()->SetServingStatus(kReadinessService, true);
    }
  }
  admin_->CatalogChanged();
  A2AMESH_LOG(Info, "drain undone: client work is taken again").With("node", options_.node_id);
  return absl::OkStatus();
}

size_t Node::Drain(absl::Duration timeout) {
  {
    absl::MutexLock lock(&drain_mu_);  // an undo in progress ends first
    stopping_.store(true);
  }
  StartDraining();
  size_t running = tasks_->running_tasks();
  A2AMESH_LOG(Info, "draining").With("running_tasks", running).With("timeout", timeout);
  absl::Time deadline = absl::Now() + timeout;
  while (running > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    running = tasks_->running_tasks();
  }
  if (running > 0) {
    A2AMESH_LOG(Warning, "drain timed out").With("running_tasks", running);
  }
  Shutdown();
  return running;
}

absl::Status Node::ReloadPolicy() { return governor_->Reload(); }

void Node::Shutdown() {
  stopping_.store(true);
  if (server_ == nullptr) {
    return;
  }
  retention_.reset();
  metrics_server_.reset();  // scrapes read what is stopped below
  // HTTP clients' calls are cancelled with their connections, before the
  // gRPC server they run on stops.
  if (http_server_ != nullptr) http_server_->Stop();
  for (auto& source : discovery_) {
    source->Stop();
  }
  // Turns run here for other nodes end now, with a reason their owners see.
  tasks_->FailHosted(absl::StrCat("node ", options_.node_id, " shut down while running the task"));
  // The long-lived streams first (they never end on their own), then the
  // server: calls still open after a short grace are cancelled.
  peers_->Shutdown();
  agent_host_->Shutdown();
  remote_agents_->Shutdown();  // its calls end, before the task manager does
  admin_->Shutdown();
  catalog_->RemoveListener(admin_.get());
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  server_.reset();
  http_server_.reset();
  // Watches end before the task manager does; what is queued is dropped.
  if (push_ != nullptr) push_->Shutdown();
  blocking_.reset();  // runs what was scheduled, while everything it uses exists
  timers_.reset();
  A2AMESH_LOG(Info, "meshd stopped").With("node", options_.node_id);
}

Node::~Node() { Shutdown(); }

}  // namespace a2amesh
