// A remote A2A agent by URL: the official A2A JS SDK's server
// (tools/bench/js/echo-server.mjs, its own process) is hosted by node b with
// --remote-agent, and a client of node a reaches it by skill, through the
// handoff to b and b's call to the JS server (over JSON-RPC with SSE, and over
// gRPC: the test runs once per binding): streamed events in order, a
// direct Message, a cancel that reaches the remote task, the agent killed
// mid-task (the task fails with a reason, the skill leaves routing) and
// restarted (it comes back).

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/mesh_fixture.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::StreamResponse;
using ::testing::HasSubstr;

constexpr char kAgent[] = "a2ajs-echo-agent";  // from its card's name

// The binding node b calls the JS server over (--remote-agent-binding).
class RemoteAgentE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"a.log", "b.log", "js.log"}) {
        std::cerr << "--- " << log << " ---\n" << testing::ReadFileOrEmpty(dir_.File(log));
      }
    }
  }

  // The JS SDK's echo server on the test's ports: "task:TEXT" runs a task
  // (a step every 150 ms), anything else gets a direct Message.
  Subprocess StartJsServer() {
    absl::StatusOr<Subprocess> server = Subprocess::Start(
        {"/usr/bin/env", "node", testing::SourcePath("tools/bench/js/echo-server.mjs"),
         "--http-port", std::to_string(http_port_), "--grpc-port", std::to_string(grpc_port_),
         "--delay-ms", "150"},
        dir_.File("js.log"));
    EXPECT_TRUE(server.ok());
    // Its card is served before its gRPC port listens.
    const size_t started = ++starts_;
    EXPECT_TRUE(WaitFor([&] {
      const std::string log = testing::ReadFileOrEmpty(dir_.File("js.log"));
      size_t count = 0;
      for (size_t at = log.find("gRPC on"); at != std::string::npos;
           at = log.find("gRPC on", at + 1)) {
        ++count;
      }
      return count >= started;
    })) << "the JS server's gRPC port never listened";
    return *std::move(server);
  }

  testing::TempDir dir_;
  const int http_port_ = testing::PickFreePort();
  const int grpc_port_ = testing::PickFreePort();
  size_t starts_ = 0;
};

TEST_P(RemoteAgentE2eTest, AJsSdkAgentByUrlServesTheMeshThroughAnotherNode) {
  ASSERT_FALSE(testing::ReadFileOrEmpty(
                   testing::SourcePath("tools/bench/js/node_modules/@a2a-js/sdk/package.json"))
                   .empty())
      << "the JS SDK server is not installed: run `npm ci` in tools/bench/js (tools/setup does)";
  Subprocess js = StartJsServer();
  const std::string card =
      absl::StrCat("http://127.0.0.1:", http_port_, "/.well-known/agent-card.json");
  E2eNode b(dir_, "b",
            {"--ephemeral", "--peer-heartbeat", "200ms", "--peer-timeout", "1s", "--remote-agent",
             card, "--remote-agent-refresh", "300ms", "--agent-grace", "0s",
             "--remote-agent-binding", GetParam()});
  ASSERT_TRUE(b.Start());
  E2eNode a(
      dir_, "a",
      {"--ephemeral", "--peer-heartbeat", "200ms", "--peer-timeout", "1s", "--peers", b.address()});
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(a.WaitForAgent(kAgent));
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(a.address(), grpc::InsecureChannelCredentials()));

  // A task, streamed back through b in order.
  {
    auto context = A2aContext();
    auto reader = stub->SendStreamingMessage(context.get(), ForSkill("echo", "task:hello mesh"));
    std::vector<StreamResponse> events;
    StreamResponse event;
    while (reader->Read(&event)) events.push_back(event);
    grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[0].task().status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
    EXPECT_THAT(events[0].task().id(), HasSubstr("a~"));  // the mesh's task, owned by a
    EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
    EXPECT_EQ(events[2].artifact_update().artifact().parts(0).text(), "hello mesh");
    EXPECT_EQ(events[3].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  }

  // Its direct Message comes through as one.
  {
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status = stub->SendMessage(A2aContext().get(), ForSkill("echo", "hi"), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(response.has_message()) << response.DebugString();
    EXPECT_EQ(response.message().parts(0).text(), "echo: hi");
  }

  // A cancel reaches the remote task.
  {
    auto context = A2aContext();
    auto reader = stub->SendStreamingMessage(context.get(), ForSkill("echo", "task:cancel me"));
    StreamResponse first;
    ASSERT_TRUE(reader->Read(&first));
    lf::a2a::v1::CancelTaskRequest cancel;
    cancel.set_id(first.task().id());
    lf::a2a::v1::Task canceled;
    grpc::Status status = stub->CancelTask(A2aContext().get(), cancel, &canceled);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(canceled.status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
    EXPECT_TRUE(WaitFor([&] {
      return testing::ReadFileOrEmpty(dir_.File("js.log")).find("cancel requested") !=
             std::string::npos;
    })) << "the JS server never heard the cancel";
    context->TryCancel();
  }

  // Killed mid-task: the task fails naming the agent, and its skill leaves routing.
  {
    auto context = A2aContext();
    auto reader = stub->SendStreamingMessage(context.get(), ForSkill("echo", "task:cut short"));
    StreamResponse event;
    ASSERT_TRUE(reader->Read(&event));
    js.Signal(SIGKILL);
    StreamResponse last;
    while (reader->Read(&event)) last = event;
    EXPECT_EQ(last.status_update().status().state(), lf::a2a::v1::TASK_STATE_FAILED)
        << last.DebugString();
    EXPECT_THAT(last.status_update().status().message().parts(0).text(), HasSubstr(kAgent));
    EXPECT_TRUE(WaitFor([&] { return !a.Sees(kAgent); }, absl::Seconds(15)))
        << "the dead agent stayed in routing";
  }

  // Restarted, it comes back.
  js = StartJsServer();
  ASSERT_TRUE(a.WaitForAgent(kAgent));
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status = stub->SendMessage(A2aContext().get(), ForSkill("echo", "back"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.message().parts(0).text(), "echo: back");
}

INSTANTIATE_TEST_SUITE_P(Bindings, RemoteAgentE2eTest, ::testing::Values("JSONRPC", "GRPC"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace a2amesh
