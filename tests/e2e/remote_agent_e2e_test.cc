// Remote A2A agents by URL, in a three-node mesh. Two agents built on the
// official A2A JS SDK, each its own process, join by the URL of their card:
// a v1.0 one (tools/bench/js/echo-server.mjs, SDK 1.3.0) hosted by node b,
// and an A2A 0.3 one (tests/e2e/js03/echo-server.mjs, SDK 0.3.14) hosted by
// node c, which calls it in 0.3 JSON-RPC and translates. The official JS SDK
// client (tests/e2e/js/remote-agent-client.mjs) sends its tasks to node a,
// naming only a skill. For each agent: events streamed back in order, an
// input-required turn and a cancel that reach the remote task, a direct
// Message, the agent killed mid-task (the task fails with a reason, its skill
// leaves routing, its node lists it unavailable) and restarted (it comes
// back). The v1.0 agent is added with `meshctl agents add` through node a, the
// 0.3 one with c's --remote-agent; `meshctl agents` and `meshctl route` show
// how each is called. The test runs once per binding: node b calls the v1.0
// agent over it, and the client calls node a over it.

#include <signal.h>

#include <functional>
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

// One remote agent: a JS SDK server of one A2A version.
struct RemoteServer {
  std::string name;      // in the logs
  std::string agent_id;  // from its card's name
  std::string skill;
  std::string script;  // relative to the source tree
  std::string ready;   // what its log says once it serves
  int http_port = testing::PickFreePort();
  int grpc_port = testing::PickFreePort();  // (the v1.0 one only)
  std::vector<std::string> flags;           // more for its script
  size_t starts = 0;

  std::string card_url() const {
    return absl::StrCat("http://127.0.0.1:", http_port, "/.well-known/agent-card.json");
  }
};

// What the JS client printed: its events by turn, the CancelTask answer, an
// error.
struct ClientRun {
  std::vector<StreamResponse> turn1;
  std::vector<StreamResponse> turn2;
  lf::a2a::v1::Task canceled;
  std::string error;
  std::string output;
};

ClientRun Parse(const std::string& output) {
  ClientRun run;
  run.output = output;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct object;
    if (!google::protobuf::util::JsonStringToMessage(std::string(line), &object).ok()) continue;
    const auto& fields = object.fields();
    auto field_json = [&](const char* name) {
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(fields.at(name), &json);
      return json;
    };
    if (fields.contains("event")) {
      StreamResponse event;
      auto parsed = google::protobuf::util::JsonStringToMessage(field_json("event"), &event);
      EXPECT_TRUE(parsed.ok()) << parsed.ToString() << " in " << line;
      (fields.at("turn").number_value() == 1 ? run.turn1 : run.turn2).push_back(event);
    } else if (fields.contains("canceled")) {
      EXPECT_TRUE(
          google::protobuf::util::JsonStringToMessage(field_json("canceled"), &run.canceled).ok());
    } else if (fields.contains("error")) {
      run.error = fields.at("error").string_value();
    }
  }
  return run;
}

struct Command {
  int code = -1;
  std::string out;
  std::string err;
};

lf::a2a::v1::TaskState StateOf(const StreamResponse& event) {
  return event.has_task() ? event.task().status().state() : event.status_update().status().state();
}

