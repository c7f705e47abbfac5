#include "catalog/agent_catalog.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace a2amesh::catalog {

LocalAgent::LocalAgent(std::string id, lf::a2a::v1::AgentCard card, int max_concurrency,
                       std::shared_ptr<AgentLink> link, absl::Time registered_at,
                       std::optional<v1::RemoteEndpoint> remote)
    : id_(std::move(id)),
      card_(std::move(card)),
      max_concurrency_(std::max(1, max_concurrency)),
      link_(std::move(link)),
      registered_at_(registered_at),
      remote_(std::move(remote)) {}

bool LocalAgent::TryAcquire() {
  int current = outstanding_.load(std::memory_order_relaxed);
  while (current < max_concurrency_) {
    if (outstanding_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void LocalAgent::Acquire() { outstanding_.fetch_add(1, std::memory_order_relaxed); }

void LocalAgent::Release() { outstanding_.fetch_sub(1, std::memory_order_relaxed); }

LocalTaskRunner::LocalTaskRunner(std::shared_ptr<LocalAgent> agent) : agent_(std::move(agent)) {}

LocalTaskRunner::~LocalTaskRunner() { agent_->Release(); }

void LocalTaskRunner::Assign(v1::TaskAssignment assignment) {
  v1::NodeToAgent message;
  *message.mutable_assignment() = std::move(assignment);
  agent_->link().Send(std::move(message));
}

void LocalTaskRunner::Cancel(const std::string& task_id, const std::string& reason) {
  v1::NodeToAgent message;
  message.mutable_cancel()->set_task_id(task_id);
  message.mutable_cancel()->set_reason(reason);
  agent_->link().Send(std::move(message));
}

AgentCatalog::AgentCatalog(int max_agents)
    : max_agents_(max_agents),
      snapshot_(std::make_shared<const std::vector<std::shared_ptr<LocalAgent>>>()) {}

absl::Status AgentCatalog::Add(const std::vector<std::shared_ptr<LocalAgent>>& agents) {
  absl::MutexLock lock(&mu_);
  for (const auto& agent : agents) {
    if (agents_.contains(agent->id())) {
      return absl::AlreadyExistsError(absl::StrCat(
          "agent id '", agent->id(), "' is already registered on this node by another connection"));
    }
  }
  if (agents_.size() + agents.size() > static_cast<size_t>(max_agents_)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the node already has ", agents_.size(), " agents; registering ",
                     agents.size(), " more would pass its --max-agents limit of ", max_agents_));
  }
  for (const auto& agent : agents) {
    agents_[agent->id()] = agent;
  }
  RebuildSnapshotLocked();
  for (CatalogListener* listener : listeners_) {
    listener->OnAgentsAdded(agents);
  }
  return absl::OkStatus();
}

void AgentCatalog::Remove(const LocalAgent& agent) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent.id());
  if (it != agents_.end() && it->second.get() == &agent) {
    std::shared_ptr<LocalAgent> removed = std::move(it->second);
    agents_.erase(it);
    RebuildSnapshotLocked();
    for (CatalogListener* listener : listeners_) {
      listener->OnAgentRemoved(removed);
    }
  }
}

void AgentCatalog::AddListener(CatalogListener* listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(listener);
  listener->OnAgentsAdded(*snapshot_);
}

void AgentCatalog::RemoveListener(CatalogListener* listener) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
}

std::shared_ptr<LocalAgent> AgentCatalog::Find(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? nullptr : it->second;
}

AgentCatalog::Snapshot AgentCatalog::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

size_t AgentCatalog::size() const {
  absl::MutexLock lock(&mu_);
  return agents_.size();
}

void AgentCatalog::RebuildSnapshotLocked() {
  auto agents = std::make_shared<std::vector<std::shared_ptr<LocalAgent>>>();
  agents->reserve(agents_.size());
  for (const auto& [id, agent] : agents_) {
    agents->push_back(agent);
  }
  std::sort(agents->begin(), agents->end(),
            [](const auto& a, const auto& b) { return a->id() < b->id(); });
  snapshot_ = std::move(agents);
}

absl::StatusOr<std::unique_ptr<tasks::TaskRunner>> AgentCatalog::Rebind(
    const std::string& agent_id) {
  std::shared_ptr<LocalAgent> agent = Find(agent_id);
  if (agent == nullptr) {
    return absl::UnavailableError(absl::StrCat("agent ", agent_id, " is not connected"));
  }
  agent->Acquire();
  return std::unique_ptr<tasks::TaskRunner>(std::make_unique<LocalTaskRunner>(std::move(agent)));
}

}  // namespace a2amesh::catalog
