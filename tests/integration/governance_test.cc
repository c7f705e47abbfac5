// Governance: a policy decides every call on every binding (gRPC, JSON-RPC,
// REST, AgentHost, Admin), deny by default once loaded, explicit deny wins;
// reloads; delegation bounded by the root caller; rate limits and quotas; the
// audit log. Real nodes on loopback, real files.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "a2amesh/v1/admin.grpc.pb.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/a2a_error.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "governance/governor.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rpc/grpc_status.h"
#include "testing/http_client.h"
#include "testing/mesh_fixture.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::TempDir;
using ::a2amesh::testing::WaitFor;
using ::a2amesh::testing::WriteFileAtomically;
using ::testing::HasSubstr;
namespace a2a = ::lf::a2a::v1;

constexpr char kAlice[] = "Bearer alice-0123456789abcdef";
constexpr char kBob[] = "Bearer bob-0123456789abcdef";
constexpr char kMallory[] = "Bearer mallory-0123456789abcdef";
constexpr char kOps[] = "Bearer ops-0123456789abcdef";
constexpr char kCarol[] = "Bearer carol-0123456789abcdef";
constexpr char kAgentToken[] = "agent-0123456789abcdef";
constexpr char kRogueAgentToken[] = "rogue-0123456789abcdef";

// alice is team-a: every task action. bob may send anything but `upper`
// (an explicit deny beats his allow); mallory has no rule at all.
constexpr char kPolicy[] = R"({
  "groups": {"team-a": {"members": ["alice"]}},
  "rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "team-a", "effect": "allow", "subjects": ["group:team-a"],
     "actions": ["send", "stream", "get", "list", "cancel", "subscribe", "push-config", "card"]},
    {"name": "bob-sends", "effect": "allow", "subjects": ["principal:bob"],
     "actions": ["send", "stream", "get", "list"]},
    {"name": "no-upper-for-bob", "effect": "deny", "subjects": ["principal:bob"],
     "actions": ["*"], "resources": ["skill:upper"]},
    {"name": "planner-delegates", "effect": "allow", "subjects": ["agent:planner"],
     "actions": ["send"], "resources": ["skill:upper", "skill:echo"]},
    {"name": "ops", "effect": "allow", "subjects": ["role:operator"],
     "actions": ["inspect", "audit"]}
  ]
})";

class GovernanceTest : public ::testing::Test {
 protected:
  GovernanceTest() {
    WriteFileAtomically(
        dir_.File("tokens"),
        absl::StrCat("alice-0123456789abcdef alice\n", "bob-0123456789abcdef bob\n",
                     "mallory-0123456789abcdef mallory\n", "ops-0123456789abcdef ops operator\n",
                     "carol-0123456789abcdef carol approver\n", kAgentToken,
                     " agents agent,agent:*,skill:*\n", kRogueAgentToken,
                     " rogue agent:*,skill:*\n"));
    WritePolicy(kPolicy);
  }

  void WritePolicy(const std::string& json) { WriteFileAtomically(PolicyFile(), json); }
  std::string PolicyFile() const { return dir_.File("policy.json"); }
  std::string AuditFile() const { return dir_.File("audit.log"); }

  NodeOptions Options(const std::string& id = "n1") {
    NodeOptions options = NodeHarness::TestOptions(id);
    options.auth.token_file = dir_.File("tokens");
    options.policy_file = PolicyFile();
    options.audit_log = AuditFile();
    options.tls.reload_interval = absl::Milliseconds(1);
    return options;
  }

  static std::unique_ptr<grpc::ClientContext> As(const std::string& authorization) {
    std::unique_ptr<grpc::ClientContext> context = A2aContext();
    context->AddMetadata("authorization", authorization);
    return context;
  }

  static std::unique_ptr<sdk::Agent> StartAgent(NodeHarness& node, const std::string& token,
                                                std::vector<sdk::AgentSpec> specs) {
    return node.StartAgentWithToken(token, std::move(specs));
  }

  static testing::HttpResult Http(const std::string& address, const std::string& method,
                                  const std::string& path, const std::string& body,
                                  const std::string& authorization) {
    absl::StatusOr<testing::HttpResult> result =
        testing::A2aHttp(address, method, path, body, authorization);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(testing::HttpResult());
  }

