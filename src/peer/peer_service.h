#ifndef A2AMESH_PEER_PEER_SERVICE_H_
#define A2AMESH_PEER_PEER_SERVICE_H_

#include "a2amesh/v1/peer.grpc.pb.h"
#include "catalog/agent_catalog.h"
#include "peer/handoff.h"
#include "peer/peer_manager.h"
#include "rpc/unary.h"
#include "tasks/task_manager.h"

namespace a2amesh::peer {

// The Peer gRPC service: Exchange streams go to the PeerManager, Handoff calls
// run hosted turns. Reactions never block. Thread-safe.
class PeerService final : public v1::Peer::CallbackService {
 public:
  PeerService(HandoffServerOptions options, PeerManager& peers, catalog::AgentCatalog& catalog,
              tasks::TaskManager& tasks)
      : peers_(peers), handoffs_(std::move(options), peers, catalog, tasks) {}

  // With peer authentication on, only callers with a certificate of the mesh
  // CA naming a node get past the door; each stream then checks the node it
  // claims to be against it.
  grpc::ServerBidiReactor<v1::PeerMessage, v1::PeerMessage>* Exchange(
      grpc::CallbackServerContext* context) override {
    // The auth context is built on demand: only when peers authenticate.
    std::shared_ptr<const grpc::AuthContext> auth;
    if (peers_.options().authenticate) {
      auth = context->auth_context();
      if (!peers_.AuthenticatePeer(*auth)) {
        return rpc::RefuseStream<v1::PeerMessage, v1::PeerMessage>(NotAPeer());
      }
    }
    return peers_.Accept(std::move(auth));
  }
  grpc::ServerBidiReactor<v1::HandoffRequest, v1::HandoffResponse>* Handoff(
      grpc::CallbackServerContext* context) override {
    std::shared_ptr<const grpc::AuthContext> auth;
    if (peers_.options().authenticate) {
      auth = context->auth_context();
      if (!peers_.AuthenticatePeer(*auth)) {
        return rpc::RefuseStream<v1::HandoffRequest, v1::HandoffResponse>(NotAPeer());
      }
    }
    return handoffs_.Accept(std::move(auth));
  }

 private:
  static grpc::Status NotAPeer() {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the Peer service is for mesh nodes: present a certificate of the mesh CA");
  }

  PeerManager& peers_;
  HandoffHost handoffs_;
};

}  // namespace a2amesh::peer

#endif  // A2AMESH_PEER_PEER_SERVICE_H_
