#include "security/tls.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace a2amesh::security {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// OpenSSL's last error, for a message; clears the queue.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no PEM data";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

absl::Status ReadFile(absl::string_view flag, const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return absl::OkStatus();
}

// Every certificate in a PEM file, in order.
absl::Status ReadCertificates(absl::string_view flag, const std::string& path,
                              std::vector<X509Ptr>* out) {
  std::string pem;
  if (absl::Status read = ReadFile(flag, path, &pem); !read.ok()) return read;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out->emplace_back(cert);
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (out->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " holds no PEM certificate"));
  }
  return absl::OkStatus();
}

std::vector<std::string> UriNames(X509* cert) {
  std::vector<std::string> uris;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

unsigned int ReloadSeconds(absl::Duration interval) {
  return static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(interval)));
}

}  // namespace

std::string NodeIdentity(absl::string_view trust_domain, absl::string_view node_id) {
  return absl::StrCat("spiffe://", trust_domain, "/node/", node_id);
}

std::optional<std::string> NodeIdFromIdentity(absl::string_view trust_domain,
                                              absl::string_view spiffe_id) {
  std::string prefix = NodeIdentity(trust_domain, "");
  if (!absl::StartsWith(spiffe_id, prefix) || spiffe_id.size() == prefix.size()) {
    return std::nullopt;
  }
  absl::string_view id = spiffe_id.substr(prefix.size());
  if (absl::StrContains(id, '/')) return std::nullopt;
  return std::string(id);
}

std::optional<std::string> PeerNodeId(const grpc::AuthContext& context,
                                      absl::string_view trust_domain) {
  std::vector<grpc::string_ref> ids = context.FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  if (ids.size() != 1) return std::nullopt;
  return NodeIdFromIdentity(trust_domain, absl::string_view(ids[0].data(), ids[0].size()));
}

absl::Status CheckTlsFiles(const TlsOptions& options, absl::string_view node_id) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        options.cert_file.empty() ? "--tls-key needs --tls-cert (the key's certificate)"
                                  : "--tls-cert needs --tls-key (the certificate's private key)");
  }
  if (!options.enabled()) {
    if (!options.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca needs --tls-cert and --tls-key (client certificates need TLS)");
    }
    return absl::OkStatus();
  }
  if (options.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls-reload-interval must be at least 1s");
  }
  std::vector<X509Ptr> chain;
  if (absl::Status read = ReadCertificates("--tls-cert", options.cert_file, &chain); !read.ok()) {
    return read;
  }
  std::string key_pem;
  if (absl::Status read = ReadFile("--tls-key", options.key_file, &key_pem); !read.ok()) {
    return read;
  }
  std::unique_ptr<BIO, BioFree> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key: ", options.key_file, " holds no PEM private key (", OpenSslError(), ")"));
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("--tls-key: ", options.key_file,
                                                   " is not the key of the certificate in ",
                                                   options.cert_file, " (--tls-cert)"));
  }
  if (!options.mutual()) return absl::OkStatus();

  std::vector<X509Ptr> cas;
  if (absl::Status read = ReadCertificates("--tls-client-ca", options.client_ca_file, &cas);
      !read.ok()) {
    return read;
  }
  std::string want = NodeIdentity(options.trust_domain, node_id);
  std::vector<std::string> uris = UriNames(chain[0].get());
  if (std::find(uris.begin(), uris.end(), want) == uris.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert: ", options.cert_file, " names ",
        uris.empty() ? "no URI identity" : absl::StrJoin(uris, ", "), ", not this node's ", want,
        " (peers check it against --node-id and --trust-domain)"));
  }
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& ca : cas) X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<STACK_OF(X509), StackFree> intermediates(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(intermediates.get(), chain[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), intermediates.get());
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert: ", options.cert_file, " does not verify against --tls-client-ca ",
                     options.client_ca_file, " (", X509_verify_cert_error_string(error),
                     "): peers would refuse it"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsOptions& options) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file,
      ReloadSeconds(options.reload_interval));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (options.mutual()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const TlsOptions& options) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file,
      ReloadSeconds(options.reload_interval));
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_identity_key_cert_pairs();
  tls.watch_root_certs();
  tls.set_verify_server_certs(true);
  // The chain is verified against the mesh CA; the identity that matters is
  // the node id in the certificate, which the caller checks, not a host name.
  tls.set_check_call_host(false);
  tls.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  return grpc::experimental::TlsCredentials(tls);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const ClientTlsOptions& options) {
  if (!options.enabled) return grpc::InsecureChannelCredentials();
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(options.cert_name, " and ", options.key_name,
                                                   " go together (a client certificate and "
                                                   "its key)"));
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    if (absl::Status read = ReadFile(options.ca_name, options.ca_file, &ssl.pem_root_certs);
        !read.ok()) {
      return read;
    }
  }
  if (!options.cert_file.empty()) {
    if (absl::Status read = ReadFile(options.cert_name, options.cert_file, &ssl.pem_cert_chain);
        !read.ok()) {
      return read;
    }
    if (absl::Status read = ReadFile(options.key_name, options.key_file, &ssl.pem_private_key);
        !read.ok()) {
      return read;
    }
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace a2amesh::security
