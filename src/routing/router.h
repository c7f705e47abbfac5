#ifndef A2AMESH_ROUTING_ROUTER_H_
#define A2AMESH_ROUTING_ROUTER_H_

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/v1/admin.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "catalog/agent_catalog.h"
#include "catalog/remote_catalog.h"
#include "core/telemetry.h"
#include "routing/admission.h"
#include "routing/selector.h"
#include "tasks/task_manager.h"

namespace a2amesh::routing {

// An agent on another node that can take a task.
struct RemoteCandidate {
  std::shared_ptr<catalog::RemoteAgent> agent;
  std::string skill;
};

// Makes runners that hand tasks to agents on other nodes (the peer layer).
// Thread-safe.
class RemoteRunnerFactory {
 public:
  virtual ~RemoteRunnerFactory() = default;
  // A runner for `candidates[0]` (whose slot is already taken) that falls back
  // to the next candidates, in order, when one refuses before accepting.
  virtual std::unique_ptr<tasks::TaskRunner> HandoffRunner(
      std::vector<RemoteCandidate> candidates) = 0;
  // A runner for a task `agent` already owns (a follow-up, a cancel).
  virtual std::unique_ptr<tasks::TaskRunner> RebindRunner(
      std::shared_ptr<catalog::RemoteAgent> agent) = 0;
};

// Where a request goes.
struct Route {
  std::unique_ptr<tasks::TaskRunner> runner;
  // The agent's id on this node, or "agent@node" for an agent elsewhere.
  std::string agent_id;
  std::string node_id;
  // The matching skill of the chosen agent, and its tags.
  std::string skill;
  google::protobuf::RepeatedPtrField<std::string> tags;
  // The agent's id on its node.
  std::string bare_agent_id;
  // Its card declares direct replies (core/extensions.h).
  bool direct_replies = false;
};

struct RouterOptions {
  std::string node_id;
  // Longest delegation chain (hops) a task may have.
  int max_hops = 8;
  // A local agent is preferred unless its load exceeds the best remote one's by
  // more than this (load = outstanding / max_concurrency).
  double local_bias = 0.5;
  // How many other candidates a handoff may fall back to.
  int max_alternates = 3;
  // Hears of every decision Pick makes.
  Telemetry* telemetry = &NoTelemetry();
};

// Picks an agent anywhere in the mesh for a selector (DESIGN §2). Candidates
// match every part of the selector and have a free slot; a candidate already in
// the task's hop chain is a cycle and never chosen; a chain at max_hops is
// refused outright. A local agent wins unless it is much busier than the best
// remote one; otherwise the less loaded of two random candidates wins (power
// of two choices). A remote pick carries the next-best remote candidates for
// the handoff to fall back to.
//
// Errors say what was asked and what exists: UnsupportedOperation when no agent
// has the agent id, skill or tags (or only a cycle would), ContentTypeNotSupported
// when agents have the skill but not the media types, RESOURCE_EXHAUSTED when
// every match is busy. Thread-safe.
class Router final : public tasks::RunnerFactory {
 public:
  Router(RouterOptions options, catalog::AgentCatalog& local, catalog::RemoteCatalog& remote);

  // Set once, before serving; without it remote agents are never picked.
  void SetRemoteRunners(RemoteRunnerFactory* remote);

  // `hops` are the agents ("agent@node") handling the task's ancestors.
  // With `admission`, a candidate it does not allow is never picked; when it
  // allows none, the error is its refusal (PERMISSION_DENIED). `weighed`, if
  // set, gets the candidates that matched, as a trace shows them:
  // "echo load=0.25, echo@n2 load=0" (this node's agents by id, others'
  // agent@node; load = outstanding / max_concurrency as Pick saw it).
  absl::StatusOr<Route> Pick(const Selector& selector, const std::vector<std::string>& hops = {},
                             Admission* admission = nullptr, std::string* weighed = nullptr);

  // What Pick would do with the mesh as it stands, for people (Admin
  // ExplainRoute): every agent, as a candidate with its score or with why it is
  // excluded, and the candidate Pick would most likely take. Takes no slot.
  v1::RouteExplanation Explain(const Selector& selector,
                               const std::vector<std::string>& hops = {}) const;

  // tasks::RunnerFactory: a runner for "agent" here or "agent@node" elsewhere,
  // regardless of load.
  absl::StatusOr<std::unique_ptr<tasks::TaskRunner>> Rebind(const std::string& agent_id) override;

 private:
  RemoteRunnerFactory* remote_runners() const;

  const RouterOptions options_;
  catalog::AgentCatalog& local_;
  catalog::RemoteCatalog& remote_;
  mutable absl::Mutex mu_;
  RemoteRunnerFactory* remote_runners_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace a2amesh::routing

#endif  // A2AMESH_ROUTING_ROUTER_H_
