#ifndef A2AMESH_A2A_HTTP_BINDING_H_
#define A2AMESH_A2A_HTTP_BINDING_H_

#include <functional>
#include <memory>
#include <string>

#include "a2a/agent_cards.h"
#include "a2a/jsonrpc_request.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "http/http_server.h"
#include "trace/tracer.h"

namespace a2amesh::a2a {

class HttpFraming;

struct HttpBindingOptions {
  // The node's cards (node id, version, public URLs, ...).
  AgentCardOptions cards;
  // Proves to the node's gRPC service that a call comes from this binding
  // (security::Authenticator::process_secret), so that it takes the client
  // certificate the binding verified as the caller's.
  std::string process_secret;
  // Request bodies nesting deeper are refused before they are parsed.
  int max_json_depth = kDefaultMaxJsonDepth;
  // An SSE stream sends a comment (": keep-alive") when it has sent nothing
  // for this long, so that proxies that close idle connections keep it open.
  // Zero: never.
  absl::Duration sse_keep_alive = absl::Seconds(15);
  // GET /readyz answers 200 while this holds, else 503 (a draining node);
  // GET /healthz always 200: probes for load balancers that speak HTTP, not
  // gRPC health. Unset: always ready.
  std::function<bool()> ready;
  // Records each A2A request's HTTP server span (docs/tracing.md); must
  // outlive the binding.
  trace::Tracer* tracer = trace::Tracer::Disabled();
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
// same code. A JSON-RPC body is read once: its envelope by a SAX scan that
// builds nothing, its params by the one ProtoJSON parse into the request
// message (jsonrpc_request.h). A client that hangs up cancels its call.
// Thread-safe.
class HttpBinding {
 public:
  HttpBinding(HttpBindingOptions options, std::shared_ptr<grpc::Channel> a2a_channel,
              const CardSource& cards);
  ~HttpBinding();

  // The http::AsyncHandler.
  void Handle(std::shared_ptr<http::Exchange> exchange);
  const AgentCards& cards() const { return cards_; }
  // For http::ServerOptions::error_response: errors found before a request
  // reaches Handle, in the shape of the binding its path belongs to.
  http::Response ErrorResponse(const http::Request& request, int status,
                               const std::string& message) const;

  struct Method;

 private:
  class UnaryCall;
  class StreamCall;

  void ServeJsonRpc(const std::shared_ptr<http::Exchange>& exchange);
  void ServeRest(const std::shared_ptr<http::Exchange>& exchange, const std::string& route);
  // Runs `method` with `request` through the gRPC service and answers in
  // `framing`'s shape.
  void Invoke(const std::shared_ptr<http::Exchange>& exchange, const Method& method,
              std::unique_ptr<google::protobuf::Message> request,
              std::shared_ptr<HttpFraming> framing);

  const std::string process_secret_;
  const int max_json_depth_;
  const absl::Duration sse_keep_alive_;
  const std::function<bool()> ready_;
  trace::Tracer* const tracer_;
  grpc::GenericStub stub_;
  const AgentCards cards_;
  // By the method's name ("SendMessage", ...).
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_;
};

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_HTTP_BINDING_H_
