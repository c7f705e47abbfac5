#include "testing/node_harness.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace a2amesh::testing {

NodeOptions NodeHarness::TestOptions(const std::string& node_id) {
  NodeOptions options;
  options.node_id = node_id;
  options.grpc_address = "127.0.0.1:0";
  options.metrics_address = "127.0.0.1:0";
  options.http_address = "127.0.0.1:0";
  options.ephemeral = true;
  options.agent_grace = absl::Milliseconds(300);
  options.recovery_grace = absl::Seconds(2);
  options.agent_lease = absl::Seconds(5);
  options.drain_timeout = absl::Seconds(5);
  return options;
}

NodeHarness::NodeHarness(NodeOptions options) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(options));
  if (!node.ok()) {
    ADD_FAILURE() << "node did not start: " << node.status();
    std::abort();
  }
  node_ = std::move(node).value();
}

NodeHarness::~NodeHarness() = default;

std::unique_ptr<lf::a2a::v1::A2AService::Stub> NodeHarness::NewA2aStub() const {
  return lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
}

std::unique_ptr<sdk::Agent> NodeHarness::StartAgent(std::vector<sdk::AgentSpec> agents) {
  sdk::AgentOptions options;
  options.node = address();
  options.agents = std::move(agents);
  options.min_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(std::move(options));
  EXPECT_TRUE(agent.ok()) << agent.status();
  if (!agent.ok()) {
    return nullptr;
  }
  absl::Status registered = (*agent)->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_TRUE(registered.ok()) << registered;
  return std::move(agent).value();
}

std::unique_ptr<sdk::Agent> NodeHarness::StartAgentWithToken(const std::string& token,
                                                             std::vector<sdk::AgentSpec> agents) {
  sdk::AgentOptions options;
  options.node = address();
  options.agents = std::move(agents);
  options.token = token;
  options.min_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(std::move(options));
  EXPECT_TRUE(agent.ok()) << agent.status();
  return agent.ok() ? std::move(agent).value() : nullptr;
}

std::unique_ptr<grpc::ClientContext> A2aContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("a2a-version", "1.0");
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

std::string ErrorReason(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) {
    return "";
  }
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) {
      EXPECT_EQ(info.domain(), "a2a-protocol.org");
      EXPECT_EQ(details.code(), status.error_code());
      return info.reason();
    }
  }
  return "";
}

std::string BadRequestField(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) {
    return "";
  }
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad) && bad.field_violations_size() > 0) {
      return bad.field_violations(0).field();
    }
  }
  return "";
}

std::vector<lf::a2a::v1::StreamResponse> ReadAll(
    grpc::ClientReaderInterface<lf::a2a::v1::StreamResponse>& reader, grpc::Status* status) {
  std::vector<lf::a2a::v1::StreamResponse> events;
  lf::a2a::v1::StreamResponse event;
  while (reader.Read(&event)) {
    events.push_back(event);
  }
  *status = reader.Finish();
  return events;
}

}  // namespace a2amesh::testing
