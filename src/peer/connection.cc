#include "peer/connection.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace a2amesh::peer {
namespace {

std::string Describe(const grpc::Status& status) {
  if (status.ok()) {
    return "the stream ended";
  }
  return absl::StrCat("the stream broke (", status.error_code(), ": ", status.error_message(), ")");
}

}  // namespace

OutboundConnection::OutboundConnection(ConnectionListener& listener, v1::Peer::Stub& stub)
    : listener_(listener), stub_(stub) {}

void OutboundConnection::Begin(v1::PeerMessage hello) {
  self_ = shared_from_this();
  stub_.async()->Exchange(&context_, this);
  writes_.Write(std::move(hello));
  writes_.Attach(&writer_);
  StartRead(&in_);
  AddHold();  // Send writes from outside the reactions: see WriteQueue::Stop
  StartCall();
}

void OutboundConnection::Send(v1::PeerMessage message) {
  if (writes_.Write(std::move(message)) == decltype(writes_)::Result::kFull) {
    Close("the peer fell too far behind");
  }
}

void OutboundConnection::Close(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (close_reason_.empty()) {
      close_reason_ = reason;
    }
  }
  context_.TryCancel();
}

void OutboundConnection::OnReadDone(bool ok) {
  if (!ok) {
    writes_.Stop();
    RemoveHold();
    return;  // OnDone follows
  }
  listener_.OnMessage(this, in_);
  StartRead(&in_);
}

void OutboundConnection::OnWriteDone(bool ok) { writes_.OnWriteDone(ok, grpc::Status::OK); }

void OutboundConnection::OnDone(const grpc::Status& status) {
  std::shared_ptr<Connection> self = std::move(self_);  // keeps us alive through this call
  writes_.Detach();
  std::string reason;
  {
    absl::MutexLock lock(&mu_);
    reason = close_reason_.empty() ? Describe(status) : close_reason_;
  }
  listener_.OnClosed(this, reason);
}

class InboundConnection::ReactorImpl final : public Reactor {
 public:
  explicit ReactorImpl(std::shared_ptr<InboundConnection> connection)
      : connection_(std::move(connection)) {}
  void OnReadDone(bool ok) override {
    if (!ok) {
      connection_->Close("the peer closed the stream");
      return;
    }
    connection_->listener_.OnMessage(connection_.get(), connection_->in_);
    connection_->ReadNext();
  }
  void OnWriteDone(bool ok) override {
    connection_->writes_.OnWriteDone(
        ok, grpc::Status(grpc::StatusCode::UNAVAILABLE, "write to the peer failed"));
  }
  void OnCancel() override { connection_->Close("the peer went away"); }
  void OnDone() override {
    connection_->writes_.Detach();
    std::string reason;
    {
      absl::MutexLock lock(&connection_->mu_);
      reason = connection_->close_reason_.empty() ? "the stream ended" : connection_->close_reason_;
    }
    connection_->listener_.OnClosed(connection_.get(), reason);
    delete this;
  }

 private:
  const std::shared_ptr<InboundConnection> connection_;
};

InboundConnection::InboundConnection(ConnectionListener& listener,
                                     std::shared_ptr<const grpc::AuthContext> auth)
    : listener_(listener), auth_(std::move(auth)) {}

InboundConnection::Reactor* InboundConnection::Accept(
    ConnectionListener& listener, std::shared_ptr<const grpc::AuthContext> auth,
    std::function<void(std::shared_ptr<Connection>)> on_start) {
  std::shared_ptr<InboundConnection> connection(new InboundConnection(listener, std::move(auth)));
  auto* reactor = new ReactorImpl(connection);
  connection->writes_.Attach(reactor);
  on_start(connection);
  connection->ReadNext();
  return reactor;
}

void InboundConnection::ReadNext() {
  writes_.WithOpenReactor([this](Reactor* reactor) { reactor->StartRead(&in_); });
}

void InboundConnection::Send(v1::PeerMessage message) {
  if (writes_.Write(std::move(message)) == decltype(writes_)::Result::kFull) {
    Close("the peer fell too far behind");
  }
}

void InboundConnection::Close(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (close_reason_.empty()) {
      close_reason_ = reason;
    }
  }
  writes_.Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, reason));
}

}  // namespace a2amesh::peer
