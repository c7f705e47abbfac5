#include "security/jwt.h"

#include <cjose/cjose.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_stamp.h"
#include "core/log.h"
#include "http/fetch.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "security/auth.h"

namespace a2amesh::security {
namespace {

// Asymmetric signatures only: "none" proves nothing, and an HMAC key in a
// JWKS would let anyone who reads the JWKS sign.
constexpr const char* kAlgorithms[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                       "PS512", "ES256", "ES384", "ES512"};

bool Allowed(absl::string_view alg) {
  return std::any_of(std::begin(kAlgorithms), std::end(kAlgorithms),
                     [&](const char* a) { return alg == a; });
}

cjose_jwk_kty_t KeyTypeFor(absl::string_view alg) {
  return absl::StartsWith(alg, "ES") ? CJOSE_JWK_KTY_EC : CJOSE_JWK_KTY_RSA;
}

absl::Status Refused(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("JWT refused: ", why));
}

}  // namespace

struct JwtVerifier::KeySet {
  struct Key {
    std::string kid;
    cjose_jwk_kty_t kty;
    cjose_jwk_t* jwk;
  };
  std::vector<Key> keys;
  ~KeySet() {
    for (Key& key : keys) cjose_jwk_release(key.jwk);
  }
};

absl::StatusOr<std::shared_ptr<JwtVerifier::KeySet>> JwtVerifier::ParseKeys(
    absl::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("keys") || !doc["keys"].IsArray()) {
    return absl::InvalidArgumentError("not a JWKS: want a JSON object with a \"keys\" list");
  }
  auto set = std::make_shared<JwtVerifier::KeySet>();
  int index = 0;
  for (const rapidjson::Value& key : doc["keys"].GetArray()) {
    ++index;
    if (!key.IsObject()) {
      return absl::InvalidArgumentError(absl::StrCat("JWKS key ", index, " is not an object"));
    }
    if (key.HasMember("use") && key["use"].IsString() &&
        std::string(key["use"].GetString()) != "sig") {
      continue;  // an encryption key
    }
    if (key.HasMember("kty") && key["kty"].IsString() &&
        std::string(key["kty"].GetString()) == "oct") {
      continue;  // symmetric: never trusted for signatures (see kAlgorithms)
    }
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    key.Accept(writer);
    cjose_err err;
    cjose_jwk_t* jwk = cjose_jwk_import(buffer.GetString(), buffer.GetSize(), &err);
    if (jwk == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("JWKS key ", index, " cannot be read: ", err.message ? err.message : "?"));
    }
    JwtVerifier::KeySet::Key entry;
    entry.jwk = jwk;
    entry.kty = cjose_jwk_get_kty(jwk, &err);
    const char* kid = cjose_jwk_get_kid(jwk, &err);
    entry.kid = kid != nullptr ? kid : "";
    set->keys.push_back(std::move(entry));
  }
  if (set->keys.empty()) {
    return absl::InvalidArgumentError("the JWKS has no signing key (RSA or EC)");
  }
  return set;
}

JwtVerifier::JwtVerifier(JwtOptions options) : options_(std::move(options)) {}

JwtVerifier::~JwtVerifier() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (refresher_.joinable()) refresher_.join();
}

