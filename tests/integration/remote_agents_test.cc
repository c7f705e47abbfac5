// Remote A2A agents by URL, in one process: node A hosts, with
// --remote-agent, the A2A server that node B is (B's card, and B's JSON-RPC
// or gRPC binding), so that A's tasks for B's skills are A2A calls from A's
// remote agent link to B, where SDK agents serve them. A and B are not peers: the
// only way from A to B is the link. (tests/e2e/remote_agent_e2e_test.cc does
// the same with the official JS SDK's server.)

#include "agenthost/remote_agents.h"

#include <atomic>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "a2a/proto_json.h"
#include "a2amesh/sdk/agent.h"
#include "a2amesh/v1/admin.grpc.pb.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "testing/cards.h"
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
using ::a2amesh::testing::Card;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::ReadAll;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::StreamResponse;
using ::testing::HasSubstr;

// The binding A calls B over (--remote-agent-binding).
class RemoteAgentsTest : public ::testing::TestWithParam<std::string> {
 protected:
  RemoteAgentsTest() : b_(std::make_unique<NodeHarness>(NodeHarness::TestOptions("b"))) {
    NodeOptions a = NodeHarness::TestOptions("a");
    a.remote_agents = {absl::StrCat("far=http://127.0.0.1:", b_->node().http_port(),
                                    "/.well-known/agent-card.json max-concurrency=3")};
    a.remote_agent_binding = GetParam();
    a.remote_agent_refresh = absl::Milliseconds(100);
    a.agent_grace = absl::ZeroDuration();
    a_ = std::make_unique<NodeHarness>(a);
  }

  bool ARoutesToFar() { return a_->node().catalog().Find("far") != nullptr; }

  std::unique_ptr<NodeHarness> b_;
  std::unique_ptr<NodeHarness> a_;
};

TEST_P(RemoteAgentsTest, ANodeRunsTasksOnAnA2aServerItReachesByUrl) {
  std::atomic<int> cancels{0};
  auto agents = b_->StartAgent(
      {testing::Upper("upper"), {"slow", Card("slow", {"slow"}), 4, [&](sdk::TaskContext& task) {
                                   task.SetWorking();
                                   if (task.WaitForCancel(absl::Seconds(20))) ++cancels;
                                 }}});
  // The card is fetched again until it lists B's skills.
  ASSERT_TRUE(WaitFor([&] {
    auto far = a_->node().catalog().Find("far");
    return far != nullptr && far->card().skills_size() == 2;
  }));
  EXPECT_EQ(a_->node().catalog().Find("far")->max_concurrency(), 3);  // its own, not the node's

  // Streamed through the link, in order.
  auto stub = a_->NewA2aStub();
  auto context = A2aContext();
  auto reader = stub->SendStreamingMessage(context.get(), ForSkill("upper", "ab"));
  grpc::Status status;
  std::vector<StreamResponse> events = ReadAll(*reader, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_THAT(events[0].task().id(), HasSubstr("a~"));
  EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  EXPECT_EQ(events[2].artifact_update().artifact().parts(0).text(), "A");
  EXPECT_EQ(events[3].artifact_update().artifact().parts(0).text(), "B");
  EXPECT_TRUE(events[3].artifact_update().append());
  EXPECT_EQ(events[4].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(events[4].status_update().status().message().parts(0).text(), "done on upper@b");

  // A cancel on A reaches B's task and its agent.
  lf::a2a::v1::SendMessageRequest slow = ForSkill("slow", "x");
  slow.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), slow, &response).ok());
  const std::string id = response.task().id();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<lf::a2a::v1::Task> task = a_->node().tasks().Get(id);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  lf::a2a::v1::Task canceled;
  ASSERT_TRUE(stub->CancelTask(A2aContext().get(), cancel, &canceled).ok());
  EXPECT_EQ(canceled.status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  EXPECT_TRUE(WaitFor([&] { return cancels.load() == 1; }));

  // B gone: A's task fails naming the agent, and "far" leaves routing.
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), slow, &response).ok());
  const std::string cut = response.task().id();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<lf::a2a::v1::Task> task = a_->node().tasks().Get(cut);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
  agents.reset();
  b_.reset();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<lf::a2a::v1::Task> task = a_->node().tasks().Get(cut);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_FAILED;
  }));
  // B's card said it stays fresh for minutes (Cache-Control), so A does not
  // ask for it again on its own; the next call finds B gone, fails naming
  // the agent, and has the card asked at once: it does not answer, and "far"
  // leaves routing.
  slow.mutable_configuration()->set_return_immediately(false);
  if (ARoutesToFar()) {
    ASSERT_TRUE(stub->SendMessage(A2aContext().get(), slow, &response).ok());
    EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_FAILED);
    EXPECT_THAT(response.task().status().message().parts(0).text(), HasSubstr("far"));
  }
  EXPECT_TRUE(WaitFor([&] { return !ARoutesToFar(); }));
}

