// A2A over HTTP end to end, in one process: a real node with its HTTP server on
// 127.0.0.1:0, SDK agents over real AgentHost streams, and raw HTTP/1.1
// clients, so that every byte of the error shapes is checked. (The official
// JS SDK's clients run against meshd in tests/e2e/js_sdk_test.cc.)

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "testing/cards.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::Card;
using ::a2amesh::testing::HttpConnection;
using ::a2amesh::testing::HttpResult;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::WaitFor;
using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;

NodeOptions Options() {
  NodeOptions options = NodeHarness::TestOptions();
  // HTTP bodies may be 2 × this + 1 MiB: small, so an oversized body is cheap.
  options.max_message_bytes = 64 * 1024;
  return options;
}

class HttpBindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = harness_.StartAgent({
        {"echo", Card("echo", {"echo"}), 8,
         [](sdk::TaskContext& task) {
           task.SetWorking();
           task.SendArtifact(sdk::TextArtifact("echo", "echo", task.text()));
           task.Complete("echo: " + task.text());
         }},
        {"slow", Card("slow", {"slow"}), 4,
         [this](sdk::TaskContext& task) {
           task.SetWorking();
           if (task.WaitForCancel(absl::Seconds(20))) {
             cancels_.fetch_add(1);
             return;
           }
           task.Complete("slow done");
         }},
    });
    ASSERT_NE(agent_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", harness_.node().http_port());
  }

  // One request on its own connection; the parsed response.
  HttpResult Call(
      const std::string& method, const std::string& path, const std::string& body,
      const std::string& headers = "A2A-Version: 1.0\r\nContent-Type: application/json\r\n") {
    absl::StatusOr<std::string> raw = testing::HttpExchange(
        address_,
        absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", address_, "\r\n", headers,
                     "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body));
    EXPECT_TRUE(raw.ok()) << raw.status();
    absl::StatusOr<HttpResult> result = testing::ParseHttpResponse(raw.value_or(""));
    EXPECT_TRUE(result.ok()) << result.status() << " in " << raw.value_or("");
    return result.value_or(HttpResult());
  }

  HttpResult JsonRpc(
      const std::string& body,
      const std::string& headers = "A2A-Version: 1.0\r\nContent-Type: application/json\r\n") {
    return Call("POST", "/a2a/jsonrpc", body, headers);
  }

  static Struct Json(const std::string& text) {
    Struct parsed;
    auto status = google::protobuf::util::JsonStringToMessage(text, &parsed);
    EXPECT_TRUE(status.ok()) << status.ToString() << " in " << text;
    return parsed;
  }

  // The JSON-RPC error code in `result` (0 if it has none).
  static int RpcCode(const HttpResult& result) {
    Struct body = Json(result.body);
    auto error = body.fields().find("error");
    if (error == body.fields().end()) return 0;
    return static_cast<int>(error->second.struct_value().fields().at("code").number_value());
  }
  static std::string RpcMessage(const HttpResult& result) {
    return Json(result.body)
        .fields()
        .at("error")
        .struct_value()
        .fields()
        .at("message")
        .string_value();
  }
  // The first ErrorInfo reason of a JSON-RPC ("data") or REST ("details") error.
  static std::string Reason(const HttpResult& result) {
    Struct body = Json(result.body);
    const auto& error = body.fields().at("error").struct_value().fields();
    auto details = error.find("data");
    if (details == error.end()) details = error.find("details");
    if (details == error.end()) return "";
    for (const Value& detail : details->second.list_value().values()) {
      auto reason = detail.struct_value().fields().find("reason");
      if (reason != detail.struct_value().fields().end()) return reason->second.string_value();
    }
    return "";
  }

  static std::string SendEcho(const std::string& text) {
    return absl::StrCat(
        R"({"jsonrpc":"2.0","id":7,"method":"SendMessage","params":{"message":{"messageId":"m-)",
        text, R"(","role":"ROLE_USER","parts":[{"text":")", text,
        R"("}]},"metadata":{"a2amesh/skill":"echo"}}})");
  }

  NodeHarness harness_{Options()};
  std::unique_ptr<sdk::Agent> agent_;
  std::string address_;
  std::atomic<int> cancels_{0};
};

TEST_F(HttpBindingTest, JsonRpcSendsAndAnswersWithTheTask) {
  HttpResult result = JsonRpc(SendEcho("hello"));
  ASSERT_EQ(result.status, 200) << result.body;
  EXPECT_THAT(result.headers, HasSubstr("Content-Type: application/json"));
  Struct body = Json(result.body);
  EXPECT_EQ(body.fields().at("jsonrpc").string_value(), "2.0");
  EXPECT_EQ(body.fields().at("id").number_value(), 7);
  const auto& task = body.fields().at("result").struct_value().fields().at("task").struct_value();
  EXPECT_EQ(task.fields().at("status").struct_value().fields().at("state").string_value(),
            "TASK_STATE_COMPLETED");
  EXPECT_THAT(result.body, HasSubstr(R"("artifacts":[{"artifactId":"echo")"));
}

