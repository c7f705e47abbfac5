// The HTTP server over TLS, with certificates made in the test.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "http/tls_context.h"
#include "testing/http_client.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"
#include "testing/wait.h"

namespace a2amesh::http {
namespace {

using ::a2amesh::testing::HttpExchange;
using ::a2amesh::testing::HttpsExchange;
using ::a2amesh::testing::KeyCert;
using ::a2amesh::testing::ParseHttpResponse;
using ::a2amesh::testing::TempDir;
using ::a2amesh::testing::TestCa;
using ::a2amesh::testing::WaitFor;
using ::a2amesh::testing::WriteFileAtomically;
using ::testing::HasSubstr;

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFiles(ca_.IssueNode("n1"));
    WriteFileAtomically(dir_.File("ca.crt"), ca_.cert_pem());
    files_.cert_file = dir_.File("server.crt");
    files_.key_file = dir_.File("server.key");
    files_.client_ca_file = dir_.File("ca.crt");
    files_.reload_interval = absl::Milliseconds(1);
  }
  void WriteFiles(const KeyCert& kc) {
    WriteFileAtomically(dir_.File("server.key"), kc.key_pem);
    WriteFileAtomically(dir_.File("server.crt"), kc.cert_pem);
  }
  void Serve() {
    absl::StatusOr<std::shared_ptr<TlsContextSource>> tls = TlsContextSource::Create(files_);
    ASSERT_TRUE(tls.ok()) << tls.status();
    ServerOptions options;
    options.tls = *tls;
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start("127.0.0.1:0", options, [](const Request& request) {
          Response response;
          response.body = absl::StrCat("hello ", request.path);
          return response;
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }
  absl::StatusOr<std::string> Get(const std::string& ca_pem, const std::string& path = "/x") {
    return HttpsExchange(address_,
                         absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address_,
                                      "\r\nConnection: close\r\n\r\n"),
                         ca_pem);
  }

  TempDir dir_;
  TestCa ca_;
  TlsFiles files_;
  std::unique_ptr<Server> server_;
  std::string address_;
};

TEST_F(HttpsServerTest, ServesHttpsAndRefusesPlainText) {
  Serve();
  absl::StatusOr<std::string> raw = Get(ca_.cert_pem());
  ASSERT_TRUE(raw.ok()) << raw.status();
  absl::StatusOr<testing::HttpResult> response = ParseHttpResponse(*raw);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello /x");

  // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
  absl::StatusOr<std::string> plain = HttpExchange(
      address_, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", absl::Seconds(5));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_THAT(*plain, ::testing::Not(HasSubstr("hello")));
  EXPECT_FALSE(ParseHttpResponse(*plain).ok() && ParseHttpResponse(*plain)->status == 200);

  // A client that does not trust the server's CA stops at the handshake.
  TestCa stranger("another CA");
  EXPECT_THAT(Get(stranger.cert_pem()).status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(HttpsServerTest, AClientCertificateOfAnotherCaIsRefused) {
  Serve();
  TestCa stranger("another CA");
  KeyCert foreign = stranger.IssueNode("x");
  absl::StatusOr<std::string> raw =
      HttpsExchange(address_, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    ca_.cert_pem(), foreign.cert_pem, foreign.key_pem);
  // TLS 1.3: the client learns of the refusal on its first read.
  EXPECT_TRUE(!raw.ok() || !absl::StrContains(*raw, "hello")) << raw.value_or("");

  KeyCert ours = ca_.IssueNode("x");
  raw = HttpsExchange(address_, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                      ca_.cert_pem(), ours.cert_pem, ours.key_pem);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, HasSubstr("hello /x"));
}

TEST_F(HttpsServerTest, ARotatedCertificateIsServedToNewConnections) {
  Serve();
  ASSERT_TRUE(Get(ca_.cert_pem()).ok());
  // Rotate to a certificate of a new CA (the clients move with it).
  TestCa next("next CA");
  WriteFiles(next.IssueNode("n1"));
  EXPECT_TRUE(WaitFor([&] { return Get(next.cert_pem()).ok(); }));
  EXPECT_FALSE(Get(ca_.cert_pem()).ok());

  // A broken rotation (a key that is not the certificate's) keeps the last good pair.
  WriteFileAtomically(dir_.File("server.key"), ca_.IssueNode("n1").key_pem);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::string> raw = Get(next.cert_pem());
    ASSERT_TRUE(raw.ok()) << raw.status();
    EXPECT_THAT(*raw, HasSubstr("hello /x"));
  }
}

TEST(TlsContextSourceTest, FilesThatDoNotLoadAreNamed) {
  TempDir dir;
  TestCa ca;
  KeyCert kc = ca.IssueNode("n1");
  WriteFileAtomically(dir.File("c.pem"), kc.cert_pem);
  WriteFileAtomically(dir.File("k.pem"), ca.IssueNode("n1").key_pem);
  TlsFiles files{dir.File("c.pem"), dir.File("k.pem"), "", absl::Seconds(1)};
  EXPECT_THAT(TlsContextSource::Create(files).status().message(),
              HasSubstr("TLS key " + dir.File("k.pem")));
  files.cert_file = dir.File("missing.pem");
  EXPECT_THAT(TlsContextSource::Create(files).status().message(),
              HasSubstr("TLS certificate " + dir.File("missing.pem")));
}

}  // namespace
}  // namespace a2amesh::http
