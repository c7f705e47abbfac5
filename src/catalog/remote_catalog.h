#ifndef A2AMESH_CATALOG_REMOTE_CATALOG_H_
#define A2AMESH_CATALOG_REMOTE_CATALOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "a2amesh/v1/peer.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::catalog {

// "agent@node": how an agent on another node is named on this one.
std::string QualifiedAgentId(const std::string& agent_id, const std::string& node_id);
// Splits "agent@node"; false if `qualified` has no node part.
bool SplitQualifiedAgentId(const std::string& qualified, std::string* agent_id,
                           std::string* node_id);

// An agent on another node, as this node last heard of it. Thread-safe.
class RemoteAgent {
 public:
  RemoteAgent(std::string node_id, std::string agent_id, lf::a2a::v1::AgentCard card,
              int max_concurrency, std::optional<v1::RemoteEndpoint> remote = std::nullopt);

  const std::string& node_id() const { return node_id_; }
  const std::string& agent_id() const { return agent_id_; }
  const std::string& qualified_id() const { return qualified_id_; }
  const lf::a2a::v1::AgentCard& card() const { return card_; }
  int max_concurrency() const { return max_concurrency_; }
  // Null unless its node hosts it by URL.
  const v1::RemoteEndpoint* remote() const { return remote_ ? &*remote_ : nullptr; }

  // What its node last advertised, or what this node has handed it and not
  // yet seen finish, whichever is more (the advert lags).
  int outstanding() const;
  double load() const { return static_cast<double>(outstanding()) / max_concurrency_; }
  void SetAdvertised(int outstanding) { advertised_.store(outstanding, std::memory_order_relaxed); }

  // A slot for a handoff from this node, if the agent looks free.
  bool TryAcquire();
  // A slot regardless of load (a task the agent already owns).
  void Acquire() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void Release() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  const std::string node_id_;
  const std::string agent_id_;
  const std::string qualified_id_;
  const lf::a2a::v1::AgentCard card_;
  const int max_concurrency_;
  const std::optional<v1::RemoteEndpoint> remote_;
  std::atomic<int> advertised_{0};
  std::atomic<int> in_flight_{0};
};

// What this node knows of another node.
struct RemoteNodeInfo {
  std::string node_id;
  uint64_t incarnation = 0;
  std::string address;
  bool draining = false;
  uint64_t generation = 0;
  int agents = 0;
  std::vector<std::string> members;
};

// The agents of every other node this node is connected to, from their adverts.
// Routing reads cheap immutable snapshots. Thread-safe.
class RemoteCatalog {
 public:
  using Snapshot = std::shared_ptr<const std::vector<std::shared_ptr<RemoteAgent>>>;

  RemoteCatalog();

  // Called after every change of nodes or agents (not of loads), without the
  // catalog's lock: it must not block. Set once, before the catalog is used.
  void SetChangeListener(std::function<void()> listener);

  // A node's full advert: replaces everything known about it.
  void ApplyAdvert(const std::string& node_id, uint64_t incarnation, const std::string& address,
                   const v1::NodeAdvert& advert);
  // A change to a node's agents, draining state or members.
  void ApplyDelta(const std::string& node_id, const v1::CatalogDelta& delta);
  // Load figures from a heartbeat.
  void ApplyLoads(const std::string& node_id,
                  const google::protobuf::RepeatedPtrField<v1::AgentLoad>& loads);
  // The node is down: its agents leave routing.
  void RemoveNode(const std::string& node_id);

  // Agents of nodes that are up and not draining, ordered by (node, agent).
  Snapshot snapshot() const;
  // Agents of every node that is up, draining ones included, in the same order.
  std::vector<std::shared_ptr<RemoteAgent>> all_agents() const;
  std::shared_ptr<RemoteAgent> Find(const std::string& node_id, const std::string& agent_id) const;
  std::optional<RemoteNodeInfo> node(const std::string& node_id) const;
  std::vector<RemoteNodeInfo> nodes() const;

 private:
  struct Node {
    RemoteNodeInfo info;
    absl::flat_hash_map<std::string, std::shared_ptr<RemoteAgent>> agents;
  };
  static std::shared_ptr<RemoteAgent> MakeAgent(const std::string& node_id,
                                                const v1::AgentAdvert& advert);
  void RebuildSnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void Changed() const;

  std::function<void()> on_change_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  Snapshot snapshot_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::catalog

#endif  // A2AMESH_CATALOG_REMOTE_CATALOG_H_