// The id of every kind of JSON-RPC answer comes back exactly as sent: a
// number past 2^53 keeps every digit, a string stays a string, null stays null.
TEST_F(HttpBindingTest, JsonRpcIdsComeBackExactlyInEveryKindOfAnswer) {
  const std::string send_params =
      R"({"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hi"}]},
          "metadata":{"a2amesh/skill":"echo"}})";
  for (const std::string id : {"9007199254740993", "\"req-\\\"7\\\"\"", "null"}) {
    SCOPED_TRACE(id);
    const std::string echoed = absl::StrCat(R"({"jsonrpc":"2.0","id":)", id, ",");
    // A result.
    HttpResult sent = JsonRpc(absl::StrCat(
        R"({"jsonrpc":"2.0","id":)", id, R"(,"method":"SendMessage","params":)", send_params, "}"));
    EXPECT_EQ(sent.status, 200);
    EXPECT_TRUE(absl::StartsWith(sent.body, absl::StrCat(echoed, R"("result":)"))) << sent.body;
    // An error from the node (the task does not exist).
    HttpResult missing = JsonRpc(absl::StrCat(R"({"jsonrpc":"2.0","id":)", id,
                                              R"(,"method":"GetTask","params":{"id":"n1~none"}})"));
    EXPECT_TRUE(absl::StartsWith(missing.body, absl::StrCat(echoed, R"("error":)")))
        << missing.body;
    EXPECT_EQ(RpcCode(missing), -32001);
    // An error of the envelope (no such method).
    HttpResult unknown =
        JsonRpc(absl::StrCat(R"({"jsonrpc":"2.0","id":)", id, R"(,"method":"Nope"})"));
    EXPECT_TRUE(absl::StartsWith(unknown.body, echoed)) << unknown.body;
    EXPECT_EQ(RpcCode(unknown), -32601);
    // Every event of a stream.
    HttpResult stream =
        JsonRpc(absl::StrCat(R"({"jsonrpc":"2.0","id":)", id,
                             R"(,"method":"SendStreamingMessage","params":)", send_params, "}"));
    EXPECT_THAT(stream.headers, HasSubstr("text/event-stream"));
    int events = 0;
    for (absl::string_view line : absl::StrSplit(stream.body, '\n')) {
      if (absl::StartsWith(line, "data: ")) {
        ++events;
        EXPECT_TRUE(absl::StartsWith(line.substr(6), echoed)) << line;
      }
    }
    EXPECT_GE(events, 3);  // the task, working, the artifact, completed
    // An error before the stream starts (no agent offers the skill).
    HttpResult refused = JsonRpc(absl::StrCat(
        R"({"jsonrpc":"2.0","id":)", id,
        R"(,"method":"SendStreamingMessage","params":{"message":{"messageId":"m2","role":"ROLE_USER","parts":[{"text":"x"}]},"metadata":{"a2amesh/skill":"nobody"}}})"));
    EXPECT_TRUE(absl::StartsWith(refused.body, absl::StrCat(echoed, R"("error":)")))
        << refused.body;
  }
  // Not JSON at all: the id cannot be known, so it is null.
  HttpResult garbage = JsonRpc(R"({"jsonrpc":"2.0","id":9007199254740993,"method":)");
  EXPECT_TRUE(absl::StartsWith(garbage.body, R"({"jsonrpc":"2.0","id":null,"error":)"))
      << garbage.body;
  EXPECT_EQ(RpcCode(garbage), -32700);
}

