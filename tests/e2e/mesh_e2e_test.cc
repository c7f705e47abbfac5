// The mesh end to end: three real meshd processes on 127.0.0.1, the example
// agents as processes of their own spread across them, the official A2A JS SDK
// as the client, and SIGTERM drain of a node with a task in flight.

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::ErrorReason;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using ::testing::HasSubstr;

class MeshE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"n1.log", "n2.log", "n3.log", "js.out"}) {
        std::cerr << "--- " << log << " ---\n" << testing::ReadFileOrEmpty(dir_.File(log));
      }
    }
  }
  static std::vector<std::string> Flags(const std::string& peer) {
    std::vector<std::string> flags = {"--ephemeral", "--peer-heartbeat", "200ms", "--peer-timeout",
                                      "1s",          "--drain-timeout",  "20s"};
    if (!peer.empty()) {
      flags.push_back("--peers");
      flags.push_back(peer);
    }
    return flags;
  }
  testing::TempDir dir_;
};

TEST_F(MeshE2eTest, TheJsSdkSendsToOneNodeATaskThatRunsOnAnother) {
  const std::string js_dir = testing::SourcePath("tests/e2e/js");
  ASSERT_FALSE(testing::ReadFileOrEmpty(js_dir + "/node_modules/@a2a-js/sdk/package.json").empty())
      << "the JS SDK is not installed: run `npm ci` in " << js_dir << " (tools/test does)";
  E2eNode n1(dir_, "n1", Flags(""));
  ASSERT_TRUE(n1.Start());
  E2eNode n2(dir_, "n2", Flags(n1.address()));
  E2eNode n3(dir_, "n3", Flags(n1.address()));
  ASSERT_TRUE(n2.Start());
  ASSERT_TRUE(n3.Start());
  // No agent on n1: echo lives on n2, uppercase and a chat agent (it answers
  // with a direct Message) on n3.
  Subprocess echo = n2.StartAgent("echo-agent", {});
  Subprocess upper = n3.StartAgent("uppercase-agent", {"--chunk-delay", "20ms"});
  Subprocess chat =
      n3.StartAgent("echo-agent", {"--agent-id", "chat", "--skill", "chat", "--reply"});
  ASSERT_TRUE(n1.WaitForAgent("echo"));
  ASSERT_TRUE(n1.WaitForAgent("uppercase"));
  ASSERT_TRUE(n1.WaitForAgent("chat"));

  absl::StatusOr<Subprocess> client =
      Subprocess::Start({"/usr/bin/env", "node", js_dir + "/meshd-client.mjs",
                         absl::StrCat("http://", n1.http_address()), "JSONRPC"},
                        dir_.File("js.out"));
  ASSERT_TRUE(client.ok());
  absl::StatusOr<int> exit_code = client->Wait(absl::Seconds(60));
  ASSERT_TRUE(exit_code.ok());
  ASSERT_EQ(*exit_code, 0);
  std::string output = testing::ReadFileOrEmpty(dir_.File("js.out"));
  int events = 0;
  int replies = 0;
  std::string streamed;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct step;
    if (!google::protobuf::util::JsonStringToMessage(std::string(line), &step).ok()) continue;
    const auto& fields = step.fields();
    if (fields.at("step").string_value() == "send") {
      const auto& task = fields.at("task").struct_value().fields();
      EXPECT_THAT(task.at("id").string_value(), HasSubstr("n1~"));  // n1 owns it
      EXPECT_EQ(task.at("status").struct_value().fields().at("state").string_value(),
                "TASK_STATE_COMPLETED");
    }
    if (fields.at("step").string_value() == "reply") {
      ++replies;  // the Message from n3's chat agent, through the handoff
      EXPECT_EQ(fields.at("kind").string_value(), "message");
    }
    if (fields.at("step").string_value() == "reply_stream") {
      ++replies;
      const auto& streamed_reply = fields.at("events").list_value();
      ASSERT_EQ(streamed_reply.values_size(), 1);
      EXPECT_EQ(streamed_reply.values(0).struct_value().fields().count("message"), 1u);
    }
    if (fields.at("step").string_value() == "stream") {
      ++events;
      const auto& event = fields.at("event").struct_value().fields();
      if (event.count("artifactUpdate") > 0) {
        streamed += event.at("artifactUpdate")
                        .struct_value()
                        .fields()
                        .at("artifact")
                        .struct_value()
                        .fields()
                        .at("parts")
                        .list_value()
                        .values(0)
                        .struct_value()
                        .fields()
                        .at("text")
                        .string_value();
      }
    }
  }
  EXPECT_EQ(events, 6);  // task, working, three chunks, completed: streamed across n1 <- n3
  EXPECT_EQ(streamed, "STREAM THESE WORDS");
  EXPECT_EQ(replies, 2);
  EXPECT_THAT(n1.log(), HasSubstr("peer up peer=n3"));
}

