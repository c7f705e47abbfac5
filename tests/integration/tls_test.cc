// TLS on the gRPC port and mTLS between peers, from the attacker's side too:
// real nodes on loopback, certificates made with OpenSSL in the test.
#include <grpc/grpc_security_constants.h>

#include <memory>
#include <regex>
#include <string>

#include "a2amesh/v1/peer.grpc.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/http_client.h"
#include "testing/mesh_fixture.h"
#include "testing/node_harness.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::CertSpec;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::KeyCert;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::TempDir;
using ::a2amesh::testing::TestCa;
using ::a2amesh::testing::WaitFor;
using ::a2amesh::testing::WriteFileAtomically;
using ::testing::HasSubstr;
namespace a2a = ::lf::a2a::v1;

class TlsMeshTest : public ::testing::Test {
 protected:
  TlsMeshTest() { WriteFileAtomically(CaFile(), ca_.cert_pem()); }

  std::string CaFile() const { return dir_.File("ca.crt"); }

  // Writes `kc` as node `id`'s certificate and key.
  void WriteNodeFiles(const std::string& id, const KeyCert& kc) {
    WriteFileAtomically(dir_.File(id + ".key"), kc.key_pem);
    WriteFileAtomically(dir_.File(id + ".crt"), kc.cert_pem);
  }

  // A test node serving TLS with a certificate of the mesh CA naming it.
  NodeOptions TlsNode(const std::string& id) {
    WriteNodeFiles(id, ca_.IssueNode(id));
    NodeOptions options = NodeHarness::TestOptions(id);
    options.tls.cert_file = dir_.File(id + ".crt");
    options.tls.key_file = dir_.File(id + ".key");
    options.tls.client_ca_file = CaFile();
    options.tls.reload_interval = absl::Seconds(1);
    options.peer_heartbeat = absl::Milliseconds(100);
    options.peer_timeout = absl::Milliseconds(600);
    return options;
  }

  // A channel of its own (no connection shared with other channels) that
  // trusts the mesh CA and presents `client`, if any.
  std::shared_ptr<grpc::Channel> Dial(const std::string& address,
                                      const KeyCert* client = nullptr) const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_.cert_pem();
    if (client != nullptr) {
      ssl.pem_cert_chain = client->cert_pem;
      ssl.pem_private_key = client->key_pem;
    }
    return DialWith(address, grpc::SslCredentials(ssl));
  }
  static std::shared_ptr<grpc::Channel> DialWith(
      const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(address, std::move(credentials), args);
  }

  std::unique_ptr<sdk::Agent> StartTlsAgent(NodeHarness& node, sdk::AgentSpec spec) {
    sdk::AgentOptions options;
    options.node = node.address();
    options.agents = {std::move(spec)};
    options.tls_ca_file = CaFile();
    options.min_backoff = absl::Milliseconds(20);
    options.max_backoff = absl::Milliseconds(200);
    absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(std::move(options));
    EXPECT_TRUE(agent.ok()) << agent.status();
    if (!agent.ok()) return nullptr;
    absl::Status registered = (*agent)->WaitUntilRegistered(absl::Seconds(10));
    EXPECT_TRUE(registered.ok()) << registered;
    return std::move(agent).value();
  }

  // a2amesh_peer_refusals_total{reason=...} on `node`'s /metrics (plain
  // text unless tls.metrics).
  static int Refusals(NodeHarness& node, const std::string& reason) {
    absl::StatusOr<testing::HttpResult> scrape =
        testing::HttpGet(node.node().metrics_address(), "/metrics");
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    if (!scrape.ok()) return -1;
    std::smatch match;
    std::regex line("a2amesh_peer_refusals_total\\{reason=\"" + reason + "\"\\} (\\d+)");
    if (!std::regex_search(scrape->body, match, line)) return -1;
    return std::stoi(match[1]);
  }

  static grpc::Status GetMissingTask(const std::shared_ptr<grpc::Channel>& channel,
                                     grpc::ClientContext* context) {
    a2a::GetTaskRequest request;
    request.set_id("no-such-task");
    a2a::Task task;
    return a2a::A2AService::NewStub(channel)->GetTask(context, request, &task);
  }

  // Opens an Exchange as a would-be peer presenting `client` and says it is
  // `claimed`. Returns how the stream ended, or OK as soon as the node sends
  // its catalog (it took the caller for a peer).
  grpc::Status ExchangeAs(const std::string& address, const KeyCert* client,
                          const std::string& claimed) {
    auto stub = v1::Peer::NewStub(Dial(address, client));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Exchange(&context);
    v1::PeerMessage hello;
    hello.mutable_hello()->set_node_id(claimed);
    hello.mutable_hello()->set_incarnation(1);
    hello.mutable_hello()->set_address("127.0.0.1:1");
    hello.mutable_hello()->set_protocol(1);
    stream->Write(hello);
    v1::PeerMessage in;
    while (stream->Read(&in)) {
      if (in.has_advert()) {
        context.TryCancel();
        stream->Finish();
        return grpc::Status::OK;
      }
    }
    return stream->Finish();
  }

  TempDir dir_;
  TestCa ca_;
};