TEST_F(HttpBindingTest, BadRequestsGetTheSpecsErrorsAndTheNodeKeepsServing) {
  struct Case {
    std::string body;
    int code;
    std::string message;
  };
  const Case cases[] = {
      {R"({"jsonrpc":"2.0","id":1,"method":)", -32700, "Parse error"},
      {"not json at all", -32700, "Parse error"},
      {R"([{"jsonrpc":"2.0","id":1,"method":"GetTask"}])", -32600, "batch requests"},
      {R"("just a string")", -32600, "JSON-RPC 2.0 request object"},
      {R"({"id":1,"method":"GetTask","params":{"id":"x"}})", -32600, R"("jsonrpc" must be "2.0")"},
      {R"({"jsonrpc":"1.0","id":1,"method":"GetTask"})", -32600, R"("jsonrpc" must be "2.0")"},
      {R"({"jsonrpc":"2.0","id":1,"method":5})", -32600, R"("method" must be a non-empty string)"},
      {R"({"jsonrpc":"2.0","id":{"a":1},"method":"GetTask"})", -32600, "id must be"},
      {R"({"jsonrpc":"2.0","id":1,"method":"message/send","params":{}})", -32601,
       "Method not found: 'message/send'"},
      {R"({"jsonrpc":"2.0","id":1,"method":"GetTask","params":[1]})", -32602,
       R"("params" must be an object)"},
      {R"({"jsonrpc":"2.0","id":1,"method":"ListTasks","params":{"pageSize":"lots"}})", -32602,
       "Invalid params for ListTasks"},
      {R"({"jsonrpc":"2.0","id":1,"method":"GetTask","params":{}})", -32602, "id"},
      {R"({"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"n1~missing"}})", -32001,
       "not found"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    HttpResult result = JsonRpc(c.body);
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(RpcCode(result), c.code) << result.body;
    EXPECT_THAT(RpcMessage(result), HasSubstr(c.message));
  }
  // The A2A error carries its ErrorInfo.
  EXPECT_EQ(
      Reason(JsonRpc(R"({"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"n1~x"}})")),
      "TASK_NOT_FOUND");

  // No version header: VersionNotSupportedError (-32009), whatever the method.
  HttpResult unversioned = JsonRpc(SendEcho("v"), "Content-Type: application/json\r\n");
  EXPECT_EQ(RpcCode(unversioned), -32009) << unversioned.body;
  EXPECT_EQ(Reason(unversioned), "VERSION_NOT_SUPPORTED");
  // ...unless it comes as the query parameter the spec allows.
  HttpResult query_version = Call("POST", "/a2a/jsonrpc?A2A-Version=1.0", SendEcho("q"),
                                  "Content-Type: application/json\r\n");
  EXPECT_EQ(RpcCode(query_version), 0) << query_version.body;

  // Not JSON by its type, not POST.
  HttpResult form = JsonRpc(SendEcho("f"), "A2A-Version: 1.0\r\nContent-Type: text/plain\r\n");
  EXPECT_EQ(form.status, 415);
  EXPECT_EQ(RpcCode(form), -32600);
  HttpResult get = Call("GET", "/a2a/jsonrpc", "");
  EXPECT_EQ(get.status, 405);
  EXPECT_THAT(get.headers, HasSubstr("Allow: POST"));

  // Oversized: refused before it is read, in the binding's shape.
  HttpResult big = JsonRpc(std::string(2 * 1024 * 1024, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(RpcCode(big), -32600);
  EXPECT_THAT(RpcMessage(big), HasSubstr("larger than the server accepts"));
  HttpResult big_rest = Call("POST", "/a2a/rest/message:send", std::string(2 * 1024 * 1024, ' '));
  EXPECT_EQ(big_rest.status, 413);
  EXPECT_EQ(
      Json(big_rest.body).fields().at("error").struct_value().fields().at("code").number_value(),
      413);

  // Through all of it the node kept serving.
  HttpResult after = JsonRpc(SendEcho("still-here"));
  EXPECT_EQ(RpcCode(after), 0) << after.body;
  EXPECT_THAT(after.body, HasSubstr("TASK_STATE_COMPLETED"));
}

TEST_F(HttpBindingTest, DeeplyNestedBodiesAreRefusedBeforeParsingOnEveryRoute) {
  // Protobuf's JSON parser takes minutes over 100,000 nested arrays; the
  // depth check refuses them in one linear pass, so the event loop stays free.
  const std::string arrays = std::string(100000, '[') + std::string(100000, ']');
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');
  std::atomic<bool> done{false};
  std::atomic<int> refused{0};
  std::thread attacker([&] {
    while (!done.load()) {
      for (const std::string* deep : std::vector<const std::string*>{&arrays, &objects}) {
        absl::Time start = absl::Now();
        HttpResult rpc = JsonRpc(absl::StrCat(
            R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":)", *deep, "}}"));
        EXPECT_EQ(RpcCode(rpc), -32600) << rpc.body.substr(0, 200);
        EXPECT_THAT(RpcMessage(rpc), HasSubstr("deeper than 64 levels (--max-json-depth)"));
        HttpResult rest =
            Call("POST", "/a2a/rest/message:send", absl::StrCat(R"({"message":)", *deep, "}"));
        EXPECT_EQ(rest.status, 400);
        EXPECT_THAT(rest.body, HasSubstr("deeper than 64 levels"));
        HttpResult config = Call("POST", "/a2a/rest/tasks/n1~x/pushNotificationConfigs",
                                 absl::StrCat(R"({"url":"https://x.test","token":)", *deep, "}"));
        EXPECT_EQ(config.status, 400);
        // A bound a thousand times above what the check takes, and below
        // what parsing took (minutes): the check ran, not the parser.
        EXPECT_LT(absl::Now() - start, absl::Seconds(3));
        refused.fetch_add(3);
      }
    }
  });
  // Meanwhile another client is served.
  for (int i = 0; i < 20; ++i) {
    HttpResult echo = JsonRpc(SendEcho(absl::StrCat("served-", i)));
    EXPECT_EQ(RpcCode(echo), 0) << echo.body;
  }
  EXPECT_TRUE(WaitFor([&] { return refused.load() >= 6; }));
  done = true;
  attacker.join();
}

// Load balancers that speak HTTP but not gRPC health probe the A2A port; a
// draining node says so there, and every refusal to come back later (429,
// 503) says when.
TEST_F(HttpBindingTest, ProbesOnTheA2aPortAndRetryAfterOnEveryRefusal) {
  for (const char* path : {"/healthz", "/readyz"}) {
    absl::StatusOr<HttpResult> probe = testing::HttpGet(address_, path);
    ASSERT_TRUE(probe.ok()) << probe.status();
    EXPECT_EQ(probe->status, 200) << path;
    EXPECT_EQ(probe->body, "ok\n") << path;
  }
  harness_.node().StartDraining();
  absl::StatusOr<HttpResult> ready = testing::HttpGet(address_, "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->headers, HasSubstr("Retry-After: 1\r\n"));
  absl::StatusOr<HttpResult> alive = testing::HttpGet(address_, "/healthz");
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ(alive->status, 200);  // draining is not dead
  absl::StatusOr<HttpResult> refused =
      testing::A2aHttp(address_, "POST", "/a2a/rest/message:send",
                       R"({"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"x"}]},)"
                       R"("metadata":{"a2amesh/skill":"echo"}})");
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_THAT(refused->headers, HasSubstr("Retry-After: 1\r\n"));
  ASSERT_TRUE(harness_.node().StopDraining().ok());
  ready = testing::HttpGet(address_, "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);
}

TEST_F(HttpBindingTest, RestRoutesTenantsAndErrors) {
  const std::string send =
      R"({"message":{"messageId":"r1","role":"ROLE_USER","parts":[{"text":"to echo"}]}})";
  // The tenant is the agent: no skill needed.
  HttpResult sent = Call("POST", "/a2a/rest/echo/message:send", send,
                         "A2A-Version: 1.0\r\nContent-Type: application/a2a+json\r\n");
  ASSERT_EQ(sent.status, 200) << sent.body;
  EXPECT_THAT(sent.headers, HasSubstr("Content-Type: application/a2a+json"));
  Struct task = Json(sent.body).fields().at("task").struct_value();
  const std::string id = task.fields().at("id").string_value();
  EXPECT_EQ(task.fields().at("status").struct_value().fields().at("state").string_value(),
            "TASK_STATE_COMPLETED");

  HttpResult got = Call("GET", absl::StrCat("/a2a/rest/tasks/", id, "?historyLength=0"), "");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Json(got.body).fields().count("history"), 0u);

  HttpResult listed = Call("GET", "/a2a/rest/echo/tasks?pageSize=5&includeArtifacts=false", "");
  ASSERT_EQ(listed.status, 200) << listed.body;
  Struct list = Json(listed.body);
  EXPECT_EQ(list.fields().at("tasks").list_value().values_size(), 1);
  EXPECT_EQ(list.fields().at("nextPageToken").string_value(), "");  // present though empty
  EXPECT_EQ(
      list.fields().at("tasks").list_value().values(0).struct_value().fields().count("artifacts"),
      0u);

  // Errors: google.rpc.Status with the HTTP code, the gRPC status name and details.
  HttpResult missing = Call("GET", "/a2a/rest/tasks/n1~nope", "");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Reason(missing), "TASK_NOT_FOUND");
  EXPECT_THAT(missing.body, HasSubstr(R"("code":404,"status":"NOT_FOUND")"));
  HttpResult not_cancelable = Call("POST", absl::StrCat("/a2a/rest/tasks/", id, ":cancel"), "");
  EXPECT_EQ(not_cancelable.status, 400);
  EXPECT_EQ(Reason(not_cancelable), "TASK_NOT_CANCELABLE");
  HttpResult unversioned = Call("GET", "/a2a/rest/tasks", "", "");
  EXPECT_EQ(unversioned.status, 400);
  EXPECT_EQ(Reason(unversioned), "VERSION_NOT_SUPPORTED");
  HttpResult bad_bool = Call("GET", "/a2a/rest/tasks?includeArtifacts=maybe", "");
  EXPECT_EQ(bad_bool.status, 400);
  EXPECT_THAT(bad_bool.body, HasSubstr("includeArtifacts: must be true or false"));
  EXPECT_THAT(bad_bool.body, HasSubstr("google.rpc.BadRequest"));
  HttpResult bad_body = Call("POST", "/a2a/rest/message:send", "{oops");
  EXPECT_EQ(bad_body.status, 400);
  EXPECT_THAT(bad_body.body, HasSubstr("not a valid SendMessageRequest"));
  HttpResult wrong_verb = Call("DELETE", "/a2a/rest/tasks", "");
  EXPECT_EQ(wrong_verb.status, 405);
  EXPECT_THAT(wrong_verb.headers, HasSubstr("Allow: GET"));
  EXPECT_THAT(wrong_verb.body, HasSubstr(R"("status":"UNIMPLEMENTED")"));
  HttpResult nowhere = Call("GET", "/a2a/rest/no/such/route/here", "");
  EXPECT_EQ(nowhere.status, 404);
  EXPECT_THAT(nowhere.body, HasSubstr("no A2A route"));
  // A tenant that is not UTF-8 once decoded is named, not a 501 with no message.
  HttpResult not_utf8 = Call("GET", "/a2a/rest/%ff%fe/tasks", "");
  EXPECT_EQ(not_utf8.status, 400);
  EXPECT_THAT(not_utf8.body, HasSubstr("path segment '%ff%fe' is not percent-encoded UTF-8"));
  // A 10,000-character agent is refused by name, in a message of bounded size.
  const std::string huge(10000, 'a');
  HttpResult long_tenant = Call("POST", absl::StrCat("/a2a/rest/", huge, "/message:send"), send);
  EXPECT_EQ(long_tenant.status, 400);
  EXPECT_THAT(long_tenant.body, HasSubstr("(10000 characters) is longer than 64 characters"));
  EXPECT_LT(long_tenant.body.size(), 1000u);
}