  static std::string JsonRpcSend(const std::string& skill) {
    return absl::StrCat(
        R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m-1","role":"ROLE_USER","parts":[{"text":"hi"}]},"metadata":{"a2amesh/skill":")",
        skill, R"("}}})");
  }
  static std::string RestSend(const std::string& skill) {
    return absl::StrCat(
        R"({"message":{"messageId":"m-2","role":"ROLE_USER","parts":[{"text":"hi"}]},"metadata":{"a2amesh/skill":")",
        skill, R"("}})");
  }

  grpc::Status Send(NodeHarness& node, const std::string& who, const std::string& skill,
                    a2a::SendMessageResponse* response = nullptr) {
    a2a::SendMessageResponse ignored;
    return node.NewA2aStub()->SendMessage(As(who).get(), ForSkill(skill, "hi"),
                                          response != nullptr ? response : &ignored);
  }

  TempDir dir_;
};

TEST_F(GovernanceTest, EveryBindingAllowsWhatARuleAllowsAndDeniesTheRest) {
  NodeHarness node(Options());
  auto agent = StartAgent(node, kAgentToken, {testing::Echo("echoer"), testing::Upper("upperer")});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());

  // gRPC.
  a2a::SendMessageResponse sent;
  grpc::Status allowed = Send(node, kAlice, "upper", &sent);
  ASSERT_TRUE(allowed.ok()) << allowed.error_message();
  EXPECT_EQ(sent.task().status().state(), a2a::TASK_STATE_COMPLETED);
  EXPECT_TRUE(Send(node, kBob, "echo").ok());
  // Ended tasks leave memory once stored and delivered: none is left then.
  ASSERT_TRUE(WaitFor([&] { return node.node().tasks().active_tasks() == 0; }));

  grpc::Status by_default = Send(node, kMallory, "echo");
  EXPECT_EQ(by_default.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(by_default.error_message(),
              HasSubstr("mallory may not send agent:echoer skill:echo node:n1"));
  EXPECT_THAT(by_default.error_message(), HasSubstr("denied by default"));
  grpc::Status explicit_deny = Send(node, kBob, "upper");
  EXPECT_EQ(explicit_deny.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(explicit_deny.error_message(), HasSubstr("rule 'no-upper-for-bob' denies it"));
  a2a::StreamResponse event;
  auto stream_context = As(kMallory);
  auto stream =
      node.NewA2aStub()->SendStreamingMessage(stream_context.get(), ForSkill("echo", "x"));
  EXPECT_FALSE(stream->Read(&event));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(node.node().tasks().active_tasks(), 0u);  // nothing was created

  // Reads of a task: bob may get his own; mallory's ListTasks is refused.
  a2a::GetTaskRequest get;
  get.set_id(sent.task().id());
  a2a::Task task;
  EXPECT_TRUE(node.NewA2aStub()->GetTask(As(kAlice).get(), get, &task).ok());
  a2a::ListTasksResponse listed;
  EXPECT_EQ(node.NewA2aStub()
                ->ListTasks(As(kMallory).get(), a2a::ListTasksRequest(), &listed)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(node.NewA2aStub()->ListTasks(As(kBob).get(), a2a::ListTasksRequest(), &listed).ok());
  // bob may not cancel (no rule gives him cancel), even his own task.
  a2a::SendMessageResponse bobs;
  ASSERT_TRUE(Send(node, kBob, "echo", &bobs).ok());
  a2a::CancelTaskRequest cancel;
  cancel.set_id(bobs.task().id());
  grpc::Status cancel_status = node.NewA2aStub()->CancelTask(As(kBob).get(), cancel, &task);
  EXPECT_EQ(cancel_status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << cancel_status.error_message();

  // JSON-RPC: HTTP 403 with the JSON-RPC permission error.
  const std::string http = node.node().http_address();
  testing::HttpResult rpc = Http(http, "POST", "/a2a/jsonrpc", JsonRpcSend("echo"), kMallory);
  EXPECT_EQ(rpc.status, 403);
  EXPECT_THAT(rpc.body, HasSubstr("\"code\":-32043"));
  EXPECT_THAT(rpc.body, HasSubstr("denied by default"));
  rpc = Http(http, "POST", "/a2a/jsonrpc", JsonRpcSend("upper"), kBob);
  EXPECT_EQ(rpc.status, 403);
  EXPECT_THAT(rpc.body, HasSubstr("no-upper-for-bob"));
  {
    // The audit line names the HTTP client, not the binding's in-process call.
    auto admin =
        v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
    v1::TailAuditRequest tail;
    tail.set_principal("bob");
    tail.set_decision("deny");
    v1::TailAuditResponse lines;
    ASSERT_TRUE(admin->TailAudit(As(kOps).get(), tail, &lines).ok());
    ASSERT_GE(lines.lines_size(), 1);
    EXPECT_THAT(lines.lines(lines.lines_size() - 1), HasSubstr("\"peer\":\"http:127.0.0.1\""));
  }
  rpc = Http(http, "POST", "/a2a/jsonrpc", JsonRpcSend("echo"), kBob);
  EXPECT_EQ(rpc.status, 200);
  EXPECT_THAT(rpc.body, HasSubstr("TASK_STATE_COMPLETED"));

  // REST: 403.
  testing::HttpResult rest =
      Http(http, "POST", "/a2a/rest/message:send", RestSend("echo"), kMallory);
  EXPECT_EQ(rest.status, 403);
  EXPECT_THAT(rest.body, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(Http(http, "POST", "/a2a/rest/message:send", RestSend("upper"), kBob).status, 403);
  EXPECT_EQ(Http(http, "POST", "/a2a/rest/message:send", RestSend("upper"), kAlice).status, 200);
  EXPECT_EQ(Http(http, "GET", "/a2a/rest/tasks", "", kMallory).status, 403);
  EXPECT_EQ(Http(http, "GET", "/a2a/rest/tasks", "", kAlice).status, 200);

  // Admin: only operators may inspect.
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  v1::ListNodesResponse nodes;
  EXPECT_EQ(admin->ListNodes(As(kAlice).get(), v1::ListNodesRequest(), &nodes).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(admin->ListNodes(As(kOps).get(), v1::ListNodesRequest(), &nodes).ok());
  v1::DrainResponse drained;
  EXPECT_EQ(admin->Drain(As(kOps).get(), v1::DrainRequest(), &drained).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_FALSE(node.node().peers().draining());
}

TEST_F(GovernanceTest, AnAgentRegistersOnlyWhatThePolicyAllows) {
  NodeHarness node(Options());
  // Its credential allows every id and skill, but no rule lets it register.
  auto rogue = StartAgent(node, kRogueAgentToken, {testing::Echo("echoer")});
  absl::Status registered = rogue->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_EQ(registered.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(registered.message(), HasSubstr("rogue may not register-agent agent:echoer"));
  EXPECT_EQ(node.node().catalog().size(), 0u);
  auto agent = StartAgent(node, kAgentToken, {testing::Echo("echoer")});
  EXPECT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
}

TEST_F(GovernanceTest, AReloadThatFailsKeepsThePolicyAndAGoodOneTakesEffect) {
  NodeHarness node(Options());
  auto agent = StartAgent(node, kAgentToken, {testing::Echo("echoer")});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  EXPECT_EQ(Send(node, kMallory, "echo").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // A broken file: the reload says why, and the policy in force stays.
  WritePolicy(R"({"rules": [{"name": "oops", "effect": "allow", "subjects": ["*"],
                 "actions": ["sned"]}]})");
  absl::Status reload = node.node().ReloadPolicy();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reload.message(), HasSubstr("'sned' is not an action"));
  EXPECT_THAT(reload.message(), HasSubstr(PolicyFile()));
  EXPECT_TRUE(Send(node, kAlice, "echo").ok());
  EXPECT_EQ(Send(node, kMallory, "echo").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // A good file is picked up when it changes, without a signal.
  WritePolicy(R"({"rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "everyone-sends", "effect": "allow", "subjects": ["*"], "actions": ["send"]}]})");
  EXPECT_TRUE(WaitFor([&] { return Send(node, kMallory, "echo").ok(); }));
}

TEST_F(GovernanceTest, ADelegatedSubtaskIsBoundedByTheRootCallersRights) {
  WritePolicy(R"({"rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "callers-plan", "effect": "allow", "subjects": ["principal:alice", "principal:bob"],
     "actions": ["send", "get"], "resources": ["skill:plan"]},
    {"name": "alice-uppers", "effect": "allow", "subjects": ["principal:alice"],
     "actions": ["send"], "resources": ["skill:upper", "skill:echo"]},
    {"name": "planner-delegates-upper", "effect": "allow", "subjects": ["agent:planner"],
     "actions": ["send"], "resources": ["skill:upper"]}]})");
  NodeHarness node(Options());
  auto agent = StartAgent(node, kAgentToken, {testing::Upper("upperer"), testing::Echo("echoer")});
  auto alice_planner = StartAgent(node, kAgentToken, {testing::Planner({"upper"})});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(alice_planner->WaitUntilRegistered(absl::Seconds(10)).ok());

  // alice may use upper herself, and the planner may delegate it: allowed.
  a2a::SendMessageResponse planned;
  grpc::Status status = Send(node, kAlice, "plan", &planned);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(planned.task().status().state(), a2a::TASK_STATE_COMPLETED)
      << planned.task().DebugString();
  // The subtask is alice's too: she started its tree.
  TaskQuery subtasks;
  subtasks.parent_id = planned.task().id();
  absl::StatusOr<tasks::TaskList> children = node.node().tasks().List(subtasks, "");
  ASSERT_TRUE(children.ok()) << children.status();
  ASSERT_EQ(children->tasks.size(), 1u);
  EXPECT_EQ(children->tasks[0].info.principal(), "alice");

  // bob may ask the planner, but not for upper: the planner cannot do it for him.
  status = Send(node, kBob, "plan", &planned);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(planned.task().status().state(), a2a::TASK_STATE_FAILED);
  const std::string why = planned.task().status().message().parts(0).text();
  EXPECT_THAT(why, HasSubstr("agent planner (delegating for bob) may not send"));
  EXPECT_THAT(why, HasSubstr("for the root caller bob"));
}

