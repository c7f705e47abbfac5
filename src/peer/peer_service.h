#ifndef A2AMESH_PEER_PEER_SERVICE_H_
#define A2AMESH_PEER_PEER_SERVICE_H_

#include "a2amesh/v1/peer.grpc.pb.h"
#include "catalog/agent_catalog.h"
#include "peer/handoff.h"
#include "peer/peer_manager.h"
#include "tasks/task_manager.h"

namespace a2amesh::peer {

// The Peer gRPC service: Exchange streams go to the PeerManager, Handoff calls
// run hosted turns. Reactions never block. Thread-safe.
class PeerService final : public v1::Peer::CallbackService {
 public:
  PeerService(HandoffServerOptions options, PeerManager& peers, catalog::AgentCatalog& catalog,
              tasks::TaskManager& tasks)
      : options_(std::move(options)), peers_(peers), catalog_(catalog), tasks_(tasks) {}

  grpc::ServerBidiReactor<v1::PeerMessage, v1::PeerMessage>* Exchange(
      grpc::CallbackServerContext*) override {
    return peers_.Accept();
  }
  grpc::ServerBidiReactor<v1::HandoffRequest, v1::HandoffResponse>* Handoff(
      grpc::CallbackServerContext*) override {
    return AcceptHandoff(options_, peers_, catalog_, tasks_);
  }

 private:
  const HandoffServerOptions options_;
  PeerManager& peers_;
  catalog::AgentCatalog& catalog_;
  tasks::TaskManager& tasks_;
};

}  // namespace a2amesh::peer

#endif  // A2AMESH_PEER_PEER_SERVICE_H_
