#include "http/http_client.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "testing/status_matchers.h"

namespace a2amesh::http {
namespace {

using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::IsOkAndHolds;
using ::a2amesh::testing::StatusIs;
using ::testing::HasSubstr;

TEST(UrlTest, SplitsHttpAndHttpsUrls) {
  absl::StatusOr<Url> url = ParseUrl("https://hooks.example.com/a2a/events?x=1#frag");
  ASSERT_THAT(url, IsOk());
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "hooks.example.com");
  EXPECT_EQ(url->port, "443");
  EXPECT_EQ(url->target, "/a2a/events?x=1");
  url = ParseUrl("http://[::1]:8080");
  ASSERT_THAT(url, IsOk());
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "8080");
  EXPECT_EQ(url->target, "/");
  EXPECT_EQ(ParseUrl("http://example.com?q").value().target, "/?q");
}

TEST(UrlTest, RefusesWhatIsNotAnHttpUrlAndSaysWhy) {
  EXPECT_THAT(ParseUrl("ftp://x/"), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("not an http:// or https:// URL")));
  EXPECT_THAT(ParseUrl("http:///path"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has no host")));
  EXPECT_THAT(ParseUrl("http://user:pw@x/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user info")));
  EXPECT_THAT(ParseUrl("http://x:99999/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad port '99999'")));
  EXPECT_THAT(ParseUrl("http://[::1/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unclosed IPv6")));
}

TEST(PublicAddressTest, AddressesAreTellableFromNames) {
  for (const char* yes : {"10.0.0.1", "::1", "fe80::1", "2606:2800:220:1::1"}) {
    EXPECT_TRUE(IsIpAddress(yes)) << yes;
  }
  for (const char* no : {"localhost", "example.com", "10.0.0", "", "[::1]"}) {
    EXPECT_FALSE(IsIpAddress(no)) << no;
  }
}

TEST(PublicAddressTest, OnlyPublicAddressesPass) {
  for (const char* yes : {"8.8.8.8", "93.184.216.34", "2606:2800:220:1::1", "100.63.255.255"}) {
    EXPECT_TRUE(IsPublicAddress(yes)) << yes;
  }
  for (const char* no : {"127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                         "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                         "255.255.255.255", "::1", "::", "fe80::1", "fd00::1", "fc00::1",
                         "::ffff:127.0.0.1", "::ffff:10.0.0.1", "not-an-ip"}) {
    EXPECT_FALSE(IsPublicAddress(no)) << no;
  }
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start("127.0.0.1:0", ServerOptions(), [this](std::shared_ptr<Exchange> exchange) {
          absl::MutexLock lock(&mu_);
          last_ = exchange->request();
          if (exchange->request().path == "/never") {
            held_ = exchange;  // no answer
            return;
          }
          Response response;
          response.status = exchange->request().path == "/fail" ? 503 : 204;
          exchange->Respond(response);
        });
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }

  absl::StatusOr<int> Post(Client& client, const std::string& url) {
    absl::Notification done;
    absl::StatusOr<int> result;
    client.Post(url, {{"Authorization", "Bearer s3cret"}, {"Content-Type", "application/a2a+json"}},
                R"({"statusUpdate":{}})", [&](absl::StatusOr<int> r) {
                  result = std::move(r);
                  done.Notify();
                });
    done.WaitForNotification();
    return result;
  }

  ClientOptions Loopback() {
    ClientOptions options;
    options.allow_private = true;
    options.timeout = absl::Seconds(5);
    return options;
  }

  absl::Mutex mu_;
  Request last_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Exchange> held_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Server> server_;
  std::string base_;
};

TEST_F(ClientTest, PostsTheBodyWithItsHeadersAndReturnsTheStatus) {
  Client client(Loopback());
  EXPECT_THAT(Post(client, base_ + "/hook?x=1"), IsOkAndHolds(204));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(last_.method, "POST");
  EXPECT_EQ(last_.target, "/hook?x=1");
  EXPECT_EQ(last_.body, R"({"statusUpdate":{}})");
  ASSERT_NE(last_.Header("authorization"), nullptr);
  EXPECT_EQ(*last_.Header("authorization"), "Bearer s3cret");
  EXPECT_EQ(*last_.Header("content-type"), "application/a2a+json");
  EXPECT_EQ(*last_.Header("host"), base_.substr(7));
}

TEST_F(ClientTest, AnErrorStatusIsAStatusNotAnError) {
  Client client(Loopback());
  EXPECT_THAT(Post(client, base_ + "/fail"), IsOkAndHolds(503));
}

TEST_F(ClientTest, PrivateTargetsAreRefusedUnlessAllowed) {
  Client client{ClientOptions()};
  EXPECT_THAT(Post(client, base_ + "/hook"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("127.0.0.1 resolves to 127.0.0.1: loopback, private")));
  EXPECT_THAT(Post(client, "http://localhost:1/"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not allowed")));
}

TEST_F(ClientTest, TimeoutsRefusalsAndBadUrlsAreErrors) {
  ClientOptions quick = Loopback();
  quick.timeout = absl::Milliseconds(200);
  Client client(quick);
  EXPECT_THAT(Post(client, base_ + "/never"),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("no answer within 200ms")));
  const std::string closed = base_;
  server_->Stop();
  EXPECT_THAT(Post(client, closed + "/hook"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot connect to 127.0.0.1")));
  EXPECT_THAT(Post(client, "gopher://x/"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ClientTest, HttpsToAServerThatDoesNotSpeakTlsFails) {
  Client client(Loopback());
  EXPECT_THAT(Post(client, absl::StrCat("https://127.0.0.1:", server_->port(), "/hook")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("TLS with 127.0.0.1")));
}

TEST_F(ClientTest, AfterRunsLaterAndAStoppedClientCancelsWhatIsPending) {
  absl::Notification ran;
  absl::StatusOr<int> pending = 0;
  {
    Client client(Loopback());
    client.After(absl::Milliseconds(10), [&] { ran.Notify(); });
    EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
    client.Post(base_ + "/never", {}, "", [&](absl::StatusOr<int> r) { pending = std::move(r); });
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::shared_ptr<Exchange>* held) { return *held != nullptr; }, &held_));
  }
  EXPECT_THAT(pending, StatusIs(absl::StatusCode::kCancelled));
}

}  // namespace
}  // namespace a2amesh::http
