#include "testing/test_jwt.h"

#include <cjose/cjose.h>

#include <cstdlib>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace a2amesh::testing {

TestJwk TestJwk::Rsa(const std::string& kid) {
  cjose_err err;
  static const uint8_t e[] = {0x01, 0x00, 0x01};
  return TestJwk(cjose_jwk_create_RSA_random(2048, e, sizeof(e), &err), kid, "RS256");
}

TestJwk TestJwk::Ec(const std::string& kid) {
  cjose_err err;
  return TestJwk(cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err), kid, "ES256");
}

TestJwk::TestJwk(cjose_jwk_t* jwk, const std::string& kid, std::string alg)
    : jwk_(jwk), alg_(std::move(alg)) {
  if (jwk_ == nullptr) throw std::runtime_error("cjose could not make a key");
  cjose_err err;
  cjose_jwk_set_kid(jwk_, kid.data(), kid.size(), &err);
}

TestJwk::TestJwk(TestJwk&& other) noexcept : jwk_(other.jwk_), alg_(std::move(other.alg_)) {
  other.jwk_ = nullptr;
}

TestJwk::~TestJwk() {
  if (jwk_ != nullptr) cjose_jwk_release(jwk_);
}

std::string TestJwk::PublicJwk() const {
  cjose_err err;
  char* json = cjose_jwk_to_json(jwk_, false, &err);
  std::string out(json);
  free(json);
  return out;
}

std::string TestJwk::Sign(const std::string& claims) const {
  cjose_err err;
  cjose_header_t* header = cjose_header_new(&err);
  cjose_header_set(header, CJOSE_HDR_ALG, alg_.c_str(), &err);
  cjose_header_set(header, CJOSE_HDR_KID, cjose_jwk_get_kid(jwk_, &err), &err);
  cjose_jws_t* jws = cjose_jws_sign(jwk_, header, reinterpret_cast<const uint8_t*>(claims.data()),
                                    claims.size(), &err);
  cjose_header_release(header);
  if (jws == nullptr) throw std::runtime_error(absl::StrCat("cjose_jws_sign: ", err.message));
  const char* compact = nullptr;
  cjose_jws_export(jws, &compact, &err);
  std::string out(compact);
  cjose_jws_release(jws);
  return out;
}

std::string Jwks(const std::vector<const TestJwk*>& keys) {
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", keys[i]->PublicJwk());
  }
  return out + "]}";
}

}  // namespace a2amesh::testing