// Admin AddRemoteAgent and RemoveRemoteAgent: node C (no --remote-agent)
// hosts B's server at runtime; the agent lists how it is called; removed
// while a task runs on it, the task fails and the agent leaves routing.
TEST(RemoteAgentAdminTest, AnAgentAddedAndRemovedAtRuntime) {
  NodeHarness b(NodeHarness::TestOptions("b"));
  auto agents = b.StartAgent({{"slow", Card("slow", {"slow"}), 4, [&](sdk::TaskContext& task) {
                                 task.SetWorking();
                                 (void)task.WaitForCancel(absl::Seconds(20));
                               }}});
  NodeOptions options = NodeHarness::TestOptions("c");
  options.agent_grace = absl::ZeroDuration();
  NodeHarness c(options);
  auto admin =
      v1::Admin::NewStub(grpc::CreateChannel(c.address(), grpc::InsecureChannelCredentials()));
  const std::string card =
      absl::StrCat("http://127.0.0.1:", b.node().http_port(), "/.well-known/agent-card.json");

  v1::AddRemoteAgentRequest add;
  add.set_card_url(card);
  add.set_agent_id("far");
  add.set_max_concurrency(5);
  v1::AgentInfo added;
  grpc::Status status = admin->AddRemoteAgent(A2aContext().get(), add, &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(added.id(), "far@c");
  EXPECT_EQ(added.health(), v1::AGENT_HEALTH_READY);
  EXPECT_EQ(added.remote().card_url(), card);
  EXPECT_EQ(added.remote().protocol_version(), "1.0");
  EXPECT_FALSE(added.remote().binding().empty());
  EXPECT_EQ(added.max_concurrency(), 5);
  EXPECT_NE(c.node().catalog().Find("far"), nullptr);

  // Twice, or a card that does not answer: refused, naming why.
  status = admin->AddRemoteAgent(A2aContext().get(), add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("is hosted here already"));
  v1::AddRemoteAgentRequest nowhere;
  nowhere.set_card_url("http://127.0.0.1:1/card.json");
  status = admin->AddRemoteAgent(A2aContext().get(), nowhere, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("http://127.0.0.1:1/card.json"));
  nowhere.set_card_url("file:///etc/passwd");
  status = admin->AddRemoteAgent(A2aContext().get(), nowhere, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  nowhere.set_card_url(card);
  nowhere.set_max_concurrency(-1);
  status = admin->AddRemoteAgent(A2aContext().get(), nowhere, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_concurrency -1 is negative"));

  // The route says how it would be called.
  v1::ExplainRouteRequest explain;
  explain.set_skill("slow");
  v1::RouteExplanation route;
  ASSERT_TRUE(admin->ExplainRoute(A2aContext().get(), explain, &route).ok());
  EXPECT_EQ(route.pick_agent_id(), "far@c");
  ASSERT_GT(route.candidates_size(), 0);
  EXPECT_EQ(route.candidates(0).remote().card_url(), card);

  // Removed while a task runs on it.
  lf::a2a::v1::SendMessageRequest slow = ForSkill("slow", "x");
  slow.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(c.NewA2aStub()->SendMessage(A2aContext().get(), slow, &response).ok());
  const std::string id = response.task().id();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<lf::a2a::v1::Task> task = c.node().tasks().Get(id);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
  v1::RemoveRemoteAgentRequest remove;
  remove.set_agent("far");
  v1::RemoveRemoteAgentResponse removed;
  status = admin->RemoveRemoteAgent(A2aContext().get(), remove, &removed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(c.node().catalog().Find("far"), nullptr);
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<lf::a2a::v1::Task> task = c.node().tasks().Get(id);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_FAILED;
  }));
  EXPECT_THAT(c.node().tasks().Get(id)->status().message().parts(0).text(),
              HasSubstr("was removed from this node"));
  status = admin->RemoveRemoteAgent(A2aContext().get(), remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  // And added again, by its card's URL alone.
  add.clear_agent_id();
  status = admin->AddRemoteAgent(A2aContext().get(), add, &added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(added.agent_id(), "a2a-mesh-node-b");  // from the name of B's card
}

// A remote agent that wants credentials: node B serves TLS and takes only
// callers with a bearer token it knows (and, in the second part, a client
// certificate of its CA). A hosts it with them, or without.
class SecureRemoteAgentTest : public ::testing::TestWithParam<std::string> {
 protected:
  SecureRemoteAgentTest() {
    testing::WriteFileAtomically(dir_.File("tokens"),
                                 "mesh-a-0123456789abcdef node-a\n"
                                 "agent-b-0123456789abcdef slow-agent "
                                 "agent:*,skill:*\n");
    testing::WriteFileAtomically(dir_.File("good-token"), "mesh-a-0123456789abcdef\n");
    testing::WriteFileAtomically(dir_.File("bad-token"), "guessed-0123456789abcdef\n");
    for (const char* who : {"b", "a"}) {
      testing::KeyCert kc = ca_.IssueNode(who);
      testing::WriteFileAtomically(dir_.File(absl::StrCat(who, ".crt")), kc.cert_pem);
      testing::WriteFileAtomically(dir_.File(absl::StrCat(who, ".key")), kc.key_pem);
    }
    testing::WriteFileAtomically(dir_.File("ca.crt"), ca_.cert_pem());
  }

  // B: TLS, tokens; client certificates too if `certs`.
  std::unique_ptr<NodeHarness> StartB(bool certs) {
    NodeOptions options = NodeHarness::TestOptions("b");
    options.auth.token_file = dir_.File("tokens");
    options.auth.client_certificates = certs;
    options.tls.cert_file = dir_.File("b.crt");
    options.tls.key_file = dir_.File("b.key");
    options.tls.client_ca_file = dir_.File("ca.crt");
    auto b = std::make_unique<NodeHarness>(options);
    sdk::AgentOptions agent;
    agent.node = b->address();
    agent.token = "agent-b-0123456789abcdef";
    agent.tls = true;
    agent.tls_ca_file = dir_.File("ca.crt");
    if (certs) {
      agent.tls_cert_file = dir_.File("b.crt");
      agent.tls_key_file = dir_.File("b.key");
    }
    agent.agents = {testing::Upper("upper")};
    absl::StatusOr<std::unique_ptr<sdk::Agent>> started = sdk::Agent::Start(std::move(agent));
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) {
      EXPECT_TRUE((*started)->WaitUntilRegistered(absl::Seconds(10)).ok());
      agents_ = *std::move(started);
    }
    return b;
  }

  // A, hosting B's agent by `flag` (the URL of B's card, then options).
  std::unique_ptr<NodeHarness> StartA(NodeHarness& b, const std::string& options) {
    NodeOptions a = NodeHarness::TestOptions("a");
    a.remote_agents = {absl::StrCat("far=https://127.0.0.1:", b.node().http_port(),
                                    "/.well-known/agent-card.json ", options)};
    a.remote_agent_binding = GetParam();
    a.remote_agent_refresh = absl::Milliseconds(100);
    return std::make_unique<NodeHarness>(a);
  }

  // A task for B's skill through A: its last event's state and text.
  std::pair<lf::a2a::v1::TaskState, std::string> Run(const NodeHarness& a) {
    auto stub = a.NewA2aStub();
    auto context = A2aContext();
    auto reader = stub->SendStreamingMessage(context.get(), ForSkill("upper", "x"));
    grpc::Status status;
    std::vector<StreamResponse> events = ReadAll(*reader, &status);
    if (!status.ok() || events.empty()) {
      return {lf::a2a::v1::TASK_STATE_UNSPECIFIED, status.error_message()};
    }
    const auto& last = events.back().status_update().status();
    return {last.state(), last.message().parts_size() > 0 ? last.message().parts(0).text() : ""};
  }

  // Why A keeps "far" out of routing ("" while it is in).
  std::string WhyOut(NodeHarness& a) {
    auto admin =
        v1::Admin::NewStub(grpc::CreateChannel(a.address(), grpc::InsecureChannelCredentials()));
    v1::ListAgentsResponse agents;
    if (!admin->ListAgents(A2aContext().get(), {}, &agents).ok()) return "no answer";
    for (const v1::AgentInfo& agent : agents.agents()) {
      if (agent.agent_id() == "far" || agent.remote().card_url().find("https://") == 0) {
        return agent.remote().error();
      }
    }
    return "not listed";
  }

  testing::TempDir dir_;
  testing::TestCa ca_;
  std::unique_ptr<sdk::Agent> agents_;
};

TEST_P(SecureRemoteAgentTest, TheRightTokenAndCaGetThrough) {
  std::unique_ptr<NodeHarness> b = StartB(/*certs=*/false);
  std::unique_ptr<NodeHarness> a = StartA(
      *b, absl::StrCat("token-file=", dir_.File("good-token"), " ca-file=", dir_.File("ca.crt")));
  ASSERT_TRUE(WaitFor([&] { return a->node().catalog().Find("far") != nullptr; })) << WhyOut(*a);
  auto [state, text] = Run(*a);
  EXPECT_EQ(state, lf::a2a::v1::TASK_STATE_COMPLETED) << text;
}

TEST_P(SecureRemoteAgentTest, AWrongTokenIsRefusedByTheAgentAndTheTaskSaysSo) {
  std::unique_ptr<NodeHarness> b = StartB(/*certs=*/false);
  // The card is public; the calls are not.
  std::unique_ptr<NodeHarness> a = StartA(
      *b, absl::StrCat("token-file=", dir_.File("bad-token"), " ca-file=", dir_.File("ca.crt")));
  ASSERT_TRUE(WaitFor([&] { return a->node().catalog().Find("far") != nullptr; })) << WhyOut(*a);
  auto [state, text] = Run(*a);
  EXPECT_EQ(state, lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(text, HasSubstr("far"));
  // (gRPC: UNAUTHENTICATED; JSON-RPC: the node's -32040 error.)
  EXPECT_THAT(text, HasSubstr("authentication required"));
}

TEST_P(SecureRemoteAgentTest, AnAgentWhoseCertificateTheNodeCannotCheckIsNeverCalled) {
  std::unique_ptr<NodeHarness> b = StartB(/*certs=*/false);
  std::unique_ptr<NodeHarness> a =
      StartA(*b, absl::StrCat("token-file=", dir_.File("good-token")));  // no ca-file
  ASSERT_TRUE(WaitFor([&] { return WhyOut(*a).find("certificate") != std::string::npos; }))
      << WhyOut(*a);
  EXPECT_EQ(a->node().catalog().Find("far"), nullptr);
}

TEST_P(SecureRemoteAgentTest, AClientCertificateProvesTheNodeToAnAgentThatTakesThem) {
  std::unique_ptr<NodeHarness> b = StartB(/*certs=*/true);
  const std::string ca = absl::StrCat("ca-file=", dir_.File("ca.crt"));
  {
    // No token: the certificate alone proves who calls.
    std::unique_ptr<NodeHarness> a = StartA(
        *b, absl::StrCat(ca, " cert-file=", dir_.File("a.crt"), " key-file=", dir_.File("a.key")));
    ASSERT_TRUE(WaitFor([&] { return a->node().catalog().Find("far") != nullptr; })) << WhyOut(*a);
    auto [state, text] = Run(*a);
    EXPECT_EQ(state, lf::a2a::v1::TASK_STATE_COMPLETED) << text;
  }
  // Neither: refused.
  std::unique_ptr<NodeHarness> a = StartA(*b, ca);
  ASSERT_TRUE(WaitFor([&] { return a->node().catalog().Find("far") != nullptr; })) << WhyOut(*a);
  auto [state, text] = Run(*a);
  EXPECT_EQ(state, lf::a2a::v1::TASK_STATE_FAILED) << text;
  EXPECT_THAT(text, HasSubstr("authentication required"));
}

INSTANTIATE_TEST_SUITE_P(Bindings, SecureRemoteAgentTest, ::testing::Values("JSONRPC", "GRPC"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "HTTP+JSON" ? std::string("HTTP_JSON") : info.param;
                         });

TEST(RemoteAgentFlagTest, CredentialOptionsAreParsedAndMistakesNamed) {
  absl::StatusOr<agenthost::RemoteAgentSpec> spec = agenthost::ParseRemoteAgent(
      "far=https://h/card.json token-file=/t ca-file=/ca cert-file=/c key-file=/k "
      "max-concurrency=4");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->agent_id, "far");
  EXPECT_EQ(spec->card_url, "https://h/card.json");
  EXPECT_EQ(spec->token_file, "/t");
  EXPECT_EQ(spec->ca_file, "/ca");
  EXPECT_EQ(spec->cert_file, "/c");
  EXPECT_EQ(spec->key_file, "/k");
  EXPECT_EQ(spec->max_concurrency, 4);
  EXPECT_EQ(agenthost::ParseRemoteAgent("https://h/c.json")->max_concurrency, 0);  // the node's
  EXPECT_THAT(agenthost::ParseRemoteAgent("https://h/c.json max-concurrency=0").status().message(),
              HasSubstr("max-concurrency '0' is not a whole number of at least 1"));
  EXPECT_THAT(agenthost::ParseRemoteAgent("https://h/c.json tokenfile=/t").status().message(),
              HasSubstr("unknown option 'tokenfile'"));
  EXPECT_THAT(agenthost::ParseRemoteAgent("https://h/c.json cert-file=/c").status().message(),
              HasSubstr("cert-file and key-file go together"));
  EXPECT_THAT(agenthost::ParseRemoteAgent("https://h/c.json token-file=").status().message(),
              HasSubstr("token-file needs a path"));
}

TEST(RemoteAgentFlagTest, ABadRemoteAgentFlagIsRefusedNamingIt) {
  NodeOptions options = NodeHarness::TestOptions("c");
  options.remote_agents = {"ftp://example.com/card.json"};
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(options);
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(node.status().message(), HasSubstr("--remote-agent ftp://example.com/card.json"));
  options.remote_agents = {"Not!Valid=http://example.com/card.json"};
  node = Node::Start(options);
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(node.status().message(), HasSubstr("the id"));
}

lf::a2a::v1::AgentCard Offering(
    std::vector<std::tuple<std::string, std::string, std::string>> interfaces) {
  lf::a2a::v1::AgentCard card;
  for (const auto& [binding, version, url] : interfaces) {
    auto* interface = card.add_supported_interfaces();
    interface->set_protocol_binding(binding);
    interface->set_protocol_version(version);
    interface->set_url(url);
  }
  return card;
}

// Card(name, skills) served at `url` over `binding` at A2A 1.0, the one
// interface it lists; JSON (a test HTTP server's answer).
std::string CardAt(const std::string& name, std::vector<std::string> skills,
                   const std::string& binding, const std::string& url, bool streaming = true,
                   const std::string& tenant = "") {
  lf::a2a::v1::AgentCard card = Card(name, std::move(skills));
  card.mutable_capabilities()->set_streaming(streaming);
  auto* interface = card.add_supported_interfaces();
  interface->set_url(url);
  interface->set_protocol_binding(binding);
  interface->set_protocol_version("1.0");
  interface->set_tenant(tenant);
  return a2a::ToJson(card);
}

// Sends `text` for `skill` to `node` and expects the task to fail: why it did.
std::string FailedWith(NodeHarness& node, const std::string& skill, const std::string& text) {
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status =
      node.NewA2aStub()->SendMessage(A2aContext().get(), ForSkill(skill, text), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  return response.task().status().message().parts_size() > 0
             ? response.task().status().message().parts(0).text()
             : "";
}

TEST(RemoteInterfaceTest, TheCardsFirstInterfaceAt1_0ElseAt0_3OverJsonRpc) {
  // 1.0 wins over an earlier 0.3 interface; the card's order otherwise.
  absl::StatusOr<agenthost::RemoteInterface> chosen =
      agenthost::ChooseRemoteInterface(Offering({{"JSONRPC", "0.3.0", "http://h/v03"},
                                                 {"HTTP+JSON", "1.0", "http://h/rest"},
                                                 {"GRPC", "1.0", "grpc://h:1"},
                                                 {"JSONRPC", "1.0", "http://h/v1"}}),
                                       "", /*can_http=*/true);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->binding, "HTTP+JSON");
  EXPECT_EQ(chosen->url, "http://h/rest");
  EXPECT_FALSE(chosen->legacy());
  // Asked for.
  chosen = agenthost::ChooseRemoteInterface(
      Offering({{"GRPC", "1.0", "h:1"}, {"JSONRPC", "1.0", "http://h/v1"}}), "JSONRPC", true);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->url, "http://h/v1");
  // Only 0.3: JSON-RPC (0.3's gRPC is the a2a.v1 service, not spoken here).
  chosen = agenthost::ChooseRemoteInterface(
      Offering({{"GRPC", "0.3.0", "h:1"}, {"JSONRPC", "0.3.0", "http://h/v03"}}), "", true);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->url, "http://h/v03");
  EXPECT_TRUE(chosen->legacy());
}

