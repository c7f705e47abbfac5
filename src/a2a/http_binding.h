#ifndef A2AMESH_A2A_HTTP_BINDING_H_
#define A2AMESH_A2A_HTTP_BINDING_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "http/http_server.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::a2a {

// Where the bindings live on the HTTP server.
inline constexpr char kJsonRpcPath[] = "/a2a/jsonrpc";
inline constexpr char kRestPath[] = "/a2a/rest";
inline constexpr char kAgentCardPath[] = "/.well-known/agent-card.json";
// Each agent's card: /agents/{tenant}/.well-known/agent-card.json.
inline constexpr char kAgentsPath[] = "/agents/";

// The agents whose cards the node publishes. Thread-safe.
class CardSource {
 public:
  virtual ~CardSource() = default;
  // Every agent the node can route to, as (tenant, card): "id" for an agent of
  // this node, "id@node" for one of another node.
  virtual std::vector<std::pair<std::string, lf::a2a::v1::AgentCard>> Agents() const = 0;
  virtual std::optional<lf::a2a::v1::AgentCard> Find(const std::string& tenant) const = 0;
};

struct HttpBindingOptions {
  std::string node_id;
  std::string version;
  // The base URL clients reach the HTTP bindings at (e.g. behind an ingress:
  // "https://mesh.example.com"); empty: "http://" + the request's Host.
  std::string public_http_url;
  // The gRPC interface's URL ("host:port"); empty: the Host's host name and
  // grpc_port.
  std::string public_grpc_url;
  int grpc_port = 0;
  bool push_notifications = false;
  absl::Duration card_max_age = absl::Minutes(5);
};

// A2A v1.0 over HTTP: the JSON-RPC 2.0 binding (POST /a2a/jsonrpc, SSE for the
// streaming methods), the HTTP+JSON/REST binding (under /a2a/rest, also with a
// /{tenant} prefix), and agent cards (/.well-known/agent-card.json for the
// node, /agents/{tenant}/.well-known/agent-card.json for each agent).
//
// Both bindings transcode to the node's own gRPC A2AService over an
// in-process channel, as Envoy's and grpc-gateway's transcoders do: every
// call has exactly the semantics of the gRPC binding (validation, version
// check, routing, forwarding to the task's owner, errors) because it runs the
// same code. A client that hangs up cancels its call. Thread-safe.
class HttpBinding {
 public:
  HttpBinding(HttpBindingOptions options, std::shared_ptr<grpc::Channel> a2a_channel,
              const CardSource& cards);
  ~HttpBinding();

  // The http::AsyncHandler.
  void Handle(std::shared_ptr<http::Exchange> exchange);
  // For http::ServerOptions::error_response: errors found before a request
  // reaches Handle, in the shape of the binding its path belongs to.
  http::Response ErrorResponse(const http::Request& request, int status,
                               const std::string& message) const;

  struct Method;
  class Framing;

 private:
  class UnaryCall;
  class StreamCall;

  void ServeCard(const std::shared_ptr<http::Exchange>& exchange, const std::string& tenant);
  void ServeJsonRpc(const std::shared_ptr<http::Exchange>& exchange);
  void ServeRest(const std::shared_ptr<http::Exchange>& exchange, const std::string& route);
  // Runs `method` with `request` through the gRPC service and answers in
  // `framing`'s shape.
  void Invoke(const std::shared_ptr<http::Exchange>& exchange, const Method& method,
              std::unique_ptr<google::protobuf::Message> request, std::shared_ptr<Framing> framing);
  lf::a2a::v1::AgentCard MeshCard(const http::Request& request) const;
  std::vector<lf::a2a::v1::AgentInterface> Interfaces(const http::Request& request,
                                                      const std::string& tenant) const;

  const HttpBindingOptions options_;
  grpc::GenericStub stub_;
  const CardSource& cards_;
  // By the method's name ("SendMessage", ...).
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_;
};

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_HTTP_BINDING_H_