TEST_F(HttpBindingTest, LimitsAreTheSameErrorOnEveryBinding) {
  // --max-parts: RESOURCE_EXHAUSTED, 429 over REST, -32029 over JSON-RPC (not
  // "Internal error").
  std::string parts;
  for (int i = 0; i <= Options().max_parts; ++i) {
    absl::StrAppend(&parts, i > 0 ? "," : "", R"({"text":"p"})");
  }
  const std::string message =
      absl::StrCat(R"({"messageId":"many","role":"ROLE_USER","parts":[)", parts, "]}");
  HttpResult rpc =
      JsonRpc(absl::StrCat(R"({"jsonrpc":"2.0","id":3,"method":"SendMessage","params":{"message":)",
                           message, R"(,"metadata":{"a2amesh/skill":"echo"}}})"));
  EXPECT_EQ(RpcCode(rpc), -32029) << rpc.body;
  EXPECT_THAT(RpcMessage(rpc), HasSubstr("--max-parts"));
  HttpResult rest =
      Call("POST", "/a2a/rest/echo/message:send", absl::StrCat(R"({"message":)", message, "}"));
  EXPECT_EQ(rest.status, 429) << rest.body;
  EXPECT_THAT(rest.body, HasSubstr(R"("status":"RESOURCE_EXHAUSTED")"));
  lf::a2a::v1::SendMessageRequest request;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  absl::StrCat(R"({"tenant":"echo","message":)", message, "}"), &request)
                  .ok());
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status grpc_status =
      harness_.NewA2aStub()->SendMessage(testing::A2aContext().get(), request, &response);
  EXPECT_EQ(grpc_status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // The JSON-RPC endpoint with the slash some clients append.
  HttpResult slash = Call("POST", "/a2a/jsonrpc/", SendEcho("slash"));
  EXPECT_EQ(RpcCode(slash), 0) << slash.body;
  EXPECT_THAT(slash.body, HasSubstr("TASK_STATE_COMPLETED"));
}