TEST(RemoteInterfaceTest, ACardWithNothingTheNodeCallsIsRefusedListingWhatItOffers) {
  absl::StatusOr<agenthost::RemoteInterface> chosen =
      agenthost::ChooseRemoteInterface(Offering({{"GRPC", "0.3.0", "h:1"},
                                                 {"JSONRPC", "0.2.5", "http://h/v02"},
                                                 {"HTTP+JSON", "0.3.0", "http://h/rest"}}),
                                       "", true);
  ASSERT_FALSE(chosen.ok());
  EXPECT_THAT(chosen.status().message(),
              HasSubstr("it offers GRPC 0.3.0, JSONRPC 0.2.5, HTTP+JSON 0.3.0"));
  // HTTP+JSON at 1.0 is called; its URL's trailing '/' goes (paths follow).
  chosen = agenthost::ChooseRemoteInterface(Offering({{"HTTP+JSON", "1.0", "http://h/rest/"}}), "",
                                            true);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->binding, "HTTP+JSON");
  EXPECT_EQ(chosen->url, "http://h/rest");
  // Without libcurl, JSON-RPC is out of reach.
  chosen = agenthost::ChooseRemoteInterface(Offering({{"JSONRPC", "1.0", "http://h/v1"}}), "",
                                            /*can_http=*/false);
  ASSERT_FALSE(chosen.ok());
  EXPECT_THAT(chosen.status().message(), HasSubstr("this build has no libcurl"));
}

