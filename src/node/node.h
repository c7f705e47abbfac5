#ifndef A2AMESH_NODE_NODE_H_
#define A2AMESH_NODE_NODE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "a2amesh/clock.h"
#include "a2amesh/executor.h"
#include "a2amesh/task_store.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/auth.h"
#include "security/tls.h"
#include "trace/otlp_exporter.h"
#include "trace/tracer.h"

namespace grpc {
class Server;
}

namespace a2amesh {
namespace a2a {
class A2aService;
}
namespace admin {
class AdminService;
}
namespace discovery {
class DiscoverySource;
}
namespace peer {
class PeerManager;
class PeerService;
}  // namespace peer
namespace agenthost {
class AgentHostService;
class RemoteAgents;
}  // namespace agenthost
namespace catalog {
class AgentCatalog;
class RemoteCatalog;
}  // namespace catalog
namespace routing {
class Dispatcher;
class Router;
}  // namespace routing
namespace tasks {
class Retention;
class TaskManager;
}  // namespace tasks
namespace http {
class Server;
class TlsContextSource;
}  // namespace http
namespace push {
class PushNotifier;
}
namespace a2a {
class AgentCards;
class CardSource;
class HttpBinding;
}  // namespace a2a
namespace governance {
class Governor;
}  // namespace governance
namespace metrics {
class Metrics;
class MetricsServer;
struct NodeSample;
}  // namespace metrics

// Everything a node is configured with. Defaults run a useful single node.
struct NodeOptions {
  std::string node_id;
  // host:port; port 0 picks a free port (see Node::grpc_address()).
  std::string grpc_address = "0.0.0.0:7400";
  // Where Prometheus scrapes /metrics (host:port; port 0 picks one); empty:
  // no metrics endpoint.
  std::string metrics_address = "0.0.0.0:9464";
  // A2A over HTTP (JSON-RPC, HTTP+JSON/REST, agent cards), host:port; port 0
  // picks one; empty: none.
  std::string http_address = "0.0.0.0:7480";
  // The URLs agent cards give clients (behind an ingress or a load balancer):
  // the HTTP base URL and the gRPC host:port. Default: from the request's Host.
  std::string public_http_url;
  std::string public_grpc_url;
  // Where the SQLite task store lives; created if missing. Unused if ephemeral.
  std::string data_dir = "meshd-data";
  // Keep tasks in memory only: nothing survives a restart.
  bool ephemeral = false;
  // fsync every group commit (synchronous=FULL); off: survive process crashes only.
  bool store_fsync = true;
  // Retention of finished tasks: removed once their status is older than
  // this (zero: kept by age forever), and beyond the newest
  // max_finished_tasks (0: no cap). Unset: 7 days and no cap on disk (a week
  // of results to fetch and audit; size the disk for it), 10 minutes and
  // 10,000 tasks in memory (--ephemeral: bounded RSS).
  std::optional<absl::Duration> task_retention;
  // How often retention sweeps the store (at most) and free memory goes back
  // to the system.
  absl::Duration housekeeping_interval = absl::Minutes(1);
  std::optional<int64_t> max_finished_tasks;
  std::string default_skill;
  // Where other nodes reach this node; default: the gRPC address with the bound
  // port (and this host's name for 0.0.0.0 / [::]).
  std::string advertise_address;
  // Static peers, host:port.
  std::vector<std::string> peers;
  // A DNS name whose A/AAAA records (port: dns_port) or SRV records
  // (_grpc._tcp.<name>) are the mesh's members; resolved every dns_interval.
  std::string discovery_dns;
  int discovery_dns_port = 0;  // 0: this node's gRPC port
  absl::Duration discovery_interval = absl::Seconds(5);
  // Query this DNS server (host:port) instead of the system's resolvers.
  std::string discovery_dns_server;
  absl::Duration peer_heartbeat = absl::Seconds(1);
  absl::Duration peer_timeout = absl::Seconds(3);
  // A member that went down stays listed as down this long.
  absl::Duration forget_down_after = absl::Minutes(15);
  int max_hops = 8;
  // A task handed to another node stays WORKING this long when the link to
  // that node breaks, while the owner dials it again to resume the turn; the
  // node running it keeps it that long (and a little more) for the owner.
  // Zero: a broken link fails the task at once.
  absl::Duration handoff_grace = absl::Seconds(30);
  absl::Duration agent_grace = absl::Seconds(10);
  // An agent's turn of a task fails once it has run this long (per skill in
  // skill_max_turn), or once the agent has sent nothing for agent_idle_timeout.
  // Zero: no limit. Generous ceilings by default: they free the slots of hung
  // agents without cutting long work that reports progress.
  absl::Duration max_turn = absl::Hours(1);
  absl::flat_hash_map<std::string, absl::Duration> skill_max_turn;
  absl::Duration agent_idle_timeout = absl::Minutes(15);
  // A task waiting for its client (input-required, auth-required) fails once it
  // has waited this long. Zero: it waits forever.
  absl::Duration interrupted_task_ttl = absl::Hours(24);
  absl::Duration recovery_grace = absl::Seconds(30);
  absl::Duration agent_lease = absl::Seconds(15);
  absl::Duration drain_timeout = absl::Seconds(30);
  int64_t max_message_bytes = 4 * 1024 * 1024;
  int max_parts = 256;
  // JSON request bodies (JSON-RPC, HTTP+JSON) nesting deeper are refused
  // before they are parsed (a2a::kDefaultMaxJsonDepth).
  int max_json_depth = 64;
  // An SSE stream that has sent nothing for this long sends a comment line,
  // so that proxies cutting idle connections keep it open (0: never).
  absl::Duration sse_keep_alive = absl::Seconds(15);
  // HTTP connections one client address may hold at once (0: no cap). High
  // enough for a proxy or ingress in front of the node, low enough that one
  // address cannot hold every slot (--max-open-streams + 1024).
  int http_max_connections_per_address = 1024;
  int64_t max_card_bytes = 64 * 1024;
  int max_agents = 1024;
  // Most agents one AgentHost stream, and one client address, may register
  // (0: no cap).
  int max_agents_per_connection = 64;
  int max_agents_per_address = 256;
  // A2A agents served elsewhere, hosted by this node (--remote-agent):
  // their cards' skills join the catalog; their tasks are calls to them.
  // Each "URL" or "ID=URL", URL the agent's card.
  std::vector<std::string> remote_agents;
  // How often their cards are fetched again (and an agent whose card does not
  // answer leaves routing).
  absl::Duration remote_agent_refresh = absl::Seconds(30);
  // Tasks each runs at once.
  int remote_agent_max_concurrency = 16;
  // Calls in a row that do not reach one before it leaves routing (0: never).
  int remote_agent_max_failures = 3;
  // "auto" (the first binding a card lists that the node speaks), "JSONRPC"
  // or "GRPC".
  std::string remote_agent_binding = "auto";
  // The gRPC port's connections: concurrent streams on one (0: gRPC's own
  // limit), and how old or idle one may get before the node closes it with a
  // GOAWAY (zero: no limit; streams still open get --drain-timeout to end).
  int grpc_max_streams_per_connection = 0;
  absl::Duration grpc_max_connection_age = absl::ZeroDuration();
  absl::Duration grpc_max_connection_idle = absl::ZeroDuration();
  int64_t max_open_streams = 10000;
  int default_max_concurrency = 16;
  // A2A push notifications (webhooks).
  bool push_notifications = true;
  // Let webhooks be loopback, private or link-local addresses.
  bool push_allow_private_targets = false;
  int64_t push_max_queued = 10000;
  int push_max_attempts = 8;
  absl::Duration push_initial_backoff = absl::Milliseconds(200);
  absl::Duration push_timeout = absl::Seconds(10);
  // Threads for work that may block (store reads).
  int blocking_threads = 2;
  // TLS on the gRPC port, and the mesh CA peers (and clients) prove
  // themselves with; off by default.
  security::TlsOptions tls;
  // Who may call: off by default (everyone is anonymous, and the node warns).
  security::AuthOptions auth;
  // Governance (docs/governance.md): the policy file ("" for none), and the
  // audit log: a file, "-" for standard output, "" for none.
  std::string policy_file;
  std::string audit_log;
  int64_t audit_max_bytes = 100 * 1024 * 1024;
  int audit_max_files = 3;
  // Audit entries waiting for the writer; past it, new ones are dropped.
  int audit_max_queued = 65536;
  // Tracing (docs/tracing.md): spans go to this OTLP collector; an empty
  // endpoint turns recording off (callers' trace context still passes on).
  trace::OtlpOptions otlp;
  // Root spans recorded with this probability; others follow their parent.
  double trace_sample_ratio = 1.0;
  // Resource attributes added to service.name, service.instance.id and
  // service.version (e.g. k8s.pod.name from the downward API).
  std::vector<std::pair<std::string, std::string>> trace_resource;
};

// One mesh node: the composition root that wires the task store, task manager,
// catalog, router and the gRPC services together and serves them. Nothing else
// creates these components.
//
// Thread-safe.
class Node {
 public:
  // Opens the store, recovers its unfinished tasks and starts serving. Errors
  // name the setting that is wrong (INVALID_ARGUMENT) or what could not be done
  // (UNAVAILABLE: the store, the port).
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& node_id() const { return options_.node_id; }
  // The address the gRPC server listens on, with the port it bound.
  const std::string& grpc_address() const { return grpc_address_; }
  int grpc_port() const { return grpc_port_; }
  // The port /metrics is served on (0 if it is not), and host:port ("" if not).
  int metrics_port() const;
  const std::string& metrics_address() const { return metrics_address_; }
  // The port A2A over HTTP is served on (0 if it is not), and host:port.
  int http_port() const;
  const std::string& http_address() const { return http_address_; }

