#ifndef A2AMESH_SECURITY_AUTH_H_
#define A2AMESH_SECURITY_AUTH_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "security/jwt.h"

namespace grpc {
class AuthContext;
class ClientContext;
class ServerContextBase;
}  // namespace grpc

namespace a2amesh::security {

// Who made a request, once proven.
struct Principal {
  // "alice", "spiffe://prod/ns/x/sa/y", ...; "anonymous" when auth is off.
  std::string subject;
  std::vector<std::string> roles;
  // How it was proven: "token", "jwt", "mtls", "node" (a mesh node on behalf
  // of its caller), or "none" (auth is off).
  std::string method;

  bool anonymous() const { return method == "none"; }
};

struct AuthOptions {
  // Bearer tokens: a file of lines "TOKEN SUBJECT [ROLE,ROLE...]" ('#'
  // comments), re-read when it changes. TOKEN may be "sha256:HEX", the
  // token's SHA-256, so that the file need not hold the token. A line
  // "- SUBJECT ROLE,..." gives roles to a subject a client certificate proves.
  std::string token_file;
  // Accept client certificates (verified against the TLS client CA) as
  // proof: the subject is the certificate's URI SAN (a SPIFFE id), or its CN.
  bool client_certificates = false;
  absl::Duration reload_interval = absl::Seconds(10);
  // Mesh nodes' certificates name spiffe://<trust_domain>/node/<id>: such a
  // node may carry its caller's principal to this one (empty: no TLS, none).
  std::string trust_domain;
  // JWTs as bearer tokens, verified against a JWKS (security/jwt.h).
  JwtOptions jwt;

  bool enabled() const { return !token_file.empty() || client_certificates || jwt.enabled(); }
};

// Who may see a task and act on it. With auth off, every caller (everyone is
// anonymous). With auth on: the principal that created it (`creator`, the
// subject the task records), and principals with the role `admin` (any
// action) or `reader` (reads: GetTask, ListTasks, SubscribeToTask, reading
// push configs). Anyone else must be told the task does not exist.
enum class TaskAccess { kRead, kWrite };
bool MayAccessTask(const Principal& caller, absl::string_view creator, TaskAccess access);
// Whether ListTasks shows `caller` every task, not only those it created.
bool SeesEveryTask(const Principal& caller);

// What a request offers as proof.
struct Credentials {
  // The Authorization header (or gRPC metadata) value, if any.
  std::optional<std::string> authorization;
  // The subject of a verified client certificate, if any ("" if none).
  std::string certificate_subject;
};

// The subject a verified client certificate proves, from a gRPC call's auth
// context: its SPIFFE id, else its first URI SAN, else its CN; "" if the call
// presented no verified certificate.
std::string CertificateSubject(const grpc::AuthContext& context);

// Proves who a request comes from. With auth off, everyone is anonymous.
// Errors are UNAUTHENTICATED and say only what the caller must send, never
// which part of what it sent was wrong. Thread-safe.
class Authenticator {
 public:
  // Reads the token file and the JWKS now: INVALID_ARGUMENT naming the file
  // and line if one is unreadable or malformed.
  static absl::StatusOr<std::shared_ptr<Authenticator>> Create(AuthOptions options);
  // Auth off: every request is anonymous.
  static std::shared_ptr<Authenticator> Off();

  bool enabled() const { return options_.enabled(); }
  absl::StatusOr<Principal> Authenticate(const Credentials& credentials);

  // The WWW-Authenticate challenge of an HTTP 401.
  static constexpr absl::string_view kChallenge = "Bearer realm=\"a2a-mesh\"";

  // Carrying a proven principal across one hop inside the mesh (the HTTP
  // bindings' in-process call to the gRPC service, a call one node forwards
  // to another). The metadata is trusted only from this process (with its
  // secret) or from a mesh node proven by its certificate.
  static constexpr char kPrincipalKey[] = "a2amesh-principal";
  static constexpr char kSecretKey[] = "a2amesh-internal";
  // "" with auth off (then nothing is carried across hops).
  const std::string& process_secret() const { return secret_; }
  static std::string EncodePrincipal(const Principal& principal);
  static std::optional<Principal> DecodePrincipal(absl::string_view encoded);

  // The subject of a client certificate the HTTP bindings verified, carried
  // (with the process secret) on their in-process call.
  static constexpr char kCertificateKey[] = "a2amesh-client-certificate";

  // A gRPC call's principal: carried from a trusted hop, or proven by its
  // authorization metadata or client certificate.
  absl::StatusOr<Principal> AuthenticateCall(const grpc::ServerContextBase& context);

  // Makes `to`, a call this node makes on behalf of `from` to another node
  // (a forwarded call), carry `from`'s caller: its authorization metadata,
  // and `caller`, the principal AuthenticateCall proved for it (which the
  // other node trusts from a node its certificate proves).
  void Forward(const grpc::ServerContextBase& from, const Principal& caller,
               grpc::ClientContext* to);

 private:
  explicit Authenticator(AuthOptions options);
  struct Token {
    std::string subject;
    std::vector<std::string> roles;
  };
  struct TokenMap {
    absl::flat_hash_map<std::string, Token> by_digest;  // by SHA-256 of the token
    // Roles of subjects proven otherwise (a client certificate): "- SUBJECT ROLES" lines.
    absl::flat_hash_map<std::string, std::vector<std::string>> roles_by_subject;
  };
  static absl::StatusOr<TokenMap> LoadTokens(const std::string& path);
  // The tokens, re-read if the file changed (a file that no longer parses
  // keeps the previous tokens, and is logged).
  std::shared_ptr<const TokenMap> Tokens();

  const AuthOptions options_;
  const std::string secret_;
  std::unique_ptr<JwtVerifier> jwt_;  // if options_.jwt is enabled
  absl::Mutex mu_;
  std::shared_ptr<const TokenMap> tokens_ ABSL_GUARDED_BY(mu_);
  std::string tokens_stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time next_look_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::security

#endif  // A2AMESH_SECURITY_AUTH_H_
