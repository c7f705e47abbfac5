// meshctl end to end: the meshctl binary against three real meshd processes on
// 127.0.0.1, with the example agents as processes and a few SDK agents in this
// process (their timing under the test's control). Every verb's JSON output is
// parsed back into its proto; YAML is checked against JSON by a real YAML
// parser.

#include <signal.h>

#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "a2amesh/v1/admin.pb.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "testing/cards.h"
#include "testing/e2e_mesh.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::Card;
using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::ReadFileOrEmpty;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

// Lets the test release an agent's chunks one at a time.
class Gate {
 public:
  void Open(int n) {
    absl::MutexLock lock(&mu_);
    opened_ = n;
  }
  bool WaitOpen(int n) {
    absl::MutexLock lock(&mu_);
    auto open = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return opened_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&open), absl::Seconds(30));
  }

 private:
  absl::Mutex mu_;
  int opened_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

template <typename Message>
Message Parse(const std::string& json) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.message() << " in:\n" << json;
  return message;
}

class MeshctlE2eTest : public ::testing::Test {
 protected:
  // One mesh for the suite: echo on n1, planner (uppercase then echo) on n2,
  // uppercase on n3; SDK agents drip (n3), hold (n2), shout (n1 and n3).
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    n1_ = new E2eNode(*dir_, "n1", Flags(""));
    ASSERT_TRUE(n1_->Start());
    n2_ = new E2eNode(*dir_, "n2", Flags(n1_->address()));
    n3_ = new E2eNode(*dir_, "n3", Flags(n1_->address()));
    ASSERT_TRUE(n2_->Start());
    ASSERT_TRUE(n3_->Start());
    processes_ = new std::vector<Subprocess>();
    processes_->push_back(n1_->StartAgent("echo-agent", {}));
    processes_->push_back(n2_->StartAgent("planner-agent", {"--steps", "uppercase,echo"}));
    processes_->push_back(n3_->StartAgent("uppercase-agent", {"--chunk-delay", "1ms"}));
    gate_ = new Gate();
    agents_ = new std::vector<std::unique_ptr<sdk::Agent>>();
    StartSdkAgent(*n3_, {{"drip", Card("drip", {"drip"}), 4, [](sdk::TaskContext& task) {
                            task.SetWorking("dripping");
                            const char* chunks[] = {"one", "two", "three"};
                            for (int i = 0; i < 3; ++i) {
                              if (!gate_->WaitOpen(i + 1)) return;
                              task.SendArtifact(sdk::TextArtifact("drip", "drip", chunks[i]), i > 0,
                                                i == 2);
                            }
                            task.Complete("dripped");
                          }}});
    StartSdkAgent(*n2_, {{"hold", Card("hold", {"hold"}), 4, [](sdk::TaskContext& task) {
                            task.SetWorking("holding");
                            task.WaitForCancel(absl::Seconds(60));
                          }}});
    StartSdkAgent(*n1_, {Shout()});
    StartSdkAgent(*n3_, {Shout()});
    for (const char* agent :
         {"echo@n1", "planner@n2", "uppercase@n3", "drip@n3", "hold@n2", "shout@n1", "shout@n3"}) {
      for (E2eNode* node : {n1_, n2_, n3_}) ASSERT_TRUE(node->WaitForAgent(agent));
    }
  }

  static void TearDownTestSuite() {
    delete agents_;
    delete processes_;
    delete n3_;
    delete n2_;
    delete n1_;
    delete gate_;
    delete dir_;
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"n1.log", "n2.log", "n3.log"}) {
        std::cerr << "--- " << log << " ---\n" << ReadFileOrEmpty(dir_->File(log));
      }
    }
  }

  static std::vector<std::string> Flags(const std::string& peer) {
    std::vector<std::string> flags = {"--ephemeral", "--peer-heartbeat", "200ms", "--peer-timeout",
                                      "1s"};
    if (!peer.empty()) flags.insert(flags.end(), {"--peers", peer});
    return flags;
  }

  static sdk::AgentSpec Shout() {
    return {"shout", Card("shout", {"shout"}), 4, [](sdk::TaskContext& task) {
              task.SendArtifact(sdk::TextArtifact("shout", "shout", task.text() + "!"));
              task.Complete("shouted on " + task.node_id());
            }};
  }

  static void StartSdkAgent(E2eNode& node, std::vector<sdk::AgentSpec> specs) {
    sdk::AgentOptions options;
    options.node = node.address();
    options.agents = std::move(specs);
    absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(std::move(options));
    ASSERT_TRUE(agent.ok()) << agent.status();
    ASSERT_TRUE((*agent)->WaitUntilRegistered(absl::Seconds(10)).ok());
    agents_->push_back(*std::move(agent));
  }

  // Runs meshctl with `args` (after --server `server`, default n1) to the end.
  static Result Meshctl(std::vector<std::string> args, const std::string& server = "") {
    std::vector<std::string> argv = {testing::BinaryPath("meshctl"), "--server",
                                     server.empty() ? n1_->address() : server};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  static Result RunCommand(const std::vector<std::string>& argv) {
    static int calls = 0;
    const std::string out = dir_->File(absl::StrCat("meshctl-", ++calls, ".out"));
    const std::string err = dir_->File(absl::StrCat("meshctl-", calls, ".err"));
    Result result;
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv, out, err);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return result;
    absl::StatusOr<int> code = process->Wait(absl::Seconds(60));
    EXPECT_TRUE(code.ok()) << code.status();
    result.code = code.ok() ? *code : -1;
    result.out = ReadFileOrEmpty(out);
    result.err = ReadFileOrEmpty(err);
    return result;
  }

  // Runs meshctl with `args` and parses its JSON output; expects exit 0.
  template <typename Message>
  static Message Json(std::vector<std::string> args, const std::string& server = "") {
    args.insert(args.end(), {"-o", "json"});
    Result result = Meshctl(args, server);
    EXPECT_EQ(result.code, 0) << result.err;
    EXPECT_EQ(result.err, "");
    return Parse<Message>(result.out);
  }

  static testing::TempDir* dir_;
  static E2eNode* n1_;
  static E2eNode* n2_;
  static E2eNode* n3_;
  static std::vector<Subprocess>* processes_;
  static std::vector<std::unique_ptr<sdk::Agent>>* agents_;
  static Gate* gate_;
};

