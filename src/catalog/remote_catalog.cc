#include "catalog/remote_catalog.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace a2amesh::catalog {

std::string QualifiedAgentId(const std::string& agent_id, const std::string& node_id) {
  return absl::StrCat(agent_id, "@", node_id);
}

bool SplitQualifiedAgentId(const std::string& qualified, std::string* agent_id,
                           std::string* node_id) {
  size_t at = qualified.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == qualified.size()) {
    return false;
  }
  *agent_id = qualified.substr(0, at);
  *node_id = qualified.substr(at + 1);
  return true;
}

RemoteAgent::RemoteAgent(std::string node_id, std::string agent_id, lf::a2a::v1::AgentCard card,
                         int max_concurrency, std::optional<v1::RemoteEndpoint> remote)
    : node_id_(std::move(node_id)),
      agent_id_(std::move(agent_id)),
      qualified_id_(QualifiedAgentId(agent_id_, node_id_)),
      card_(std::move(card)),
      max_concurrency_(std::max(1, max_concurrency)),
      remote_(std::move(remote)) {}

int RemoteAgent::outstanding() const {
  return std::max(advertised_.load(std::memory_order_relaxed),
                  in_flight_.load(std::memory_order_relaxed));
}

bool RemoteAgent::TryAcquire() {
  int current = in_flight_.load(std::memory_order_relaxed);
  while (std::max(current, advertised_.load(std::memory_order_relaxed)) < max_concurrency_) {
    if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

RemoteCatalog::RemoteCatalog()
    : snapshot_(std::make_shared<const std::vector<std::shared_ptr<RemoteAgent>>>()) {}

std::shared_ptr<RemoteAgent> RemoteCatalog::MakeAgent(const std::string& node_id,
                                                      const v1::AgentAdvert& advert) {
  auto agent = std::make_shared<RemoteAgent>(
      node_id, advert.agent_id(), advert.card(), static_cast<int>(advert.max_concurrency()),
      advert.has_remote() ? std::optional<v1::RemoteEndpoint>(advert.remote()) : std::nullopt);
  agent->SetAdvertised(static_cast<int>(advert.outstanding()));
  return agent;
}

void RemoteCatalog::ApplyAdvert(const std::string& node_id, uint64_t incarnation,
                                const std::string& address, const v1::NodeAdvert& advert) {
  absl::ReleasableMutexLock lock(&mu_);
  Node& node = nodes_[node_id];
  node = Node();
  node.info.node_id = node_id;
  node.info.incarnation = incarnation;
  node.info.address = address;
  node.info.draining = advert.draining();
  node.info.generation = advert.generation();
  node.info.members.assign(advert.members().begin(), advert.members().end());
  for (const v1::AgentAdvert& agent : advert.agents()) {
    node.agents[agent.agent_id()] = MakeAgent(node_id, agent);
  }
  node.info.agents = static_cast<int>(node.agents.size());
  RebuildSnapshotLocked();
  lock.Release();
  Changed();
}

void RemoteCatalog::ApplyDelta(const std::string& node_id, const v1::CatalogDelta& delta) {
  absl::ReleasableMutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) {
    return;  // no advert yet: the advert will carry everything
  }
  Node& node = it->second;
  node.info.generation = delta.generation();
  for (const v1::AgentAdvert& agent : delta.upserted()) {
    node.agents[agent.agent_id()] = MakeAgent(node_id, agent);
  }
  for (const std::string& removed : delta.removed()) {
    node.agents.erase(removed);
  }
  if (delta.has_draining()) {
    node.info.draining = delta.draining();
  }
  if (!delta.members().empty()) {
    node.info.members.assign(delta.members().begin(), delta.members().end());
  }
  node.info.agents = static_cast<int>(node.agents.size());
  RebuildSnapshotLocked();
  lock.Release();
  Changed();
}

void RemoteCatalog::ApplyLoads(const std::string& node_id,
                               const google::protobuf::RepeatedPtrField<v1::AgentLoad>& loads) {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) {
    return;
  }
  for (const v1::AgentLoad& load : loads) {
    auto agent = it->second.agents.find(load.agent_id());
    if (agent != it->second.agents.end()) {
      agent->second->SetAdvertised(static_cast<int>(load.outstanding()));
    }
  }
}

void RemoteCatalog::RemoveNode(const std::string& node_id) {
  absl::ReleasableMutexLock lock(&mu_);
  if (nodes_.erase(node_id) == 0) {
    return;
  }
  RebuildSnapshotLocked();
  lock.Release();
  Changed();
}

void RemoteCatalog::SetChangeListener(std::function<void()> listener) {
  on_change_ = std::move(listener);
}

void RemoteCatalog::Changed() const {
  if (on_change_) {
    on_change_();
  }
}

std::vector<std::shared_ptr<RemoteAgent>> RemoteCatalog::all_agents() const {
  std::vector<std::shared_ptr<RemoteAgent>> agents;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, node] : nodes_) {
      for (const auto& [agent_id, agent] : node.agents) {
        agents.push_back(agent);
      }
    }
  }
  std::sort(agents.begin(), agents.end(),
            [](const auto& a, const auto& b) { return a->qualified_id() < b->qualified_id(); });
  return agents;
}

RemoteCatalog::Snapshot RemoteCatalog::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

std::shared_ptr<RemoteAgent> RemoteCatalog::Find(const std::string& node_id,
                                                 const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto node = nodes_.find(node_id);
  if (node == nodes_.end()) {
    return nullptr;
  }
  auto agent = node->second.agents.find(agent_id);
  return agent == node->second.agents.end() ? nullptr : agent->second;
}

std::optional<RemoteNodeInfo> RemoteCatalog::node(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) {
    return std::nullopt;
  }
  return it->second.info;
}

std::vector<RemoteNodeInfo> RemoteCatalog::nodes() const {
  absl::MutexLock lock(&mu_);
  std::vector<RemoteNodeInfo> nodes;
  for (const auto& [id, node] : nodes_) {
    nodes.push_back(node.info);
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
  return nodes;
}

void RemoteCatalog::RebuildSnapshotLocked() {
  auto agents = std::make_shared<std::vector<std::shared_ptr<RemoteAgent>>>();
  for (const auto& [id, node] : nodes_) {
    if (node.info.draining) {
      continue;
    }
    for (const auto& [agent_id, agent] : node.agents) {
      agents->push_back(agent);
    }
  }
  std::sort(agents->begin(), agents->end(),
            [](const auto& a, const auto& b) { return a->qualified_id() < b->qualified_id(); });
  snapshot_ = std::move(agents);
}

}  // namespace a2amesh::catalog
