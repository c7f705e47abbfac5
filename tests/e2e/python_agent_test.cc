// An agent in another language: examples/agents/python/wordcount_agent.py,
// on the Python SDK (sdk/python, installed into <build>/venv on Debian's
// python3-grpcio), serving tasks from a real meshd process.

#include <string>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"

namespace a2amesh {
namespace {

using ::testing::HasSubstr;

TEST(PythonAgentTest, ServesTasksThroughTheProtoApi) {
  testing::TempDir dir;
  testing::E2eNode node(dir, "py-node", {"--ephemeral"});
  ASSERT_TRUE(node.Start());
  testing::Subprocess agent = node.StartCommand(
      {testing::BinaryPath("../venv/bin/python"),
       testing::SourcePath("examples/agents/python/wordcount_agent.py"), "--node", node.address()},
      "wordcount");
  ASSERT_TRUE(node.WaitForAgent("wordcount"))
      << testing::ReadFileOrEmpty(dir.File("wordcount.log"));

  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  lf::a2a::v1::SendMessageRequest request =
      testing::SendText("the cat and the hat\nsat on the mat");
  (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value("wordcount");
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status = stub->SendMessage(testing::A2aContext().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const lf::a2a::v1::Task& task = response.task();
  ASSERT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED)
      << task.DebugString() << testing::ReadFileOrEmpty(dir.File("wordcount.log"));
  ASSERT_EQ(task.artifacts_size(), 2);
  const auto& counts = task.artifacts(0).parts(0).data().struct_value().fields();
  EXPECT_EQ(counts.at("words").number_value(), 9);
  EXPECT_EQ(counts.at("lines").number_value(), 2);
  const auto& top = counts.at("top").list_value().values(0).struct_value().fields();
  EXPECT_EQ(top.at("word").string_value(), "the");
  EXPECT_EQ(top.at("count").number_value(), 3);
  EXPECT_EQ(task.artifacts(0).parts(0).media_type(), "application/json");
  EXPECT_EQ(task.artifacts(1).parts(0).text(), "9 words, 2 lines");

  // An invalid card is refused with the field named, and the agent exits.
  testing::Subprocess bad =
      node.StartCommand({testing::BinaryPath("../venv/bin/python"),
                         testing::SourcePath("examples/agents/python/wordcount_agent.py"), "--node",
                         node.address(), "--agent-id", "Not Valid"},
                        "bad-wordcount");
  absl::StatusOr<int> exit_code = bad.Wait(absl::Seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 2);
  EXPECT_THAT(testing::ReadFileOrEmpty(dir.File("bad-wordcount.log")),
              HasSubstr("agents[0].agent_id"));
}

// The C++ SDK's example agents do the same: the node's message, exit 2.
TEST(PythonAgentTest, ACppAgentTheNodeRefusesForGoodExitsWithTheNodesMessageToo) {
  testing::TempDir dir;
  testing::E2eNode node(dir, "cc-node", {"--ephemeral"});
  ASSERT_TRUE(node.Start());
  testing::Subprocess bad = node.StartCommand(
      {testing::BinaryPath("echo-agent"), "--node", node.address(), "--agent-id", "Not Valid"},
      "bad-echo");
  absl::StatusOr<int> exit_code = bad.Wait(absl::Seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 2);
  const std::string log = testing::ReadFileOrEmpty(dir.File("bad-echo.log"));
  EXPECT_THAT(log, HasSubstr("the node refused the agent"));
  EXPECT_THAT(log, HasSubstr("agents[0].agent_id"));
}

TEST(PythonAgentTest, JoinsANodeWithTlsAndAuthUsingItsTokenAndTheNodesCa) {
  testing::TempDir dir;
  testing::TestCa ca;
  testing::NodeTlsFiles tls = testing::WriteNodeTls(dir.path(), ca, "py-tls");
  testing::WriteFileAtomically(dir.File("tokens"),
                               "py-agent-0123456789abcdef wordcount agent:wordcount,skill:*\n"
                               "py-client-0123456789abcde client\n");
  testing::E2eNode node(dir, "py-tls",
                        {"--ephemeral", "--tls-cert", tls.cert, "--tls-key", tls.key,
                         "--auth-token-file", dir.File("tokens")});
  ASSERT_TRUE(node.Start());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.cert_pem();
  node.SetClient(grpc::SslCredentials(ssl), "py-client-0123456789abcde");
  const std::vector<std::string> agent = {
      testing::BinaryPath("../venv/bin/python"),
      testing::SourcePath("examples/agents/python/wordcount_agent.py"),
      "--node",
      node.address(),
      "--tls-ca",
      tls.ca};

  // Without its token the node refuses it for good, and it exits.
  testing::Subprocess anonymous = node.StartCommand(agent, "wordcount-anonymous");
  absl::StatusOr<int> exit_code = anonymous.Wait(absl::Seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 2);
  EXPECT_THAT(testing::ReadFileOrEmpty(dir.File("wordcount-anonymous.log")),
              HasSubstr("UNAUTHENTICATED"));

  std::vector<std::string> with_token = agent;
  with_token.insert(with_token.end(), {"--token", "py-agent-0123456789abcdef"});
  testing::Subprocess served = node.StartCommand(with_token, "wordcount");
  EXPECT_TRUE(node.WaitForAgent("wordcount"))
      << testing::ReadFileOrEmpty(dir.File("wordcount.log"));
}

}  // namespace
}  // namespace a2amesh