bool JwtVerifier::LooksLikeJwt(absl::string_view token) {
  if (std::count(token.begin(), token.end(), '.') != 2) return false;
  return std::all_of(token.begin(), token.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(JwtOptions options) {
  if (!options.jwks_file.empty() && !options.jwks_url.empty()) {
    return absl::InvalidArgumentError("--auth-jwks-file and --auth-jwks-url: give one, not both");
  }
  if (options.audience.empty()) {
    return absl::InvalidArgumentError(
        "--auth-jwt-audience is required with a JWKS: a token for another service must not "
        "work here");
  }
  if (!options.jwks_url.empty() && !absl::StartsWith(options.jwks_url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-jwks-url: ", options.jwks_url, " is not an https:// URL"));
  }
  std::unique_ptr<JwtVerifier> verifier(new JwtVerifier(std::move(options)));
  absl::StatusOr<std::shared_ptr<const KeySet>> keys = verifier->Fetch();
  if (!keys.ok()) return keys.status();
  {
    absl::MutexLock lock(&verifier->mu_);
    verifier->keys_ = *std::move(keys);
    verifier->last_fetch_ = absl::Now();
    if (!verifier->options_.jwks_file.empty()) {
      verifier->file_stamp_ = FileStamp(verifier->options_.jwks_file);
      verifier->next_look_ = absl::Now() + verifier->options_.reload_interval;
    }
  }
  if (!verifier->options_.jwks_url.empty()) {
    verifier->refresher_ = std::thread([v = verifier.get()] { v->RefreshLoop(); });
  }
  return verifier;
}

absl::StatusOr<std::shared_ptr<const JwtVerifier::KeySet>> JwtVerifier::Fetch() const {
  std::string text;
  std::string source;
  if (!options_.jwks_file.empty()) {
    source = "--auth-jwks-file " + options_.jwks_file;
    std::ifstream in(options_.jwks_file, std::ios::binary);
    if (!in) return absl::InvalidArgumentError(absl::StrCat(source, ": cannot read"));
    std::ostringstream read;
    read << in.rdbuf();
    text = read.str();
  } else {
    source = "--auth-jwks-url " + options_.jwks_url;
    if (!http::CanFetch()) {
      return absl::UnimplementedError(absl::StrCat(
          source,
          ": this meshd was built without libcurl (a fully static build); give the keys "
          "with --auth-jwks-file"));
    }
    http::FetchOptions fetch;
    fetch.url = options_.jwks_url;
    fetch.ca_file = options_.jwks_ca_file;  // https only: the default protocols
    absl::StatusOr<http::FetchResult> fetched = http::Fetch(fetch);
    if (!fetched.ok()) {
      return absl::UnavailableError(absl::StrCat("--auth-jwks-url ", fetched.status().message()));
    }
    if (fetched->status != 200) {
      return absl::UnavailableError(absl::StrCat(source, ": HTTP ", fetched->status));
    }
    text = std::move(fetched->body);
  }
  absl::StatusOr<std::shared_ptr<KeySet>> keys = ParseKeys(text);
  if (!keys.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", keys.status().message()));
  }
  return std::shared_ptr<const KeySet>(*std::move(keys));
}

void JwtVerifier::RefreshLoop() {
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || fetch_now_; };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&woken), options_.refresh);
      if (stopping_) return;
      fetch_now_ = false;
    }
    absl::StatusOr<std::shared_ptr<const KeySet>> keys = Fetch();
    absl::MutexLock lock(&mu_);
    last_fetch_ = absl::Now();
    if (!keys.ok()) {
      A2AMESH_LOG(Warning, "JWKS refresh failed; keeping the keys in use")
          .With("error", keys.status().message());
      continue;
    }
    keys_ = *std::move(keys);
  }
}

std::shared_ptr<const JwtVerifier::KeySet> JwtVerifier::Keys(bool unknown_kid) {
  if (!options_.jwks_url.empty()) {
    // Fetching blocks: the refresher does it. A key id nobody knows wakes it
    // early (rate limited); this token fails, the next one may pass.
    absl::MutexLock lock(&mu_);
    if (unknown_kid && absl::Now() - last_fetch_ >= options_.min_refetch) {
      last_fetch_ = absl::Now();
      fetch_now_ = true;
    }
    return keys_;
  }
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    if (now < next_look_) return keys_;
    next_look_ = now + options_.reload_interval;
  }
  std::string stamp = FileStamp(options_.jwks_file);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == file_stamp_) return keys_;
  }
  absl::StatusOr<std::shared_ptr<const KeySet>> keys = Fetch();
  absl::MutexLock lock(&mu_);
  file_stamp_ = stamp;
  if (!keys.ok()) {
    A2AMESH_LOG(Warning, "JWKS file changed but does not load; keeping the keys in use")
        .With("error", keys.status().message());
    return keys_;
  }
  keys_ = *std::move(keys);
  return keys_;
}

