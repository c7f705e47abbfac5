#ifndef A2AMESH_AGENTHOST_AGENT_HOST_SERVICE_H_
#define A2AMESH_AGENTHOST_AGENT_HOST_SERVICE_H_

#include <cstdint>
#include <string>

#include "a2amesh/clock.h"
#include "a2amesh/executor.h"
#include "a2amesh/v1/agent_host.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "catalog/agent_catalog.h"
#include "governance/governor.h"
#include "routing/dispatcher.h"
#include "security/auth.h"
#include "tasks/task_manager.h"

namespace a2amesh::agenthost {

struct AgentHostOptions {
  std::string node_id;
  // max_concurrency for agents that register with 0.
  int default_max_concurrency = 16;
  // The most any agent may ask for.
  int max_concurrency_limit = 10000;
  // An agent must send something at least this often.
  absl::Duration lease = absl::Seconds(15);
  // Largest serialized agent card.
  int64_t max_card_bytes = 64 * 1024;
  // Largest serialized event an agent may send.
  int64_t max_event_bytes = 4 * 1024 * 1024;
  // Proves who connects (security/auth.h); never null. With auth on, an agent
  // process authenticates its stream like any caller, may register only the
  // agent ids and skills its principal's "agent:GLOB" and "skill:GLOB" roles
  // allow, and an agent id stays its principal's while registered and for
  // `grace` after (no other principal may take over its tasks).
  std::shared_ptr<security::Authenticator> auth = security::Authenticator::Off();
  // Decides and audits registrations and delegations (docs/governance.md);
  // null: nothing does.
  governance::Governor* governor = nullptr;
  absl::Duration grace = absl::Seconds(10);
  // The most agents one stream may register, and all the streams from one
  // client address together (0: no cap): nobody fills the node's --max-agents
  // slots alone.
  int max_agents_per_connection = 64;
  int max_agents_per_address = 256;
};

// The AgentHost gRPC service: one bidi stream per agent process (see
// proto/a2amesh/v1/agent_host.proto). Registers agents in the catalog, relays
// task assignments and cancels to them and their events to the task manager,
// and takes their agents out of the catalog the moment the stream ends. An
// agent's DelegateRequest becomes a subtask of one of its tasks, routed
// anywhere in the mesh; the subtask's events come back on the same stream.
//
// Reactions never block. Thread-safe.
class AgentHostService final : public v1::AgentHost::CallbackService {
 public:
  AgentHostService(AgentHostOptions options, catalog::AgentCatalog& catalog,
                   tasks::TaskManager& tasks, routing::Dispatcher& dispatcher, Timers& timers,
                   Clock& clock);
  // After the gRPC server has shut down (every stream's OnDone has run).
  ~AgentHostService() override;

  grpc::ServerBidiReactor<v1::AgentToNode, v1::NodeToAgent>* Connect(
      grpc::CallbackServerContext* context) override;

  // Open agent streams.
  int64_t open_streams() const;

  // Ends every agent stream (the node is stopping); new ones are refused.
  void Shutdown();

 private:
  class Session;
  class Reactor;
  class DelegationSink;

  const AgentHostOptions options_;
  catalog::AgentCatalog& catalog_;
  tasks::TaskManager& tasks_;
  routing::Dispatcher& dispatcher_;
  Timers& timers_;
  Clock& clock_;
  std::atomic<int64_t> open_streams_{0};
  // Claims agent ids for `principal` (all or none): PERMISSION_DENIED naming
  // an id another principal holds.
  absl::Status Claim(const std::vector<std::string>& ids, const std::string& principal);
  // The ids' principal keeps them for the grace period from now.
  void Release(const std::vector<std::string>& ids);
  // Counts `count` more agents for the client address `address`, or
  // RESOURCE_EXHAUSTED naming --max-agents-per-address.
  absl::Status ReserveAddress(const std::string& address, int count);
  void ReleaseAddress(const std::string& address, int count);

  absl::Mutex mu_;
  // Agent id -> who holds it, and until when (InfiniteFuture while registered).
  struct Holder {
    std::string principal;
    absl::Time until;
  };
  absl::flat_hash_map<std::string, Holder> holders_ ABSL_GUARDED_BY(mu_);
  // Agents registered (or being registered) by client address.
  absl::flat_hash_map<std::string, int> agents_by_address_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<Session*, std::weak_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::agenthost

#endif  // A2AMESH_AGENTHOST_AGENT_HOST_SERVICE_H_
