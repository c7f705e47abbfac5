#ifndef A2AMESH_TESTS_TESTING_NODE_HARNESS_H_
#define A2AMESH_TESTS_TESTING_NODE_HARNESS_H_

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "node/node.h"

namespace a2amesh::testing {

// A real node on 127.0.0.1:0 in this process, with a task store in memory (or
// in `data_dir`), and clients for it.
class NodeHarness {
 public:
  // Options suited to tests: ephemeral, loopback, port 0, short graces.
  static NodeOptions TestOptions(const std::string& node_id = "n1");

  explicit NodeHarness(NodeOptions options = TestOptions());
  ~NodeHarness();

  Node& node() { return *node_; }
  const std::string& address() const { return node_->grpc_address(); }

  // An A2A stub on a fresh channel.
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> NewA2aStub() const;

  // Starts SDK agents against this node and waits until they are registered.
  std::unique_ptr<sdk::Agent> StartAgent(std::vector<sdk::AgentSpec> agents);
  // Starts SDK agents that authenticate with bearer `token`, without waiting
  // (their registration may be meant to fail: WaitUntilRegistered says).
  std::unique_ptr<sdk::Agent> StartAgentWithToken(const std::string& token,
                                                  std::vector<sdk::AgentSpec> agents);

 private:
  std::unique_ptr<Node> node_;
};

// A ClientContext with a2a-version: 1.0 and a 30 s deadline.
std::unique_ptr<grpc::ClientContext> A2aContext();

// The ErrorInfo reason in a failed call's grpc-status-details-bin ("" if none).
std::string ErrorReason(const grpc::Status& status);
// The BadRequest field in a failed call's details ("" if none).
std::string BadRequestField(const grpc::Status& status);

// Reads a whole stream.
std::vector<lf::a2a::v1::StreamResponse> ReadAll(
    grpc::ClientReaderInterface<lf::a2a::v1::StreamResponse>& reader, grpc::Status* status);

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_NODE_HARNESS_H_
