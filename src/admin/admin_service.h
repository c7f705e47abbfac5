#ifndef A2AMESH_ADMIN_ADMIN_SERVICE_H_
#define A2AMESH_ADMIN_ADMIN_SERVICE_H_

#include <functional>
#include <memory>
#include <string>

#include "a2amesh/clock.h"
#include "a2amesh/executor.h"
#include "a2amesh/v1/admin.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "catalog/agent_catalog.h"
#include "catalog/remote_catalog.h"
#include "governance/governor.h"
#include "grpcpp/grpcpp.h"
#include "peer/peer_manager.h"
#include "routing/router.h"
#include "security/auth.h"
#include "tasks/task_manager.h"

namespace a2amesh::admin {

struct AdminServiceOptions {
  std::string node_id;
  // What ExplainRoute assumes when a selector names no agent, skill or tags.
  std::string default_skill;
  // "sqlite:<path>" or "memory".
  std::string store;
  absl::Time started_at;
  // How deep GetTaskTree follows subtasks, and how many tasks it shows.
  int max_depth = 16;
  int max_tree_tasks = 1000;
  // The longest a call to another node may take (it also keeps the caller's
  // deadline, if sooner).
  absl::Duration peer_call_timeout = absl::Seconds(5);
  // Catalog events a watch may have queued for a slow client.
  size_t max_queued_events = 4096;
  // Proves who calls (security/auth.h); never null. Every call is
  // authenticated first.
  std::shared_ptr<security::Authenticator> auth = security::Authenticator::Off();
  // Decides and audits every call (docs/governance.md); null: nothing does.
  governance::Governor* governor = nullptr;
};

// What the admin service asks of the node it runs in.
struct NodeHooks {
  // Stops taking new client work (see Node::StartDraining).
  std::function<void()> start_draining;
  // Takes it again (see Node::StopDraining).
  std::function<absl::Status()> stop_draining;
  // The A2A agents the node hosts by URL (agenthost::RemoteAgents): listed,
  // one more hosted (its card's URL, an id or empty; blocks while its card is
  // fetched), one no longer hosted (by id or card URL; blocks until its calls
  // end).
  std::function<std::vector<catalog::HostedRemoteAgent>()> remote_agents;
  std::function<absl::StatusOr<catalog::HostedRemoteAgent>(const v1::AddRemoteAgentRequest&)>
      add_remote_agent;
  std::function<absl::Status(const std::string& which)> remove_remote_agent;
};

// a2amesh.v1.Admin (proto/a2amesh/v1/admin.proto) on the callback API.
// Reactions never block: reads of the task store run on `blocking`; calls
// that wait on other nodes (task trees, mesh-wide task lists) run on `fanout`,
// which nothing else uses, so that a node waiting on a peer never starves the
// peer's requests to it. Calls about another node's task or another node are
// forwarded to it, once.
//
// Also the catalog's watcher: CatalogChanged (and, as a CatalogListener, the
// local catalog) wakes every WatchCatalog stream. Thread-safe.
class AdminService final : public v1::Admin::CallbackService, public catalog::CatalogListener {
 public:
  AdminService(AdminServiceOptions options, tasks::TaskManager& tasks, catalog::AgentCatalog& local,
               catalog::RemoteCatalog& remote, peer::PeerManager& peers, routing::Router& router,
               Executor& blocking, Executor& fanout, Clock& clock, NodeHooks hooks);
  ~AdminService() override;

  // Where the node's gRPC server listens, once it is bound.
  void SetGrpcAddress(const std::string& address);

  // Something in the mesh's catalog changed: watches look again. Never blocks;
  // may be called with catalog locks held.
  void CatalogChanged();
  // Ends every watch (the node is stopping).
  void Shutdown();
  // WatchCatalog streams open now.
  int64_t open_watches() const;

