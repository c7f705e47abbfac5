#ifndef A2AMESH_CATALOG_AGENT_CATALOG_H_
#define A2AMESH_CATALOG_AGENT_CATALOG_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "a2amesh/v1/agent_host.pb.h"
#include "a2amesh/v1/peer.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "tasks/task_manager.h"

namespace a2amesh::catalog {

// The node's side of one agent process's AgentHost stream. Thread-safe; Send
// never blocks (messages queue behind the stream's flow control).
class AgentLink {
 public:
  virtual ~AgentLink() = default;
  virtual void Send(v1::NodeToAgent message) = 0;
};

// One registered agent: its card, capacity and current load, and the stream it
// registered on. Thread-safe.
class LocalAgent {
 public:
  // `remote`: for an A2A agent hosted by URL, how the node reaches it.
  LocalAgent(std::string id, lf::a2a::v1::AgentCard card, int max_concurrency,
             std::shared_ptr<AgentLink> link, absl::Time registered_at,
             std::optional<v1::RemoteEndpoint> remote = std::nullopt);

  const std::string& id() const { return id_; }
  const lf::a2a::v1::AgentCard& card() const { return card_; }
  int max_concurrency() const { return max_concurrency_; }
  absl::Time registered_at() const { return registered_at_; }
  AgentLink& link() const { return *link_; }
  // Null unless the agent is hosted by URL.
  const v1::RemoteEndpoint* remote() const { return remote_ ? &*remote_ : nullptr; }

  // Tasks assigned and not yet finished or waiting for their client.
  int outstanding() const { return outstanding_.load(std::memory_order_relaxed); }
  // outstanding / max_concurrency.
  double load() const { return static_cast<double>(outstanding()) / max_concurrency_; }

  // Takes a slot if one is free.
  bool TryAcquire();
  // Takes a slot even past max_concurrency: for a task the agent already owns.
  void Acquire();
  void Release();

 private:
  const std::string id_;
  const lf::a2a::v1::AgentCard card_;
  const int max_concurrency_;
  const std::shared_ptr<AgentLink> link_;
  const absl::Time registered_at_;
  const std::optional<v1::RemoteEndpoint> remote_;
  std::atomic<int> outstanding_{0};
};

// An A2A agent the node hosts by URL (agenthost::RemoteAgents), as it stands:
// in routing (a LocalAgent of the catalog) or out of it, and why.
struct HostedRemoteAgent {
  // Its id on this node; its card's URL while its card never answered.
  std::string agent_id;
  // Its card as last fetched (empty while it never answered).
  lf::a2a::v1::AgentCard card;
  // With the calls in a row that failed and why it is out of routing.
  v1::RemoteEndpoint remote;
  bool in_routing = false;
};

// Runs tasks on a LocalAgent through its AgentHost stream, holding one of its
// slots until destroyed. Thread-safe.
class LocalTaskRunner final : public tasks::TaskRunner {
 public:
  // `agent` must already have a slot acquired for this runner.
  explicit LocalTaskRunner(std::shared_ptr<LocalAgent> agent);
  ~LocalTaskRunner() override;

  const std::string& agent_id() const override { return agent_->id(); }
  void Assign(v1::TaskAssignment assignment) override;
  void Cancel(const std::string& task_id, const std::string& reason) override;

 private:
  const std::shared_ptr<LocalAgent> agent_;
};

// Hears of agents coming and going. Called with the catalog's lock held, in
// the order of the changes: must not block or call back into the catalog.
class CatalogListener {
 public:
  virtual ~CatalogListener() = default;
  virtual void OnAgentsAdded(const std::vector<std::shared_ptr<LocalAgent>>& agents) = 0;
  virtual void OnAgentRemoved(const std::shared_ptr<LocalAgent>& agent) = 0;
};

// The agents registered on this node. Readers take cheap immutable snapshots.
// Thread-safe.
class AgentCatalog final : public tasks::RunnerFactory {
 public:
  using Snapshot = std::shared_ptr<const std::vector<std::shared_ptr<LocalAgent>>>;

  explicit AgentCatalog(int max_agents);

  // Adds a listener. It first hears the agents registered now (one
  // OnAgentsAdded, possibly empty), then every later change, with nothing
  // missed in between. It must be removed before it is destroyed.
  void AddListener(CatalogListener* listener);
  void RemoveListener(CatalogListener* listener);

  // Adds the agents of one registration, all or none: ALREADY_EXISTS if an id
  // is held by another registration, RESOURCE_EXHAUSTED past max_agents.
  absl::Status Add(const std::vector<std::shared_ptr<LocalAgent>>& agents);
  // Removes `agent` if its id still refers to it (not to a newer registration).
  void Remove(const LocalAgent& agent);

  std::shared_ptr<LocalAgent> Find(const std::string& agent_id) const;
  // Every agent, ordered by id.
  Snapshot snapshot() const;
  size_t size() const;

  // RunnerFactory: a runner for a connected agent, regardless of its load.
  absl::StatusOr<std::unique_ptr<tasks::TaskRunner>> Rebind(const std::string& agent_id) override;

 private:
  void RebuildSnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_agents_;
  mutable absl::Mutex mu_;
  std::vector<CatalogListener*> listeners_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<LocalAgent>> agents_ ABSL_GUARDED_BY(mu_);
  Snapshot snapshot_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::catalog

#endif  // A2AMESH_CATALOG_AGENT_CATALOG_H_