// An agent whose card answers but whose JSON-RPC endpoint does not work:
// failed calls in a row take it out of routing; a JSON-RPC error is an answer.
TEST(RemoteAgentHealthTest, CallsThatDoNotReachTheAgentTakeItOutOfRouting) {
  std::atomic<bool> http_errors{false};
  int port = 0;
  auto server =
      http::Server::Start("127.0.0.1:0", http::ServerOptions(), [&](const http::Request& request) {
        http::Response response;
        response.content_type = "application/json";
        if (request.path == "/card.json") {
          response.body =
              CardAt("flaky", {"flaky"}, "JSONRPC", absl::StrCat("http://127.0.0.1:", port, "/rpc"),
                     /*streaming=*/false);
        } else if (http_errors) {
          response.status = 503;
          response.body = "{}";
        } else {
          response.body =
              R"({"jsonrpc":"2.0","id":"1","error":{"code":-32603,"message":"out of tokens"}})";
        }
        return response;
      });
  ASSERT_TRUE(server.ok()) << server.status();
  port = (*server)->port();
  NodeOptions options = NodeHarness::TestOptions("a");
  options.remote_agents = {absl::StrCat("http://127.0.0.1:", port, "/card.json")};
  options.remote_agent_refresh = absl::Hours(1);  // no second chance in this test
  options.remote_agent_max_failures = 2;
  options.agent_grace = absl::ZeroDuration();
  NodeHarness a(options);
  ASSERT_TRUE(WaitFor([&] { return a.node().catalog().Find("flaky") != nullptr; }));
  auto failed_with = [&](const std::string& text) { return FailedWith(a, "flaky", text); };
  // The agent answers, with an error: it stays.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(failed_with("x"), HasSubstr("JSON-RPC error -32603: out of tokens"));
  }
  EXPECT_NE(a.node().catalog().Find("flaky"), nullptr);
  // HTTP errors: the second in a row takes it out.
  http_errors = true;
  EXPECT_THAT(failed_with("y"), HasSubstr("HTTP 503"));
  EXPECT_NE(a.node().catalog().Find("flaky"), nullptr);
  EXPECT_THAT(failed_with("z"), HasSubstr("flaky"));
  EXPECT_TRUE(WaitFor([&] { return a.node().catalog().Find("flaky") == nullptr; }));

  // The metrics say so, by agent.
  const std::string metrics = absl::StrCat("127.0.0.1:", a.node().metrics_port());
  auto sample = [&](const std::string& series) {
    return testing::ScrapeSample(metrics, series).value_or(-1);
  };
  EXPECT_EQ(sample(R"(a2amesh_remote_agent_up{agent="flaky"})"), 0);
  EXPECT_EQ(sample(R"(a2amesh_remote_agent_failed_calls{agent="flaky"})"), 2);
  EXPECT_EQ(sample(R"(a2amesh_remote_agent_calls_total{agent="flaky",outcome="failed"})"), 3);
  EXPECT_EQ(sample(R"(a2amesh_remote_agent_calls_total{agent="flaky",outcome="unreachable"})"), 2);
  EXPECT_EQ(sample(R"(a2amesh_remote_agent_call_duration_seconds_count{agent="flaky"})"), 5);
}

