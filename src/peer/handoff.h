#ifndef A2AMESH_PEER_HANDOFF_H_
#define A2AMESH_PEER_HANDOFF_H_

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/v1/peer.grpc.pb.h"
#include "absl/time/time.h"
#include "catalog/agent_catalog.h"
#include "routing/router.h"
#include "tasks/task_manager.h"

namespace a2amesh::governance {
class Governor;
}  // namespace a2amesh::governance

namespace a2amesh::peer {

class PeerManager;
struct HandoffState;

// Runs a task's turn on an agent of another node through a Peer.Handoff
// stream. A candidate that refuses before accepting (busy, gone, unreachable)
// is replaced by the next; when none accepts, or the accepting node goes away
// mid-turn, the task fails with a reason that names the nodes. Holds one slot
// of the current candidate (in this node's view of its load) until the turn
// ends. Thread-safe.
class HandoffRunner final : public tasks::TaskRunner {
 public:
  // `candidates[0]`'s slot is already taken.
  HandoffRunner(PeerManager& peers, tasks::TaskManager& tasks,
                std::vector<routing::RemoteCandidate> candidates);
  ~HandoffRunner() override;

  const std::string& agent_id() const override;
  void Assign(v1::TaskAssignment assignment) override;
  void Cancel(const std::string& task_id, const std::string& reason) override;
  void DescribeTurn(trace::Span& span) const override;

 private:
  const std::shared_ptr<HandoffState> state_;
};

struct HandoffServerOptions {
  std::string node_id;
  int max_hops = 8;
  // A turn whose owner's stream breaks keeps running this long for the owner
  // to resume it (HandoffResume); then it is canceled. Zero: at once.
  absl::Duration grace = absl::Seconds(30);
  // Checks this node's policy on each handoff (docs/governance.md); null:
  // none.
  governance::Governor* governor = nullptr;
};

class HostedTurns;

// The receiving side of Peer.Handoff: checks the request (agent here, no cycle,
// depth, deadline, a free slot), answers Accepted, runs the turn as a hosted
// task and streams its events back. A cancel cancels the turn; a cancel-only
// request cancels what this node still runs for the task. When the owner's
// stream breaks, the turn keeps running for the grace (its events kept) and
// the owner may resume it on a new stream from the events it lacks; past the
// grace it is canceled. `auth` is a call's: with peer authentication, the
// sender must be the node it names in HandoffStart/HandoffResume.from_node.
// Thread-safe.
class HandoffHost {
 public:
  HandoffHost(HandoffServerOptions options, PeerManager& peers, catalog::AgentCatalog& catalog,
              tasks::TaskManager& tasks);
  ~HandoffHost();
  HandoffHost(const HandoffHost&) = delete;
  HandoffHost& operator=(const HandoffHost&) = delete;

  // The reactor for one call.
  grpc::ServerBidiReactor<v1::HandoffRequest, v1::HandoffResponse>* Accept(
      std::shared_ptr<const grpc::AuthContext> auth);

 private:
  const HandoffServerOptions options_;
  PeerManager& peers_;
  catalog::AgentCatalog& catalog_;
  tasks::TaskManager& tasks_;
  const std::unique_ptr<HostedTurns> turns_;
};

}  // namespace a2amesh::peer

#endif  // A2AMESH_PEER_HANDOFF_H_
