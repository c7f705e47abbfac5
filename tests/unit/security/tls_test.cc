#include "security/tls.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"

namespace a2amesh::security {
namespace {

using ::a2amesh::testing::CertSpec;
using ::a2amesh::testing::KeyCert;
using ::a2amesh::testing::TempDir;
using ::a2amesh::testing::TestCa;
using ::a2amesh::testing::WriteFileAtomically;
using ::testing::HasSubstr;

TEST(NodeIdentityTest, RoundTripsAndRefusesOtherDomainsAndShapes) {
  EXPECT_EQ(NodeIdentity("prod", "n1"), "spiffe://prod/node/n1");
  EXPECT_EQ(NodeIdFromIdentity("prod", "spiffe://prod/node/n1"), "n1");
  EXPECT_EQ(NodeIdFromIdentity("prod", "spiffe://staging/node/n1"), std::nullopt);
  EXPECT_EQ(NodeIdFromIdentity("prod", "spiffe://prod/node/"), std::nullopt);
  EXPECT_EQ(NodeIdFromIdentity("prod", "spiffe://prod/node/n1/x"), std::nullopt);
  EXPECT_EQ(NodeIdFromIdentity("prod", "spiffe://prod/agent/n1"), std::nullopt);
  EXPECT_EQ(NodeIdFromIdentity("prod", "spiffe://prod.evil/node/n1"), std::nullopt);
}

class CheckTlsFilesTest : public ::testing::Test {
 protected:
  // Writes `kc` as <name>.crt and <name>.key; returns options using them and ca.crt.
  TlsOptions Files(const std::string& name, const KeyCert& kc) {
    WriteFileAtomically(dir_.File(name + ".crt"), kc.cert_pem);
    WriteFileAtomically(dir_.File(name + ".key"), kc.key_pem);
    WriteFileAtomically(dir_.File("ca.crt"), ca_.cert_pem());
    TlsOptions options;
    options.cert_file = dir_.File(name + ".crt");
    options.key_file = dir_.File(name + ".key");
    options.client_ca_file = dir_.File("ca.crt");
    return options;
  }

  TempDir dir_;
  TestCa ca_;
};

TEST_F(CheckTlsFilesTest, AcceptsANodeCertificateOfTheMeshCa) {
  EXPECT_TRUE(CheckTlsFiles(Files("n1", ca_.IssueNode("n1")), "n1").ok());
  TlsOptions server_only = Files("n1", ca_.IssueNode("n1"));
  server_only.client_ca_file.clear();
  EXPECT_TRUE(CheckTlsFiles(server_only, "anything").ok());
  EXPECT_TRUE(CheckTlsFiles(TlsOptions{}, "n1").ok());  // TLS off
}

TEST_F(CheckTlsFilesTest, NamesTheFlagOfEachBadFile) {
  TlsOptions missing = Files("n1", ca_.IssueNode("n1"));
  missing.cert_file = dir_.File("nope.crt");
  EXPECT_THAT(CheckTlsFiles(missing, "n1").message(), HasSubstr("--tls-cert: cannot read"));

  TlsOptions not_pem = Files("n1", ca_.IssueNode("n1"));
  WriteFileAtomically(not_pem.key_file, "not a key");
  EXPECT_THAT(CheckTlsFiles(not_pem, "n1").message(), HasSubstr("--tls-key:"));

  TlsOptions other_key = Files("n1", ca_.IssueNode("n1"));
  WriteFileAtomically(other_key.key_file, ca_.IssueNode("n1").key_pem);
  EXPECT_THAT(CheckTlsFiles(other_key, "n1").message(),
              HasSubstr("is not the key of the certificate"));

  TlsOptions empty_ca = Files("n1", ca_.IssueNode("n1"));
  WriteFileAtomically(empty_ca.client_ca_file, "");
  EXPECT_THAT(CheckTlsFiles(empty_ca, "n1").message(),
              HasSubstr("--tls-client-ca: " + empty_ca.client_ca_file + " holds no PEM"));

  TlsOptions no_key = Files("n1", ca_.IssueNode("n1"));
  no_key.key_file.clear();
  EXPECT_THAT(CheckTlsFiles(no_key, "n1").message(), HasSubstr("--tls-cert needs --tls-key"));

  TlsOptions ca_only;
  ca_only.client_ca_file = dir_.File("ca.crt");
  EXPECT_THAT(CheckTlsFiles(ca_only, "n1").message(), HasSubstr("--tls-client-ca needs"));
}

TEST_F(CheckTlsFilesTest, RefusesACertificatePeersWouldRefuse) {
  // Another node's identity.
  EXPECT_THAT(CheckTlsFiles(Files("n2", ca_.IssueNode("n2")), "n1").message(),
              HasSubstr("names spiffe://a2a-mesh/node/n2, not this node's "
                        "spiffe://a2a-mesh/node/n1"));
  // No identity at all.
  EXPECT_THAT(CheckTlsFiles(Files("plain", ca_.Issue(CertSpec{})), "n1").message(),
              HasSubstr("names no URI identity"));
  // Another trust domain.
  TlsOptions other_domain = Files("n1", ca_.IssueNode("n1", "staging"));
  other_domain.trust_domain = "prod";
  EXPECT_THAT(CheckTlsFiles(other_domain, "n1").message(), HasSubstr("spiffe://prod/node/n1"));
  // Signed by another CA.
  TestCa other_ca("another CA");
  EXPECT_THAT(CheckTlsFiles(Files("n1", other_ca.IssueNode("n1")), "n1").message(),
              HasSubstr("does not verify against --tls-client-ca"));
  // Expired.
  CertSpec expired;
  expired.uris = {NodeIdentity("a2a-mesh", "n1")};
  expired.not_before = -absl::Hours(48);
  expired.not_after = -absl::Hours(24);
  EXPECT_THAT(CheckTlsFiles(Files("n1", ca_.Issue(expired)), "n1").message(),
              HasSubstr("certificate has expired"));
}

TEST(ClientCredentialsTest, NamesTheOptionWhoseFileIsMissing) {
  ClientTlsOptions tls;
  tls.enabled = true;
  tls.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(ClientCredentials(tls).status().message(),
              HasSubstr("--tls-ca: cannot read /nonexistent/ca.pem"));
  tls.ca_file.clear();
  tls.cert_file = "/nonexistent/c.pem";
  EXPECT_THAT(ClientCredentials(tls).status().message(), HasSubstr("go together"));
  EXPECT_TRUE(ClientCredentials(ClientTlsOptions{}).ok());
}

}  // namespace
}  // namespace a2amesh::security
