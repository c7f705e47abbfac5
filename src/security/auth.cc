#include "security/auth.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_stamp.h"
#include "core/log.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"
#include "security/tls.h"

namespace a2amesh::security {
namespace {

constexpr absl::string_view kDigestPrefix = "sha256:";

std::string Sha256(absl::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string RandomSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Without randomness nothing can be trusted across the in-process hop.
    A2AMESH_LOG(Error, "no randomness for the process secret");
    std::abort();
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

std::string Property(const grpc::AuthContext& context, const char* name) {
  std::vector<grpc::string_ref> values = context.FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values[0].data(), values[0].size());
}

absl::Status Unauthenticated() {
  // The same words whatever was wrong: a caller learns nothing about which
  // token, key or certificate exists.
  return absl::UnauthenticatedError(
      "authentication required: send a valid bearer token (authorization: Bearer ...) or a "
      "client certificate the node trusts");
}

}  // namespace

std::string CertificateSubject(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) return "";
  if (std::string spiffe = Property(context, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME); !spiffe.empty()) {
    return spiffe;
  }
  if (std::string uri = Property(context, GRPC_PEER_URI_PROPERTY_NAME); !uri.empty()) return uri;
  return Property(context, GRPC_X509_CN_PROPERTY_NAME);
}

// With auth off nothing checks the secret: OpenSSL's random generator (and
// the provider it loads, ~2 MB of a static node's idle memory) stays unused.
Authenticator::Authenticator(AuthOptions options)
    : options_(std::move(options)), secret_(options_.enabled() ? RandomSecret() : "") {}

std::shared_ptr<Authenticator> Authenticator::Off() {
  return std::shared_ptr<Authenticator>(new Authenticator(AuthOptions{}));
}

absl::StatusOr<std::shared_ptr<Authenticator>> Authenticator::Create(AuthOptions options) {
  std::shared_ptr<Authenticator> auth(new Authenticator(std::move(options)));
  if (!auth->options_.token_file.empty()) {
    std::string stamp = FileStamp(auth->options_.token_file);
    absl::StatusOr<TokenMap> tokens = LoadTokens(auth->options_.token_file);
    if (!tokens.ok()) return tokens.status();
    absl::MutexLock lock(&auth->mu_);
    auth->tokens_ = std::make_shared<const TokenMap>(*std::move(tokens));
    auth->tokens_stamp_ = stamp;
    auth->next_look_ = absl::Now() + auth->options_.reload_interval;
  }
  if (auth->options_.jwt.enabled()) {
    JwtOptions jwt = auth->options_.jwt;
    jwt.reload_interval = auth->options_.reload_interval;
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(std::move(jwt));
    if (!verifier.ok()) return verifier.status();
    auth->jwt_ = *std::move(verifier);
  }
  return auth;
}

absl::StatusOr<Authenticator::TokenMap> Authenticator::LoadTokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-token-file: cannot read ", path));
  }
  TokenMap tokens;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text.front() == '#') continue;
    std::vector<std::string> fields =
        absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 2 || fields.size() > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth-token-file: ", path, " line ", number,
                       ": want \"TOKEN SUBJECT [ROLE,ROLE...]\", not ", fields.size(), " fields"));
    }
    if (fields[0] == "-") {
      if (fields.size() != 3) {
        return absl::InvalidArgumentError(absl::StrCat("--auth-token-file: ", path, " line ",
                                                       number, ": want \"- SUBJECT ROLE,...\""));
      }
      tokens.roles_by_subject[fields[1]] = absl::StrSplit(fields[2], ',', absl::SkipEmpty());
      continue;
    }
    // "sha256:HEX": the token's digest, so that the file need not hold the
    // token itself (the Helm chart's file does this).
    std::string digest;
    if (absl::StartsWith(fields[0], kDigestPrefix)) {
      absl::string_view hex = absl::string_view(fields[0]).substr(kDigestPrefix.size());
      bool is_hex = hex.size() == 64 && std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit);
      if (!is_hex) {
        return absl::InvalidArgumentError(
            absl::StrCat("--auth-token-file: ", path, " line ", number,
                         ": want sha256: and 64 hex digits (a token's SHA-256)"));
      }
      digest = absl::HexStringToBytes(hex);
    } else if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token-file: ", path, " line ", number,
                                                     ": the token is shorter than 16 characters"));
    } else {
      digest = Sha256(fields[0]);
    }
    Token token;
    token.subject = fields[1];
    if (fields.size() == 3) {
      token.roles = absl::StrSplit(fields[2], ',', absl::SkipEmpty());
    }
    if (!tokens.by_digest.emplace(std::move(digest), std::move(token)).second) {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token-file: ", path, " line ", number,
                                                     ": the token is listed twice"));
    }
  }
  return tokens;
}

std::shared_ptr<const Authenticator::TokenMap> Authenticator::Tokens() {
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    if (options_.token_file.empty() || now < next_look_) return tokens_;
    next_look_ = now + options_.reload_interval;
  }
  std::string stamp = FileStamp(options_.token_file);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == tokens_stamp_) return tokens_;
  }
  absl::StatusOr<TokenMap> loaded = LoadTokens(options_.token_file);
  absl::MutexLock lock(&mu_);
  tokens_stamp_ = stamp;
  if (!loaded.ok()) {
    A2AMESH_LOG(Warning, "token file changed but does not load; keeping the previous tokens")
        .With("error", loaded.status().message());
    return tokens_;
  }
  A2AMESH_LOG(Info, "token file reloaded")
      .With("file", options_.token_file)
      .With("tokens", loaded->by_digest.size());
  tokens_ = std::make_shared<const TokenMap>(*std::move(loaded));
  return tokens_;
}

