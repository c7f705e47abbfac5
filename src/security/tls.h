#ifndef A2AMESH_SECURITY_TLS_H_
#define A2AMESH_SECURITY_TLS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace grpc {
class AuthContext;
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace a2amesh::security {

// Where a node's TLS material lives. Files are watched: a certificate, key or
// CA bundle replaced on disk is used for new connections within
// `reload_interval`, without a restart and without touching open streams.
struct TlsOptions {
  // PEM certificate chain and private key the node serves (and presents to
  // peers). Both or neither; neither: plain text.
  std::string cert_file;
  std::string key_file;
  // PEM CA bundle of the mesh: peers' certificates (both directions) and
  // clients' certificates must chain to it. Empty: clients cannot present
  // certificates and the node cannot join a mesh.
  std::string client_ca_file;
  // Node identities are spiffe://<trust_domain>/node/<node id>.
  std::string trust_domain = "a2a-mesh";
  absl::Duration reload_interval = absl::Seconds(10);
  // Serve /metrics over TLS too (the gRPC and HTTP ports always are, once
  // enabled). Off by default: scrapers are then configured for it.
  bool metrics = false;

  bool enabled() const { return !cert_file.empty(); }
  // Peers authenticate each other with certificates from the mesh CA.
  bool mutual() const { return enabled() && !client_ca_file.empty(); }
};

// "spiffe://<trust_domain>/node/<node_id>".
std::string NodeIdentity(absl::string_view trust_domain, absl::string_view node_id);

// The node id in a SPIFFE id of `trust_domain` ("spiffe://td/node/ID" -> ID),
// or nullopt if it is not one.
std::optional<std::string> NodeIdFromIdentity(absl::string_view trust_domain,
                                              absl::string_view spiffe_id);

// The node id a verified peer certificate names, from a call's auth context;
// nullopt if the call presented no certificate the mesh CA signed or it names
// no node of `trust_domain`.
std::optional<std::string> PeerNodeId(const grpc::AuthContext& context,
                                      absl::string_view trust_domain);

// Checks the files before anything listens, so that a bad path or a key that
// does not belong to its certificate is a start-up error naming the flag
// (INVALID_ARGUMENT) instead of handshakes failing later. With a CA and a
// node id, the certificate must also carry this node's identity and chain to
// the CA.
absl::Status CheckTlsFiles(const TlsOptions& options, absl::string_view node_id);

// The gRPC port's credentials: TLS with the node's certificate; with a client
// CA, client certificates are requested (not required) and verified.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsOptions& options);

// Credentials for calls to peers: the node's certificate as the client's,
// the peer's certificate verified against the mesh CA. Host names are not
// checked (peers are dialed by address, often an IP); the node id in the
// peer's certificate is, by the caller, against the node it claims to be.
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const TlsOptions& options);

// What a client (meshctl, an agent, a2a-send) dials a node's TLS port with.
struct ClientTlsOptions {
  bool enabled = false;
  // PEM roots the server's certificate must chain to; empty: the system's.
  std::string ca_file;
  // A client certificate and its key (mTLS), both or neither.
  std::string cert_file;
  std::string key_file;
  // Each option's name as its user sets it, for errors (e.g. "--tls-ca").
  std::string ca_name = "--tls-ca";
  std::string cert_name = "--tls-cert";
  std::string key_name = "--tls-key";
};

// TLS credentials from the files (the server's host name is checked), or
// plain text if not enabled. INVALID_ARGUMENT naming the option whose file
// cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const ClientTlsOptions& options);

}  // namespace a2amesh::security

#endif  // A2AMESH_SECURITY_TLS_H_
