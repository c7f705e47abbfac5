#include "http/fetch.h"

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http/http_server.h"

namespace a2amesh::http {
namespace {

TEST(FreshForTest, MaxAgeNoCacheAndNoStore) {
  EXPECT_EQ(FreshFor("max-age=60"), absl::Seconds(60));
  EXPECT_EQ(FreshFor("public, MAX-AGE=\"30\", must-revalidate"), absl::Seconds(30));
  EXPECT_EQ(FreshFor("max-age=60, no-cache"), absl::ZeroDuration());
  EXPECT_EQ(FreshFor("no-store"), absl::ZeroDuration());
  EXPECT_EQ(FreshFor(""), std::nullopt);
  EXPECT_EQ(FreshFor("public"), std::nullopt);
  EXPECT_EQ(FreshFor("max-age=soon"), std::nullopt);
  EXPECT_EQ(FreshFor("max-age=-1"), std::nullopt);
}

// A server that answers 304 to the ETag it gave: the fetch sends it back
// and reads the answer's ETag and Cache-Control.
TEST(FetchTest, AConditionalFetchGetsNotModified) {
  if (!CanFetch()) GTEST_SKIP() << "built without libcurl";
  std::atomic<int> conditional{0};
  auto server = Server::Start("127.0.0.1:0", ServerOptions(), [&](const Request& request) {
    Response response;
    response.headers.emplace_back("ETag", "W/\"v1\"");
    response.headers.emplace_back("Cache-Control", "max-age=120");
    if (const std::string* tag = request.Header("if-none-match"); tag != nullptr) {
      ++conditional;
      if (*tag == "W/\"v1\"") {
        response.status = 304;
        return response;
      }
    }
    response.content_type = "application/json";
    response.body = "{\"name\":\"card\"}";
    return response;
  });
  ASSERT_TRUE(server.ok()) << server.status();
  FetchOptions options;
  options.url = absl::StrCat("http://127.0.0.1:", (*server)->port(), "/card");
  options.protocols = "http";
  absl::StatusOr<FetchResult> first = Fetch(options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "{\"name\":\"card\"}");
  EXPECT_EQ(first->etag, "W/\"v1\"");
  EXPECT_EQ(FreshFor(first->cache_control), absl::Seconds(120));
  EXPECT_EQ(conditional.load(), 0);

  options.if_none_match = first->etag;
  absl::StatusOr<FetchResult> again = Fetch(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, 304);
  EXPECT_EQ(again->body, "");
  EXPECT_EQ(again->etag, "W/\"v1\"");
  EXPECT_EQ(conditional.load(), 1);

  options.if_none_match = "W/\"v0\"";  // stale: the whole answer
  absl::StatusOr<FetchResult> changed = Fetch(options);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->status, 200);
  EXPECT_EQ(changed->body, "{\"name\":\"card\"}");
}

}  // namespace
}  // namespace a2amesh::http