TEST_F(GovernanceTest, AnAgentCannotDelegateWhatNoRuleLetsItEvenForAnAllPowerfulCaller) {
  WritePolicy(R"({"rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "alice-everything", "effect": "allow", "subjects": ["principal:alice"],
     "actions": ["*"]}]})");
  NodeHarness node(Options());
  auto agents =
      StartAgent(node, kAgentToken, {testing::Echo("echoer"), testing::Planner({"echo"})});
  ASSERT_TRUE(agents->WaitUntilRegistered(absl::Seconds(10)).ok());
  a2a::SendMessageResponse planned;
  ASSERT_TRUE(Send(node, kAlice, "plan", &planned).ok());
  EXPECT_EQ(planned.task().status().state(), a2a::TASK_STATE_FAILED);
  EXPECT_THAT(planned.task().status().message().parts(0).text(),
              HasSubstr("agent planner (delegating for alice) may not send"));
}

TEST_F(GovernanceTest, ARateLimitRefusalSaysWhenToRetryOnEveryBinding) {
  WritePolicy(R"({"rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "bob-sends", "effect": "allow", "subjects": ["principal:bob"], "actions": ["send"]}],
    "rateLimits": [{"name": "bob-slow", "subjects": ["principal:bob"], "per": "principal",
                    "rate": 0.01, "burst": 1}]})");
  NodeHarness node(Options());
  auto agent = StartAgent(node, kAgentToken, {testing::Echo("echoer")});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(Send(node, kBob, "echo").ok());

  grpc::Status limited = Send(node, kBob, "echo");
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(limited.error_message(), HasSubstr("rate limit 'bob-slow'"));
  std::optional<absl::Duration> retry = GetRetryAfter(rpc::FromGrpcStatus(limited));
  ASSERT_TRUE(retry.has_value());
  EXPECT_GT(*retry, absl::Seconds(90));  // a token every 100 s

  const std::string http = node.node().http_address();
  for (const auto& [path, body] :
       {std::pair<std::string, std::string>{"/a2a/jsonrpc", JsonRpcSend("echo")},
        {"/a2a/rest/message:send", RestSend("echo")}}) {
    testing::HttpResult refused = Http(http, "POST", path, body, kBob);
    EXPECT_EQ(refused.status, 429) << path;
    EXPECT_THAT(refused.headers, ::testing::ContainsRegex("Retry-After: (9[0-9]|100)\r")) << path;
    EXPECT_THAT(refused.body, HasSubstr("bob-slow")) << path;
  }
}