absl::StatusOr<Principal> JwtVerifier::Verify(absl::string_view token) {
  if (!LooksLikeJwt(token)) return Refused("not a JWS compact serialization");
  cjose_err err;
  std::unique_ptr<cjose_jws_t, decltype(&cjose_jws_release)> jws(
      cjose_jws_import(token.data(), token.size(), &err), cjose_jws_release);
  if (jws == nullptr) return Refused(absl::StrCat("unreadable: ", err.message ? err.message : "?"));
  cjose_header_t* header = cjose_jws_get_protected(jws.get());
  const char* alg = header != nullptr ? cjose_header_get(header, CJOSE_HDR_ALG, &err) : nullptr;
  if (alg == nullptr || !Allowed(alg)) {
    return Refused(absl::StrCat("algorithm ", alg != nullptr ? alg : "(none)", " is not allowed"));
  }
  const char* kid_header = cjose_header_get(header, CJOSE_HDR_KID, &err);
  const std::string kid = kid_header != nullptr ? kid_header : "";
  const cjose_jwk_kty_t kty = KeyTypeFor(alg);

  bool verified = false;
  for (int attempt = 0; attempt < 2 && !verified; ++attempt) {
    std::shared_ptr<const KeySet> keys = Keys(/*unknown_kid=*/attempt == 1);
    bool kid_known = false;
    for (const KeySet::Key& key : keys->keys) {
      if ((!kid.empty() && key.kid != kid) || key.kty != kty) continue;
      kid_known = true;
      if (cjose_jws_verify(jws.get(), key.jwk, &err)) {
        verified = true;
        break;
      }
    }
    if (kid_known || kid.empty()) break;  // a refetch would not help
  }
  if (!verified) return Refused("no key of the JWKS verifies its signature");

  uint8_t* plaintext = nullptr;
  size_t length = 0;
  if (!cjose_jws_get_plaintext(jws.get(), &plaintext, &length, &err)) {
    return Refused("no payload");
  }
  rapidjson::Document claims;
  claims.Parse(reinterpret_cast<const char*>(plaintext), length);
  if (claims.HasParseError() || !claims.IsObject()) return Refused("claims are not a JSON object");

  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  const double leeway = absl::ToDoubleSeconds(options_.leeway);
  if (!claims.HasMember("exp") || !claims["exp"].IsNumber()) return Refused("no exp");
  if (now > claims["exp"].GetDouble() + leeway) return Refused("expired");
  if (claims.HasMember("nbf")) {
    if (!claims["nbf"].IsNumber()) return Refused("nbf is not a number");
    if (now + leeway < claims["nbf"].GetDouble()) return Refused("not valid yet (nbf)");
  }
  if (!options_.issuer.empty()) {
    if (!claims.HasMember("iss") || !claims["iss"].IsString() ||
        options_.issuer != claims["iss"].GetString()) {
      return Refused("wrong issuer");
    }
  }
  bool audience = false;
  if (claims.HasMember("aud")) {
    const rapidjson::Value& aud = claims["aud"];
    if (aud.IsString()) audience = options_.audience == aud.GetString();
    if (aud.IsArray()) {
      for (const rapidjson::Value& a : aud.GetArray()) {
        if (a.IsString() && options_.audience == a.GetString()) audience = true;
      }
    }
  }
  if (!audience) return Refused("wrong audience");
  if (!claims.HasMember("sub") || !claims["sub"].IsString() ||
      claims["sub"].GetStringLength() == 0) {
    return Refused("no sub");
  }
  Principal principal;
  principal.subject = claims["sub"].GetString();
  principal.method = "jwt";
  if (claims.HasMember(options_.roles_claim.c_str())) {
    const rapidjson::Value& roles = claims[options_.roles_claim.c_str()];
    if (roles.IsArray()) {
      for (const rapidjson::Value& role : roles.GetArray()) {
        if (role.IsString()) principal.roles.emplace_back(role.GetString());
      }
    } else if (roles.IsString()) {
      principal.roles = absl::StrSplit(roles.GetString(), ' ', absl::SkipEmpty());
    }
  }
  return principal;
}

}  // namespace a2amesh::security