class RemoteAgentE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"a.log", "b.log", "c.log", "v1.log", "v03.log", "polled.log"}) {
        std::cerr << "--- " << log << " ---\n" << testing::ReadFileOrEmpty(dir_.File(log));
      }
    }
  }

  // Starts `server` and waits until it serves.
  Subprocess Start(RemoteServer& server) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "node",
                                     testing::SourcePath(server.script),
                                     "--http-port",
                                     std::to_string(server.http_port),
                                     "--delay-ms",
                                     "150"};
    if (server.script == "tools/bench/js/echo-server.mjs") {
      argv.insert(argv.end(), {"--grpc-port", std::to_string(server.grpc_port)});
    }
    argv.insert(argv.end(), server.flags.begin(), server.flags.end());
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv, dir_.File(server.name + ".log"));
    EXPECT_TRUE(process.ok()) << process.status();
    const size_t started = ++server.starts;
    EXPECT_TRUE(WaitFor([&] { return Count(Log(server), server.ready) >= started; }))
        << server.name << " never served";
    return *std::move(process);
  }

  std::string Log(const RemoteServer& server) const {
    return testing::ReadFileOrEmpty(dir_.File(server.name + ".log"));
  }

  static size_t Count(const std::string& text, const std::string& what) {
    size_t count = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
      ++count;
    }
    return count;
  }

  // The JS client against node `a`; `started` runs once it has printed an
  // event.
  ClientRun RunClient(const E2eNode& a, const std::string& skill, std::vector<std::string> scenario,
                      const std::function<void()>& started = nullptr) {
    const std::string out = dir_.File(absl::StrCat("client-", ++clients_, ".out"));
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "node",
                                     testing::SourcePath("tests/e2e/js/remote-agent-client.mjs"),
                                     absl::StrCat("http://", a.http_address()),
                                     GetParam(),
                                     skill};
    argv.insert(argv.end(), scenario.begin(), scenario.end());
    absl::StatusOr<Subprocess> client = Subprocess::Start(argv, out);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return {};
    if (started) {
      EXPECT_TRUE(WaitFor([&] {
        return testing::ReadFileOrEmpty(out).find("\"event\"") != std::string::npos;
      })) << "the client saw no event";
      started();
    }
    absl::StatusOr<int> exit_code = client->Wait(absl::Seconds(60));
    EXPECT_TRUE(exit_code.ok()) << exit_code.status();
    return Parse(testing::ReadFileOrEmpty(out));
  }

  // meshctl `args` against `node`, to its end.
  Command Meshctl(const E2eNode& node, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryPath("meshctl"), "--server", node.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string out = dir_.File(absl::StrCat("meshctl-", ++commands_, ".out"));
    const std::string err = dir_.File(absl::StrCat("meshctl-", commands_, ".err"));
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv, out, err);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return {};
    absl::StatusOr<int> code = process->Wait(absl::Seconds(60));
    EXPECT_TRUE(code.ok()) << code.status();
    return {code.value_or(-1), testing::ReadFileOrEmpty(out), testing::ReadFileOrEmpty(err)};
  }

  // The line of `meshctl agents` (at `node`) that lists `agent` ("id@node").
  std::string AgentLine(const E2eNode& node, const std::string& agent) {
    Command agents = Meshctl(node, {"agents"});
    EXPECT_EQ(agents.code, 0) << agents.err;
    for (absl::string_view line : absl::StrSplit(agents.out, '\n')) {
      if (absl::StartsWith(line, agent + " ")) return std::string(line);
    }
    ADD_FAILURE() << agent << " is not listed:\n" << agents.out;
    return "";
  }

  // Every scenario against one remote agent, through node a; `host` hosts it.
  void Exercise(RemoteServer& server, Subprocess& process, E2eNode& a, E2eNode& host) {
    SCOPED_TRACE(server.name);
    ASSERT_TRUE(a.WaitForAgent(server.agent_id));

    // A task, its events streamed back in order through the hosting node.
    {
      ClientRun run = RunClient(a, server.skill, {"stream", "task:hello mesh"});
      ASSERT_EQ(run.turn1.size(), 4u) << run.output;
      EXPECT_EQ(StateOf(run.turn1[0]), lf::a2a::v1::TASK_STATE_SUBMITTED);
      EXPECT_THAT(run.turn1[0].task().id(), HasSubstr("a~"));  // the mesh's task, owned by a
      EXPECT_EQ(StateOf(run.turn1[1]), lf::a2a::v1::TASK_STATE_WORKING);
      EXPECT_EQ(run.turn1[2].artifact_update().artifact().parts(0).text(), "hello mesh");
      EXPECT_EQ(StateOf(run.turn1[3]), lf::a2a::v1::TASK_STATE_COMPLETED);
    }

    // An input-required turn: the answer reaches the same remote task.
    {
      ClientRun run = RunClient(a, server.skill, {"ask", "ask:your name", "Ada"});
      ASSERT_EQ(run.turn1.size(), 2u) << run.output;
      EXPECT_EQ(StateOf(run.turn1[1]), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
      EXPECT_EQ(run.turn1[1].status_update().status().message().parts(0).text(), "your name?");
      ASSERT_EQ(run.turn2.size(), 4u) << run.output;
      EXPECT_EQ(run.turn2[0].task().id(), run.turn1[0].task().id());
      EXPECT_EQ(StateOf(run.turn2[1]), lf::a2a::v1::TASK_STATE_WORKING);
      EXPECT_EQ(run.turn2[2].artifact_update().artifact().parts(0).text(), "answer: Ada");
      EXPECT_EQ(StateOf(run.turn2[3]), lf::a2a::v1::TASK_STATE_COMPLETED);
      EXPECT_THAT(Log(server), HasSubstr("follow-up for"));
    }

    // A cancel reaches the remote task.
    {
      ClientRun run = RunClient(a, server.skill, {"cancel", "task:cancel me"});
      EXPECT_EQ(run.canceled.status().state(), lf::a2a::v1::TASK_STATE_CANCELED) << run.output;
      ASSERT_FALSE(run.turn1.empty()) << run.output;
      EXPECT_EQ(StateOf(run.turn1.back()), lf::a2a::v1::TASK_STATE_CANCELED);
      EXPECT_TRUE(WaitFor([&] {
        return Log(server).find("cancel requested") != std::string::npos;
      })) << "the remote agent never heard the cancel";
    }

    // Its direct Message comes through as one.
    {
      auto stub = lf::a2a::v1::A2AService::NewStub(
          grpc::CreateChannel(a.address(), grpc::InsecureChannelCredentials()));
      lf::a2a::v1::SendMessageResponse response;
      grpc::Status status =
          stub->SendMessage(A2aContext().get(), ForSkill(server.skill, "hi"), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      ASSERT_TRUE(response.has_message()) << response.DebugString();
      EXPECT_EQ(response.message().parts(0).text(), "echo: hi");
    }

    // Killed mid-task: the task fails naming the agent; its skill leaves routing.
    {
      ClientRun run = RunClient(a, server.skill, {"stream", "task:cut short"},
                                [&] { process.Signal(SIGKILL); });
      ASSERT_FALSE(run.turn1.empty()) << run.output;
      const StreamResponse& last = run.turn1.back();
      EXPECT_EQ(StateOf(last), lf::a2a::v1::TASK_STATE_FAILED) << run.output;
      EXPECT_THAT(last.status_update().status().message().parts(0).text(),
                  HasSubstr(server.agent_id));
      EXPECT_TRUE(WaitFor([&] { return !a.Sees(server.agent_id); }, absl::Seconds(15)))
          << "the dead agent stayed in routing";
      // Its node still lists it, unavailable, saying why.
      const std::string line = AgentLine(host, server.agent_id + "@" + host.node_id());
      EXPECT_THAT(line, HasSubstr("unavailable"));
      EXPECT_THAT(line, HasSubstr(server.card_url()));
    }

    // Restarted, it comes back.
    process = Start(server);
    ASSERT_TRUE(a.WaitForAgent(server.agent_id));
    ClientRun run = RunClient(a, server.skill, {"stream", "task:back"});
    ASSERT_FALSE(run.turn1.empty()) << run.output;
    EXPECT_EQ(StateOf(run.turn1.back()), lf::a2a::v1::TASK_STATE_COMPLETED) << run.output;
  }

  testing::TempDir dir_;
  int clients_ = 0;
  int commands_ = 0;
};

TEST_P(RemoteAgentE2eTest, JsSdkAgentsOfBothVersionsJoinByUrlAndServeTheMesh) {
  for (const char* package : {"tools/bench/js", "tests/e2e/js", "tests/e2e/js03"}) {
    ASSERT_FALSE(testing::ReadFileOrEmpty(testing::SourcePath(absl::StrCat(
                                              package, "/node_modules/@a2a-js/sdk/package.json")))
                     .empty())
        << "the JS SDK is not installed: run `npm ci` in " << package << " (tools/setup does)";
  }
  RemoteServer v1{"v1", "a2ajs-echo-agent", "echo", "tools/bench/js/echo-server.mjs", "gRPC on"};
  RemoteServer v03{"v03", "legacy-echo-agent", "legacy-echo", "tests/e2e/js03/echo-server.mjs",
                   "JSON-RPC on"};
  Subprocess v1_process = Start(v1);
  Subprocess v03_process = Start(v03);
  const std::vector<std::string> fast = {
      "--ephemeral", "--peer-heartbeat", "200ms", "--peer-timeout", "1s", "--remote-agent-refresh",
      "300ms",       "--agent-grace",    "0s"};
  auto flags = [&](std::vector<std::string> more) {
    more.insert(more.begin(), fast.begin(), fast.end());
    return more;
  };
  E2eNode b(dir_, "b", flags({"--remote-agent-binding", GetParam()}));
  ASSERT_TRUE(b.Start());
  E2eNode c(dir_, "c", flags({"--remote-agent", v03.card_url(), "--peers", b.address()}));
  ASSERT_TRUE(c.Start());
  E2eNode a(dir_, "a", flags({"--peers", absl::StrCat(b.address(), ",", c.address())}));
  ASSERT_TRUE(a.Start());

  // The v1.0 agent joins at b by meshctl, through a; an agent whose card does
  // not answer is refused, naming it.
  Command added =
      Meshctl(a, {"agents", "add", v1.card_url(), "--node", "b", "--max-concurrency", "4"});
  ASSERT_EQ(added.code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr(absl::StrCat("agent a2ajs-echo-agent@b hosted by node b, "
                                                "called over ",
                                                GetParam(), " (A2A 1.0)")));
  const std::string nowhere = "http://127.0.0.1:1/.well-known/agent-card.json";
  Command refused = Meshctl(a, {"agents", "add", nowhere, "--node", "b"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr(absl::StrCat("the remote agent of ", nowhere,
                                                  " was not added: ", nowhere)));

  // meshctl shows how each is called, and why a route picks it.
  ASSERT_TRUE(a.WaitForAgent(v1.agent_id));
  ASSERT_TRUE(a.WaitForAgent(v03.agent_id));
  std::string line = AgentLine(a, "a2ajs-echo-agent@b");
  EXPECT_THAT(line, HasSubstr("ready"));
  EXPECT_THAT(line, HasSubstr(" 0/4 "));  // its --max-concurrency
  EXPECT_THAT(line, HasSubstr(absl::StrCat(GetParam(), " 1.0 ", v1.card_url())));
  line = AgentLine(a, "legacy-echo-agent@c");
  EXPECT_THAT(line, HasSubstr("ready"));
  EXPECT_THAT(line, HasSubstr(absl::StrCat("JSONRPC 0.3.0 ", v03.card_url())));
  Command route = Meshctl(a, {"route", "--skill", "legacy-echo"});
  EXPECT_EQ(route.code, 0) << route.err;
  EXPECT_THAT(route.out, HasSubstr("Pick:     legacy-echo-agent@c on node c"));
  EXPECT_THAT(route.out, HasSubstr(absl::StrCat(
                             "Calls:    JSONRPC (A2A 0.3.0) at http://127.0.0.1:", v03.http_port,
                             "/a2a/jsonrpc")));

  Exercise(v1, v1_process, a, b);
  Exercise(v03, v03_process, a, c);

  // Removed, it leaves routing.
  Command removed = Meshctl(a, {"agents", "remove", v1.agent_id, "--node", "b"});
  EXPECT_EQ(removed.code, 0) << removed.err;
  EXPECT_TRUE(WaitFor([&] { return !a.Sees(v1.agent_id); })) << "a removed agent stayed";
}

// An agent whose card says it does not stream: the node sends the message
// with returnImmediately and follows the task with GetTask until it ends,
// telling each state once; a cancel reaches the task between polls.
TEST_P(RemoteAgentE2eTest, ANonStreamingAgentsTaskIsFollowedByPolling) {
  RemoteServer polled{"polled", "a2ajs-echo-agent", "echo", "tools/bench/js/echo-server.mjs",
                      "gRPC on"};
  polled.flags = {"--no-streaming", "--delay-ms", "600"};  // (the last --delay-ms wins)
  Subprocess process = Start(polled);
  E2eNode b(dir_, "b",
            {"--ephemeral", "--remote-agent", polled.card_url(), "--remote-agent-binding",
             GetParam(), "--agent-grace", "0s"});
  ASSERT_TRUE(b.Start());
  ASSERT_TRUE(b.WaitForAgent(polled.agent_id));
  auto channel = grpc::CreateChannel(b.address(), grpc::InsecureChannelCredentials());
  auto stub = lf::a2a::v1::A2AService::NewStub(channel);

  // Its steps are 600 ms apart: the polls see it working, then done.
  auto context = A2aContext();
  auto reader = stub->SendStreamingMessage(context.get(), ForSkill("echo", "task:polled"));
  std::vector<StreamResponse> events;
  for (StreamResponse event; reader->Read(&event);) events.push_back(event);
  ASSERT_TRUE(reader->Finish().ok());
  std::vector<lf::a2a::v1::TaskState> states;
  int artifacts = 0;
  for (const StreamResponse& event : events) {
    if (event.has_artifact_update()) ++artifacts;
    if (event.has_status_update()) states.push_back(event.status_update().status().state());
  }
  EXPECT_THAT(states, ::testing::ElementsAre(lf::a2a::v1::TASK_STATE_WORKING,
                                             lf::a2a::v1::TASK_STATE_COMPLETED));
  EXPECT_GE(artifacts, 1);
  // One SendMessage, then GetTask calls: more than one call for the task.
  const std::string series = absl::StrCat(R"(a2amesh_remote_agent_calls_total{agent=")",
                                          polled.agent_id, R"(",outcome="ok"})");
  EXPECT_GE(testing::ScrapeSample(b.metrics_address(), series).value_or(0), 3);

  // Cancelled while it is polled: the cancel reaches the remote task.
  lf::a2a::v1::SendMessageRequest slow = ForSkill("echo", "task:slow");
  slow.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse accepted;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), slow, &accepted).ok());
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(accepted.task().id());
  ASSERT_TRUE(WaitFor([&] {
    lf::a2a::v1::GetTaskRequest get;
    get.set_id(accepted.task().id());
    lf::a2a::v1::Task task;
    return stub->GetTask(A2aContext().get(), get, &task).ok() &&
           task.status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
  lf::a2a::v1::Task canceled;
  ASSERT_TRUE(stub->CancelTask(A2aContext().get(), cancel, &canceled).ok());
  EXPECT_EQ(canceled.status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  EXPECT_TRUE(WaitFor([&] { return Count(Log(polled), "cancel requested for") == 1; }))
      << Log(polled);
}

INSTANTIATE_TEST_SUITE_P(Bindings, RemoteAgentE2eTest,
                         ::testing::Values("JSONRPC", "GRPC", "HTTP+JSON"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "HTTP+JSON" ? std::string("HTTP_JSON") : info.param;
                         });

}  // namespace
}  // namespace a2amesh
