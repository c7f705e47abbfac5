// The C++ SDK against a node that crashes mid-task and resumes it: the node
// here is a scripted AgentHost service on loopback, so that the test decides
// exactly what the node had stored when it came back.

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "a2amesh/v1/agent_host.grpc.pb.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace a2amesh {
namespace {

using lf::a2a::v1::TaskState;
using v1::AgentToNode;
using v1::NodeToAgent;

// One Connect call seen from the node's side: the test reads and writes it
// from its own thread while the handler thread holds the call open.
struct Stream {
  grpc::ServerReaderWriter<NodeToAgent, AgentToNode>* io = nullptr;
  absl::Notification end;  // the test ends the call (the "node crashed")
};

class ScriptedNode final : public v1::AgentHost::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<NodeToAgent, AgentToNode>* io) override {
    AgentToNode hello;
    if (!io->Read(&hello) || !hello.has_register_()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected a registration");
    }
    NodeToAgent registered;
    registered.mutable_registered()->set_node_id("scripted");
    registered.mutable_registered()->add_agents()->set_agent_id(
        hello.register_().agents(0).agent_id());
    io->Write(registered);
    auto stream = std::make_shared<Stream>();
    stream->io = io;
    {
      absl::MutexLock lock(&mu_);
      streams_.push_back(stream);
    }
    stream->end.WaitForNotification();
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "node going down");
  }

  // Ends every call still open (a test that failed midway).
  void EndAll() {
    absl::MutexLock lock(&mu_);
    for (const auto& stream : streams_) {
      if (!stream->end.HasBeenNotified()) stream->end.Notify();
    }
  }

  // The `n`th stream (0-based), once the agent opened and registered it.
  std::shared_ptr<Stream> WaitForStream(size_t n) {
    absl::MutexLock lock(&mu_);
    auto opened = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.size() > n; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&opened), absl::Seconds(10))) return nullptr;
    return streams_[n];
  }

 private:
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
};

// The next task update on `stream`, skipping heartbeats.
bool NextUpdate(Stream& stream, v1::TaskUpdate* update) {
  AgentToNode message;
  while (stream.io->Read(&message)) {
    if (message.has_update()) {
      *update = message.update();
      return true;
    }
  }
  return false;
}

class SdkResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&node_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    node_.EndAll();
    Release();  // a handler still waiting (a test that failed midway)
    agent_.reset();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  // Starts the SDK with one agent, `id`, against the scripted node.
  void StartAgent(const std::string& id, sdk::TaskHandler handler) {
    sdk::AgentOptions options;
    options.node = "127.0.0.1:" + std::to_string(port_);
    options.min_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(50);
    lf::a2a::v1::AgentCard card;
    card.set_name(id);
    options.agents.push_back({id, card, 1, std::move(handler)});
    auto agent = sdk::Agent::Start(options);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  // A new task `task_id` for agent `id`.
  static NodeToAgent Assignment(const std::string& id, const std::string& task_id) {
    NodeToAgent assignment;
    auto* assign = assignment.mutable_assignment();
    assign->set_agent_id(id);
    assign->mutable_task()->set_id(task_id);
    assign->mutable_task()->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
    *assign->mutable_task()->add_history() = sdk::AgentMessage("go");
    *assign->mutable_message() = assign->task().history(0);
    return assignment;
  }

  // Lets the handlers go on.
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

  absl::Notification release_;
  ScriptedNode node_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<sdk::Agent> agent_;
};

TEST_F(SdkResumeTest, AResumedTaskGetsTheArtifactsTheNodeLostAheadOfTheRunsNextEvent) {
  absl::Notification artifacts_sent;
  StartAgent("writer", [&](sdk::TaskContext& task) {
    task.SendArtifact(sdk::TextArtifact("kept", "kept", "k"), false, true);
    task.SendArtifact(sdk::TextArtifact("lost", "lost", "one"), false, false);
    task.SendArtifact(sdk::TextArtifact("lost", "lost", "two"), true, true);
    artifacts_sent.Notify();
    release_.WaitForNotification();
    task.Complete("done");
  });

  // First node: assigns the task, receives the three artifact events, then
  // "crashes" having stored only the first.
  std::shared_ptr<Stream> first = node_.WaitForStream(0);
  ASSERT_NE(first, nullptr);
  NodeToAgent assignment = Assignment("writer", "task-1");
  ASSERT_TRUE(first->io->Write(assignment));
  v1::TaskUpdate update;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(NextUpdate(*first, &update)) << i;
  ASSERT_TRUE(artifacts_sent.WaitForNotificationWithTimeout(absl::Seconds(10)));
  first->end.Notify();

  // Second node: resumes the task with what it had stored.
  std::shared_ptr<Stream> second = node_.WaitForStream(1);
  ASSERT_NE(second, nullptr);
  auto* assign = assignment.mutable_assignment();
  assign->set_resumed(true);
  *assign->mutable_task()->add_artifacts() = sdk::TextArtifact("kept", "kept", "k");
  assign->mutable_task()->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_WORKING);
  ASSERT_TRUE(second->io->Write(assignment));

  // The run is not started again (the handler would notify twice): what the
  // node lacked comes, whole, and then the run's own next event.
  ASSERT_TRUE(NextUpdate(*second, &update));
  EXPECT_EQ(update.task_id(), "task-1");
  ASSERT_TRUE(update.event().has_artifact_update()) << update.DebugString();
  const auto& resent = update.event().artifact_update();
  EXPECT_EQ(resent.artifact().artifact_id(), "lost");
  EXPECT_FALSE(resent.append());
  ASSERT_EQ(resent.artifact().parts_size(), 2);
  EXPECT_EQ(resent.artifact().parts(0).text(), "one");
  EXPECT_EQ(resent.artifact().parts(1).text(), "two");
  Release();
  ASSERT_TRUE(NextUpdate(*second, &update));
  ASSERT_TRUE(update.event().has_status_update()) << update.DebugString();
  EXPECT_EQ(update.event().status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  second->end.Notify();
}

TEST_F(SdkResumeTest, ARunThatEndedUnstoredSendsItsEndAgainWhenResumed) {
  absl::Notification ended;
  // The handler ends the task and is still returning when the node comes back.
  StartAgent("ender", [&](sdk::TaskContext& task) {
    task.Complete("finished");
    ended.Notify();
    release_.WaitForNotification();
  });

  std::shared_ptr<Stream> first = node_.WaitForStream(0);
  ASSERT_NE(first, nullptr);
  NodeToAgent assignment = Assignment("ender", "task-2");
  ASSERT_TRUE(first->io->Write(assignment));
  v1::TaskUpdate update;
  ASSERT_TRUE(NextUpdate(*first, &update));
  ASSERT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(10)));
  first->end.Notify();

  std::shared_ptr<Stream> second = node_.WaitForStream(1);
  ASSERT_NE(second, nullptr);
  assignment.mutable_assignment()->set_resumed(true);
  ASSERT_TRUE(second->io->Write(assignment));
  ASSERT_TRUE(NextUpdate(*second, &update));
  ASSERT_TRUE(update.event().has_status_update()) << update.DebugString();
  EXPECT_EQ(update.event().status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

  Release();
  second->end.Notify();
}

}  // namespace
}  // namespace a2amesh
