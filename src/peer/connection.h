#ifndef A2AMESH_PEER_CONNECTION_H_
#define A2AMESH_PEER_CONNECTION_H_

#include <memory>
#include <string>

#include "a2amesh/v1/peer.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "rpc/write_queue.h"

namespace a2amesh::peer {

// What a connection reports to. Called from gRPC threads, without locks held.
class ConnectionListener {
 public:
  virtual ~ConnectionListener() = default;
  virtual void OnMessage(class Connection* connection, const v1::PeerMessage& message) = 0;
  // Called exactly once per connection, when its stream is over.
  virtual void OnClosed(Connection* connection, const std::string& reason) = 0;
};

// One Exchange stream with another node, whichever side dialed. Thread-safe;
// Send and Close never block.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  virtual void Send(v1::PeerMessage message) = 0;
  // Ends the stream; the listener's OnClosed follows.
  virtual void Close(const std::string& reason) = 0;
  // Who the other side proved to be (its certificate), once the stream has
  // delivered a message.
  virtual std::shared_ptr<const grpc::AuthContext> auth_context() const = 0;
};

// Messages a connection may have waiting before the peer is cut off as too slow.
inline constexpr size_t kMaxPeerQueue = 10000;

// The dialing side, on the gRPC callback client API.
class OutboundConnection final : public Connection,
                                 public grpc::ClientBidiReactor<v1::PeerMessage, v1::PeerMessage> {
 public:
  OutboundConnection(ConnectionListener& listener, v1::Peer::Stub& stub);
  // Starts the call with `hello` as its first message. Call once.
  void Begin(v1::PeerMessage hello);

  void Send(v1::PeerMessage message) override;
  void Close(const std::string& reason) override;
  std::shared_ptr<const grpc::AuthContext> auth_context() const override {
    return context_.auth_context();
  }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  // Adapts the client reactor to WriteQueue (whose Finish half-closes).
  struct Writer {
    OutboundConnection* self;
    void StartWrite(const v1::PeerMessage* message) { self->StartWrite(message); }
    void Finish(const grpc::Status&) { self->StartWritesDone(); }
  };

  ConnectionListener& listener_;
  v1::Peer::Stub& stub_;
  grpc::ClientContext context_;
  v1::PeerMessage in_;
  Writer writer_{this};
  rpc::WriteQueue<Writer, v1::PeerMessage> writes_{kMaxPeerQueue};
  std::shared_ptr<Connection> self_;  // alive until OnDone
  absl::Mutex mu_;
  std::string close_reason_ ABSL_GUARDED_BY(mu_);
};

// The accepting side, on the gRPC callback server API.
class InboundConnection final : public Connection {
 public:
  using Reactor = grpc::ServerBidiReactor<v1::PeerMessage, v1::PeerMessage>;

  // Creates the connection and its reactor, which the service returns to gRPC.
  static Reactor* Accept(ConnectionListener& listener,
                         std::shared_ptr<const grpc::AuthContext> auth,
                         std::function<void(std::shared_ptr<Connection>)> on_start);

  void Send(v1::PeerMessage message) override;
  void Close(const std::string& reason) override;
  std::shared_ptr<const grpc::AuthContext> auth_context() const override { return auth_; }

 private:
  class ReactorImpl;
  InboundConnection(ConnectionListener& listener, std::shared_ptr<const grpc::AuthContext> auth);
  void ReadNext();

  ConnectionListener& listener_;
  const std::shared_ptr<const grpc::AuthContext> auth_;
  v1::PeerMessage in_;
  rpc::WriteQueue<Reactor, v1::PeerMessage> writes_{kMaxPeerQueue};
  absl::Mutex mu_;
  std::string close_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::peer

#endif  // A2AMESH_PEER_CONNECTION_H_
