#include "testing/e2e_mesh.h"

#include <iostream>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/node_harness.h"
#include "testing/wait.h"

namespace a2amesh::testing {

E2eNode::E2eNode(const TempDir& dir, std::string node_id, std::vector<std::string> flags)
    : dir_(dir), node_id_(std::move(node_id)), flags_(std::move(flags)) {}

std::string E2eNode::log() const { return ReadFileOrEmpty(dir_.File(node_id_ + ".log")); }

bool E2eNode::Start() {
  std::string ready = dir_.File(node_id_ + ".ready.json");
  std::remove(ready.c_str());
  std::vector<std::string> argv = {
      BinaryPath("meshd"), "--node-id",      node_id_,      "--grpc-address",
      "127.0.0.1:0",       "--http-address", "127.0.0.1:0", "--metrics-address",
      "127.0.0.1:0",       "--ready-file",   ready};
  argv.insert(argv.end(), flags_.begin(), flags_.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv, dir_.File(node_id_ + ".log"));
  if (!process.ok()) {
    std::cerr << process.status() << "\n";
    return false;
  }
  process_ = std::make_unique<Subprocess>(std::move(process).value());
  absl::StatusOr<std::string> address = WaitForReadyFile(ready, absl::Seconds(20));
  if (!address.ok()) {
    std::cerr << address.status() << "\n--- " << node_id_ << " log ---\n" << log();
    return false;
  }
  address_ = *address;
  metrics_address_ = ReadyFileField(ready, "metrics_address");
  http_address_ = ReadyFileField(ready, "http_address");
  return true;
}

Subprocess E2eNode::StartAgent(const std::string& binary, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinaryPath(binary), "--node", address_};
  argv.insert(argv.end(), args.begin(), args.end());
  return StartCommand(std::move(argv), binary);
}

Subprocess E2eNode::StartCommand(std::vector<std::string> argv, const std::string& log_name) {
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv, dir_.File(log_name + ".log"));
  if (!process.ok()) {
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << process.status();
    std::abort();
  }
  return std::move(process).value();
}

bool E2eNode::Sees(const std::string& agent_id) {
  auto stub = lf::a2a::v1::A2AService::NewStub(grpc::CreateChannel(
      address_, credentials_ != nullptr ? credentials_ : grpc::InsecureChannelCredentials()));
  lf::a2a::v1::SendMessageRequest probe;
  probe.set_tenant(agent_id);
  auto* message = probe.mutable_message();
  message->set_message_id("readiness-probe");
  message->set_role(lf::a2a::v1::ROLE_USER);
  auto* part = message->add_parts();
  part->set_text("probe");
  part->set_media_type("application/x-a2amesh-readiness-probe");
  lf::a2a::v1::SendMessageResponse response;
  std::unique_ptr<grpc::ClientContext> context = A2aContext();
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
  grpc::Status status = stub->SendMessage(context.get(), probe, &response);
  return ErrorReason(status) == "CONTENT_TYPE_NOT_SUPPORTED";
}

bool E2eNode::WaitForAgent(const std::string& agent_id, absl::Duration timeout) {
  bool ready = WaitFor([&] { return Sees(agent_id); }, timeout);
  if (!ready) {
    std::cerr << "agent " << agent_id << " did not register\n--- " << node_id_ << " log ---\n"
              << log();
  }
  return ready;
}

}  // namespace a2amesh::testing