absl::StatusOr<Principal> Authenticator::Authenticate(const Credentials& credentials) {
  if (!enabled()) return Principal{"anonymous", {}, "none"};
  if (credentials.authorization.has_value()) {
    absl::string_view value = absl::StripAsciiWhitespace(*credentials.authorization);
    constexpr absl::string_view kBearer = "bearer ";
    if (value.size() <= kBearer.size() ||
        !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
      return Unauthenticated();
    }
    absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(kBearer.size()));
    if (jwt_ != nullptr && JwtVerifier::LooksLikeJwt(token)) {
      absl::StatusOr<Principal> principal = jwt_->Verify(token);
      if (principal.ok()) return principal;
      // Why, for the operator only: the caller hears the same as for no token.
      A2AMESH_LOG(Debug, "bearer JWT refused").With("reason", principal.status().message());
      return Unauthenticated();
    }
    if (std::shared_ptr<const TokenMap> tokens = Tokens(); tokens != nullptr) {
      auto it = tokens->by_digest.find(Sha256(token));
      if (it != tokens->by_digest.end()) {
        return Principal{it->second.subject, it->second.roles, "token"};
      }
    }
    return Unauthenticated();
  }
  if (options_.client_certificates && !credentials.certificate_subject.empty()) {
    Principal principal{credentials.certificate_subject, {}, "mtls"};
    if (std::shared_ptr<const TokenMap> tokens = Tokens(); tokens != nullptr) {
      auto it = tokens->roles_by_subject.find(principal.subject);
      if (it != tokens->roles_by_subject.end()) principal.roles = it->second;
    }
    return principal;
  }
  return Unauthenticated();
}

std::string Authenticator::EncodePrincipal(const Principal& principal) {
  std::string encoded = absl::StrCat(absl::WebSafeBase64Escape(principal.method), ".",
                                     absl::WebSafeBase64Escape(principal.subject));
  for (const std::string& role : principal.roles) {
    absl::StrAppend(&encoded, ".", absl::WebSafeBase64Escape(role));
  }
  return encoded;
}

std::optional<Principal> Authenticator::DecodePrincipal(absl::string_view encoded) {
  std::vector<absl::string_view> parts = absl::StrSplit(encoded, '.');
  if (parts.size() < 2) return std::nullopt;
  Principal principal;
  if (!absl::WebSafeBase64Unescape(parts[0], &principal.method) ||
      !absl::WebSafeBase64Unescape(parts[1], &principal.subject) || principal.subject.empty()) {
    return std::nullopt;
  }
  for (size_t i = 2; i < parts.size(); ++i) {
    std::string role;
    if (!absl::WebSafeBase64Unescape(parts[i], &role)) return std::nullopt;
    principal.roles.push_back(std::move(role));
  }
  return principal;
}

absl::StatusOr<Principal> Authenticator::AuthenticateCall(const grpc::ServerContextBase& context) {
  // Auth off: no lookups, no auth context (gRPC builds one per call on demand).
  if (!enabled()) return Principal{"anonymous", {}, "none"};
  const auto& metadata = context.client_metadata();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  bool from_this_process = false;
  if (auto secret = metadata.find(kSecretKey); secret != metadata.end()) {
    from_this_process = secret->second.size() == secret_.size() &&
                        CRYPTO_memcmp(secret->second.data(), secret_.data(), secret_.size()) == 0;
  }
  if (auto carried = metadata.find(kPrincipalKey); carried != metadata.end()) {
    bool trusted = from_this_process;
    if (!trusted && !options_.trust_domain.empty() && auth != nullptr) {
      trusted = PeerNodeId(*auth, options_.trust_domain).has_value();
    }
    if (trusted) {
      std::optional<Principal> principal =
          DecodePrincipal(absl::string_view(carried->second.data(), carried->second.size()));
      if (principal.has_value()) return *principal;
    }
    // Anyone else's claim is ignored: they prove themselves like any caller.
  }
  Credentials credentials;
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    credentials.authorization = std::string(it->second.data(), it->second.size());
  }
  if (auth != nullptr) credentials.certificate_subject = CertificateSubject(*auth);
  if (auto cert = metadata.find(kCertificateKey); cert != metadata.end() && from_this_process) {
    credentials.certificate_subject = std::string(cert->second.data(), cert->second.size());
  }
  return Authenticate(credentials);
}

void Authenticator::Forward(const grpc::ServerContextBase& from, const Principal& caller,
                            grpc::ClientContext* to) {
  const auto& metadata = from.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    to->AddMetadata("authorization", std::string(it->second.data(), it->second.size()));
  }
  if (enabled() && !caller.anonymous()) {
    to->AddMetadata(kPrincipalKey, EncodePrincipal(caller));
  }
}

namespace {

bool HasRole(const Principal& principal, absl::string_view role) {
  return std::find(principal.roles.begin(), principal.roles.end(), role) != principal.roles.end();
}

}  // namespace

bool MayAccessTask(const Principal& caller, absl::string_view creator, TaskAccess access) {
  if (caller.anonymous() || HasRole(caller, "admin")) return true;
  if (!creator.empty() && caller.subject == creator) return true;
  return access == TaskAccess::kRead && HasRole(caller, "reader");
}

bool SeesEveryTask(const Principal& caller) {
  return caller.anonymous() || HasRole(caller, "admin") || HasRole(caller, "reader");
}

}  // namespace a2amesh::security