  // Stops taking new client work: the node refuses new tasks from clients
  // (running tasks may still delegate), peers stop routing to its agents, and
  // its gRPC health turns NOT_SERVING. It keeps serving what it has.
  // Idempotent.
  void StartDraining();
  // Ends a drain that StartDraining began (meshctl drain --undo): client work
  // is taken again, peers route here, health is SERVING. FAILED_PRECONDITION
  // once the node is stopping (Drain or Shutdown began).
  absl::Status StopDraining();
  // Starts draining, waits up to `timeout` for running tasks to finish, then
  // stops serving. Returns how many tasks were still running.
  size_t Drain(absl::Duration timeout);
  // Stops serving now. Idempotent.
  void Shutdown();
  // Re-reads the policy file (SIGHUP): its error, when it does not load and
  // the policy in force stays.
  absl::Status ReloadPolicy();

  tasks::TaskManager& tasks() { return *tasks_; }
  catalog::AgentCatalog& catalog() { return *catalog_; }
  catalog::RemoteCatalog& remote_catalog() { return *remote_catalog_; }
  peer::PeerManager& peers() { return *peers_; }

 private:
  // The node's tracer: Tracer::Disabled() when tracing is off.
  trace::Tracer* tracer() const {
    return tracer_ != nullptr ? tracer_.get() : trace::Tracer::Disabled();
  }
  explicit Node(NodeOptions options);
  absl::Status Init();
  absl::Status StartHttp();
  // "sqlite:<path>" or "memory".
  std::string StoreDescription() const;
  // The node as it stands, for a metrics scrape.
  metrics::NodeSample Sample() const;

