// Callers prove who they are: bearer tokens and client certificates, on gRPC
// (A2A, Admin, AgentHost) and HTTP (JSON-RPC, REST), tried from the
// attacker's side too. Real nodes on loopback.
#include "security/auth.h"

#include <memory>
#include <string>

#include "a2amesh/v1/admin.grpc.pb.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/http_client.h"
#include "testing/mesh_fixture.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"
#include "testing/test_jwt.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::KeyCert;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::TempDir;
using ::a2amesh::testing::TestCa;
using ::a2amesh::testing::WaitFor;
using ::a2amesh::testing::WriteFileAtomically;
using ::testing::HasSubstr;
namespace a2a = ::lf::a2a::v1;

constexpr char kAliceToken[] = "alice-0123456789abcdef";
constexpr char kAgentToken[] = "agent-0123456789abcdef";
constexpr char kRivalToken[] = "rival-0123456789abcdef";
constexpr char kBobToken[] = "bob-0123456789abcdef";
constexpr char kErinToken[] = "erin-0123456789abcdef";
constexpr char kAuditorToken[] = "auditor-0123456789abcdef";

class AuthTest : public ::testing::Test {
 protected:
  AuthTest() {
    WriteFileAtomically(
        TokenFile(), absl::StrCat("# test tokens\n", kAliceToken, " alice admin,reader\n",
                                  kAgentToken, " echo-agent agent:echo*,skill:echo\n", kRivalToken,
                                  " rival agent:*,skill:*\n", kBobToken, " bob\n", kErinToken,
                                  " erin\n", kAuditorToken, " auditor reader\n",
                                  "- spiffe://a2a-mesh/ns/ci/sa/bot agent:echo*,skill:echo\n"));
  }
  std::string TokenFile() const { return dir_.File("tokens"); }

  NodeOptions AuthNode(const std::string& id) {
    NodeOptions options = NodeHarness::TestOptions(id);
    options.auth.token_file = TokenFile();
    options.auth.reload_interval = absl::Milliseconds(1);
    options.peer_heartbeat = absl::Milliseconds(100);
    options.peer_timeout = absl::Milliseconds(600);
    return options;
  }

  // AuthNode, also taking JWTs of issuer https://issuer.test signed by `key`
  // for audience a2a-mesh.
  NodeOptions JwtNode(const testing::TestJwk& key) {
    WriteFileAtomically(dir_.File("jwks.json"), testing::Jwks({&key}));
    NodeOptions options = AuthNode("n1");
    options.auth.jwt.jwks_file = dir_.File("jwks.json");
    options.auth.jwt.issuer = "https://issuer.test";
    options.auth.jwt.audience = "a2a-mesh";
    return options;
  }

  static std::unique_ptr<grpc::ClientContext> As(const std::string& authorization) {
    std::unique_ptr<grpc::ClientContext> context = A2aContext();
    if (!authorization.empty()) context->AddMetadata("authorization", authorization);
    return context;
  }

  static std::unique_ptr<sdk::Agent> StartAgent(NodeHarness& node, const std::string& token,
                                                sdk::AgentSpec spec = testing::Echo("echoer")) {
    return node.StartAgentWithToken(token, {std::move(spec)});
  }

  static testing::HttpResult Http(const std::string& address, const std::string& method,
                                  const std::string& path, const std::string& body,
                                  const std::string& authorization) {
    absl::StatusOr<testing::HttpResult> result =
        testing::A2aHttp(address, method, path, body, authorization);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(testing::HttpResult());
  }

  static std::string JsonRpcSend(const std::string& text) {
    return absl::StrCat(
        R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m-1","role":"ROLE_USER","parts":[{"text":")",
        text, R"("}]},"metadata":{"a2amesh/skill":"echo"}}})");
  }

  TempDir dir_;
};