// An HTTP+JSON agent behind a tenant: the operation and the tenant are the
// path; an error answer (a google.rpc.Status) is the agent's, a 503 is not.
TEST(RemoteAgentRestTest, TheTenantIsInThePathAndErrorsAreTheAgentsAnswer) {
  absl::Mutex mu;
  std::vector<std::string> paths;
  int status = 429;
  int port = 0;
  auto server =
      http::Server::Start("127.0.0.1:0", http::ServerOptions(), [&](const http::Request& request) {
        http::Response response;
        response.content_type = "application/json";
        if (request.path == "/card.json") {
          response.body = CardAt("rest", {"rest"}, "HTTP+JSON",
                                 absl::StrCat("http://127.0.0.1:", port, "/a2a/"),
                                 /*streaming=*/false, /*tenant=*/"team a");
          return response;
        }
        absl::MutexLock lock(&mu);
        paths.push_back(request.path);
        response.status = status;
        response.body = status == 503 ? "busy" : R"({"error":{"code":429,
            "status":"RESOURCE_EXHAUSTED","message":"slow down"}})";
        return response;
      });
  ASSERT_TRUE(server.ok()) << server.status();
  port = (*server)->port();
  NodeOptions options = NodeHarness::TestOptions("a");
  options.remote_agents = {absl::StrCat("http://127.0.0.1:", port, "/card.json")};
  options.remote_agent_refresh = absl::Hours(1);
  options.remote_agent_max_failures = 2;
  options.agent_grace = absl::ZeroDuration();
  NodeHarness a(options);
  ASSERT_TRUE(WaitFor([&] { return a.node().catalog().Find("rest") != nullptr; }));
  auto answer = [&](int with) {
    absl::MutexLock lock(&mu);
    status = with;
  };
  auto failed_with = [&](const std::string& text) { return FailedWith(a, "rest", text); };
  answer(503);  // no answer: one failure
  EXPECT_THAT(failed_with("w"), HasSubstr("HTTP 503"));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(paths, ::testing::ElementsAre("/a2a/team%20a/message:send"));
  }
  answer(429);  // the agent's answer: the failures in a row start again
  EXPECT_THAT(failed_with("x"), HasSubstr("HTTP 429 RESOURCE_EXHAUSTED: slow down"));
  answer(503);
  EXPECT_THAT(failed_with("y"), HasSubstr("HTTP 503"));
  EXPECT_NE(a.node().catalog().Find("rest"), nullptr);
  EXPECT_THAT(failed_with("z"), HasSubstr("rest"));  // the second in a row
  EXPECT_TRUE(WaitFor([&] { return a.node().catalog().Find("rest") == nullptr; }));
}