testing::TempDir* MeshctlE2eTest::dir_;
E2eNode* MeshctlE2eTest::n1_;
E2eNode* MeshctlE2eTest::n2_;
E2eNode* MeshctlE2eTest::n3_;
std::vector<Subprocess>* MeshctlE2eTest::processes_;
std::vector<std::unique_ptr<sdk::Agent>>* MeshctlE2eTest::agents_;
Gate* MeshctlE2eTest::gate_;

TEST_F(MeshctlE2eTest, NodesAgentsSkillsAndCardsAsJson) {
  auto nodes = Json<v1::ListNodesResponse>({"nodes"}, n2_->address());
  ASSERT_EQ(nodes.nodes_size(), 3);
  EXPECT_EQ(nodes.nodes(0).node_id(), "n2");
  EXPECT_TRUE(nodes.nodes(0).self());
  EXPECT_EQ(nodes.nodes(1).node_id(), "n1");
  EXPECT_EQ(nodes.nodes(1).address(), n1_->address());
  EXPECT_EQ(nodes.nodes(1).state(), v1::NODE_STATE_UP);
  EXPECT_EQ(nodes.nodes(2).node_id(), "n3");
  EXPECT_EQ(nodes.nodes(2).agents(), 3);  // uppercase, drip, shout

  auto agents = Json<v1::ListAgentsResponse>({"agents"});
  std::vector<std::string> ids;
  for (const auto& agent : agents.agents()) ids.push_back(agent.id());
  EXPECT_THAT(ids, ElementsAre("drip@n3", "echo@n1", "hold@n2", "planner@n2", "shout@n1",
                               "shout@n3", "uppercase@n3"));
  EXPECT_EQ(agents.agents(1).name(), "Echo");
  EXPECT_TRUE(agents.agents(1).local());
  EXPECT_EQ(agents.agents(1).max_concurrency(), 8);
  auto filtered = Json<v1::ListAgentsResponse>({"agents", "--skill", "shout", "--node", "n3"});
  ASSERT_EQ(filtered.agents_size(), 1);
  EXPECT_EQ(filtered.agents(0).id(), "shout@n3");
  auto tagged = Json<v1::ListAgentsResponse>({"agents", "--tag", "streaming", "--tag", "text"});
  ASSERT_EQ(tagged.agents_size(), 1);
  EXPECT_EQ(tagged.agents(0).id(), "uppercase@n3");

  auto skills = Json<v1::ListSkillsResponse>({"skills"});
  ASSERT_EQ(skills.skills_size(), 6);
  EXPECT_EQ(skills.skills(4).id(), "shout");
  EXPECT_THAT(skills.skills(4).agents(), ElementsAre("shout@n1", "shout@n3"));

  auto card = Json<lf::a2a::v1::AgentCard>({"card", "uppercase"});
  EXPECT_EQ(card.name(), "Uppercase");
  EXPECT_TRUE(card.capabilities().streaming());
  EXPECT_EQ(card.skills(0).id(), "uppercase");

  Result table = Meshctl({"agents", "-o", "wide"});
  EXPECT_EQ(table.code, 0);
  EXPECT_THAT(table.out, HasSubstr("AGENT         NODE  SKILLS     LOAD  HEALTH"));
  EXPECT_THAT(table.out, HasSubstr("uppercase@n3  n3    uppercase  0/8   ready"));
}