TEST_F(GovernanceTest, AnOpenTaskQuotaHoldsUntilATaskEnds) {
  WritePolicy(R"({"rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "bob", "effect": "allow", "subjects": ["principal:bob"], "actions": ["send"]}],
    "quotas": [{"name": "one-at-a-time", "subjects": ["*"], "maxOpenTasks": 1}]})");
  NodeHarness node(Options());
  absl::Notification release;
  sdk::AgentSpec slow{"slow", testing::Card("slow", {"slow"}), 4, [&release](sdk::TaskContext& t) {
                        release.WaitForNotification();
                        t.Complete("done");
                      }};
  auto agent = StartAgent(node, kAgentToken, {std::move(slow)});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  a2a::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  a2a::SendMessageResponse first;
  ASSERT_TRUE(node.NewA2aStub()->SendMessage(As(kBob).get(), request, &first).ok());
  a2a::SendMessageResponse second;
  grpc::Status refused = node.NewA2aStub()->SendMessage(As(kBob).get(), request, &second);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("quota 'one-at-a-time': bob has 1 open task"));
  release.Notify();
  EXPECT_TRUE(WaitFor(
      [&] { return node.NewA2aStub()->SendMessage(As(kBob).get(), request, &second).ok(); }));
}

TEST_F(GovernanceTest, TheAuditLogHoldsOneParseableLinePerDecision) {
  NodeHarness node(Options());
  auto agent = StartAgent(node, kAgentToken, {testing::Echo("echoer")});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  a2a::SendMessageResponse sent;
  ASSERT_TRUE(Send(node, kAlice, "echo", &sent).ok());
  {
    // mallory's call is part of a trace: its refusal's audit line names it.
    auto traced = As(kMallory);
    traced->AddMetadata("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    a2a::SendMessageResponse refused;
    EXPECT_FALSE(
        node.NewA2aStub()->SendMessage(traced.get(), ForSkill("echo", "hi"), &refused).ok());
  }
  a2a::GetTaskRequest get;
  get.set_id(sent.task().id());
  a2a::Task task;
  EXPECT_TRUE(node.NewA2aStub()->GetTask(As(kAlice).get(), get, &task).ok());

  // meshctl audit's call: operators may read it, filtered.
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  v1::TailAuditRequest tail;
  v1::TailAuditResponse lines;
  EXPECT_EQ(admin->TailAudit(As(kMallory).get(), tail, &lines).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status read = admin->TailAudit(As(kOps).get(), tail, &lines);
  ASSERT_TRUE(read.ok()) << read.error_message();
  // register-agent (echoer), alice's send, mallory's refusal, alice's get,
  // mallory's TailAudit, then this one.
  std::vector<std::string> decisions;
  for (const std::string& line : lines.lines()) {
    google::protobuf::Struct entry;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &entry).ok()) << line;
    const auto& f = entry.fields();
    decisions.push_back(absl::StrCat(f.at("principal").string_value(), " ",
                                     f.at("action").string_value(), " ",
                                     f.at("decision").string_value()));
    if (f.at("action").string_value() == "send" && f.at("principal").string_value() == "alice") {
      EXPECT_EQ(f.at("task_id").string_value(), sent.task().id());
      EXPECT_EQ(f.at("rule").string_value(), "team-a");
      EXPECT_EQ(f.at("resource").string_value(), "agent:echoer skill:echo node:n1");
      EXPECT_EQ(f.at("node").string_value(), "n1");
    }
    if (f.at("principal").string_value() == "mallory" && f.at("action").string_value() == "send") {
      EXPECT_EQ(f.at("rule").string_value(), "default-deny");
      EXPECT_THAT(f.at("reason").string_value(), HasSubstr("denied by default"));
      EXPECT_EQ(f.at("trace_id").string_value(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
  }
  EXPECT_THAT(decisions, ::testing::ElementsAre("agents register-agent allow", "alice send allow",
                                                "mallory send deny", "alice get allow",
                                                "mallory audit deny", "ops audit allow"));
  v1::TailAuditRequest denials;
  denials.set_decision("deny");
  ASSERT_TRUE(admin->TailAudit(As(kOps).get(), denials, &lines).ok());
  EXPECT_EQ(lines.lines_size(), 2);

  // The file holds the same lines (written by the log's own thread).
  auto file_lines = [&] {
    std::vector<std::string> lines;
    std::ifstream in(AuditFile());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  ASSERT_TRUE(WaitFor([&] { return file_lines().size() == 7; }));
  for (const std::string& line : file_lines()) {
    google::protobuf::Struct entry;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &entry).ok()) << line;
  }
}

// bob may send echo and pay; pay needs carol's (an approver's) yes within an
// hour, quick within a second.
constexpr char kApprovalPolicy[] = R"({"rules": [
  {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
   "actions": ["register-agent"]},
  {"name": "bob", "effect": "allow", "subjects": ["principal:bob"],
   "actions": ["send", "get", "cancel"]},
  {"name": "pay-needs-approval", "effect": "allow", "subjects": ["*"], "actions": ["send"],
   "resources": ["skill:pay"], "approval": {"approvers": ["role:approver"], "timeout": "1h"}},
  {"name": "quick-approval", "effect": "allow", "subjects": ["*"], "actions": ["send"],
   "resources": ["skill:quick"], "approval": {"approvers": ["role:approver"], "timeout": "1s"}},
  {"name": "ops", "effect": "allow", "subjects": ["role:operator"], "actions": ["audit"]}
]})";