TEST_F(HttpBindingTest, SubscribeByGetOrPostStreamsServerSentEvents) {
  HttpResult started =
      Call("POST", "/a2a/rest/message:send",
           R"({"message":{"messageId":"s1","role":"ROLE_USER","parts":[{"text":"x"}]},
                                "metadata":{"a2amesh/skill":"slow"},
                                "configuration":{"returnImmediately":true}})");
  ASSERT_EQ(started.status, 200) << started.body;
  const std::string id =
      Json(started.body).fields().at("task").struct_value().fields().at("id").string_value();

  for (const char* verb : {"GET", "POST"}) {
    SCOPED_TRACE(verb);
    absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
    ASSERT_TRUE(connection.ok());
    ASSERT_TRUE((*connection)
                    ->Send(absl::StrCat(verb, " /a2a/rest/tasks/", id,
                                        ":subscribe HTTP/1.1\r\nHost: x\r\nA2A-Version: "
                                        "1.0\r\nContent-Length: 0\r\n\r\n")));
    // The current Task comes first.
    ASSERT_TRUE((*connection)->ReadUntil([](const std::string& got) {
      return absl::StrContains(got, "data: {\"task\":");
    })) << (*connection)->received();
    EXPECT_THAT((*connection)->received(), HasSubstr("Content-Type: text/event-stream"));
  }

  // JSON-RPC: the stream's events are JSON-RPC responses with the request's id.
  absl::StatusOr<std::unique_ptr<HttpConnection>> rpc = HttpConnection::Open(address_);
  ASSERT_TRUE(rpc.ok());
  const std::string body = absl::StrCat(
      R"({"jsonrpc":"2.0","id":"sub-1","method":"SubscribeToTask","params":{"id":")", id, R"("}})");
  ASSERT_TRUE((*rpc)->Send(
      absl::StrCat("POST /a2a/jsonrpc HTTP/1.1\r\nHost: x\r\nA2A-Version: 1.0\r\nContent-Type: "
                   "application/json\r\nContent-Length: ",
                   body.size(), "\r\n\r\n", body)));
  ASSERT_TRUE((*rpc)->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, R"(data: {"jsonrpc":"2.0","id":"sub-1","result":{"task":)");
  })) << (*rpc)->received();

  // Cancelling ends every subscription with the final event.
  HttpResult canceled = Call("POST", absl::StrCat("/a2a/rest/tasks/", id, ":cancel"), "");
  EXPECT_EQ(canceled.status, 200) << canceled.body;
  EXPECT_TRUE((*rpc)->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "TASK_STATE_CANCELED") && absl::StrContains(got, "0\r\n\r\n");
  })) << (*rpc)->received();
  EXPECT_TRUE(WaitFor([&] { return cancels_.load() == 1; }));
}