TEST_F(MeshctlE2eTest, YamlSaysWhatJsonSays) {
  for (const std::vector<std::string>& verb :
       std::vector<std::vector<std::string>>{{"agents"}, {"nodes"}, {"card", "planner"}}) {
    std::vector<std::string> json_args = verb;
    json_args.insert(json_args.end(), {"-o", "json"});
    std::vector<std::string> yaml_args = verb;
    yaml_args.insert(yaml_args.end(), {"-o", "yaml"});
    Result json = Meshctl(json_args);
    Result yaml = Meshctl(yaml_args);
    ASSERT_EQ(json.code, 0);
    ASSERT_EQ(yaml.code, 0);
    // Loads change between the calls; everything else must agree.
    const std::string json_file = dir_->File("doc.json");
    const std::string yaml_file = dir_->File("doc.yaml");
    std::ofstream(json_file) << json.out;
    std::ofstream(yaml_file) << yaml.out;
    Result same =
        RunCommand({"/usr/bin/env", "python3", "-c",
                    "import json, sys, yaml\n"
                    "a = json.load(open(sys.argv[1])); b = yaml.safe_load(open(sys.argv[2]))\n"
                    "strip = lambda d: [x.pop(k, None) for x in d.get('agents', []) "
                    "for k in ('outstanding', 'load', 'health')]\n"
                    "strip(a); strip(b)\n"
                    "sys.exit(0 if a == b else 1)",
                    json_file, yaml_file});
    EXPECT_EQ(same.code, 0) << verb[0] << ": " << same.err << "\n" << yaml.out;
  }
}