TEST_F(TlsMeshTest, ThePortRefusesPlainTextAndServesTls) {
  NodeHarness n1(TlsNode("n1"));

  auto plain = DialWith(n1.address(), grpc::InsecureChannelCredentials());
  auto context = A2aContext();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(GetMissingTask(plain, context.get()).error_code(), grpc::StatusCode::UNAVAILABLE);

  // A client that does not trust the mesh CA does not get through either.
  TestCa stranger("another CA");
  grpc::SslCredentialsOptions untrusting;
  untrusting.pem_root_certs = stranger.cert_pem();
  auto wrong_roots = DialWith(n1.address(), grpc::SslCredentials(untrusting));
  context = A2aContext();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(GetMissingTask(wrong_roots, context.get()).error_code(), grpc::StatusCode::UNAVAILABLE);

  // A TLS client without a certificate of its own is served.
  context = A2aContext();
  grpc::Status status = GetMissingTask(Dial(n1.address()), context.get());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  std::vector<grpc::string_ref> kind =
      context->auth_context()->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  ASSERT_EQ(kind.size(), 1u);
  EXPECT_EQ(std::string(kind[0].data(), kind[0].size()), "ssl");
}

TEST_F(TlsMeshTest, EveryListenerRefusesPlainText) {
  NodeOptions options = TlsNode("n1");
  options.tls.metrics = true;
  NodeHarness n1(std::move(options));
  const std::string card_request =
      absl::StrCat("GET /.well-known/agent-card.json HTTP/1.1\r\nHost: ", n1.node().http_address(),
                   "\r\nConnection: close\r\n\r\n");
  for (const std::string& address : {n1.node().http_address(), n1.node().metrics_address()}) {
    absl::StatusOr<std::string> plain = testing::HttpExchange(
        address, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", absl::Seconds(5));
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_THAT(*plain, ::testing::Not(HasSubstr("HTTP/1.1 200"))) << address;
  }
  absl::StatusOr<std::string> card =
      testing::HttpsExchange(n1.node().http_address(), card_request, ca_.cert_pem());
  ASSERT_TRUE(card.ok()) << card.status();
  EXPECT_THAT(*card, HasSubstr("HTTP/1.1 200"));
  // The card sends clients to the HTTP bindings over https.
  EXPECT_THAT(*card, HasSubstr("\"url\":\"https://" + n1.node().http_address() + "/a2a/jsonrpc"));
  absl::StatusOr<std::string> scrape = testing::HttpsExchange(
      n1.node().metrics_address(), "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      ca_.cert_pem());
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_THAT(*scrape, HasSubstr("a2amesh_peer_refusals_total"));
}

TEST_F(TlsMeshTest, NodesProveWhoTheyAreAndRouteAcrossTheMesh) {
  NodeHarness n1(TlsNode("n1"));
  NodeOptions n2_options = TlsNode("n2");
  n2_options.peers = {n1.address()};
  NodeHarness n2(std::move(n2_options));
  std::unique_ptr<sdk::Agent> agent = StartTlsAgent(n2, testing::Echo("echoer"));
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(WaitFor([&] { return n1.node().peers().peers_up() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return n1.node().remote_catalog().Find("n2", "echoer") != nullptr; }));

  auto stub = a2a::A2AService::NewStub(Dial(n1.address()));
  a2a::SendMessageRequest request = ForSkill("echo", "over mtls");
  a2a::SendMessageResponse response;
  grpc::Status status = stub->SendMessage(A2aContext().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().state(), a2a::TASK_STATE_COMPLETED);
  ASSERT_EQ(response.task().artifacts_size(), 1);
  EXPECT_EQ(response.task().artifacts(0).parts(0).text(), "echo over mtls");
  EXPECT_EQ(Refusals(n1, "identity"), 0);
  EXPECT_EQ(Refusals(n2, "identity"), 0);
  EXPECT_EQ(Refusals(n1, "no_certificate"), 0);
}

TEST_F(TlsMeshTest, ThePeerServiceRefusesCallersWithoutANodeCertificate) {
  NodeHarness n1(TlsNode("n1"));

  grpc::Status anonymous = ExchangeAs(n1.address(), nullptr, "n2");
  // (Each refused caller below would have been sent the catalog, had it been
  // taken for a peer: ExchangeAs returns OK then.)
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(anonymous.error_message(), HasSubstr("certificate of the mesh CA"));
  EXPECT_EQ(Refusals(n1, "no_certificate"), 1);

  // A certificate of the mesh CA, but for a client rather than a node.
  KeyCert client = ca_.Issue(CertSpec{});
  EXPECT_EQ(ExchangeAs(n1.address(), &client, "n2").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Refusals(n1, "no_certificate"), 2);

  // A node certificate from another CA fails the handshake itself.
  TestCa stranger("another CA");
  KeyCert foreign = stranger.IssueNode("n2");
  EXPECT_EQ(ExchangeAs(n1.address(), &foreign, "n2").error_code(), grpc::StatusCode::UNAVAILABLE);

  EXPECT_EQ(n1.node().peers().peers_up(), 0);
  EXPECT_TRUE(n1.node().remote_catalog().nodes().empty());
}

TEST_F(TlsMeshTest, APeerClaimingAnotherNodesIdentityIsRefused) {
  NodeHarness n1(TlsNode("n1"));
  KeyCert n9 = ca_.IssueNode("n9");

  // n9's certificate, saying it is n2.
  grpc::Status impostor = ExchangeAs(n1.address(), &n9, "n2");
  EXPECT_FALSE(impostor.ok()) << "the impostor was sent the catalog";
  EXPECT_EQ(Refusals(n1, "identity"), 1);
  EXPECT_EQ(n1.node().peers().peers_up(), 0);
  EXPECT_FALSE(n1.node().remote_catalog().node("n2").has_value());

  // A handoff sent as n2.
  auto stub = v1::Peer::NewStub(Dial(n1.address(), &n9));
  grpc::ClientContext context;
  auto call = stub->Handoff(&context);
  v1::HandoffRequest start;
  start.mutable_start()->set_agent_id("anything");
  start.mutable_start()->mutable_task()->set_id("t-1");
  start.mutable_start()->set_from_node("n2");
  call->Write(start);
  call->WritesDone();
  v1::HandoffResponse response;
  EXPECT_FALSE(call->Read(&response));
  grpc::Status status = call->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("does not name node n2"));
  EXPECT_EQ(Refusals(n1, "identity"), 2);

  // The same certificate, honest about who it is, is a peer.
  grpc::Status honest = ExchangeAs(n1.address(), &n9, "n9");
  EXPECT_TRUE(honest.ok()) << honest.error_message();
  EXPECT_EQ(Refusals(n1, "identity"), 2);
}

TEST_F(TlsMeshTest, ARotatedCertificateIsServedWithoutRestartOrDroppingStreams) {
  NodeHarness n1(TlsNode("n1"));
  absl::Notification release;
  sdk::AgentSpec held = testing::Echo("held");
  held.handler = [&release](sdk::TaskContext& task) {
    task.SetWorking();
    release.WaitForNotificationWithTimeout(absl::Seconds(30));
    task.Complete("released");
  };
  std::unique_ptr<sdk::Agent> agent = StartTlsAgent(n1, std::move(held));
  ASSERT_NE(agent, nullptr);

  // A stream open across the rotation.
  auto stub = a2a::A2AService::NewStub(Dial(n1.address()));
  auto context = A2aContext();
  auto stream = stub->SendStreamingMessage(context.get(), ForSkill("echo", "hold on"));
  a2a::StreamResponse event;
  ASSERT_TRUE(stream->Read(&event));

  auto served_name = [&] {
    grpc::ClientContext probe;
    probe.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    GetMissingTask(Dial(n1.address()), &probe);
    std::vector<grpc::string_ref> names =
        probe.auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    return names.empty() ? std::string() : std::string(names[0].data(), names[0].size());
  };
  ASSERT_EQ(served_name(), "n1");
  CertSpec rotated;
  rotated.common_name = "n1 rotated";
  rotated.uris = {security::NodeIdentity("a2a-mesh", "n1")};
  WriteNodeFiles("n1", ca_.Issue(rotated));
  EXPECT_TRUE(WaitFor([&] { return served_name() == "n1 rotated"; }, absl::Seconds(20)));

  release.Notify();
  bool completed = false;
  while (stream->Read(&event)) {
    if (event.has_status_update() &&
        event.status_update().status().state() == a2a::TASK_STATE_COMPLETED) {
      completed = true;
    }
  }
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(completed);
}

}  // namespace
}  // namespace a2amesh