TEST_F(HttpBindingTest, AClientThatHangsUpEndsItsStream) {
  auto open_streams = [&]() -> std::string {
    absl::StatusOr<HttpResult> metrics =
        testing::HttpGet(absl::StrCat("127.0.0.1:", harness_.node().metrics_port()), "/metrics");
    if (!metrics.ok()) return "";
    size_t at = metrics->body.find("a2amesh_open_streams{kind=\"a2a\"} ");
    return at == std::string::npos ? "" : metrics->body.substr(at + 33, 1);
  };
  ASSERT_EQ(open_streams(), "0");
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address_);
  ASSERT_TRUE(connection.ok());
  const std::string body =
      R"({"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{"message":{"messageId":"h1","role":"ROLE_USER","parts":[{"text":"x"}]},"metadata":{"a2amesh/skill":"slow"}}})";
  ASSERT_TRUE((*connection)
                  ->Send(absl::StrCat(
                      "POST /a2a/jsonrpc HTTP/1.1\r\nHost: x\r\nA2A-Version: 1.0\r\nContent-Type: "
                      "application/json\r\nContent-Length: ",
                      body.size(), "\r\n\r\n", body)));
  ASSERT_TRUE((*connection)->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "TASK_STATE_WORKING");
  }));
  EXPECT_EQ(open_streams(), "1");
  (*connection)->Close();
  EXPECT_TRUE(WaitFor([&] { return open_streams() == "0"; }));
}