TEST_F(MeshctlE2eTest, SendStreamPrintsEachChunkAsItArrives) {
  const std::string out = dir_->File("stream.out");
  absl::StatusOr<Subprocess> send =
      Subprocess::Start({testing::BinaryPath("meshctl"), "--server", n1_->address(), "send",
                         "--skill", "drip", "--stream", "go"},
                        out, dir_->File("stream.err"));
  ASSERT_TRUE(send.ok());
  auto printed = [&] { return ReadFileOrEmpty(out); };
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(printed(), "status working: dripping\n"); }))
      << printed();
  EXPECT_THAT(printed(), Not(HasSubstr("artifact")));  // the agent holds its first chunk
  gate_->Open(1);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(printed(), "artifact drip: one\n"); }));
  EXPECT_THAT(printed(), Not(HasSubstr("two")));  // printed before the next chunk exists
  gate_->Open(2);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(printed(), "artifact drip +: two\n"); }));
  EXPECT_THAT(printed(), Not(HasSubstr("three")));
  gate_->Open(3);
  absl::StatusOr<int> code = send->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(dir_->File("stream.err"));
  std::vector<std::string> lines = absl::StrSplit(printed(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << printed();
  EXPECT_THAT(lines[0], HasSubstr("task n1~"));
  EXPECT_THAT(lines[0], HasSubstr(" submitted"));
  EXPECT_EQ(lines[4], "artifact drip +: three");
  EXPECT_EQ(lines[5], "status completed: dripped");

  // As JSON: one StreamResponse per line.
  gate_->Open(100);
  Result json = Meshctl({"send", "--skill", "drip", "--stream", "-o", "json", "again"});
  ASSERT_EQ(json.code, 0) << json.err;
  std::vector<std::string> events = absl::StrSplit(json.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(events.size(), 6u);
  EXPECT_TRUE(Parse<lf::a2a::v1::StreamResponse>(events[0]).has_task());
  EXPECT_EQ(
      Parse<lf::a2a::v1::StreamResponse>(events[3]).artifact_update().artifact().parts(0).text(),
      "two");
}

TEST_F(MeshctlE2eTest, SendThenTheTaskItsTreeAndTheTaskList) {
  // The client talks to n3; the plan runs on n2, its steps on n3 and n1.
  auto sent = Json<lf::a2a::v1::SendMessageResponse>({"send", "--skill", "plan", "tree me"},
                                                     n3_->address());
  const std::string id = sent.task().id();
  ASSERT_EQ(sent.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED) << sent.DebugString();
  EXPECT_THAT(id, HasSubstr("n3~"));

  auto tree = Json<v1::TaskTree>({"task", id});  // asked of n1
  EXPECT_EQ(tree.task().id(), id);
  EXPECT_EQ(tree.task().agent_id(), "planner@n2");
  EXPECT_EQ(tree.task().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  ASSERT_EQ(tree.subtasks_size(), 2);
  std::vector<std::string> steps;
  for (const v1::TaskTree& subtask : tree.subtasks()) {
    EXPECT_EQ(subtask.task().owner_node(), "n2");
    EXPECT_EQ(subtask.task().parent_task_id(), id);
    EXPECT_EQ(subtask.task().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
    steps.push_back(subtask.task().agent_id());
  }
  EXPECT_THAT(steps, UnorderedElementsAre("uppercase@n3", "echo@n1"));

  // meshctl started the task's trace (no node traces here: the id passes
  // through and is stored with the task); the tree shows it, and so do its
  // subtasks, which hang off the planner's turn.
  EXPECT_THAT(tree.task().trace_id(), MatchesRegex("[0-9a-f]{32}"));
  for (const v1::TaskTree& subtask : tree.subtasks()) {
    EXPECT_EQ(subtask.task().trace_id(), tree.task().trace_id());
  }
  Result wide = Meshctl({"send", "--skill", "echo", "-o", "wide", "trace me"});
  ASSERT_EQ(wide.code, 0) << wide.err;
  std::smatch traced;
  ASSERT_TRUE(std::regex_search(wide.out, traced, std::regex("Trace: +([0-9a-f]{32})")))
      << wide.out;
  std::smatch sent_id;
  ASSERT_TRUE(std::regex_search(wide.out, sent_id, std::regex("(n1~[^ \n]+)"))) << wide.out;
  Result shown = Meshctl({"task", sent_id[1].str()});
  EXPECT_THAT(shown.out, HasSubstr("Trace:  " + traced[1].str()));

  Result table = Meshctl({"task", id});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr(id + "  "));
  EXPECT_THAT(table.out, HasSubstr("├─ n2~"));
  EXPECT_THAT(table.out, HasSubstr("└─ n2~"));
  EXPECT_THAT(table.out, HasSubstr("completed  uppercase  uppercase@n3"));
  EXPECT_THAT(table.out, HasSubstr("completed  echo       echo@n1"));

  auto tasks = Json<v1::ListTasksAdminResponse>({"tasks", "--skill", "plan"}, n2_->address());
  ASSERT_GE(tasks.tasks_size(), 1);
  EXPECT_EQ(tasks.tasks(0).id(), id);
  EXPECT_EQ(tasks.tasks(0).owner_node(), "n3");
  auto children = Json<v1::ListTasksAdminResponse>({"tasks", "--state", "completed", "--local"},
                                                   n2_->address());
  for (const v1::TaskSummary& task : children.tasks()) EXPECT_EQ(task.owner_node(), "n2");
  EXPECT_GE(children.tasks_size(), 2);
}

TEST_F(MeshctlE2eTest, ForgivesSmallMistakesAndSaysWhatItMeans) {
  Result typo = Meshctl({"agnets"});
  EXPECT_EQ(typo.code, 2);
  EXPECT_THAT(typo.err, HasSubstr("unknown command \"agnets\" for \"meshctl\""));
  EXPECT_THAT(typo.err, HasSubstr("Did you mean this?\n\tagents"));
  Result nothing_near = Meshctl({"-o", "json", "frobnicate"});
  EXPECT_EQ(nothing_near.code, 2);
  EXPECT_THAT(nothing_near.err, Not(HasSubstr("Did you mean")));

  // A node as a URL.
  Result url = Meshctl({"nodes", "-o", "name"}, "http://" + n2_->address() + "/");
  ASSERT_EQ(url.code, 0) << url.err;
  EXPECT_THAT(absl::StrSplit(absl::StripSuffix(url.out, "\n"), '\n'),
              UnorderedElementsAre("n1", "n2", "n3"));
  Result path = Meshctl({"nodes"}, "http://" + n2_->address() + "/a2a");
  EXPECT_EQ(path.code, 2);
  EXPECT_THAT(path.err, HasSubstr("has a path"));

  // A message for no skill or agent, on a node without a default skill.
  Result unaimed = Meshctl({"send", "hello"});
  EXPECT_EQ(unaimed.code, 2);
  EXPECT_THAT(unaimed.err, HasSubstr("name a --skill, --agent or --tag: node n1 has no default"));
  EXPECT_THAT(unaimed.err,
              HasSubstr("the mesh's skills: drip, echo, hold, plan, shout, uppercase"));

  // An agent is named the same way everywhere: bare, or agent@node.
  Result sent = Meshctl({"send", "--agent", "echo", "-o", "name", "named"}, n3_->address());
  ASSERT_EQ(sent.code, 0) << sent.err;
  const std::string id(absl::StripSuffix(sent.out, "\n"));
  EXPECT_THAT(id, HasSubstr("n3~"));
  for (const char* agent : {"echo", "echo@n1"}) {
    SCOPED_TRACE(agent);
    Result tasks = Meshctl({"tasks", "--agent", agent, "-o", "name"}, n2_->address());
    ASSERT_EQ(tasks.code, 0) << tasks.err;
    EXPECT_THAT(tasks.out, HasSubstr(id + "\n"));
    Result card = Meshctl({"card", agent, "-o", "name"});
    EXPECT_EQ(card.out, "echo@n1\n") << card.err;
  }
  Result unknown = Meshctl({"tasks", "--agent", "ecko"});
  EXPECT_EQ(unknown.code, 0);
  EXPECT_THAT(unknown.err, HasSubstr("no agent 'ecko' is in the mesh now"));
  EXPECT_THAT(unknown.err, HasSubstr("did you mean 'echo'?"));
}

TEST_F(MeshctlE2eTest, PrintsForScripts) {
  Result names = Meshctl({"agents", "-o", "name"});
  ASSERT_EQ(names.code, 0) << names.err;
  EXPECT_EQ(names.out, "drip@n3\necho@n1\nhold@n2\nplanner@n2\nshout@n1\nshout@n3\nuppercase@n3\n");
  Result template_ = Meshctl({"agents", "-o", R"(jsonpath={range .agents[*]}{.id}{"\n"}{end})"});
  ASSERT_EQ(template_.code, 0) << template_.err;
  EXPECT_EQ(template_.out, names.out);
  Result path = Meshctl({"nodes", "-o", "jsonpath={.nodes[*].nodeId}"}, n2_->address());
  EXPECT_THAT(absl::StrSplit(path.out, ' '), UnorderedElementsAre("n1", "n2", "n3"));
  Result missing = Meshctl({"nodes", "-o", "jsonpath={.nodes[0].nope}"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr(".nodes[0] has no field 'nope'"));
  Result bad = Meshctl({"nodes", "-o", "jsonpath={.nodes"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("'{' is not closed"));

  Result headed = Meshctl({"agents"});
  Result headless = Meshctl({"agents", "--no-headers"});
  ASSERT_EQ(headless.code, 0) << headless.err;
  EXPECT_THAT(headed.out, ::testing::StartsWith("AGENT "));
  EXPECT_EQ(headless.out, headed.out.substr(headed.out.find('\n') + 1));

  // JSON documents built of maps keep one key order from run to run.
  Result first = Meshctl({"version", "-o", "json"});
  Result second = Meshctl({"version", "-o", "json"});
  EXPECT_EQ(first.out, second.out);
  EXPECT_LT(first.out.find("\"client\""), first.out.find("\"server\""));
  EXPECT_LT(first.out.find("\"address\""), first.out.find("\"node\""));
}

TEST_F(MeshctlE2eTest, RouteNamesTheAgentTheRouterThenPicks) {
  struct Case {
    std::string server;
    std::string skill;
    std::string agent;
    std::string node;
  };
  for (const Case& c : {Case{n1_->address(), "shout", "shout@n1", "n1"},  // local first
                        Case{n2_->address(), "uppercase", "uppercase@n3", "n3"}}) {
    auto explanation = Json<v1::RouteExplanation>({"route", "--skill", c.skill}, c.server);
    EXPECT_EQ(explanation.pick_agent_id(), c.agent);
    EXPECT_EQ(explanation.pick_node_id(), c.node);
    EXPECT_EQ(explanation.tied(), 1);
    auto sent = Json<lf::a2a::v1::SendMessageResponse>({"send", "--skill", c.skill, "x"}, c.server);
    auto tree = Json<v1::TaskTree>({"task", sent.task().id()}, c.server);
    EXPECT_EQ(tree.task().agent_id(), c.agent);  // where it really ran
  }
  Result table = Meshctl({"route", "--skill", "shout"});
  EXPECT_EQ(table.code, 0);
  EXPECT_THAT(table.out, HasSubstr("Pick:     shout@n1 on node n1"));
  EXPECT_THAT(table.out, HasSubstr("shout@n3      n3    shout  0/4   0.00   candidate"));
  EXPECT_THAT(table.out, HasSubstr("out: no skill 'shout'"));

  Result none = Meshctl({"route", "--skill", "translate"});
  EXPECT_EQ(none.code, 1);
  EXPECT_THAT(none.err, HasSubstr("error: nothing in the mesh can take this request"));
}

TEST_F(MeshctlE2eTest, CancelAndTheTasksItLeaves) {
  auto sent = Json<lf::a2a::v1::SendMessageResponse>({"send", "--skill", "hold", "--no-wait", "x"});
  const std::string id = sent.task().id();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] {
    auto tree = Json<v1::TaskTree>({"task", id});
    return tree.task().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
  auto canceled = Json<lf::a2a::v1::Task>({"cancel", id}, n3_->address());  // any node
  EXPECT_EQ(canceled.id(), id);
  EXPECT_EQ(canceled.status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  auto listed = Json<v1::ListTasksAdminResponse>({"tasks", "--state", "canceled"});
  ASSERT_EQ(listed.tasks_size(), 1);
  EXPECT_EQ(listed.tasks(0).id(), id);
  EXPECT_EQ(listed.tasks(0).agent_id(), "hold@n2");

  Result again = Meshctl({"cancel", id});
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(again.err, HasSubstr("already canceled"));
  EXPECT_THAT(again.err, HasSubstr("A2A TASK_NOT_CANCELABLE"));
}

TEST_F(MeshctlE2eTest, WatchShowsAnAgentRegisteringAndLeaving) {
  const std::string table_out = dir_->File("watch.out");
  const std::string json_out = dir_->File("watch.json");
  const std::vector<std::string> watch = {testing::BinaryPath("meshctl"), "--server",
                                          n1_->address(), "watch"};
  absl::StatusOr<Subprocess> table = Subprocess::Start(watch, table_out, dir_->File("watch.err"));
  std::vector<std::string> json_watch = watch;
  json_watch.insert(json_watch.end(), {"-o", "json"});
  absl::StatusOr<Subprocess> json =
      Subprocess::Start(json_watch, json_out, dir_->File("watch-json.err"));
  ASSERT_TRUE(table.ok());
  ASSERT_TRUE(json.ok());
  auto has_line = [](const std::string& file, std::vector<std::string> words) {
    return WaitFor([&] {
      for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(file), '\n')) {
        bool all = true;
        for (const std::string& word : words) all = all && absl::StrContains(line, word);
        if (all) return true;
      }
      return false;
    });
  };
  ASSERT_TRUE(has_line(table_out, {"synced", "n1"})) << ReadFileOrEmpty(table_out);
  // Both watches have their snapshot before the agent comes: one that
  // subscribed after it left would never see it.
  ASSERT_TRUE(has_line(json_out, {"SYNCED"})) << ReadFileOrEmpty(json_out);
  EXPECT_TRUE(has_line(table_out, {"agent-added", "n3", "drip@n3", "drip"}));

  Subprocess agent = n2_->StartAgent("echo-agent", {"--agent-id", "watched"});
  EXPECT_TRUE(has_line(table_out, {"agent-added", "n2", "watched@n2", "echo"}))
      << ReadFileOrEmpty(table_out);
  agent.Signal(SIGTERM);
  EXPECT_TRUE(has_line(table_out, {"agent-removed", "n2", "watched@n2"}))
      << ReadFileOrEmpty(table_out);

  ASSERT_TRUE(has_line(json_out, {"AGENT_REMOVED", "watched@n2"}));
  std::vector<std::string> kinds;
  for (absl::string_view line :
       absl::StrSplit(ReadFileOrEmpty(json_out), '\n', absl::SkipEmpty())) {
    auto event = Parse<v1::CatalogEvent>(std::string(line));
    if (event.agent_id() == "watched@n2" || event.kind() == v1::CatalogEvent::SYNCED) {
      kinds.push_back(v1::CatalogEvent::Kind_Name(event.kind()));
    }
  }
  EXPECT_THAT(kinds, ElementsAre("SYNCED", "AGENT_ADDED", "AGENT_REMOVED"));
  EXPECT_TRUE(table->running());  // a watch lasts until interrupted
}

TEST_F(MeshctlE2eTest, DrainHealthAndVersion) {
  E2eNode n4(*dir_, "n4", Flags(n1_->address()));
  ASSERT_TRUE(n4.Start());
  ASSERT_TRUE(WaitFor([&] { return Json<v1::ListNodesResponse>({"nodes"}).nodes_size() == 4; }));
  Result healthy = Meshctl({"health"}, n4.address());
  EXPECT_EQ(healthy.code, 0);
  EXPECT_THAT(healthy.out, HasSubstr(n4.address() + ": SERVING"));

  // An agent there: out of routing while n4 drains, and back after --undo.
  sdk::AgentOptions solo;
  solo.node = n4.address();
  solo.agents = {
      {"solo", Card("solo", {"solo"}), 1, [](sdk::TaskContext& task) { task.Complete("solo"); }}};
  absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(std::move(solo));
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE(n1_->WaitForAgent("solo@n4"));
  EXPECT_EQ(Meshctl({"route", "--skill", "solo", "-o", "name"}).out, "solo@n4\n");

  auto drained = Json<v1::DrainResponse>({"drain", "n4"});  // through n1
  EXPECT_EQ(drained.node_id(), "n4");
  EXPECT_EQ(drained.running_tasks(), 0);
  EXPECT_TRUE(WaitFor([&] {
    const auto nodes = Json<v1::ListNodesResponse>({"nodes"});
    for (const auto& node : nodes.nodes()) {
      if (node.node_id() == "n4") return node.state() == v1::NODE_STATE_DRAINING;
    }
    return false;
  }));
  Result unhealthy = Meshctl({"health", "-o", "json"}, n4.address());
  EXPECT_EQ(unhealthy.code, 1);
  auto health = Parse<google::protobuf::Struct>(unhealthy.out);
  EXPECT_EQ(health.fields().at("status").string_value(), "NOT_SERVING");
  EXPECT_EQ(health.fields().at("nodes").list_value().values_size(), 4);
  EXPECT_TRUE(n4.process().running());  // draining is not stopping

  EXPECT_EQ(Meshctl({"route", "--skill", "solo"}).code, 1);  // nowhere to go
  Result undone = Meshctl({"drain", "n4", "--undo"});
  ASSERT_EQ(undone.code, 0) << undone.err;
  EXPECT_THAT(undone.out, HasSubstr("node n4 takes client work again"));
  EXPECT_TRUE(WaitFor([&] {
    Result route = Meshctl({"route", "--skill", "solo", "-o", "name"});
    return route.code == 0 && route.out == "solo@n4\n";
  }));
  EXPECT_EQ(Meshctl({"health"}, n4.address()).code, 0);
  Result sent = Meshctl({"send", "--skill", "solo", "x"}, n4.address());
  EXPECT_EQ(sent.code, 0) << sent.err;  // n4 takes client work again

  auto version = Json<google::protobuf::Struct>({"version"});
  const auto& fields = version.fields();
  EXPECT_FALSE(fields.at("client").struct_value().fields().at("version").string_value().empty());
  EXPECT_EQ(fields.at("server").struct_value().fields().at("node").string_value(), "n1");
  EXPECT_EQ(fields.at("server").struct_value().fields().at("version").string_value(),
            fields.at("client").struct_value().fields().at("version").string_value());
}

// Runs meshctl in the background; its output goes to files.
struct Background {
  std::optional<Subprocess> process;
  std::string out;
  std::string err;
};

TEST_F(MeshctlE2eTest, CtrlCLeavesAStreamedTaskRunningAndFollowPicksItUp) {
  auto start = [&](std::vector<std::string> args) {
    static int runs = 0;
    Background run;
    run.out = dir_->File(absl::StrCat("background-", ++runs, ".out"));
    run.err = dir_->File(absl::StrCat("background-", runs, ".err"));
    std::vector<std::string> argv = {testing::BinaryPath("meshctl"), "--server", n1_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv, run.out, run.err);
    EXPECT_TRUE(process.ok()) << process.status();
    if (process.ok()) run.process.emplace(*std::move(process));
    return run;
  };
  Background send = start({"send", "--skill", "hold", "--stream", "wait for me"});
  ASSERT_TRUE(send.process.has_value());
  std::string id;
  ASSERT_TRUE(WaitFor([&] {
    const std::string out = ReadFileOrEmpty(send.out);
    const size_t at = out.find("task n");
    if (at == std::string::npos || out.find(" working", at) == std::string::npos) return false;
    id = out.substr(at + 5, out.find(' ', at + 5) - at - 5);
    return true;
  })) << ReadFileOrEmpty(send.out);
  send.process->Signal(SIGINT);
  absl::StatusOr<int> code = send.process->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 130);
  const std::string said = ReadFileOrEmpty(send.err);
  EXPECT_THAT(said, HasSubstr(absl::StrCat("task ", id, " keeps running")));
  EXPECT_THAT(said, HasSubstr(absl::StrCat("meshctl task ", id, " --follow")));
  EXPECT_THAT(said, HasSubstr(absl::StrCat("meshctl cancel ", id)));
  auto tree = Json<v1::TaskTree>({"task", id});
  EXPECT_EQ(tree.task().state(), lf::a2a::v1::TASK_STATE_WORKING);

  // Following it: the task as it stands, then what happens to it.
  Background follow = start({"task", id, "--follow"});
  ASSERT_TRUE(follow.process.has_value());
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(follow.out), id); }));
  Result canceled = Meshctl({"cancel", id});
  EXPECT_EQ(canceled.code, 0) << canceled.err;
  code = follow.process->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1);  // the task ended canceled
  EXPECT_THAT(ReadFileOrEmpty(follow.out), HasSubstr("canceled"));
  // A task that has ended prints as `task ID` does.
  Result ended = Meshctl({"task", id, "--follow"});
  EXPECT_THAT(ended.out, HasSubstr(id + "  canceled"));
}

