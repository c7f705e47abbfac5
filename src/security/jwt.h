#ifndef A2AMESH_SECURITY_JWT_H_
#define A2AMESH_SECURITY_JWT_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace a2amesh::security {

struct Principal;

struct JwtOptions {
  // Where the signing keys are: a JWKS ({"keys":[...]}) file, re-read when it
  // changes, or an https URL, fetched at start, every `refresh`, and when a
  // token names a key id it does not know (at most once per `min_refetch`).
  std::string jwks_file;
  std::string jwks_url;
  // Required claims: `iss` must equal `issuer`; `aud` (a string or a list)
  // must hold `audience`.
  std::string issuer;
  std::string audience;
  // The claim with the principal's roles: a list of strings, or one string of
  // space-separated names (like "scope").
  std::string roles_claim = "roles";
  // Clock skew allowed on exp and nbf.
  absl::Duration leeway = absl::Seconds(30);
  absl::Duration refresh = absl::Minutes(5);
  absl::Duration min_refetch = absl::Seconds(30);
  // For the file: how often it is looked at for changes.
  absl::Duration reload_interval = absl::Seconds(10);
  // For the URL: a PEM CA bundle to verify its server against instead of the
  // system's (tests, private issuers).
  std::string jwks_ca_file;

  bool enabled() const { return !jwks_file.empty() || !jwks_url.empty(); }
};

// Verifies JWTs (JWS compact, RS256/384/512, PS256/384/512, ES256/384/512;
// never "none" or HMAC) against a JWKS with cjose, then the claims: exp
// (required), nbf, iss, aud. Thread-safe.
class JwtVerifier {
 public:
  // INVALID_ARGUMENT naming the flag if the options or the keys are unusable
  // (a URL that cannot be fetched at start is UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(JwtOptions options);
  ~JwtVerifier();

  // The token's principal (subject: `sub`; method "jwt"), or why not
  // (UNAUTHENTICATED; for logs only, never for the caller).
  absl::StatusOr<Principal> Verify(absl::string_view token);

  // Whether `token` has the shape of a JWS (three base64url parts).
  static bool LooksLikeJwt(absl::string_view token);

 private:
  struct KeySet;
  explicit JwtVerifier(JwtOptions options);
  // INVALID_ARGUMENT naming what is wrong with a JWKS document.
  static absl::StatusOr<std::shared_ptr<KeySet>> ParseKeys(absl::string_view text);
  absl::StatusOr<std::shared_ptr<const KeySet>> Fetch() const;
  // The keys, re-read or re-fetched as the options say; `unknown_kid` asks
  // for a fetch now (rate limited).
  std::shared_ptr<const KeySet> Keys(bool unknown_kid);
  void RefreshLoop();

  const JwtOptions options_;
  absl::Mutex mu_;
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(mu_);
  std::string file_stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time next_look_ ABSL_GUARDED_BY(mu_);
  absl::Time last_fetch_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // A token named an unknown key id: the refresher fetches now.
  bool fetch_now_ ABSL_GUARDED_BY(mu_) = false;
  std::thread refresher_;
};

}  // namespace a2amesh::security

#endif  // A2AMESH_SECURITY_JWT_H_
