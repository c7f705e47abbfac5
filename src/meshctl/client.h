#ifndef A2AMESH_MESHCTL_CLIENT_H_
#define A2AMESH_MESHCTL_CLIENT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace a2amesh::meshctl {

// How to reach a node.
struct ClientOptions {
  // Any node of the mesh: host:port, or any form NodeTarget reads.
  std::string server = "localhost:7400";
  // Deadline of each call; unset: the verb's default.
  std::optional<absl::Duration> timeout;
  // TLS (with a CA bundle to verify the node, and a client certificate for
  // mutual TLS), and a bearer token sent with every call.
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string token;
};

// The gRPC target of what a person may write for a node: "host:port" as it
// is; "host" (or "[v6]") on meshd's port 7400; "http://host[:port]" and
// "https://host[:port]" as the host and port (https: *tls is set); "unix:",
// "dns:" and "ipv4:"/"ipv6:" targets as gRPC reads them. INVALID_ARGUMENT
// naming --server for anything else (a path, an empty host, a bad port).
absl::StatusOr<std::string> NodeTarget(const std::string& server, bool* tls);

// A channel to one node, and contexts for calls on it.
class Client {
 public:
  // Reads the TLS files. Errors name the flag and the file.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);

  const std::string& server() const { return options_.server; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // A context with the token, the A2A version header and the deadline:
  // --timeout if given, else `default_timeout` (zero: none).
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration default_timeout) const;

 private:
  Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
      : options_(std::move(options)), channel_(std::move(channel)) {}

  const ClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
};

// A failed call for people: what failed, the gRPC code, and the A2A reason
// (or the invalid field) when the node sent one. "cannot reach" for a node that
// does not answer at all.
std::string DescribeError(const grpc::Status& status, const std::string& server);

}  // namespace a2amesh::meshctl

#endif  // A2AMESH_MESHCTL_CLIENT_H_