TEST_F(MeshE2eTest, ADrainingNodeFinishesItsTaskAndExitsZero) {
  E2eNode n1(dir_, "n1", Flags(""));
  ASSERT_TRUE(n1.Start());
  E2eNode n2(dir_, "n2", Flags(n1.address()));
  ASSERT_TRUE(n2.Start());
  Subprocess slow = n2.StartAgent("echo-agent", {"--agent-id", "slow", "--delay", "2s"});
  ASSERT_TRUE(n1.WaitForAgent("slow"));

  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(n1.address(), grpc::InsecureChannelCredentials()));
  lf::a2a::v1::SendMessageRequest request = testing::SendText("in flight");
  request.set_tenant("slow");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), request, &response).ok());
  const std::string id = response.task().id();
  auto state = [&] {
    lf::a2a::v1::GetTaskRequest get;
    get.set_id(id);
    lf::a2a::v1::Task task;
    grpc::Status status = stub->GetTask(A2aContext().get(), get, &task);
    return status.ok() ? task.status().state() : lf::a2a::v1::TASK_STATE_UNSPECIFIED;
  };
  ASSERT_TRUE(WaitFor([&] { return state() == lf::a2a::v1::TASK_STATE_WORKING; }));

  n2.process().Signal(SIGTERM);
  // n2 tells its peers at once: n1 stops routing to its agents (the probe
  // creates no task)...
  ASSERT_TRUE(WaitFor([&] { return !n1.Sees("slow"); }));
  // ...the task in flight still completes, and n2 exits 0.
  ASSERT_TRUE(
      WaitFor([&] { return state() == lf::a2a::v1::TASK_STATE_COMPLETED; }, absl::Seconds(30)));
  absl::StatusOr<int> exit_code = n2.process().Wait(absl::Seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
  EXPECT_THAT(n2.log(), HasSubstr("draining running_tasks=1"));
  EXPECT_THAT(n1.log(), HasSubstr("peer draining peer=n2"));
}

// n2 knows n3 only through n1's member list. Killed, n3 must not vanish from
// n2's view: it is listed down (since when), counted down in n2's metrics,
// and n2's mesh-wide task list says that n3's tasks are missing.
TEST_F(MeshE2eTest, AKilledNodeLearnedThroughGossipStaysListedAsDown) {
  E2eNode n1(dir_, "n1", Flags(""));
  ASSERT_TRUE(n1.Start());
  E2eNode n2(dir_, "n2", Flags(n1.address()));
  E2eNode n3(dir_, "n3", Flags(n1.address()));
  ASSERT_TRUE(n2.Start());
  ASSERT_TRUE(n3.Start());
  auto meshctl = [&](std::vector<std::string> args, std::string* err = nullptr) {
    static int runs = 0;
    const std::string out_file = dir_.File(absl::StrCat("meshctl-", ++runs, ".out"));
    const std::string err_file = dir_.File(absl::StrCat("meshctl-", runs, ".err"));
    args.insert(args.begin(), {testing::BinaryPath("meshctl"), "--server", n2.address()});
    absl::StatusOr<Subprocess> run = Subprocess::Start(args, out_file, err_file);
    EXPECT_TRUE(run.ok()) << run.status();
    if (run.ok()) {
      EXPECT_TRUE(run->Wait(absl::Seconds(30)).ok());
    }
    if (err != nullptr) *err = testing::ReadFileOrEmpty(err_file);
    return testing::ReadFileOrEmpty(out_file);
  };
  auto n3_state = [&] {
    google::protobuf::Struct nodes;
    if (!google::protobuf::util::JsonStringToMessage(meshctl({"nodes", "-o", "json"}), &nodes)
             .ok()) {
      return std::string("unparsed");
    }
    for (const auto& node : nodes.fields().at("nodes").list_value().values()) {
      const auto& f = node.struct_value().fields();
      if (f.at("nodeId").string_value() == "n3") {
        return absl::StrCat(f.at("state").string_value(), f.count("downSince") ? " since" : "");
      }
    }
    return std::string("absent");
  };
  ASSERT_TRUE(WaitFor([&] { return n3_state() == "NODE_STATE_UP"; }));
  auto down_metric = [&] {
    absl::StatusOr<testing::HttpResult> metrics =
        testing::HttpGet(n2.metrics_address(), "/metrics");
    return metrics.ok() && absl::StrContains(metrics->body, "a2amesh_peers{state=\"down\"} 1");
  };
  EXPECT_FALSE(down_metric());

  n3.process().Signal(SIGKILL);
  ASSERT_TRUE(n3.process().Wait(absl::Seconds(10)).ok());
  EXPECT_TRUE(WaitFor([&] { return n3_state() == "NODE_STATE_DOWN since"; })) << n3_state();
  // n1 no longer names n3 either: n2 still lists it (the gossip is gone).
  EXPECT_TRUE(WaitFor([&] { return down_metric(); }));
  EXPECT_EQ(n3_state(), "NODE_STATE_DOWN since");
  EXPECT_THAT(meshctl({"nodes"}), ::testing::ContainsRegex("n3 +down [0-9]+[smh] "));
  std::string err;
  meshctl({"tasks"}, &err);
  EXPECT_THAT(err, HasSubstr("node n3 is down (since "));
  EXPECT_THAT(err, HasSubstr("its tasks are not listed"));
}