  // catalog::CatalogListener
  void OnAgentsAdded(const std::vector<std::shared_ptr<catalog::LocalAgent>>& agents) override;
  void OnAgentRemoved(const std::shared_ptr<catalog::LocalAgent>& agent) override;

  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* context,
                                    const v1::GetNodeRequest* request,
                                    v1::NodeInfo* response) override;
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* context,
                                       const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) override;
  grpc::ServerUnaryReactor* GetAgent(grpc::CallbackServerContext* context,
                                     const v1::GetAgentRequest* request,
                                     v1::AgentInfo* response) override;
  grpc::ServerUnaryReactor* ListSkills(grpc::CallbackServerContext* context,
                                       const v1::ListSkillsRequest* request,
                                       v1::ListSkillsResponse* response) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* context,
                                      const v1::ListTasksAdminRequest* request,
                                      v1::ListTasksAdminResponse* response) override;
  grpc::ServerUnaryReactor* GetTaskTree(grpc::CallbackServerContext* context,
                                        const v1::GetTaskTreeRequest* request,
                                        v1::TaskTree* response) override;
  grpc::ServerUnaryReactor* ListSubtasks(grpc::CallbackServerContext* context,
                                         const v1::ListSubtasksRequest* request,
                                         v1::ListSubtasksResponse* response) override;
  grpc::ServerUnaryReactor* ExplainRoute(grpc::CallbackServerContext* context,
                                         const v1::ExplainRouteRequest* request,
                                         v1::RouteExplanation* response) override;
  grpc::ServerWriteReactor<v1::CatalogEvent>* WatchCatalog(
      grpc::CallbackServerContext* context, const v1::WatchCatalogRequest* request) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;
  grpc::ServerUnaryReactor* AddRemoteAgent(grpc::CallbackServerContext* context,
                                           const v1::AddRemoteAgentRequest* request,
                                           v1::AgentInfo* response) override;
  grpc::ServerUnaryReactor* RemoveRemoteAgent(grpc::CallbackServerContext* context,
                                              const v1::RemoveRemoteAgentRequest* request,
                                              v1::RemoveRemoteAgentResponse* response) override;
  grpc::ServerUnaryReactor* TailAudit(grpc::CallbackServerContext* context,
                                      const v1::TailAuditRequest* request,
                                      v1::TailAuditResponse* response) override;
  grpc::ServerUnaryReactor* DecideApproval(grpc::CallbackServerContext* context,
                                           const v1::DecideApprovalRequest* request,
                                           lf::a2a::v1::Task* response) override;

 private:
  class Watch;
  struct MeshView;

  // Every agent in the mesh as AgentInfo (without cards), ordered by id.
  std::vector<v1::AgentInfo> Agents(bool include_cards) const;
  // An agent hosted by URL that is out of routing.
  v1::AgentInfo DescribeHosted(const catalog::HostedRemoteAgent& hosted, bool include_card) const;
  MeshView View() const;
  // A stub for node `node_id`, or nullptr (and `error`) if it is not a
  // reachable peer.
  std::unique_ptr<v1::Admin::Stub> StubFor(const std::string& node_id, absl::Status* error);
  // Forwards the call to node `node_id` and finishes it with that node's
  // answer; `start(async_stub, client_context, done)` makes the call. Fails
  // with `unreachable` (or, if that is OK, a NOT_FOUND naming the node) when
  // the node is not a reachable peer. Never blocks.
  template <typename Start>
  grpc::ServerUnaryReactor* ForwardTo(grpc::CallbackServerContext* context,
                                      const std::string& node_id, const absl::Status& unreachable,
                                      Start start);
  // For a call addressed to node `node_id`: nullptr if that is this node (or
  // none is named); else ForwardTo it (once: NOT_FOUND if the call was
  // forwarded here already).
  template <typename Start>
  grpc::ServerUnaryReactor* ForwardIfElsewhere(grpc::CallbackServerContext* context,
                                               const std::string& node_id, Start start);
  // A context for a call this node makes to a peer while serving `context`.
  std::unique_ptr<grpc::ClientContext> PeerContext(const grpc::CallbackServerContext& context);
  // A context for a call to another node on behalf of `context`'s caller
  // (forwarded, carrying its credentials and principal).
  std::unique_ptr<grpc::ClientContext> OnBehalfOf(const grpc::CallbackServerContext& context) const;
  // Whether the caller proves who it is (UNAUTHENTICATED if not).
  absl::Status Admit(const grpc::CallbackServerContext& context, governance::Action action) const;
  // The subtasks of `parent` found on `node_id` (this node or a peer). May block.
  absl::StatusOr<std::vector<v1::TaskSummary>> SubtasksOn(const std::string& node_id,
                                                          const std::string& parent_id,
                                                          const grpc::CallbackServerContext& ctx);
  // Fills `tree`'s subtasks, recursively. May block.
  void Expand(v1::TaskTree* tree, int depth, int* budget, const grpc::CallbackServerContext& ctx);
  absl::Status ListOwnTasks(const v1::ListTasksAdminRequest& request,
                            v1::ListTasksAdminResponse* response);
  void RemoveWatch(Watch* watch);

  const AdminServiceOptions options_;
  tasks::TaskManager& tasks_;
  catalog::AgentCatalog& local_;
  catalog::RemoteCatalog& remote_;
  peer::PeerManager& peers_;
  routing::Router& router_;
  Executor& blocking_;
  Executor& fanout_;
  Clock& clock_;
  const NodeHooks hooks_;

  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::shared_ptr<Watch>> watches_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::string grpc_address_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::admin

#endif  // A2AMESH_ADMIN_ADMIN_SERVICE_H_