class ApprovalTest : public GovernanceTest {
 protected:
  ApprovalTest() { WritePolicy(kApprovalPolicy); }

  NodeOptions Durable() {
    NodeOptions options = Options();
    options.ephemeral = false;
    options.data_dir = dir_.File("data");
    return options;
  }
  std::unique_ptr<sdk::Agent> Agents(NodeHarness& node) {
    sdk::AgentSpec pay{"payer", testing::Card("payer", {"pay", "quick"}), 4,
                       [](sdk::TaskContext& task) { task.Complete("paid " + task.text()); }};
    auto agent = StartAgent(node, kAgentToken, {std::move(pay)});
    EXPECT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
    return agent;
  }
  static grpc::Status Decide(NodeHarness& node, const std::string& who, const std::string& id,
                             bool approve, const std::string& reason, a2a::Task* task) {
    auto admin =
        v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
    v1::DecideApprovalRequest request;
    request.set_task_id(id);
    request.set_approve(approve);
    request.set_reason(reason);
    return admin->DecideApproval(As(who).get(), request, task);
  }
  static a2a::TaskState StateOf(NodeHarness& node, const std::string& id, a2a::Task* task) {
    a2a::GetTaskRequest get;
    get.set_id(id);
    if (!node.NewA2aStub()->GetTask(As(kBob).get(), get, task).ok()) {
      return a2a::TASK_STATE_UNSPECIFIED;
    }
    return task->status().state();
  }
};