TEST_F(MeshctlE2eTest, ErrorsAreClearAndExitCodesSayWhatKind) {
  const std::string nowhere = absl::StrCat("127.0.0.1:", testing::PickFreePort());
  Result unreachable = Meshctl({"agents"}, nowhere);
  EXPECT_EQ(unreachable.code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("error: cannot reach a node at " + nowhere));
  EXPECT_EQ(unreachable.out, "");

  Result unknown = Meshctl({"task", "n2~00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("task n2~00000000-0000-4000-8000-000000000000 not found"));
  EXPECT_THAT(unknown.err, HasSubstr("(NOT_FOUND, A2A TASK_NOT_FOUND)"));

  Result missing_agent = Meshctl({"card", "nope"});
  EXPECT_EQ(missing_agent.code, 1);
  EXPECT_THAT(missing_agent.err, HasSubstr("no agent 'nope' in the mesh; agents: drip@n3"));

  Result usage = Meshctl({"agents", "--bogus"});
  EXPECT_EQ(usage.code, 2);
  EXPECT_THAT(usage.err, HasSubstr("--bogus"));
  Result no_verb = Meshctl({});
  EXPECT_EQ(no_verb.code, 2);
  EXPECT_THAT(no_verb.err, HasSubstr("subcommand is required"));
  Result format = Meshctl({"nodes", "-o", "xml"});
  EXPECT_EQ(format.code, 2);
  EXPECT_THAT(format.err, HasSubstr("'xml' is not an output format"));
  Result state = Meshctl({"tasks", "--state", "done"});
  EXPECT_EQ(state.code, 2);
  EXPECT_THAT(state.err, HasSubstr("'done' is not a task state"));
  Result data = Meshctl({"send", "--skill", "echo", "--data", "{not json"});
  EXPECT_EQ(data.code, 2);
  EXPECT_THAT(data.err, HasSubstr("--data: the value is not JSON"));
  Result failed = Meshctl({"send", "--skill", "translate", "x"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_THAT(failed.err, HasSubstr("no agent offers skill 'translate'"));
  EXPECT_THAT(failed.err, HasSubstr("A2A UNSUPPORTED_OPERATION"));

  // A2AMESH_SERVER names the node when --server does not; help exits 0.
  Result env = RunCommand({"/usr/bin/env", "A2AMESH_SERVER=" + n2_->address(),
                           testing::BinaryPath("meshctl"), "version"});
  EXPECT_EQ(env.code, 0);
  EXPECT_THAT(env.out, HasSubstr("(node n2 at " + n2_->address() + ")"));
  Result help = Meshctl({"send", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("Examples:"));
  Result completion =
      RunCommand({"/bin/bash", "-c",
                  testing::BinaryPath("meshctl") + " completion bash | bash -n && echo parsed"});
  EXPECT_EQ(completion.out, "parsed\n");
}

}  // namespace
}  // namespace a2amesh