TEST_F(MeshE2eTest, ASilentNodeLeavesRoutingWithinThePeerTimeoutAndComesBack) {
  E2eNode n1(dir_, "n1", Flags(""));
  ASSERT_TRUE(n1.Start());
  E2eNode n2(dir_, "n2", Flags(n1.address()));
  E2eNode n3(dir_, "n3", Flags(n1.address()));
  ASSERT_TRUE(n2.Start());
  ASSERT_TRUE(n3.Start());
  Subprocess on_n2 = n2.StartAgent("uppercase-agent", {"--agent-id", "up2", "--chunk-delay", "0s"});
  Subprocess on_n3 = n3.StartAgent("uppercase-agent", {"--agent-id", "up3", "--chunk-delay", "0s"});
  ASSERT_TRUE(n1.WaitForAgent("up2"));
  ASSERT_TRUE(n1.WaitForAgent("up3"));
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(n1.address(), grpc::InsecureChannelCredentials()));
  auto routes_to_up3 = [&] {
    lf::a2a::v1::SendMessageRequest request = testing::SendText("x");
    request.set_tenant("up3");
    lf::a2a::v1::SendMessageResponse response;
    grpc::ClientContext context;
    context.AddMetadata("a2a-version", "1.0");
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return stub->SendMessage(&context, request, &response).ok();
  };
  ASSERT_TRUE(routes_to_up3());

  // n3 freezes: its streams stay open, it just stops talking.
  n3.process().Signal(SIGSTOP);
  absl::Time frozen = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return !n1.Sees("up3"); }, absl::Seconds(3)));
  EXPECT_LT(absl::Now() - frozen, absl::Seconds(3));  // the peer timeout is 1 s here
  for (int i = 0; i < 3; ++i) {
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status = stub->SendMessage(
        A2aContext().get(),
        [] {
          auto request = testing::SendText("go");
          (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(
              "uppercase");
          return request;
        }(),
        &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  }
  EXPECT_THAT(n1.log(), HasSubstr("peer down peer=n3 reason=\"no word from n3"));

  n3.process().Signal(SIGCONT);  // it comes back when it reconnects
  ASSERT_TRUE(n1.WaitForAgent("up3"));
  EXPECT_TRUE(routes_to_up3());
}

TEST_F(MeshE2eTest, ANodeKilledMidTaskFailsTheTaskNamingTheNodeAfterTheGrace) {
  // A killed node looks like a partitioned one: the owner waits the grace for
  // it to come back, then fails the task.
  std::vector<std::string> flags = Flags("");
  flags.insert(flags.end(), {"--handoff-grace", "2s"});
  E2eNode n1(dir_, "n1", flags);
  ASSERT_TRUE(n1.Start());
  E2eNode n3(dir_, "n3", Flags(n1.address()));
  ASSERT_TRUE(n3.Start());
  Subprocess slow = n3.StartAgent("echo-agent", {"--agent-id", "slow", "--delay", "30s"});
  ASSERT_TRUE(n1.WaitForAgent("slow"));
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(n1.address(), grpc::InsecureChannelCredentials()));
  lf::a2a::v1::SendMessageRequest request = testing::SendText("x");
  request.set_tenant("slow");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), request, &response).ok());
  lf::a2a::v1::GetTaskRequest get;
  get.set_id(response.task().id());
  lf::a2a::v1::Task task;
  ASSERT_TRUE(WaitFor([&] {
    return stub->GetTask(A2aContext().get(), get, &task).ok() &&
           task.status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
  n3.process().Signal(SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    return stub->GetTask(A2aContext().get(), get, &task).ok() &&
           task.status().state() == lf::a2a::v1::TASK_STATE_FAILED;
  }));
  EXPECT_THAT(task.status().message().parts(0).text(),
              HasSubstr("node n3 was unreachable for 2s while running the task"));
}

}  // namespace
}  // namespace a2amesh