TEST_F(ApprovalTest, ATaskWaitsForItsApproverAcrossARestartAndRunsOnceApproved) {
  std::string id;
  {
    NodeHarness node(Durable());
    auto agent = Agents(node);
    a2a::SendMessageResponse sent;
    grpc::Status status = Send(node, kBob, "pay", &sent);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const a2a::Task& task = sent.task();
    id = task.id();
    ASSERT_EQ(task.status().state(), a2a::TASK_STATE_AUTH_REQUIRED);
    const std::string waiting = task.status().message().parts(0).text();
    EXPECT_THAT(waiting, HasSubstr("rule 'pay-needs-approval' requires one of [role:approver]"));
    EXPECT_THAT(waiting, HasSubstr(absl::StrCat("meshctl approve ", id)));

    // Nobody but an approver decides; the caller cannot talk its way past it.
    a2a::Task decided;
    grpc::Status self = Decide(node, kBob, id, true, "", &decided);
    EXPECT_EQ(self.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(self.error_message(), HasSubstr("names its approvers [role:approver]"));
    a2a::SendMessageRequest follow_up = ForSkill("pay", "now please");
    follow_up.mutable_message()->set_task_id(id);
    a2a::SendMessageResponse answer;
    grpc::Status pushed = node.NewA2aStub()->SendMessage(As(kBob).get(), follow_up, &answer);
    EXPECT_EQ(pushed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(pushed.error_message(), HasSubstr("waits for an approval"));
    a2a::Task now;
    EXPECT_EQ(StateOf(node, id, &now), a2a::TASK_STATE_AUTH_REQUIRED);
    EXPECT_EQ(node.node().tasks().pending_approvals(), 1);
  }
  // The node restarts: the task still waits.
  NodeHarness node(Durable());
  auto agent = Agents(node);
  a2a::Task task;
  ASSERT_EQ(StateOf(node, id, &task), a2a::TASK_STATE_AUTH_REQUIRED);
  grpc::Status approved = Decide(node, kCarol, id, true, "", &task);
  ASSERT_TRUE(approved.ok()) << approved.error_message();
  EXPECT_TRUE(WaitFor([&] { return StateOf(node, id, &task) == a2a::TASK_STATE_COMPLETED; }));
  EXPECT_THAT(task.status().message().parts(0).text(), HasSubstr("paid hi"));
  bool said = false;
  for (const a2a::Message& message : task.history()) {
    for (const a2a::Part& part : message.parts()) said |= part.text() == "approved by carol";
  }
  EXPECT_TRUE(said) << task.DebugString();
  // Decided once: a second decision is refused.
  EXPECT_EQ(Decide(node, kCarol, id, false, "too late", &task).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // The audit log holds the decision (this node's log: bob tried on the first one).
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  v1::TailAuditRequest tail;
  tail.set_task_id(id);
  tail.set_action("approve");
  v1::TailAuditResponse lines;
  ASSERT_TRUE(admin->TailAudit(As(kOps).get(), tail, &lines).ok());
  ASSERT_EQ(lines.lines_size(), 1) << lines.DebugString();  // this node's: carol's yes
  EXPECT_THAT(lines.lines(0), HasSubstr("\"decision\":\"approved\""));
  EXPECT_THAT(lines.lines(0), HasSubstr("\"principal\":\"carol\""));
}

TEST_F(ApprovalTest, ADeniedTaskIsRejectedWithTheReason) {
  NodeHarness node(Durable());
  auto agent = Agents(node);
  a2a::SendMessageResponse sent;
  ASSERT_TRUE(Send(node, kBob, "pay", &sent).ok());
  a2a::Task task;
  EXPECT_EQ(Decide(node, kCarol, sent.task().id(), false, "", &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // a denial says why
  grpc::Status denied = Decide(node, kCarol, sent.task().id(), false, "over budget", &task);
  ASSERT_TRUE(denied.ok()) << denied.error_message();
  EXPECT_EQ(task.status().state(), a2a::TASK_STATE_REJECTED);
  EXPECT_EQ(task.status().message().parts(0).text(), "denied by carol: over budget");
  EXPECT_EQ(node.node().tasks().pending_approvals(), 0);
}

TEST_F(ApprovalTest, ATaskNobodyDecidesIsRejectedAtItsDeadlineEvenAcrossARestart) {
  std::string id;
  {
    NodeHarness node(Durable());
    auto agent = Agents(node);
    a2a::SendMessageResponse sent;
    ASSERT_TRUE(Send(node, kBob, "quick", &sent).ok());
    ASSERT_EQ(sent.task().status().state(), a2a::TASK_STATE_AUTH_REQUIRED);
    id = sent.task().id();
  }
  NodeHarness node(Durable());
  a2a::Task task;
  EXPECT_TRUE(WaitFor([&] { return StateOf(node, id, &task) == a2a::TASK_STATE_REJECTED; }));
  EXPECT_THAT(task.status().message().parts(0).text(),
              HasSubstr("nobody approved it before its deadline"));
}

// Two nodes, each with its own policy file: a handoff carries the caller to
// the executing node, which applies its own policy, and the task's
// delegations there are bounded by the same caller.
class HandoffGovernanceTest : public GovernanceTest {
 protected:
  static constexpr char kMeshPolicy[] = R"({"rules": [
    {"name": "agents-register", "effect": "allow", "subjects": ["role:agent"],
     "actions": ["register-agent"]},
    {"name": "callers", "effect": "allow", "subjects": ["principal:alice", "principal:bob"],
     "actions": ["send", "get"]},
    {"name": "planner", "effect": "allow", "subjects": ["agent:planner"], "actions": ["send"],
     "resources": ["skill:upper"]}]})";

  NodeOptions Node(const std::string& id, const std::string& policy,
                   std::vector<std::string> peers) {
    WriteFileAtomically(dir_.File(id + "-policy.json"), policy);
    NodeOptions options = Options(id);
    options.policy_file = dir_.File(id + "-policy.json");
    options.audit_log = dir_.File(id + "-audit.log");
    options.peers = std::move(peers);
    options.peer_heartbeat = absl::Milliseconds(100);
    options.peer_timeout = absl::Milliseconds(600);
    return options;
  }
};

TEST_F(HandoffGovernanceTest, TheExecutingNodeChecksItsPolicyForTheCarriedCaller) {
  NodeHarness n1(Node("n1", kMeshPolicy, {}));
  // n2 is stricter: bob may not use its agents.
  NodeHarness n2(
      Node("n2",
           absl::StrCat(R"({"rules": [
    {"name": "no-bob-here", "effect": "deny", "subjects": ["principal:bob"], "actions": ["*"]},
    )",
                        std::string(kMeshPolicy).substr(std::string(kMeshPolicy).find('{', 1))),
           {n1.address()}));
  auto upper = StartAgent(n2, kAgentToken, {testing::Upper("upperer")});
  ASSERT_TRUE(upper->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(WaitFor([&] { return n1.node().peers().peers_up() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return n1.node().remote_catalog().Find("n2", "upperer") != nullptr; }));

  a2a::SendMessageResponse sent;
  grpc::Status status = Send(n1, kAlice, "upper", &sent);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(sent.task().status().state(), a2a::TASK_STATE_COMPLETED) << sent.task().DebugString();

  // n1's policy lets bob; n2's does not, and refuses the handoff.
  status = Send(n1, kBob, "upper", &sent);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(sent.task().status().state(), a2a::TASK_STATE_FAILED);
  EXPECT_THAT(sent.task().status().message().parts(0).text(),
              HasSubstr("rule 'no-bob-here' denies it"));
}

TEST_F(HandoffGovernanceTest, ATaskHandedToAnotherNodeDelegatesAsItsCaller) {
  NodeHarness n1(Node("n1", kMeshPolicy, {}));
  NodeHarness n2(Node("n2", kMeshPolicy, {n1.address()}));
  auto upper = StartAgent(n1, kAgentToken, {testing::Upper("upperer")});
  auto planner = StartAgent(n2, kAgentToken, {testing::Planner({"upper"})});
  ASSERT_TRUE(upper->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(planner->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(WaitFor([&] {
    return n1.node().remote_catalog().Find("n2", "planner") != nullptr &&
           n2.node().remote_catalog().Find("n1", "upperer") != nullptr;
  }));

  // alice -> n1 -> plan on n2 -> its subtask (owned by n2) -> upper on n1.
  a2a::SendMessageResponse planned;
  grpc::Status status = Send(n1, kAlice, "plan", &planned);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(planned.task().status().state(), a2a::TASK_STATE_COMPLETED)
      << planned.task().DebugString();
  TaskQuery subtasks;
  subtasks.parent_id = planned.task().id();
  absl::StatusOr<tasks::TaskList> children = n2.node().tasks().List(subtasks, "");
  ASSERT_TRUE(children.ok()) << children.status();
  ASSERT_EQ(children->tasks.size(), 1u);
  EXPECT_EQ(children->tasks[0].info.principal(), "alice");
  // The subtask is alice's on every node: she may read it through n1.
  a2a::GetTaskRequest get;
  get.set_id(children->tasks[0].task.id());
  a2a::Task task;
  EXPECT_TRUE(n1.NewA2aStub()->GetTask(As(kAlice).get(), get, &task).ok());
}

// The audit log writes into a pipe nobody reads: its writer blocks for good
// once the pipe is full. Requests go on at their pace; the entries past the
// queue are dropped and counted.
TEST_F(GovernanceTest, AnAuditLogThatCannotBeWrittenNeverHoldsUpARequest) {
  signal(SIGPIPE, SIG_IGN);  // as meshd does
  const std::string fifo = dir_.File("audit.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // A reader that never reads keeps the pipe open (and fills up at 64 KiB).
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  NodeOptions options = Options();
  options.audit_log = fifo;
  options.audit_max_queued = 64;
  NodeHarness node(options);
  auto agent = StartAgent(node, kAgentToken, {testing::Echo("echoer")});
  ASSERT_TRUE(agent->WaitUntilRegistered(absl::Seconds(10)).ok());
  auto stub = node.NewA2aStub();
  for (int i = 0; i < 2000; ++i) {
    a2a::SendMessageResponse sent;
    grpc::Status status = stub->SendMessage(As(kAlice).get(), ForSkill("echo", "x"), &sent);
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
    ASSERT_EQ(sent.task().status().state(), a2a::TASK_STATE_COMPLETED);
  }
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  v1::TailAuditResponse tail;
  ASSERT_TRUE(admin->TailAudit(As(kOps).get(), v1::TailAuditRequest(), &tail).ok());
  // 2000 decisions of ~330 bytes: far past what the pipe and the queue hold.
  EXPECT_GT(tail.dropped(), 1000);
  close(reader);  // the writer's blocked write fails; the node can stop
}

}  // namespace
}  // namespace a2amesh