  const NodeOptions options_;
  RealClock clock_;
  // Before everything that reports to it.
  std::unique_ptr<metrics::Metrics> metrics_;
  // Outlives every component that records spans (they are destroyed first).
  std::unique_ptr<trace::Tracer> tracer_;
  std::unique_ptr<Timers> timers_;
  // Before the task manager: a task's quota lease refers to it.
  std::unique_ptr<governance::Governor> governor_;
  std::unique_ptr<Executor> blocking_;
  // Admin calls that wait on other nodes.
  std::unique_ptr<Executor> fanout_;
  std::unique_ptr<TaskStore> store_;
  // After store_: stops before it.
  std::unique_ptr<tasks::Retention> retention_;
  std::unique_ptr<push::PushNotifier> push_;
  std::unique_ptr<catalog::AgentCatalog> catalog_;
  std::unique_ptr<catalog::RemoteCatalog> remote_catalog_;
  std::unique_ptr<routing::Router> router_;
  std::unique_ptr<tasks::TaskManager> tasks_;
  std::unique_ptr<routing::Dispatcher> dispatcher_;
  std::unique_ptr<peer::PeerManager> peers_;
  std::unique_ptr<peer::PeerService> peer_service_;
  std::vector<std::unique_ptr<discovery::DiscoverySource>> discovery_;
  std::unique_ptr<a2a::A2aService> a2a_;
  std::unique_ptr<admin::AdminService> admin_;
  std::unique_ptr<agenthost::AgentHostService> agent_host_;
  std::unique_ptr<agenthost::RemoteAgents> remote_agents_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  // What the HTTP binding reads agent cards from.
  std::unique_ptr<a2a::CardSource> cards_;
  std::unique_ptr<a2a::HttpBinding> http_binding_;
  std::unique_ptr<http::Server> http_server_;
  // http_server_ for scrapes, which may run while it starts.
  std::atomic<const http::Server*> http_server_for_metrics_{nullptr};
  // Drain (SIGTERM) or Shutdown began: a drain can no longer be undone
  // (set, and read by an undo, under drain_mu_).
  std::atomic<bool> stopping_{false};
  // Starting and undoing a drain change three things (the dispatcher, the
  // peers, health): one at a time. Never held while others are told.
  absl::Mutex drain_mu_;
  std::shared_ptr<security::Authenticator> auth_;
  // What GetExtendedAgentCard serves from, once the HTTP binding exists.
  std::atomic<const a2a::AgentCards*> extended_cards_{nullptr};
  std::string advertise_host_;
  // Written before extended_cards_ is published, read after it is.
  std::string extended_card_host_;
  // The HTTP and metrics ports' TLS (nullptr: plain).
  std::shared_ptr<http::TlsContextSource> http_tls_;
  std::string http_address_;
  std::string grpc_address_;
  int grpc_port_ = 0;
  std::string metrics_address_;
};

}  // namespace a2amesh

#endif  // A2AMESH_NODE_NODE_H_
