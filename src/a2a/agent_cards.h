#ifndef A2AMESH_A2A_AGENT_CARDS_H_
#define A2AMESH_A2A_AGENT_CARDS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "http/http_server.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::a2a {

// Where the bindings and cards live on the HTTP server.
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

struct AgentCardOptions {
  std::string node_id;
  std::string version;
  // The base URL clients reach the HTTP bindings at (e.g. behind an ingress:
  // "https://mesh.example.com"); empty: "http://" (or "https://" if `tls`) +
  // the request's Host.
  std::string public_http_url;
  // The HTTP port serves TLS.
  bool tls = false;
  // The gRPC interface's URL ("host:port"); empty: the Host's host name and
  // grpc_port.
  std::string public_grpc_url;
  int grpc_port = 0;
  bool push_notifications = false;
  absl::Duration max_age = absl::Minutes(5);
  // What callers must present (docs/security.md): each enabled way becomes a
  // securityScheme, and any one of them satisfies the card's requirements.
  struct Security {
    bool bearer = false;      // tokens or JWTs: HTTP "Bearer"
    bool jwt = false;         // bearer tokens may be JWTs (bearerFormat "JWT")
    std::string oidc_issuer;  // an https issuer: OpenID Connect discovery
    bool mtls = false;        // client certificates
    bool enabled() const { return bearer || mtls; }
  };
  Security security;
};

// The A2A agent cards a node serves: its own (the mesh as one agent: the union
// of every agent's skills, the three interfaces) and one per agent, with an
// ETag and Cache-Control. Thread-safe.
class AgentCards {
 public:
  // The card an authenticated caller gets from GetExtendedAgentCard: the
  // node's (tenant "") or an agent's, with interfaces for `host` (the host
  // name clients reach the node at). NOT_FOUND for an unknown agent.
  absl::StatusOr<lf::a2a::v1::AgentCard> ExtendedCard(const std::string& host,
                                                      const std::string& tenant) const;

  AgentCards(AgentCardOptions options, const CardSource& cards)
      : options_(std::move(options)), cards_(cards) {}

  // The answer to GET (or HEAD) of the node's card (`tenant` empty) or of an
  // agent's, with ETag and Last-Modified (when this node first served that
  // content): 304 when If-None-Match matches (or, without it, when
  // If-Modified-Since is not older), 404 for an unknown agent, 405 for
  // another verb.
  http::Response Serve(const http::Request& request, const std::string& tenant) const;

 private:
  lf::a2a::v1::AgentCard MeshCard(const http::Request& request) const;
  // The node's card (tenant "") or an agent's as the node serves it;
  // NOT_FOUND for an unknown agent.
  absl::StatusOr<lf::a2a::v1::AgentCard> CardFor(const http::Request& request,
                                                 const std::string& tenant) const;
  // securitySchemes, securityRequirements and capabilities.extendedAgentCard.
  void DeclareSecurity(lf::a2a::v1::AgentCard* card) const;
  std::vector<lf::a2a::v1::AgentInterface> Interfaces(const http::Request& request,
                                                      const std::string& tenant) const;

  // When a card's content (by its ETag) was first served, whole seconds.
  absl::Time FirstServed(const std::string& etag) const;

  const AgentCardOptions options_;
  const CardSource& cards_;
  mutable absl::Mutex mu_;
  // By ETag; bounded (cleared past kMaxRemembered: the times move forward).
  mutable absl::flat_hash_map<std::string, absl::Time> first_served_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kMaxRemembered = 4096;
};

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_AGENT_CARDS_H_
