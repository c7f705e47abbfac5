#ifndef A2AMESH_TESTS_TESTING_TEST_JWT_H_
#define A2AMESH_TESTS_TESTING_TEST_JWT_H_

#include <string>
#include <vector>

typedef struct _cjose_jwk_int cjose_jwk_t;

namespace a2amesh::testing {

// A signing key of a test's token issuer, made with cjose (a real JOSE
// library): the test mints JWTs with it and publishes its public half.
class TestJwk {
 public:
  static TestJwk Rsa(const std::string& kid);  // RS256, 2048 bits
  static TestJwk Ec(const std::string& kid);   // ES256, P-256
  TestJwk(TestJwk&& other) noexcept;
  TestJwk(const TestJwk&) = delete;
  TestJwk& operator=(const TestJwk&) = delete;
  ~TestJwk();

  // The public half, as a JWKS entry.
  std::string PublicJwk() const;
  // A JWS of `claims` signed with this key, with its kid.
  std::string Sign(const std::string& claims) const;

 private:
  TestJwk(cjose_jwk_t* jwk, const std::string& kid, std::string alg);
  cjose_jwk_t* jwk_;
  std::string alg_;
};

// {"keys":[...]} of the keys' public halves.
std::string Jwks(const std::vector<const TestJwk*>& keys);

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_TEST_JWT_H_
