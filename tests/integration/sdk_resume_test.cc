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

TEST(SdkResumeTest, AResumedTaskGetsTheArtifactsTheNodeLostAheadOfTheRunsNextEvent) {
  ScriptedNode node;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&node);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  absl::Notification artifacts_sent;
  absl::Notification may_finish;
  sdk::AgentOptions options;
  options.node = "127.0.0.1:" + std::to_string(port);
  options.min_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(50);
  lf::a2a::v1::AgentCard card;
  card.set_name("writer");
  options.agents.push_back(
      {"writer", card, 1, [&](sdk::TaskContext& task) {
         task.SendArtifact(sdk::TextArtifact("kept", "kept", "k"), false, true);
         task.SendArtifact(sdk::TextArtifact("lost", "lost", "one"), false, false);
         task.SendArtifact(sdk::TextArtifact("lost", "lost", "two"), true, true);
         artifacts_sent.Notify();
         may_finish.WaitForNotification();
         task.Complete("done");
       }});
  auto agent = sdk::Agent::Start(options);
  ASSERT_TRUE(agent.ok()) << agent.status();

  // First node: assigns the task, receives the three artifact events, then
  // "crashes" having stored only the first.
  std::shared_ptr<Stream> first = node.WaitForStream(0);
  ASSERT_NE(first, nullptr);
  NodeToAgent assignment;
  auto* assign = assignment.mutable_assignment();
  assign->set_agent_id("writer");
  assign->mutable_task()->set_id("task-1");
  assign->mutable_task()->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
  *assign->mutable_task()->add_history() = sdk::AgentMessage("go");
  *assign->mutable_message() = assign->task().history(0);
  ASSERT_TRUE(first->io->Write(assignment));
  v1::TaskUpdate update;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(NextUpdate(*first, &update)) << i;
  ASSERT_TRUE(artifacts_sent.WaitForNotificationWithTimeout(absl::Seconds(10)));
  first->end.Notify();

  // Second node: resumes the task with what it had stored.
  std::shared_ptr<Stream> second = node.WaitForStream(1);
  ASSERT_NE(second, nullptr);
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
  may_finish.Notify();
  ASSERT_TRUE(NextUpdate(*second, &update));
  ASSERT_TRUE(update.event().has_status_update()) << update.DebugString();
  EXPECT_EQ(update.event().status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

  second->end.Notify();
  agent->reset();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

TEST(SdkResumeTest, ARunThatEndedUnstoredSendsItsEndAgainWhenResumed) {
  ScriptedNode node;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&node);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  absl::Notification ended;
  absl::Notification may_return;
  sdk::AgentOptions options;
  options.node = "127.0.0.1:" + std::to_string(port);
  options.min_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(50);
  lf::a2a::v1::AgentCard card;
  card.set_name("ender");
  // The handler ends the task and is still returning when the node comes back.
  options.agents.push_back({"ender", card, 1, [&](sdk::TaskContext& task) {
                              task.Complete("finished");
                              ended.Notify();
                              may_return.WaitForNotification();
                            }});
  auto agent = sdk::Agent::Start(options);
  ASSERT_TRUE(agent.ok()) << agent.status();

  std::shared_ptr<Stream> first = node.WaitForStream(0);
  ASSERT_NE(first, nullptr);
  NodeToAgent assignment;
  auto* assign = assignment.mutable_assignment();
  assign->set_agent_id("ender");
  assign->mutable_task()->set_id("task-2");
  assign->mutable_task()->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
  *assign->mutable_task()->add_history() = sdk::AgentMessage("go");
  *assign->mutable_message() = assign->task().history(0);
  ASSERT_TRUE(first->io->Write(assignment));
  v1::TaskUpdate update;
  ASSERT_TRUE(NextUpdate(*first, &update));
  ASSERT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(10)));
  first->end.Notify();

  std::shared_ptr<Stream> second = node.WaitForStream(1);
  ASSERT_NE(second, nullptr);
  assign->set_resumed(true);
  ASSERT_TRUE(second->io->Write(assignment));
  ASSERT_TRUE(NextUpdate(*second, &update));
  ASSERT_TRUE(update.event().has_status_update()) << update.DebugString();
  EXPECT_EQ(update.event().status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

  may_return.Notify();
  second->end.Notify();
  agent->reset();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace a2amesh
