#include "http/http_server.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_client.h"
#include "testing/wait.h"

namespace a2amesh::http {
namespace {

using ::a2amesh::testing::HttpConnection;
using ::a2amesh::testing::HttpExchange;
using ::a2amesh::testing::HttpGet;
using ::a2amesh::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.max_header_bytes = 1024;
    options.max_body_bytes = 64;
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start("127.0.0.1:0", options, [this](const Request& request) {
          ++requests_;
          Response response;
          response.body = absl::StrCat(request.method, " ", request.path, " q=", request.query,
                                       " body=", request.body);
          if (const std::string* h = request.Header("x-test")) response.body += " x=" + *h;
          return response;
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  std::atomic<int> requests_{0};
  std::unique_ptr<Server> server_;
  std::string address_;
};

TEST_F(HttpServerTest, AnswersAGet) {
  absl::StatusOr<testing::HttpResult> result = HttpGet(address_, "/metrics?x=1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->status, 200);
  EXPECT_THAT(result->headers, HasSubstr("Content-Type: text/plain; charset=utf-8"));
  EXPECT_THAT(result->headers, HasSubstr("Content-Length: 24"));
  EXPECT_THAT(result->headers, HasSubstr("Connection: close"));
  EXPECT_EQ(result->body, "GET /metrics q=x=1 body=");
}

TEST_F(HttpServerTest, KeepsConnectionsAliveAndAnswersPipelinedRequestsInOrder) {
  absl::StatusOr<std::string> raw =
      HttpExchange(address_,
                   "GET /a HTTP/1.1\r\nHost: x\r\nX-Test: one\r\n\r\n"
                   "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                   "HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(raw.ok());
  const size_t a = raw->find("GET /a q= body= x=one");
  const size_t b = raw->find("POST /b q= body=hello");
  const size_t d = raw->find("GET /d");
  EXPECT_NE(a, std::string::npos) << *raw;
  EXPECT_LT(a, b);
  EXPECT_LT(b, d);
  EXPECT_EQ(raw->find("HEAD /c"), std::string::npos);  // HEAD: headers only
  EXPECT_EQ(requests_.load(), 4);
}

TEST_F(HttpServerTest, BadRequestsGetTheRightStatusAndTheConnectionCloses) {
  auto status_of = [&](const std::string& request) {
    absl::StatusOr<std::string> raw = HttpExchange(address_, request);
    EXPECT_TRUE(raw.ok());
    absl::StatusOr<testing::HttpResult> result = testing::ParseHttpResponse(*raw);
    EXPECT_TRUE(result.ok()) << result.status();
    if (result.ok()) {
      EXPECT_THAT(result->headers, HasSubstr("Connection: close"));
    }
    return result.ok() ? result->status : 0;
  };
  EXPECT_EQ(status_of("NONSENSE\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET /x HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET /x HTTP/1.1\r\nbroken header\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST /x HTTP/1.1\r\nContent-Length: 65\r\n\r\n"), 413);
  EXPECT_EQ(status_of("POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n"), 400);
  EXPECT_EQ(
      status_of(absl::StrCat("GET /x HTTP/1.1\r\nX-Big: ", std::string(2000, 'a'), "\r\n\r\n")),
      431);
  EXPECT_EQ(requests_.load(), 0);  // none reached the handler
}

TEST_F(HttpServerTest, ReadsChunkedRequestBodies) {
  absl::StatusOr<std::string> raw = HttpExchange(
      address_,
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(raw.ok());
  absl::StatusOr<testing::HttpResult> result = testing::ParseHttpResponse(*raw);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->body, "POST /c q= body=abcde");
}

TEST_F(HttpServerTest, AnswersExpectContinueBeforeTheBodyIsSent) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
  ASSERT_TRUE(connection.ok());
  HttpConnection& client = **connection;
  ASSERT_TRUE(client.Send(
      "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  ASSERT_TRUE(client.ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "HTTP/1.1 100 Continue\r\n\r\n");
  }));
  ASSERT_TRUE(client.Send("body"));
  ASSERT_TRUE(client.ReadUntil(
      [](const std::string& got) { return absl::StrContains(got, "POST /e q= body=body"); }));
}

TEST_F(HttpServerTest, AFullServerShedsTheConnectionThatHasWaitedLongestForARequest) {
  ServerOptions options;
  options.max_connections = 2;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start("127.0.0.1:0", options, [](const Request&) { return Response(); });
  ASSERT_TRUE(server.ok());
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  auto answered = [](const std::string& got) { return absl::StrContains(got, "\r\n\r\n"); };
  // A: served once, then idle on its keep-alive connection.
  absl::StatusOr<std::unique_ptr<HttpConnection>> idle = HttpConnection::Open(address);
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE((*idle)->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE((*idle)->ReadUntil(answered));
  // B: a slow client, partway through its header.
  absl::StatusOr<std::unique_ptr<HttpConnection>> slow = HttpConnection::Open(address);
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE((*slow)->Send("GET / HTTP/1.1\r\nHo"));
  // The server is full; each newcomer is served, in the place of the
  // connection that has waited longest: A, then B.
  // (They stay open: the server stays full.)
  std::vector<std::unique_ptr<HttpConnection>> newcomers;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::unique_ptr<HttpConnection>> newcomer = HttpConnection::Open(address);
    ASSERT_TRUE(newcomer.ok());
    ASSERT_TRUE((*newcomer)->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE((*newcomer)->ReadUntil(answered)) << i;
    EXPECT_THAT((*newcomer)->received(), StartsWith("HTTP/1.1 200")) << i;
    newcomers.push_back(*std::move(newcomer));
  }
  EXPECT_FALSE((*idle)->ReadUntil([](const std::string&) { return false; }));
  EXPECT_TRUE((*idle)->closed());
  EXPECT_FALSE((*slow)->ReadUntil([](const std::string&) { return false; }));
  EXPECT_TRUE((*slow)->closed());
  EXPECT_EQ((*server)->shed_connections(), 2u);
}

TEST_F(HttpServerTest, RefusesConnectionsOverTheLimitWhenEveryOneIsBusy) {
  ServerOptions options;
  options.max_connections = 1;
  std::vector<std::shared_ptr<Exchange>> held;  // never answered: the connection stays busy
  absl::Mutex mu;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start("127.0.0.1:0", options, [&](std::shared_ptr<Exchange> exchange) {
        absl::MutexLock lock(&mu);
        held.push_back(std::move(exchange));
      });
  ASSERT_TRUE(server.ok());
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  absl::StatusOr<std::unique_ptr<HttpConnection>> busy = HttpConnection::Open(address);
  ASSERT_TRUE(busy.ok());
  ASSERT_TRUE((*busy)->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return !held.empty();
  }));
  absl::StatusOr<std::string> second = HttpExchange(address, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(second.ok());
  EXPECT_THAT(*second, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(*second, HasSubstr("too many connections"));
  EXPECT_EQ((*server)->shed_connections(), 0u);
  (*server)->Stop();
}

TEST_F(HttpServerTest, OneAddressAtItsCapShedsOnlyItsOwnConnectionsOrIsRefused) {
  ServerOptions options;
  options.max_connections_per_address = 2;
  std::vector<std::shared_ptr<Exchange>> held;  // /hold is never answered
  absl::Mutex mu;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start("127.0.0.1:0", options, [&](std::shared_ptr<Exchange> exchange) {
        if (exchange->request().path == "/hold") {
          absl::MutexLock lock(&mu);
          held.push_back(std::move(exchange));
          return;
        }
        exchange->Respond(Response());
      });
  ASSERT_TRUE(server.ok());
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  auto answered = [](const std::string& got) { return absl::StrContains(got, "\r\n\r\n"); };
  auto open = [&](const std::string& source) {
    absl::StatusOr<std::unique_ptr<HttpConnection>> c = HttpConnection::Open(address, source);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  };
  // Another client, 127.0.0.2, waits on an idle connection.
  std::unique_ptr<HttpConnection> other = open("127.0.0.2");
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(other->ReadUntil(answered));
  // 127.0.0.1 opens two idle connections, then a third: its own oldest goes,
  // not the other client's.
  std::unique_ptr<HttpConnection> first = open("127.0.0.1");
  std::unique_ptr<HttpConnection> second = open("127.0.0.1");
  ASSERT_TRUE(first != nullptr && second != nullptr);
  ASSERT_TRUE(first->Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));  // busy
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return held.size() == 1;
  }));
  std::unique_ptr<HttpConnection> third = open("127.0.0.1");
  ASSERT_NE(third, nullptr);
  ASSERT_TRUE(third->Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return held.size() == 2;
  }));
  EXPECT_FALSE(second->ReadUntil([](const std::string&) { return false; }));
  EXPECT_TRUE(second->closed());
  EXPECT_EQ((*server)->shed_connections(), 1u);
  // Both of 127.0.0.1's are busy now: a fourth is refused, naming the cap...
  absl::StatusOr<std::unique_ptr<HttpConnection>> fourth =
      HttpConnection::Open(address, "127.0.0.1");
  ASSERT_TRUE(fourth.ok());
  ASSERT_TRUE((*fourth)->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE((*fourth)->ReadUntil(answered));
  EXPECT_THAT((*fourth)->received(), StartsWith("HTTP/1.1 503"));
  EXPECT_THAT((*fourth)->received(), HasSubstr("too many connections from 127.0.0.1 (at most 2)"));
  // ...while the other client is still served, on its connection and a new one.
  ASSERT_TRUE(other->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(other->ReadUntil([](const std::string& got) {
    return got.find("HTTP/1.1 200", got.find("\r\n\r\n")) != std::string::npos;
  }));
  std::unique_ptr<HttpConnection> more = open("127.0.0.2");
  ASSERT_NE(more, nullptr);
  ASSERT_TRUE(more->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(more->ReadUntil(answered));
  EXPECT_THAT(more->received(), StartsWith("HTTP/1.1 200"));
  (*server)->Stop();
}

TEST_F(HttpServerTest, AHeaderSentAByteAtATimeIsCutOffWhileAnIdleClientMayWait) {
  ServerOptions options;
  options.header_timeout = absl::Milliseconds(300);
  options.idle_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start("127.0.0.1:0", options, [](const Request&) { return Response(); });
  ASSERT_TRUE(server.ok());
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  absl::StatusOr<std::unique_ptr<HttpConnection>> idle = HttpConnection::Open(address);
  ASSERT_TRUE(idle.ok());
  absl::StatusOr<std::unique_ptr<HttpConnection>> drip = HttpConnection::Open(address);
  ASSERT_TRUE(drip.ok());
  ASSERT_TRUE((*drip)->Send("GET / HTTP/1.1\r\nX-Slow: "));
  // One byte every 20 ms, never finishing: cut off at the header timeout.
  const absl::Time start = absl::Now();
  while (!(*drip)->closed() && absl::Now() - start < absl::Seconds(10)) {
    (*drip)->Send("a");
    (*drip)->ReadUntil([](const std::string&) { return false; }, absl::Milliseconds(20));
  }
  EXPECT_TRUE((*drip)->closed());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  // The idle connection, older than the header timeout, is still served.
  ASSERT_TRUE((*idle)->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE((*idle)->ReadUntil(
      [](const std::string& got) { return absl::StartsWith(got, "HTTP/1.1 200"); }));
}

// A handler that answers later, from another thread, with a streamed body.
class StreamingServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start("127.0.0.1:0", ServerOptions(), [this](std::shared_ptr<Exchange> exchange) {
          exchange->OnClientGone([this] { ++gone_; });
          absl::MutexLock lock(&mu_);
          exchanges_.push_back(std::move(exchange));
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  std::shared_ptr<Exchange> WaitForExchange(size_t index) {
    auto arrived = [&] {
      absl::MutexLock lock(&mu_);
      return exchanges_.size() > index;
    };
    if (!WaitFor(arrived)) return nullptr;
    absl::MutexLock lock(&mu_);
    return exchanges_[index];
  }

  absl::Mutex mu_;
  std::vector<std::shared_ptr<Exchange>> exchanges_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> gone_{0};
  std::unique_ptr<Server> server_;
  std::string address_;
};

TEST_F(StreamingServerTest, StreamsPiecesInOrderThenServesTheNextRequest) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
  ASSERT_TRUE(connection.ok());
  HttpConnection& client = **connection;
  ASSERT_TRUE(client.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::shared_ptr<Exchange> exchange = WaitForExchange(0);
  ASSERT_NE(exchange, nullptr);
  EXPECT_EQ(exchange->request().path, "/events");

  Response head;
  head.content_type = "text/event-stream";
  head.body = "data: 0\n\n";
  std::thread producer([&] {
    exchange->StartStream(head);
    for (int i = 1; i <= 3; ++i) {
      std::atomic<int> written{-1};
      exchange->Write(absl::StrCat("data: ", i, "\n\n"), [&](bool ok) { written = ok; });
      // Back-pressure: the next piece only once this one is on the socket.
      ASSERT_TRUE(WaitFor([&] { return written.load() != -1; }));
      EXPECT_EQ(written.load(), 1);
    }
    exchange->End();
  });
  producer.join();
  ASSERT_TRUE(
      client.ReadUntil([](const std::string& got) { return absl::StrContains(got, "0\r\n\r\n"); }));
  absl::StatusOr<testing::HttpResult> result = testing::ParseHttpResponse(client.received());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->headers, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(result->headers, HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_EQ(result->body, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n");

  // The connection stays open for the next request; writes after the end do nothing.
  bool late = true;
  exchange->Write("late", [&](bool ok) { late = ok; });
  ASSERT_TRUE(client.Send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::shared_ptr<Exchange> second = WaitForExchange(1);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->request().path, "/second");
  EXPECT_TRUE(WaitFor([&] { return !late; }));
  EXPECT_EQ(gone_.load(), 0);
}

TEST_F(StreamingServerTest, AClientThatHangsUpIsNoticedWhileItsRequestIsHandled) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
  ASSERT_TRUE(connection.ok());
  ASSERT_TRUE((*connection)->Send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"));
  std::shared_ptr<Exchange> exchange = WaitForExchange(0);
  ASSERT_NE(exchange, nullptr);
  EXPECT_EQ(exchange->request().body, "hi");
  (*connection)->Close();
  EXPECT_TRUE(WaitFor([&] { return gone_.load() == 1; }));
  // Answering a client that has gone is harmless; a callback added late runs at once.
  exchange->Respond(Response());
  bool late_gone = false;
  exchange->OnClientGone([&] { late_gone = true; });
  EXPECT_TRUE(late_gone);
}

TEST_F(StreamingServerTest, StopEndsOpenStreamsAndTheirExchangesSeeTheClientGone) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
  ASSERT_TRUE(connection.ok());
  ASSERT_TRUE((*connection)->Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::shared_ptr<Exchange> exchange = WaitForExchange(0);
  ASSERT_NE(exchange, nullptr);
  exchange->StartStream(Response());
  server_->Stop();
  EXPECT_EQ(gone_.load(), 1);
  bool written = true;
  exchange->Write("after stop", [&](bool ok) { written = ok; });
  EXPECT_FALSE(written);
  EXPECT_TRUE(
      (*connection)->ReadUntil([&](const std::string&) { return (*connection)->closed(); }));
}

TEST_F(StreamingServerTest, AQuietStreamSendsItsKeepAliveUntilItEnds) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
  ASSERT_TRUE(connection.ok());
  HttpConnection& client = **connection;
  ASSERT_TRUE(client.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::shared_ptr<Exchange> exchange = WaitForExchange(0);
  ASSERT_NE(exchange, nullptr);
  Response head;
  head.content_type = "text/event-stream";
  exchange->StartStream(head);
  exchange->KeepAlive(": ka\n\n", absl::Milliseconds(50));
  exchange->Write("data: 1\n\n", nullptr);
  // Quiet after the event: keep-alives follow it, each its own chunk.
  ASSERT_TRUE(client.ReadUntil([](const std::string& got) {
    const size_t event = got.find("data: 1");
    return event != std::string::npos && got.find(": ka", event) != std::string::npos &&
           got.find(": ka", got.find(": ka", event) + 1) != std::string::npos;
  })) << client.received();
  exchange->End();
  ASSERT_TRUE(
      client.ReadUntil([](const std::string& got) { return absl::StrContains(got, "0\r\n\r\n"); }));
  absl::StatusOr<testing::HttpResult> result = testing::ParseHttpResponse(client.received());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(absl::StartsWith(result->body, "data: 1\n\n: ka\n\n: ka\n\n")) << result->body;
  // Nothing after the end: the next request on the connection is answered
  // cleanly, with no stray keep-alive in front of it.
  ASSERT_TRUE(client.Send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::shared_ptr<Exchange> second = WaitForExchange(1);
  ASSERT_NE(second, nullptr);
  Response answer;
  answer.body = "second";
  second->Respond(answer);
  const size_t ended = client.received().size();
  ASSERT_TRUE(client.ReadUntil([](const std::string& got) {
    return absl::EndsWith(got, "second");
  })) << client.received();
  EXPECT_TRUE(absl::StartsWith(client.received().substr(ended), "HTTP/1.1 200"))
      << client.received().substr(ended);
}

TEST_F(HttpServerTest, ServesManyClientsAtOnce) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&, i] {
      absl::StatusOr<testing::HttpResult> result = HttpGet(address_, absl::StrCat("/", i));
      if (result.ok() && result->body == absl::StrCat("GET /", i, " q= body=")) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 16);
}

TEST_F(HttpServerTest, StopClosesConnectionsAndTheBusyPortIsNamed) {
  absl::StatusOr<std::unique_ptr<Server>> second =
      Server::Start(address_, ServerOptions(), [](const Request&) { return Response(); });
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr(absl::StrCat("cannot listen on ", address_)));
  server_->Stop();
  EXPECT_FALSE(HttpGet(address_, "/").ok());
  server_->Stop();  // idempotent
}

TEST(HttpServerAddressTest, BadAddressesAreNamed) {
  auto handler = [](const Request&) { return Response(); };
  EXPECT_THAT(std::string(Server::Start("nocolon", {}, handler).status().message()),
              HasSubstr("'nocolon' is not host:port"));
  EXPECT_FALSE(Server::Start("256.1.1.1:80", {}, handler).ok());
}

}  // namespace
}  // namespace a2amesh::http