// Cards are fetched again with the ETag they came with (a 304 keeps the agent
// as it is), and not at all while their Cache-Control says they are fresh.
TEST(RemoteAgentCardTest, ARefreshHonoursETagAndCacheControl) {
  struct Served {
    std::string etag;
    std::string cache_control;
    std::vector<std::string> skills;
    int full = 0;          // 200s
    int not_modified = 0;  // 304s
  };
  absl::Mutex mu;
  std::map<std::string, Served> served;  // by path
  served["/tagged.json"] = {"\"1\"", "no-cache", {"tagged"}};
  served["/cached.json"] = {"", "max-age=3600", {"cached"}};
  int port = 0;
  auto server =
      http::Server::Start("127.0.0.1:0", http::ServerOptions(), [&](const http::Request& request) {
        http::Response response;
        absl::MutexLock lock(&mu);
        auto it = served.find(request.path);
        if (it == served.end()) {
          response.status = 404;
          return response;
        }
        Served& card = it->second;
        if (!card.etag.empty()) response.headers.emplace_back("ETag", card.etag);
        response.headers.emplace_back("Cache-Control", card.cache_control);
        const std::string* tag = request.Header("if-none-match");
        if (tag != nullptr && *tag == card.etag) {
          ++card.not_modified;
          response.status = 304;
          return response;
        }
        ++card.full;
        response.content_type = "application/json";
        response.body = CardAt(request.path.substr(1, 6), card.skills, "JSONRPC",
                               absl::StrCat("http://127.0.0.1:", port, "/rpc"));
        return response;
      });
  ASSERT_TRUE(server.ok()) << server.status();
  port = (*server)->port();
  NodeOptions options = NodeHarness::TestOptions("a");
  options.remote_agents = {absl::StrCat("tagged=http://127.0.0.1:", port, "/tagged.json"),
                           absl::StrCat("cached=http://127.0.0.1:", port, "/cached.json")};
  options.remote_agent_refresh = absl::Milliseconds(50);
  NodeHarness a(options);
  auto seen = [&](const std::string& path) {
    absl::MutexLock lock(&mu);
    return served[path];
  };
  // Asked again with its ETag: 304s, and the agent stays as it was.
  ASSERT_TRUE(WaitFor([&] { return seen("/tagged.json").not_modified >= 3; }));
  EXPECT_EQ(seen("/tagged.json").full, 1);
  ASSERT_NE(a.node().catalog().Find("tagged"), nullptr);
  EXPECT_EQ(a.node().catalog().Find("tagged")->card().skills_size(), 1);
  // Fresh for an hour: fetched once, while the other was fetched four times.
  EXPECT_EQ(seen("/cached.json").full, 1);
  EXPECT_EQ(seen("/cached.json").not_modified, 0);
  EXPECT_NE(a.node().catalog().Find("cached"), nullptr);

  // A new card, a new ETag: registered again with it.
  {
    absl::MutexLock lock(&mu);
    served["/tagged.json"].etag = "\"2\"";
    served["/tagged.json"].skills = {"tagged", "more"};
  }
  EXPECT_TRUE(WaitFor([&] {
    auto tagged = a.node().catalog().Find("tagged");
    return tagged != nullptr && tagged->card().skills_size() == 2;
  }));
  EXPECT_EQ(seen("/tagged.json").full, 2);
}

INSTANTIATE_TEST_SUITE_P(Bindings, RemoteAgentsTest,
                         ::testing::Values("JSONRPC", "GRPC", "HTTP+JSON"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "HTTP+JSON" ? std::string("HTTP_JSON") : info.param;
                         });

}  // namespace
}  // namespace a2amesh