TEST_F(HttpBindingTest, AgentCardsWithETagsAndPerAgentInterfaces) {
  HttpResult card = Call("GET", "/.well-known/agent-card.json", "", "");
  ASSERT_EQ(card.status, 200) << card.body;
  Struct mesh = Json(card.body);
  std::vector<std::string> skills;
  for (const Value& skill : mesh.fields().at("skills").list_value().values()) {
    skills.push_back(skill.struct_value().fields().at("id").string_value());
  }
  EXPECT_THAT(skills, ::testing::UnorderedElementsAre("echo", "slow"));
  const auto& interfaces = mesh.fields().at("supportedInterfaces").list_value();
  ASSERT_EQ(interfaces.values_size(), 3);
  auto field = [](const Value& v, const char* name) {
    return v.struct_value().fields().at(name).string_value();
  };
  EXPECT_EQ(field(interfaces.values(0), "protocolBinding"), "JSONRPC");
  EXPECT_EQ(field(interfaces.values(0), "url"), absl::StrCat("http://", address_, "/a2a/jsonrpc"));
  EXPECT_EQ(field(interfaces.values(1), "protocolBinding"), "HTTP+JSON");
  EXPECT_EQ(field(interfaces.values(1), "url"), absl::StrCat("http://", address_, "/a2a/rest"));
  EXPECT_EQ(field(interfaces.values(2), "protocolBinding"), "GRPC");
  EXPECT_EQ(field(interfaces.values(2), "url"), harness_.address());
  EXPECT_EQ(field(interfaces.values(2), "protocolVersion"), "1.0");
  EXPECT_TRUE(
      mesh.fields().at("capabilities").struct_value().fields().at("streaming").bool_value());

  // Caching: ETag and max-age; the same ETag gets a 304 with no body.
  const size_t at = card.headers.find("ETag: ");
  ASSERT_NE(at, std::string::npos) << card.headers;
  const std::string etag = card.headers.substr(at + 6, card.headers.find("\r\n", at) - at - 6);
  EXPECT_THAT(card.headers, HasSubstr("Cache-Control: public, max-age=300"));
  HttpResult cached = Call("GET", "/.well-known/agent-card.json", "",
                           absl::StrCat("If-None-Match: ", etag, "\r\n"));
  EXPECT_EQ(cached.status, 304);
  EXPECT_EQ(cached.body, "");
  HttpResult stale =
      Call("GET", "/.well-known/agent-card.json", "", "If-None-Match: W/\"0000000000000000\"\r\n");
  EXPECT_EQ(stale.status, 200);
  // Last-Modified, an HTTP-date; If-Modified-Since (without If-None-Match)
  // at or after it is a 304, before it or unreadable a 200.
  const size_t lm = card.headers.find("Last-Modified: ");
  ASSERT_NE(lm, std::string::npos) << card.headers;
  const std::string modified =
      card.headers.substr(lm + 15, card.headers.find("\r\n", lm) - lm - 15);
  EXPECT_THAT(modified, ::testing::MatchesRegex("[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} "
                                                "[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"));
  EXPECT_EQ(Call("GET", "/.well-known/agent-card.json", "",
                 absl::StrCat("If-Modified-Since: ", modified, "\r\n"))
                .status,
            304);
  EXPECT_EQ(Call("GET", "/.well-known/agent-card.json", "",
                 "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n")
                .status,
            200);
  EXPECT_EQ(
      Call("GET", "/.well-known/agent-card.json", "", "If-Modified-Since: yesterday\r\n").status,
      200);

  // Each agent: its own card, reachable as its tenant on every interface.
  HttpResult echo = Call("GET", "/agents/echo/.well-known/agent-card.json", "", "");
  ASSERT_EQ(echo.status, 200) << echo.body;
  Struct echo_card = Json(echo.body);
  EXPECT_EQ(echo_card.fields().at("name").string_value(), "echo");
  for (const Value& interface :
       echo_card.fields().at("supportedInterfaces").list_value().values()) {
    EXPECT_EQ(field(interface, "tenant"), "echo");
  }
  HttpResult nobody = Call("GET", "/agents/nobody/.well-known/agent-card.json", "", "");
  EXPECT_EQ(nobody.status, 404);
  EXPECT_THAT(nobody.body, HasSubstr("no agent 'nobody'"));
  HttpResult post = Call("POST", "/.well-known/agent-card.json", "", "");
  EXPECT_EQ(post.status, 405);
}

