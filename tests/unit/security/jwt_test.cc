// JWTs against a JWKS, from the attacker's side: tokens are minted in the
// test with cjose (RS256, ES256), and forged ones by hand.
#include "security/jwt.h"

#include <cjose/cjose.h>

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "http/tls_context.h"
#include "security/auth.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"
#include "testing/test_jwt.h"
#include "testing/wait.h"

namespace a2amesh::security {
namespace {

using ::a2amesh::testing::Jwks;
using ::a2amesh::testing::TempDir;
using ::a2amesh::testing::TestJwk;
using ::a2amesh::testing::WriteFileAtomically;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

int64_t Now() { return absl::ToUnixSeconds(absl::Now()); }

std::string Claims(const std::string& extra = "", int64_t exp_in = 300) {
  return absl::StrCat(R"({"iss":"https://issuer.test","aud":["a2a-mesh","other"],"sub":"alice",)",
                      R"("roles":["reader","admin"],"exp":)", Now() + exp_in, extra, "}");
}

class JwtTest : public ::testing::Test {
 protected:
  JwtTest() : rsa_(TestJwk::Rsa("rsa-1")), ec_(TestJwk::Ec("ec-1")) {
    WriteFileAtomically(dir_.File("jwks.json"), Jwks({&rsa_, &ec_}));
  }
  JwtOptions Options() const {
    JwtOptions options;
    options.jwks_file = dir_.File("jwks.json");
    options.issuer = "https://issuer.test";
    options.audience = "a2a-mesh";
    options.reload_interval = absl::Milliseconds(1);
    return options;
  }
  std::unique_ptr<JwtVerifier> Verifier() {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(Options());
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  TempDir dir_;
  TestJwk rsa_;
  TestJwk ec_;
};

TEST_F(JwtTest, GoodRs256AndEs256TokensProveTheirSubjectAndRoles) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  for (const TestJwk* key : {&rsa_, &ec_}) {
    absl::StatusOr<Principal> principal = verifier->Verify(key->Sign(Claims()));
    ASSERT_TRUE(principal.ok()) << principal.status();
    EXPECT_EQ(principal->subject, "alice");
    EXPECT_THAT(principal->roles, ElementsAre("reader", "admin"));
    EXPECT_EQ(principal->method, "jwt");
  }
  // Roles as one space-separated string (an OAuth scope), from another claim.
  JwtOptions options = Options();
  options.roles_claim = "scope";
  auto scoped = *JwtVerifier::Create(options);
  absl::StatusOr<Principal> principal =
      scoped->Verify(rsa_.Sign(Claims(R"(,"scope":"a2a.send a2a.read")")));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_THAT(principal->roles, ElementsAre("a2a.send", "a2a.read"));
}

TEST_F(JwtTest, EachBrokenClaimIsRefused) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  struct Case {
    std::string name;
    std::string token;
    std::string reason;
  };
  const int64_t now = Now();
  std::vector<Case> cases = {
      {"expired", rsa_.Sign(Claims("", -120)), "expired"},
      {"not yet valid", rsa_.Sign(Claims(absl::StrCat(R"(,"nbf":)", now + 600))), "nbf"},
      {"wrong audience",
       rsa_.Sign(
           absl::StrCat(R"({"iss":"https://issuer.test","aud":"someone-else","sub":"a","exp":)",
                        now + 300, "}")),
       "audience"},
      {"no audience",
       rsa_.Sign(absl::StrCat(R"({"iss":"https://issuer.test","sub":"a","exp":)", now + 300, "}")),
       "audience"},
      {"wrong issuer",
       rsa_.Sign(absl::StrCat(R"({"iss":"https://evil.test","aud":"a2a-mesh","sub":"a","exp":)",
                              now + 300, "}")),
       "issuer"},
      {"no exp", rsa_.Sign(R"({"iss":"https://issuer.test","aud":"a2a-mesh","sub":"a"})"), "exp"},
      {"no sub",
       rsa_.Sign(
           absl::StrCat(R"({"iss":"https://issuer.test","aud":"a2a-mesh","exp":)", now + 300, "}")),
       "sub"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Principal> principal = verifier->Verify(c.token);
    EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated) << c.name;
    EXPECT_THAT(principal.status().message(), HasSubstr(c.reason)) << c.name;
  }
}

TEST_F(JwtTest, ForgedSignaturesAreRefused) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  // Signed by a key the issuer never published, under a published kid.
  TestJwk stranger = TestJwk::Rsa("rsa-1");
  EXPECT_THAT(verifier->Verify(stranger.Sign(Claims())).status().message(),
              HasSubstr("no key of the JWKS verifies"));

  // The claims of a good token changed after signing.
  std::string good = rsa_.Sign(Claims());
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  std::string elevated;
  absl::WebSafeBase64Escape(
      absl::StrCat(R"({"iss":"https://issuer.test","aud":"a2a-mesh",)",
                   R"("sub":"root","roles":["admin"],"exp":)", Now() + 300, "}"),
      &elevated);
  EXPECT_FALSE(verifier->Verify(absl::StrCat(parts[0], ".", elevated, ".", parts[2])).ok());

  // alg "none", with no signature.
  std::string header;
  std::string payload;
  absl::WebSafeBase64Escape(R"({"alg":"none","kid":"rsa-1"})", &header);
  absl::WebSafeBase64Escape(Claims(), &payload);
  absl::StatusOr<Principal> none = verifier->Verify(absl::StrCat(header, ".", payload, "."));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);

  // HS256 keyed with the issuer's public key (the algorithm-confusion attack).
  cjose_err err;
  std::string public_jwk = rsa_.PublicJwk();
  std::string secret;
  absl::WebSafeBase64Escape(public_jwk, &secret);
  std::string oct = absl::StrCat(R"({"kty":"oct","kid":"rsa-1","k":")", secret, R"("})");
  cjose_jwk_t* hmac = cjose_jwk_import(oct.data(), oct.size(), &err);
  ASSERT_NE(hmac, nullptr);
  cjose_header_t* hs = cjose_header_new(&err);
  cjose_header_set(hs, CJOSE_HDR_ALG, "HS256", &err);
  cjose_header_set(hs, CJOSE_HDR_KID, "rsa-1", &err);
  std::string claims = Claims();
  cjose_jws_t* jws = cjose_jws_sign(hmac, hs, reinterpret_cast<const uint8_t*>(claims.data()),
                                    claims.size(), &err);
  const char* compact = nullptr;
  cjose_jws_export(jws, &compact, &err);
  absl::StatusOr<Principal> confused = verifier->Verify(compact);
  EXPECT_THAT(confused.status().message(), HasSubstr("HS256 is not allowed"));
  cjose_jws_release(jws);
  cjose_header_release(hs);
  cjose_jwk_release(hmac);

  EXPECT_FALSE(verifier->Verify("not.a.jwt!").ok());
  EXPECT_FALSE(verifier->Verify("opaque-token-with-no-dots").ok());
}

TEST_F(JwtTest, KeysRotatedInTheFileAreUsedWithoutRestart) {
  std::unique_ptr<JwtVerifier> verifier = Verifier();
  TestJwk next = TestJwk::Ec("ec-2");
  EXPECT_FALSE(verifier->Verify(next.Sign(Claims())).ok());
  WriteFileAtomically(dir_.File("jwks.json"), Jwks({&next}));
  EXPECT_TRUE(testing::WaitFor([&] { return verifier->Verify(next.Sign(Claims())).ok(); }));
  // The retired key no longer verifies.
  EXPECT_FALSE(verifier->Verify(rsa_.Sign(Claims())).ok());
}

TEST_F(JwtTest, UnusableSettingsAndKeysAreNamed) {
  JwtOptions options = Options();
  options.audience.clear();
  EXPECT_THAT(JwtVerifier::Create(options).status().message(),
              HasSubstr("--auth-jwt-audience is required"));
  options = Options();
  WriteFileAtomically(options.jwks_file, R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})");
  EXPECT_THAT(JwtVerifier::Create(options).status().message(), HasSubstr("no signing key"));
  WriteFileAtomically(options.jwks_file, "[]");
  EXPECT_THAT(JwtVerifier::Create(options).status().message(), HasSubstr("not a JWKS"));
  options.jwks_file = dir_.File("missing.json");
  EXPECT_THAT(JwtVerifier::Create(options).status().message(), HasSubstr("cannot read"));
  options = Options();
  options.jwks_file.clear();
  options.jwks_url = "http://issuer.test/jwks";
  EXPECT_THAT(JwtVerifier::Create(options).status().message(), HasSubstr("not an https://"));
}

TEST_F(JwtTest, AJwksUrlIsFetchedOverHttpsAndRefetchedForAnUnknownKid) {
  // The issuer: an HTTPS server (ours, with a test CA) serving its JWKS.
  testing::TestCa ca;
  testing::KeyCert server_cert = ca.Issue(testing::CertSpec{});
  WriteFileAtomically(dir_.File("issuer.crt"), server_cert.cert_pem);
  WriteFileAtomically(dir_.File("issuer.key"), server_cert.key_pem);
  WriteFileAtomically(dir_.File("ca.crt"), ca.cert_pem());
  auto tls = http::TlsContextSource::Create(
      {dir_.File("issuer.crt"), dir_.File("issuer.key"), "", absl::Seconds(60)});
  ASSERT_TRUE(tls.ok()) << tls.status();
  TestJwk next = TestJwk::Ec("ec-2");
  std::atomic<bool> rotated{false};
  std::atomic<int> fetches{0};
  http::ServerOptions server_options;
  server_options.tls = *tls;
  auto server = http::Server::Start("127.0.0.1:0", server_options, [&](const http::Request&) {
    ++fetches;
    http::Response response;
    response.content_type = "application/json";
    response.body = rotated ? Jwks({&rsa_, &next}) : Jwks({&rsa_});
    return response;
  });
  ASSERT_TRUE(server.ok()) << server.status();

  JwtOptions options = Options();
  options.jwks_file.clear();
  options.jwks_url = absl::StrCat("https://127.0.0.1:", (*server)->port(), "/jwks.json");
  options.jwks_ca_file = dir_.File("ca.crt");
  options.min_refetch = absl::Milliseconds(1);
  absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(options);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_TRUE((*verifier)->Verify(rsa_.Sign(Claims())).ok());

  // The issuer starts signing with a new key: its kid is unknown, which
  // sends the verifier back to the URL.
  rotated = true;
  EXPECT_TRUE(testing::WaitFor([&] { return (*verifier)->Verify(next.Sign(Claims())).ok(); }));
  EXPECT_GE(fetches.load(), 2);

  // A server the CA does not vouch for is refused at start.
  options.jwks_ca_file.clear();
  EXPECT_EQ(JwtVerifier::Create(options).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace a2amesh::security