TEST_F(AuthTest, GrpcCallersWithoutAGoodTokenAreRefusedAlikeAndTheirTasksNeverExist) {
  NodeHarness node(AuthNode("n1"));
  std::unique_ptr<sdk::Agent> agent = StartAgent(node, kAgentToken);
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  auto stub = node.NewA2aStub();

  std::string first_message;
  for (const std::string& bad :
       {std::string(), std::string("Bearer wrong-token-0123456789"), std::string(kAliceToken),
        absl::StrCat("Basic ", kAliceToken), std::string("Bearer "),
        absl::StrCat("Bearer ", kAliceToken, "x")}) {
    a2a::SendMessageResponse response;
    grpc::Status status = stub->SendMessage(As(bad).get(), ForSkill("echo", "sneaky"), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "'" << bad << "'";
    // Missing, malformed and wrong credentials read the same.
    if (first_message.empty()) first_message = status.error_message();
    EXPECT_EQ(status.error_message(), first_message);
  }
  EXPECT_EQ(node.node().tasks().active_tasks(), 0u);

  // A forged principal from outside the node is ignored, not trusted.
  auto forged = As("");
  forged->AddMetadata(security::Authenticator::kPrincipalKey,
                      security::Authenticator::EncodePrincipal({"alice", {"admin"}, "token"}));
  forged->AddMetadata(security::Authenticator::kSecretKey, "guessed");
  a2a::Task task;
  a2a::GetTaskRequest get;
  get.set_id("anything");
  EXPECT_EQ(stub->GetTask(forged.get(), get, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // The good token: the task runs and records who asked for it.
  a2a::SendMessageResponse response;
  grpc::Status status = stub->SendMessage(As(absl::StrCat("Bearer ", kAliceToken)).get(),
                                          ForSkill("echo", "hello"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().state(), a2a::TASK_STATE_COMPLETED);
  absl::StatusOr<tasks::TaskRecord> record = node.node().tasks().GetRecord(response.task().id());
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->info.principal(), "alice");
  EXPECT_THAT(record->info.principal_roles(), ::testing::ElementsAre("admin", "reader"));
  EXPECT_EQ(record->info.principal_method(), "token");

  // The scheme's name is case-insensitive (RFC 9110).
  status = stub->GetTask(As(absl::StrCat("bearer ", kAliceToken)).get(), get, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AuthTest, AdminAndAgentHostNeedATokenToo) {
  NodeHarness node(AuthNode("n1"));
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  v1::ListNodesResponse nodes;
  EXPECT_EQ(admin->ListNodes(As("").get(), v1::ListNodesRequest(), &nodes).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::DrainResponse drained;
  EXPECT_EQ(admin->Drain(As("").get(), v1::DrainRequest(), &drained).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(node.node().peers().draining());
  grpc::Status listed = admin->ListNodes(As(absl::StrCat("Bearer ", kAliceToken)).get(),
                                         v1::ListNodesRequest(), &nodes);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  auto watch_context = As("");
  auto watch = admin->WatchCatalog(watch_context.get(), v1::WatchCatalogRequest());
  v1::CatalogEvent event;
  EXPECT_FALSE(watch->Read(&event));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // An agent process without a token cannot register anything.
  std::unique_ptr<sdk::Agent> anonymous = StartAgent(node, "");
  EXPECT_EQ(anonymous->WaitUntilRegistered(absl::Seconds(10)).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(node.node().catalog().size(), 0u);
  std::unique_ptr<sdk::Agent> agent = StartAgent(node, kAgentToken);
  EXPECT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
}

TEST_F(AuthTest, HttpBindingsAnswer401WithAChallengeAndServeAGoodToken) {
  NodeHarness node(AuthNode("n1"));
  std::unique_ptr<sdk::Agent> agent = StartAgent(node, kAgentToken);
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  const std::string& http = node.node().http_address();

  testing::HttpResult refused = Http(http, "POST", "/a2a/jsonrpc", JsonRpcSend("x"), "");
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(refused.headers, HasSubstr("WWW-Authenticate: Bearer realm=\"a2a-mesh\""));
  EXPECT_THAT(refused.body, HasSubstr("\"code\":-32040"));
  EXPECT_THAT(refused.body, HasSubstr("\"id\":1"));

  refused = Http(http, "POST", "/a2a/jsonrpc", JsonRpcSend("x"), "Bearer not-a-token-at-all");
  EXPECT_EQ(refused.status, 401);
  refused = Http(http, "GET", "/a2a/rest/tasks", "", "");
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(refused.headers, HasSubstr("WWW-Authenticate: Bearer"));
  refused = Http(http, "POST", "/a2a/rest/message:stream",
                 R"({"message":{"messageId":"m","role":"ROLE_USER","parts":[{"text":"x"}]}})", "");
  EXPECT_EQ(refused.status, 401);

  // The public card needs no credentials: clients discover before they authenticate.
  EXPECT_EQ(Http(http, "GET", "/.well-known/agent-card.json", "", "").status, 200);

  testing::HttpResult served = Http(http, "POST", "/a2a/jsonrpc", JsonRpcSend("over http"),
                                    absl::StrCat("Bearer ", kAliceToken));
  EXPECT_EQ(served.status, 200);
  EXPECT_THAT(served.body, HasSubstr("echo over http"));
  served = Http(http, "GET", "/a2a/rest/tasks", "", absl::StrCat("Bearer ", kAliceToken));
  EXPECT_EQ(served.status, 200);
}

TEST_F(AuthTest, CardsSayWhatToSendAndTheExtendedCardNeedsIt) {
  testing::TestJwk key = testing::TestJwk::Ec("k1");
  NodeHarness node(JwtNode(key));
  std::unique_ptr<sdk::Agent> agent = StartAgent(node, kAgentToken);
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  const std::string& http = node.node().http_address();
  for (const std::string& path : {std::string("/.well-known/agent-card.json"),
                                  std::string("/agents/echoer/.well-known/agent-card.json")}) {
    testing::HttpResult card = Http(http, "GET", path, "", "");
    ASSERT_EQ(card.status, 200) << path;
    EXPECT_THAT(card.body, HasSubstr(R"("extendedAgentCard":true)")) << path;
    EXPECT_THAT(card.body, HasSubstr(R"("bearer":{"httpAuthSecurityScheme":{"description":)"))
        << path;
    EXPECT_THAT(card.body, HasSubstr(R"("scheme":"Bearer","bearerFormat":"JWT")")) << path;
    EXPECT_THAT(
        card.body,
        HasSubstr(R"("openIdConnectUrl":"https://issuer.test/.well-known/openid-configuration")"))
        << path;
    EXPECT_THAT(
        card.body,
        HasSubstr(
            R"("securityRequirements":[{"schemes":{"bearer":{"list":[]}}},{"schemes":{"oidc":{"list":[]}}}])"))
        << path;
  }
  a2a::GetExtendedAgentCardRequest request;
  a2a::AgentCard extended;
  auto stub = node.NewA2aStub();
  EXPECT_EQ(stub->GetExtendedAgentCard(As("").get(), request, &extended).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status status = stub->GetExtendedAgentCard(As(absl::StrCat("Bearer ", kAliceToken)).get(),
                                                   request, &extended);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(extended.name(), "a2a-mesh node n1");
  ASSERT_EQ(extended.skills_size(), 1);
  EXPECT_EQ(extended.skills(0).id(), "echo");
  EXPECT_EQ(Http(http, "GET", "/a2a/rest/extendedAgentCard", "", "").status, 401);
  EXPECT_EQ(
      Http(http, "GET", "/a2a/rest/extendedAgentCard", "", absl::StrCat("Bearer ", kAliceToken))
          .status,
      200);
}

TEST_F(AuthTest, ATokenAddedToTheFileIsAcceptedWithoutRestart) {
  NodeHarness node(AuthNode("n1"));
  auto stub = node.NewA2aStub();
  a2a::GetTaskRequest get;
  get.set_id("anything");
  a2a::Task task;
  const std::string carol = "Bearer carol-0123456789abcdef";
  EXPECT_EQ(stub->GetTask(As(carol).get(), get, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  WriteFileAtomically(TokenFile(), "carol-0123456789abcdef carol\n");
  EXPECT_TRUE(WaitFor([&] {
    return stub->GetTask(As(carol).get(), get, &task).error_code() == grpc::StatusCode::NOT_FOUND;
  }));
  // Alice's token is gone with the old file.
  EXPECT_EQ(stub->GetTask(As(absl::StrCat("Bearer ", kAliceToken)).get(), get, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A file that no longer parses keeps the tokens that did.
  WriteFileAtomically(TokenFile(), "too many fields on this line here\n");
  // Over many reload intervals (1ms here), carol stays in.
  for (absl::Time end = absl::Now() + absl::Milliseconds(50); absl::Now() < end;) {
    ASSERT_EQ(stub->GetTask(As(carol).get(), get, &task).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(AuthTest, ATokenFileMayHoldOnlyTheTokensDigests) {
  // sha256("dave-0123456789abcdef"): the node never sees dave's token at rest.
  const std::string digest = "459f8eb0b1617991523682899de48b7d95ebb88124a9727233cbe6bb5940e1c4";
  WriteFileAtomically(TokenFile(), absl::StrCat("sha256:", digest, " dave reader\n"));
  NodeHarness node(AuthNode("n1"));
  auto stub = node.NewA2aStub();
  a2a::GetTaskRequest get;
  get.set_id("anything");
  a2a::Task task;
  EXPECT_EQ(stub->GetTask(As("Bearer dave-0123456789abcdef").get(), get, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Whoever reads the file learns the digest, which is not a token.
  for (const std::string& stolen : {absl::StrCat("sha256:", digest), digest}) {
    EXPECT_EQ(stub->GetTask(As("Bearer " + stolen).get(), get, &task).error_code(),
              grpc::StatusCode::UNAUTHENTICATED)
        << stolen;
  }
}

TEST_F(AuthTest, ABadTokenFileStopsStartUpNamingTheLine) {
  WriteFileAtomically(TokenFile(), "# ok\nshort alice\n");
  NodeOptions options = AuthNode("n1");
  EXPECT_THAT(Node::Start(options).status().message(),
              HasSubstr("--auth-token-file: " + TokenFile() + " line 2: the token is shorter"));
  WriteFileAtomically(TokenFile(), "sha256:abc123 alice\n");
  EXPECT_THAT(Node::Start(options).status().message(),
              HasSubstr("line 1: want sha256: and 64 hex digits"));
  options.auth.token_file = dir_.File("missing");
  EXPECT_THAT(Node::Start(options).status().message(), HasSubstr("cannot read"));
  options.auth.token_file.clear();
  options.auth.client_certificates = true;
  EXPECT_THAT(Node::Start(options).status().message(),
              HasSubstr("--auth-client-certs needs --tls-cert"));
}

TEST_F(AuthTest, CallsForwardedToATasksOwnerCarryTheCaller) {
  NodeHarness n1(AuthNode("n1"));
  NodeOptions n2_options = AuthNode("n2");
  n2_options.peers = {n1.address()};
  NodeHarness n2(std::move(n2_options));
  std::unique_ptr<sdk::Agent> agent = StartAgent(n2, kAgentToken);
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(WaitFor([&] { return n1.node().peers().peers_up() == 1; }));

  // A task n2 owns, read through n1: n1 forwards the call with its caller's token.
  a2a::SendMessageResponse sent;
  const std::string alice = absl::StrCat("Bearer ", kAliceToken);
  ASSERT_TRUE(n2.NewA2aStub()->SendMessage(As(alice).get(), ForSkill("echo", "x"), &sent).ok());
  a2a::GetTaskRequest get;
  get.set_id(sent.task().id());
  a2a::Task task;
  grpc::Status status = n1.NewA2aStub()->GetTask(As(alice).get(), get, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(task.id(), sent.task().id());
  EXPECT_EQ(n1.NewA2aStub()->GetTask(As("").get(), get, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// A task is its creator's: another principal hears that it does not exist,
// on every RPC and binding, on its owner and through another node; a reader
// may read it, an admin may do anything with it.
TEST_F(AuthTest, ATaskIsItsCreatorsAndOthersAreToldItDoesNotExist) {
  NodeHarness n1(AuthNode("n1"));
  NodeOptions n2_options = AuthNode("n2");
  n2_options.peers = {n1.address()};
  NodeHarness n2(std::move(n2_options));
  std::unique_ptr<sdk::Agent> agent = StartAgent(n1, kAgentToken);
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(WaitFor([&] { return n2.node().peers().peers_up() == 1; }));
  const std::string bob = absl::StrCat("Bearer ", kBobToken);
  const std::string erin = absl::StrCat("Bearer ", kErinToken);
  const std::string auditor = absl::StrCat("Bearer ", kAuditorToken);
  const std::string admin = absl::StrCat("Bearer ", kAliceToken);

  a2a::SendMessageResponse sent;
  ASSERT_TRUE(n1.NewA2aStub()->SendMessage(As(bob).get(), ForSkill("echo", "bob's"), &sent).ok());
  const std::string id = sent.task().id();
  ASSERT_FALSE(id.empty());
  // What anyone hears of a task that does not exist.
  a2a::GetTaskRequest missing;
  missing.set_id("n1~00000000-0000-7000-8000-000000000000");
  a2a::Task task;
  grpc::Status nothing = n1.NewA2aStub()->GetTask(As(bob).get(), missing, &task);
  ASSERT_EQ(nothing.error_code(), grpc::StatusCode::NOT_FOUND);
  auto is_not_found = [&](const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::NOT_FOUND &&
           testing::ErrorReason(status) == testing::ErrorReason(nothing) &&
           status.error_message() == absl::StrCat("task ", id, " not found");
  };

  a2a::GetTaskRequest get;
  get.set_id(id);
  for (NodeHarness* node : {&n1, &n2}) {  // the owner, and a node that forwards
    auto stub = node->NewA2aStub();
    SCOPED_TRACE(node->node().node_id());
    EXPECT_TRUE(stub->GetTask(As(bob).get(), get, &task).ok());
    EXPECT_TRUE(stub->GetTask(As(auditor).get(), get, &task).ok());
    EXPECT_TRUE(stub->GetTask(As(admin).get(), get, &task).ok());
    grpc::Status status = stub->GetTask(As(erin).get(), get, &task);
    EXPECT_TRUE(is_not_found(status)) << status.error_message();

    a2a::CancelTaskRequest cancel;
    cancel.set_id(id);
    status = stub->CancelTask(As(erin).get(), cancel, &task);
    EXPECT_TRUE(is_not_found(status)) << status.error_message();
    status = stub->CancelTask(As(auditor).get(), cancel, &task);  // a reader only reads
    EXPECT_TRUE(is_not_found(status)) << status.error_message();
    status = stub->CancelTask(As(bob).get(), cancel, &task);  // it has ended
    EXPECT_EQ(testing::ErrorReason(status), "TASK_NOT_CANCELABLE") << status.error_message();

    a2a::SubscribeToTaskRequest subscribe;
    subscribe.set_id(id);
    auto erin_context = As(erin);
    a2a::StreamResponse event;
    auto reader = stub->SubscribeToTask(erin_context.get(), subscribe);
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_TRUE(is_not_found(reader->Finish()));

    a2a::TaskPushNotificationConfig config;
    config.set_task_id(id);
    config.set_url("https://hooks.example.com/a2a");
    a2a::TaskPushNotificationConfig created;
    status = stub->CreateTaskPushNotificationConfig(As(erin).get(), config, &created);
    EXPECT_TRUE(is_not_found(status)) << status.error_message();
    a2a::ListTaskPushNotificationConfigsRequest list_configs;
    list_configs.set_task_id(id);
    a2a::ListTaskPushNotificationConfigsResponse configs;
    status = stub->ListTaskPushNotificationConfigs(As(erin).get(), list_configs, &configs);
    EXPECT_TRUE(is_not_found(status)) << status.error_message();
    EXPECT_TRUE(stub->ListTaskPushNotificationConfigs(As(bob).get(), list_configs, &configs).ok());

    // A follow-up message to it.
    a2a::SendMessageRequest follow_up = ForSkill("echo", "erin's");
    follow_up.mutable_message()->set_task_id(id);
    a2a::SendMessageResponse answer;
    status = stub->SendMessage(As(erin).get(), follow_up, &answer);
    EXPECT_TRUE(is_not_found(status)) << status.error_message();
  }

  // ListTasks: a caller's own tasks; a reader's and an admin's, every task.
  a2a::ListTasksRequest list;
  a2a::ListTasksResponse listed;
  auto stub = n1.NewA2aStub();
  ASSERT_TRUE(stub->ListTasks(As(erin).get(), list, &listed).ok());
  EXPECT_EQ(listed.tasks_size(), 0);
  EXPECT_EQ(listed.total_size(), 0);
  ASSERT_TRUE(stub->ListTasks(As(bob).get(), list, &listed).ok());
  ASSERT_EQ(listed.tasks_size(), 1);
  EXPECT_EQ(listed.tasks(0).id(), id);
  a2a::SendMessageResponse erins;
  ASSERT_TRUE(stub->SendMessage(As(erin).get(), ForSkill("echo", "erin's"), &erins).ok());
  ASSERT_TRUE(stub->ListTasks(As(erin).get(), list, &listed).ok());
  ASSERT_EQ(listed.tasks_size(), 1);
  EXPECT_EQ(listed.tasks(0).id(), erins.task().id());
  ASSERT_TRUE(stub->ListTasks(As(auditor).get(), list, &listed).ok());
  EXPECT_EQ(listed.total_size(), 2);

  // The HTTP bindings: JSON-RPC's TaskNotFound (-32001), REST's 404.
  const std::string http = absl::StrCat("127.0.0.1:", n1.node().http_port());
  testing::HttpResult rpc = Http(
      http, "POST", "/a2a/jsonrpc",
      absl::StrCat(R"({"jsonrpc":"2.0","id":7,"method":"GetTask","params":{"id":")", id, R"("}})"),
      erin);
  EXPECT_THAT(rpc.body, HasSubstr("-32001")) << rpc.body;
  EXPECT_THAT(Http(http, "POST", "/a2a/jsonrpc",
                   absl::StrCat(R"({"jsonrpc":"2.0","id":7,"method":"GetTask","params":{"id":")",
                                id, R"("}})"),
                   bob)
                  .body,
              HasSubstr(id));
  EXPECT_EQ(Http(http, "GET", absl::StrCat("/a2a/rest/tasks/", id), "", erin).status, 404);
  EXPECT_EQ(Http(http, "GET", absl::StrCat("/a2a/rest/tasks/", id), "", bob).status, 200);
}

TEST_F(AuthTest, AJwtOfTheIssuerProvesTheCallerAndABadOneDoesNot) {
  testing::TestJwk key = testing::TestJwk::Ec("k1");
  NodeHarness node(JwtNode(key));
  std::unique_ptr<sdk::Agent> agent = StartAgent(node, kAgentToken);
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  auto claims = [&](const std::string& aud, int64_t exp) {
    return absl::StrCat(R"({"iss":"https://issuer.test","sub":"svc-billing","aud":")", aud,
                        R"(","roles":["sender"],"exp":)", exp, "}");
  };
  const std::string good = absl::StrCat("Bearer ", key.Sign(claims("a2a-mesh", now + 300)));
  a2a::SendMessageResponse response;
  grpc::Status status =
      node.NewA2aStub()->SendMessage(As(good).get(), ForSkill("echo", "jwt"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<tasks::TaskRecord> record = node.node().tasks().GetRecord(response.task().id());
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->info.principal(), "svc-billing");
  EXPECT_EQ(record->info.principal_method(), "jwt");

  for (const std::string& bad :
       {key.Sign(claims("a2a-mesh", now - 3600)), key.Sign(claims("elsewhere", now + 300)),
        testing::TestJwk::Ec("k1").Sign(claims("a2a-mesh", now + 300))}) {
    EXPECT_EQ(node.NewA2aStub()
                  ->SendMessage(As("Bearer " + bad).get(), ForSkill("echo", "x"), &response)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(
        Http(node.node().http_address(), "POST", "/a2a/jsonrpc", JsonRpcSend("x"), "Bearer " + bad)
            .status,
        401);
  }
  EXPECT_EQ(Http(node.node().http_address(), "POST", "/a2a/jsonrpc", JsonRpcSend("x"), good).status,
            200);
}

TEST_F(AuthTest, AnAgentRegistersOnlyTheIdsAndSkillsItsCredentialAllows) {
  NodeHarness node(AuthNode("n1"));
  std::unique_ptr<sdk::Agent> other_id = StartAgent(node, kAgentToken, testing::Echo("billing"));
  absl::Status refused = other_id->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("may not register agent 'billing'"));
  EXPECT_THAT(refused.message(), HasSubstr("echo*"));

  std::unique_ptr<sdk::Agent> other_skill = StartAgent(node, kAgentToken, testing::Upper("echo2"));
  refused = other_skill->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("may not register skill 'upper'"));

  // A credential with no allowance registers nothing, and is told what it lacks.
  std::unique_ptr<sdk::Agent> no_roles = StartAgent(node, kAliceToken);
  refused = no_roles->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_THAT(refused.message(), HasSubstr("give it \"agent:...\" roles"));
  EXPECT_EQ(node.node().catalog().size(), 0u);

  std::unique_ptr<sdk::Agent> allowed = StartAgent(node, kAgentToken);
  EXPECT_TRUE(allowed->WaitUntilRegistered(absl::Seconds(10)).ok());
}

TEST_F(AuthTest, AnotherPrincipalCannotTakeOverAnAgentIdOrItsWaitingTasks) {
  NodeOptions options = AuthNode("n1");
  options.agent_grace = absl::Seconds(30);
  NodeHarness node(std::move(options));
  std::unique_ptr<sdk::Agent> owner = StartAgent(node, kAgentToken);
  ASSERT_TRUE(owner->WaitUntilRegistered(absl::Seconds(10)).ok());

  // The rival may register any id, but not one another principal holds.
  std::unique_ptr<sdk::Agent> rival = StartAgent(node, kRivalToken);
  absl::Status refused = rival->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("'echoer' is held by another principal"));
  rival.reset();

  // Nor while the owner is away and its tasks wait for it (the grace).
  owner.reset();
  ASSERT_TRUE(WaitFor([&] { return node.node().catalog().size() == 0; }));
  rival = StartAgent(node, kRivalToken);
  refused = rival->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_THAT(refused.message(), HasSubstr("its tasks wait for it to reconnect"));
  rival.reset();

  // The owner comes back with the same credential.
  owner = StartAgent(node, kAgentToken);
  EXPECT_TRUE(owner->WaitUntilRegistered(absl::Seconds(10)).ok());
}

class ClientCertificateAuthTest : public AuthTest {
 protected:
  NodeOptions CertNode(const std::string& id) {
    NodeOptions options = AuthNode(id);
    options.auth.client_certificates = true;
    KeyCert kc = ca_.IssueNode(id);
    WriteFileAtomically(dir_.File(id + ".crt"), kc.cert_pem);
    WriteFileAtomically(dir_.File(id + ".key"), kc.key_pem);
    WriteFileAtomically(dir_.File("ca.crt"), ca_.cert_pem());
    options.tls.cert_file = dir_.File(id + ".crt");
    options.tls.key_file = dir_.File(id + ".key");
    options.tls.client_ca_file = dir_.File("ca.crt");
    return options;
  }
  TestCa ca_;
};

TEST_F(ClientCertificateAuthTest, AClientCertificateOfTheCaProvesTheCallerOnEveryBinding) {
  NodeHarness node(CertNode("n1"));
  testing::CertSpec spec;
  spec.common_name = "ci-bot";
  spec.uris = {"spiffe://a2a-mesh/ns/ci/sa/bot"};
  KeyCert bot = ca_.Issue(spec);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_.cert_pem();
  auto anonymous =
      a2a::A2AService::NewStub(grpc::CreateChannel(node.address(), grpc::SslCredentials(ssl)));
  ssl.pem_cert_chain = bot.cert_pem;
  ssl.pem_private_key = bot.key_pem;
  auto proven =
      a2a::A2AService::NewStub(grpc::CreateChannel(node.address(), grpc::SslCredentials(ssl)));

  a2a::GetTaskRequest get;
  get.set_id("anything");
  a2a::Task task;
  EXPECT_EQ(anonymous->GetTask(As("").get(), get, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(proven->GetTask(As("").get(), get, &task).error_code(), grpc::StatusCode::NOT_FOUND);

  const std::string& http = node.node().http_address();
  const std::string request = absl::StrCat("GET /a2a/rest/tasks HTTP/1.1\r\nHost: ", http,
                                           "\r\nA2A-Version: 1.0\r\nConnection: close\r\n\r\n");
  absl::StatusOr<std::string> raw = testing::HttpsExchange(http, request, ca_.cert_pem());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, HasSubstr("HTTP/1.1 401"));
  raw = testing::HttpsExchange(http, request, ca_.cert_pem(), bot.cert_pem, bot.key_pem);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(*raw, HasSubstr("HTTP/1.1 200"));

  // And the task it creates says who: the certificate's SPIFFE id.
  a2a::SendMessageResponse sent;
  std::unique_ptr<sdk::Agent> agent;
  {
    sdk::AgentOptions options;
    options.node = node.address();
    options.agents = {testing::Echo("echoer")};
    options.tls_ca_file = dir_.File("ca.crt");
    WriteFileAtomically(dir_.File("bot.crt"), bot.cert_pem);
    WriteFileAtomically(dir_.File("bot.key"), bot.key_pem);
    options.tls_cert_file = dir_.File("bot.crt");
    options.tls_key_file = dir_.File("bot.key");
    agent = *sdk::Agent::Start(std::move(options));
    ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  }
  grpc::Status status = proven->SendMessage(As("").get(), ForSkill("echo", "x"), &sent);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::StatusOr<tasks::TaskRecord> record = node.node().tasks().GetRecord(sent.task().id());
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->info.principal(), "spiffe://a2a-mesh/ns/ci/sa/bot");
  EXPECT_EQ(record->info.principal_method(), "mtls");
}

}  // namespace
}  // namespace a2amesh