TEST(HttpBindingPublicUrlTest, CardsGiveTheConfiguredPublicUrls) {
  NodeOptions options = NodeHarness::TestOptions();
  options.public_http_url = "https://mesh.example.com/";
  options.public_grpc_url = "grpc.mesh.example.com:443";
  NodeHarness harness(options);
  absl::StatusOr<HttpResult> card = testing::HttpGet(
      absl::StrCat("127.0.0.1:", harness.node().http_port()), "/.well-known/agent-card.json");
  ASSERT_TRUE(card.ok()) << card.status();
  EXPECT_THAT(card->body, HasSubstr(R"("url":"https://mesh.example.com/a2a/jsonrpc")"));
  EXPECT_THAT(card->body, HasSubstr(R"("url":"https://mesh.example.com/a2a/rest")"));
  EXPECT_THAT(card->body, HasSubstr(R"("url":"grpc.mesh.example.com:443")"));
}

// Lets an agent take its steps one at a time, when the test says.
class Steps {
 public:
  void Allow(int step) {
    absl::MutexLock lock(&mu_);
    allowed_ = step;
  }
  // Waits until step `step` is allowed; false after 20 s.
  bool Await(int step) {
    absl::MutexLock lock(&mu_);
    auto allowed = [this, step]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return allowed_ >= step; };
    return mu_.AwaitWithTimeout(absl::Condition(&allowed), absl::Seconds(20));
  }

 private:
  absl::Mutex mu_;
  int allowed_ ABSL_GUARDED_BY(mu_) = 0;
};

// Streams survive proxies: a quiet stream sends keep-alive comments, every
// event has an id, and a client that comes back with Last-Event-ID misses
// nothing and gets nothing twice.
TEST(HttpSseTest, EventsHaveIdsQuietStreamsKeepAliveAndLastEventIdResumes) {
  NodeOptions options = Options();
  options.sse_keep_alive = absl::Milliseconds(200);
  NodeHarness harness(options);
  Steps steps;
  std::unique_ptr<sdk::Agent> agent = harness.StartAgent({
      {"steps", Card("steps", {"steps"}), 2,
       [&](sdk::TaskContext& task) {
         task.SetWorking();
         for (int step = 1; step <= 3; ++step) {
           if (!steps.Await(step)) {
             task.Fail(absl::StrCat("the test never allowed step ", step));
             return;
           }
           const std::string name = absl::StrCat("a", step);
           task.SendArtifact(sdk::TextArtifact(name, name, name));
         }
         if (steps.Await(4)) task.Complete("all steps done");
       }},
  });
  ASSERT_NE(agent, nullptr);
  const std::string address = absl::StrCat("127.0.0.1:", harness.node().http_port());
  absl::StatusOr<HttpResult> started =
      testing::A2aHttp(address, "POST", "/a2a/rest/message:send",
                       R"({"message":{"messageId":"st1","role":"ROLE_USER","parts":[{"text":"go"}]},
          "metadata":{"a2amesh/skill":"steps"},"configuration":{"returnImmediately":true}})");
  ASSERT_TRUE(started.ok());
  ASSERT_EQ(started->status, 200) << started->body;
  Struct task;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(started->body, &task).ok());
  const std::string id = task.fields().at("task").struct_value().fields().at("id").string_value();
  auto subscribe = [&](const std::string& last_event_id) {
    absl::StatusOr<std::unique_ptr<HttpConnection>> connection =
        testing::SubscribeOverRest(address, id, last_event_id);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return *std::move(connection);
  };
  auto events_of = [](const HttpConnection& c) { return testing::SseEvents(c.received()); };

  // First subscription: the Task, with an id; then (after the agent's WORKING,
  // if it comes after the Task) step 1's artifact, each with a higher id.
  std::unique_ptr<HttpConnection> first = subscribe("");
  // (The agent's WORKING may come in the same read as the Task.)
  ASSERT_TRUE(first->ReadUntil([](const std::string& got) {
    return !testing::SseEvents(got).empty();
  })) << first->received();
  std::vector<testing::SseEvent> seen = events_of(*first);
  EXPECT_THAT(seen[0].data, HasSubstr("{\"task\":"));
  ASSERT_GE(seen[0].seq, 0) << first->received();
  steps.Allow(1);
  ASSERT_TRUE(first->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "\"a1\"");
  })) << first->received();
  seen = events_of(*first);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i].seq, seen[i - 1].seq);
  EXPECT_THAT(seen.back().data, HasSubstr("\"a1\""));
  // Nothing happens for a while: the stream says it is alive.
  EXPECT_TRUE(first->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, ": keep-alive\n\n");
  })) << first->received();
  const testing::SseEvent after_a1 = seen.back();
  first->Close();

  // Back with the last id and nothing missed: no Task again, just what comes next.
  std::unique_ptr<HttpConnection> second = subscribe(after_a1.id);
  ASSERT_TRUE(second->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "text/event-stream");
  })) << second->received();
  steps.Allow(2);
  ASSERT_TRUE(second->ReadUntil([](const std::string& got) {
    return !testing::SseEvents(got).empty();
  })) << second->received();
  seen = events_of(*second);
  EXPECT_THAT(seen[0].data, HasSubstr("\"a2\""));
  EXPECT_THAT(seen[0].data, Not(HasSubstr("{\"task\":")));
  EXPECT_GT(seen[0].seq, after_a1.seq);
  const testing::SseEvent after_a2 = seen[0];
  second->Close();

  // Step 3 happens while nobody listens: back with the last id, the client
  // gets the Task holding it (with a newer id), then the rest.
  steps.Allow(3);
  EXPECT_TRUE(WaitFor([&] {
    absl::StatusOr<HttpResult> got =
        testing::A2aHttp(address, "GET", absl::StrCat("/a2a/rest/tasks/", id), "");
    return got.ok() && absl::StrContains(got->body, "\"a3\"");
  }));
  std::unique_ptr<HttpConnection> third = subscribe(after_a2.id);
  ASSERT_TRUE(third->ReadUntil([](const std::string& got) {
    return !testing::SseEvents(got).empty();
  })) << third->received();
  seen = events_of(*third);
  EXPECT_THAT(seen[0].data, HasSubstr("{\"task\":"));
  EXPECT_THAT(seen[0].data, HasSubstr("\"a3\""));
  EXPECT_GT(seen[0].seq, after_a2.seq);
  steps.Allow(4);
  EXPECT_TRUE(third->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "TASK_STATE_COMPLETED") && absl::StrContains(got, "0\r\n\r\n");
  })) << third->received();
  seen = events_of(*third);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_GT(seen.back().seq, seen[0].seq);
}

}  // namespace
}  // namespace a2amesh
