#ifndef A2AMESH_TESTS_TESTING_E2E_MESH_H_
#define A2AMESH_TESTS_TESTING_E2E_MESH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"

namespace a2amesh::testing {

// A real meshd process for end-to-end tests, on 127.0.0.1 with a port it picks,
// logging to <dir>/<node_id>.log, plus agent processes pointed at it.
class E2eNode {
 public:
  E2eNode(const TempDir& dir, std::string node_id, std::vector<std::string> flags);

  // Starts meshd and waits for its ready file. False (with the log printed) if
  // it did not come up.
  bool Start();
  const std::string& node_id() const { return node_id_; }
  const std::string& address() const { return address_; }
  // Where its /metrics is served (host:port).
  const std::string& metrics_address() const { return metrics_address_; }
  // Where A2A over HTTP is served (host:port).
  const std::string& http_address() const { return http_address_; }
  Subprocess& process() { return *process_; }
  std::string log() const;

  // Starts an example agent binary with --node set to this node.
  Subprocess StartAgent(const std::string& binary, std::vector<std::string> args);
  // Starts a command as is (e.g. the Python agent).
  Subprocess StartCommand(std::vector<std::string> argv, const std::string& log_name);

  // Whether this node can route to agent `agent_id` (anywhere in the mesh)
  // now. The probe addresses the agent with a media type no agent accepts: an
  // absent agent gives "no agent", a present one ContentTypeNotSupported, and
  // no task is created either way.
  bool Sees(const std::string& agent_id);
  // How Sees() dials the node: TLS credentials and a bearer token, for a
  // node with TLS or auth on.
  void SetClient(std::shared_ptr<grpc::ChannelCredentials> credentials, std::string token) {
    credentials_ = std::move(credentials);
    token_ = std::move(token);
  }
  // Waits until Sees(agent_id); prints the node's log if it never does.
  bool WaitForAgent(const std::string& agent_id, absl::Duration timeout = absl::Seconds(30));

 private:
  const TempDir& dir_;
  const std::string node_id_;
  const std::vector<std::string> flags_;
  std::unique_ptr<Subprocess> process_;
  std::string address_;
  std::string metrics_address_;
  std::string http_address_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string token_;
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_E2E_MESH_H_
