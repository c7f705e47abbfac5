// The mesh in one process: several real nodes on 127.0.0.1:0, with SDK agents
// spread across them, talking over real gRPC.

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "catalog/remote_catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "peer/peer_manager.h"
#include "tasks/task_manager.h"
#include "tasks/task_state.h"
#include "testing/cards.h"
#include "testing/fake_runner.h"
#include "testing/mesh_fixture.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::Echo;
using ::a2amesh::testing::ErrorReason;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::MeshFixture;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::Planner;
using ::a2amesh::testing::ReadAll;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::Upper;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using ::testing::HasSubstr;

using MeshTest = MeshFixture;

TEST_F(MeshTest, ANodeSeededWithOnePeerLearnsTheWholeMembership) {
  NodeHarness d(Options("d", {b_->address()}));
  ASSERT_TRUE(WaitFor([&] { return FullMesh({a_.get(), b_.get(), c_.get(), &d}); }));
  std::vector<peer::MemberState> members = d.node().peers().members();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].node_id, "a");
  EXPECT_EQ(members[2].node_id, "c");
  EXPECT_TRUE(members[2].up);
}

TEST_F(MeshTest, ATaskForASkillOnlyCHasRunsOnCAndStreamsBackThroughA) {
  auto agent = c_->StartAgent({Upper("upper")});
  ASSERT_TRUE(Sees(*a_, "upper@c"));
  auto stub = a_->NewA2aStub();
  auto context = A2aContext();
  auto reader = stub->SendStreamingMessage(context.get(), ForSkill("upper", "mesh"));
  grpc::Status status;
  std::vector<StreamResponse> events = ReadAll(*reader, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(events.size(), 7u);
  const std::string id = events[0].task().id();
  EXPECT_THAT(id, HasSubstr("a~"));  // owned by the node it entered
  EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  std::string streamed;
  for (int i = 2; i < 6; ++i) {
    streamed += events[i].artifact_update().artifact().parts(0).text();
    EXPECT_EQ(events[i].artifact_update().append(), i > 2);
  }
  EXPECT_EQ(streamed, "MESH");
  EXPECT_EQ(events[6].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(events[6].status_update().status().message().parts(0).text(), "done on upper@c");

  // Any node answers for it: B forwards to A, the owner.
  lf::a2a::v1::GetTaskRequest get;
  get.set_id(id);
  Task task;
  status = b_->NewA2aStub()->GetTask(A2aContext().get(), get, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task.artifacts(0).parts_size(), 4);
  // The node that ran it keeps nothing of it.
  EXPECT_TRUE(WaitFor([&] { return c_->node().tasks().active_tasks() == 0; }));
  EXPECT_FALSE(c_->node().tasks().Get(id).ok());
}

// An agent on C that answers with a direct Message (a chat-style agent): the
// client of A gets the Message alone, through the handoff, and A keeps no task;
// a client that asked for the task at once gets it completed with the message.
TEST_F(MeshTest, ADirectReplyFromAnAgentOnAnotherNodeReachesTheClientAsAMessage) {
  sdk::AgentSpec chat{"chat", Card("chat", {"chat"}), 4, [](sdk::TaskContext& task) {
                        task.Reply(sdk::AgentMessage("hi, " + task.text()));
                      }};
  chat.direct_replies = true;
  auto agent = c_->StartAgent({chat});
  ASSERT_TRUE(Sees(*a_, "chat@c"));
  auto stub = a_->NewA2aStub();

  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status =
      stub->SendMessage(A2aContext().get(), ForSkill("chat", "blocking"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.has_message()) << response.DebugString();
  EXPECT_EQ(response.message().parts(0).text(), "hi, blocking");
  EXPECT_EQ(response.message().role(), lf::a2a::v1::ROLE_AGENT);
  EXPECT_TRUE(response.message().task_id().empty());

  auto context = A2aContext();
  auto reader = stub->SendStreamingMessage(context.get(), ForSkill("chat", "streamed"));
  std::vector<StreamResponse> events = ReadAll(*reader, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(events.size(), 1u);  // the Message alone: no Task before it
  ASSERT_TRUE(events[0].has_message());
  EXPECT_EQ(events[0].message().parts(0).text(), "hi, streamed");

  // Nothing is kept on either node.
  EXPECT_TRUE(WaitFor([&] { return a_->node().tasks().active_tasks() == 0; }));
  absl::StatusOr<tasks::TaskList> listed = a_->node().tasks().List({}, "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->total, 0);

  // Given the task at once, the client finds it completed with the reply.
  lf::a2a::v1::SendMessageRequest immediate = ForSkill("chat", "later");
  immediate.mutable_configuration()->set_return_immediately(true);
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), immediate, &response).ok());
  ASSERT_TRUE(response.has_task());
  const std::string id = response.task().id();
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<Task> task = a_->node().tasks().Get(id);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_COMPLETED;
  }));
  EXPECT_EQ(a_->node().tasks().Get(id)->status().message().parts(0).text(), "hi, later");
}

TEST_F(MeshTest, CancelAndSubscribeWorkFromAnyNode) {
  std::atomic<int> cancels{0};
  auto agent = c_->StartAgent({{"slow", Card("slow", {"slow"}), 4, [&](sdk::TaskContext& task) {
                                  task.SetWorking();
                                  if (task.WaitForCancel(absl::Seconds(20))) cancels++;
                                }}});
  ASSERT_TRUE(Sees(*a_, "slow@c"));
  lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(a_->NewA2aStub()->SendMessage(A2aContext().get(), request, &response).ok());
  const std::string id = response.task().id();
  ASSERT_TRUE(WaitFor([&] {
    return a_->node().tasks().Get(id)->status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));

  // Subscribe through B, cancel through C: both reach A.
  lf::a2a::v1::SubscribeToTaskRequest subscribe;
  subscribe.set_id(id);
  auto sub_context = A2aContext();
  auto reader = b_->NewA2aStub()->SubscribeToTask(sub_context.get(), subscribe);
  StreamResponse first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(first.task().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  Task canceled;
  grpc::Status status = c_->NewA2aStub()->CancelTask(A2aContext().get(), cancel, &canceled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(canceled.status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  std::vector<StreamResponse> rest = ReadAll(*reader, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].status_update().status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  EXPECT_TRUE(WaitFor([&] { return cancels.load() == 1; }));  // the agent on C saw it
}

TEST_F(MeshTest, ADeadNodesAgentsLeaveRoutingAndTasksGoElsewhere) {
  auto on_b = b_->StartAgent({Upper("upper-b")});
  auto on_c = c_->StartAgent({Upper("upper-c")});
  ASSERT_TRUE(Sees(*a_, "upper-b@b"));
  ASSERT_TRUE(Sees(*a_, "upper-c@c"));
  on_c.reset();
  c_.reset();  // node C goes away
  ASSERT_TRUE(WaitFor([&] { return a_->node().peers().peers_up() == 1; }));
  EXPECT_EQ(a_->node().remote_catalog().Find("c", "upper-c"), nullptr);
  auto stub = a_->NewA2aStub();
  for (int i = 0; i < 4; ++i) {
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status = stub->SendMessage(A2aContext().get(), ForSkill("upper", "x"), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.task().status().message().parts(0).text(), "done on upper-b@b");
  }
}

TEST_F(MeshTest, CyclesAndOverDeepChainsAreRefusedBeforeAnyHandoff) {
  auto agent = c_->StartAgent({Upper("upper")});
  ASSERT_TRUE(Sees(*a_, "upper@c"));
  auto stub = a_->NewA2aStub();
  lf::a2a::v1::SendMessageRequest cycle = ForSkill("upper", "x");
  auto* hops = (*cycle.mutable_metadata()->mutable_fields())["a2amesh/hops"].mutable_list_value();
  hops->add_values()->set_string_value("planner@b");
  hops->add_values()->set_string_value("upper@c");
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status = stub->SendMessage(A2aContext().get(), cycle, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "UNSUPPORTED_OPERATION");
  EXPECT_THAT(status.error_message(), HasSubstr("planner@b -> upper@c"));
  EXPECT_THAT(status.error_message(), HasSubstr("would form a cycle"));

  lf::a2a::v1::SendMessageRequest deep = ForSkill("upper", "x");
  auto* chain = (*deep.mutable_metadata()->mutable_fields())["a2amesh/hops"].mutable_list_value();
  for (int i = 0; i < 8; ++i) {
    chain->add_values()->set_string_value(absl::StrCat("agent", i, "@b"));
  }
  status = stub->SendMessage(A2aContext().get(), deep, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("already 8 deep"));
  EXPECT_THAT(status.error_message(), HasSubstr("--max-hops limit of 8"));
  EXPECT_EQ(a_->node().tasks().active_tasks(), 0u);  // nothing was created
}

TEST_F(MeshTest, ExplicitAgentsWorkAcrossNodes) {
  auto on_b = b_->StartAgent({Upper("upper")});
  auto on_c = c_->StartAgent({Upper("upper")});
  ASSERT_TRUE(Sees(*a_, "upper@b"));
  ASSERT_TRUE(Sees(*a_, "upper@c"));
  lf::a2a::v1::SendMessageRequest request = SendText("x");
  request.set_tenant("upper@c");
  lf::a2a::v1::SendMessageResponse response;
  auto stub = a_->NewA2aStub();
  for (int i = 0; i < 3; ++i) {
    grpc::Status status = stub->SendMessage(A2aContext().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // Both agents are named "upper"; only C's answers this tenant.
    EXPECT_EQ(response.task().status().message().parts(0).text(), "done on upper@c");
  }
}

TEST_F(MeshTest, APlannerOnBDelegatesToSkillsOnAAndCAndComposesTheResults) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_c = c_->StartAgent({Echo("echo")});
  auto on_b = b_->StartAgent({Planner({"upper", "echo"})});
  ASSERT_TRUE(Sees(*b_, "upper@a"));
  ASSERT_TRUE(Sees(*b_, "echo@c"));
  ASSERT_TRUE(Sees(*c_, "planner@b"));
  // The client talks to C; the plan runs on B; its steps on A and C.
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status =
      c_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("plan", "hi"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const Task& root = response.task();
  ASSERT_EQ(root.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED) << root.DebugString();
  EXPECT_THAT(root.id(), HasSubstr("c~"));
  std::string plan = root.artifacts(0).parts(0).text();
  EXPECT_THAT(plan, HasSubstr("[upper] HI (b~"));  // subtasks belong to B, where the planner is
  EXPECT_THAT(plan, HasSubstr("[echo] echo hi (b~"));
  // The subtasks are B's, children of the root, and ran one hop further on.
  lf::a2a::v1::ListTasksRequest list;
  lf::a2a::v1::ListTasksResponse children;
  ASSERT_TRUE(b_->NewA2aStub()->ListTasks(A2aContext().get(), list, &children).ok());
  ASSERT_EQ(children.tasks_size(), 2);
  for (const Task& child : children.tasks()) {
    EXPECT_EQ(child.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  }
}

TEST_F(MeshTest, CancellingTheRootCancelsTheChildrenOnOtherNodes) {
  std::atomic<int> started{0};
  std::atomic<int> child_cancels{0};
  std::atomic<int> planner_cancels{0};
  auto slow = [&](const std::string& id) -> sdk::AgentSpec {
    return {id, Card(id, {"slow"}), 4, [&](sdk::TaskContext& task) {
              ++started;
              task.SetWorking();
              if (task.WaitForCancel(absl::Seconds(30))) ++child_cancels;
            }};
  };
  auto on_a = a_->StartAgent({slow("slow-a")});
  auto on_c = c_->StartAgent({slow("slow-c")});
  // Two steps on the same skill: the router spreads them over A and C.
  std::atomic<int> unused{0};
  auto on_b = b_->StartAgent(
      {{"planner", Card("planner", {"plan"}), 4, [&](sdk::TaskContext& task) {
          auto run = [&task] { return task.Delegate(sdk::TextSubtask("slow", "x")); };
          auto first = std::async(std::launch::async, run);
          auto second = std::async(std::launch::async, run);
          // A subtask ends canceled, or the wait does: either
          // way the planner hears of it.
          for (auto* step : {&first, &second}) {
            absl::StatusOr<Task> result = step->get();
            if (absl::IsCancelled(result.status()) ||
                (result.ok() && result->status().state() == lf::a2a::v1::TASK_STATE_CANCELED)) {
              ++planner_cancels;
            }
          }
        }}});
  ASSERT_TRUE(Sees(*b_, "slow-a@a"));
  ASSERT_TRUE(Sees(*b_, "slow-c@c"));
  ASSERT_TRUE(Sees(*a_, "planner@b"));
  lf::a2a::v1::SendMessageRequest request = ForSkill("plan", "go");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(a_->NewA2aStub()->SendMessage(A2aContext().get(), request, &response).ok());
  ASSERT_TRUE(WaitFor([&] { return started.load() == 2; }));

  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(response.task().id());
  Task canceled;
  grpc::Status status = a_->NewA2aStub()->CancelTask(A2aContext().get(), cancel, &canceled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(WaitFor([&] { return child_cancels.load() == 2; }));  // on A and on C
  EXPECT_TRUE(WaitFor([&] { return planner_cancels.load() == 2; }));
  // B's records of the subtasks say why they ended.
  lf::a2a::v1::ListTasksRequest list;
  list.set_status(lf::a2a::v1::TASK_STATE_CANCELED);
  lf::a2a::v1::ListTasksResponse children;
  ASSERT_TRUE(WaitFor([&] {
    return b_->NewA2aStub()->ListTasks(A2aContext().get(), list, &children).ok() &&
           children.tasks_size() == 2;
  }));
  EXPECT_THAT(children.tasks(0).status().message().parts(0).text(),
              HasSubstr("its parent task " + response.task().id() + " ended"));
}

TEST_F(MeshTest, DelegationErrorsComeBackToTheAgent) {
  absl::Status missing;
  absl::Status cycle;
  auto on_b =
      b_->StartAgent({{"planner", Card("planner", {"plan"}), 4, [&](sdk::TaskContext& task) {
                         missing = task.Delegate(sdk::TextSubtask("translate", "x")).status();
                         cycle = task.Delegate(sdk::TextSubtask("plan", "again")).status();
                         task.Complete();
                       }}});
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(
      b_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("plan", "x"), &response).ok());
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.message(), HasSubstr("no agent offers skill 'translate'"));
  EXPECT_EQ(cycle.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(cycle.message(), HasSubstr("planner@b"));
  EXPECT_THAT(cycle.message(), HasSubstr("would form a cycle"));
}

TEST_F(MeshTest, AHandoffRefusedBeforeAcceptanceFallsBackToTheNextCandidate) {
  auto on_b = b_->StartAgent({Upper("upper")});
  ASSERT_TRUE(Sees(*a_, "upper@b"));
  // The first candidate names an agent node C does not have: C refuses.
  auto ghost = std::make_shared<catalog::RemoteAgent>("c", "ghost", Card("ghost", {"upper"}), 4);
  ghost->Acquire();
  std::shared_ptr<catalog::RemoteAgent> real = a_->node().remote_catalog().Find("b", "upper");
  auto sub = std::make_shared<testing::RecordingSubscriber>();
  std::unique_ptr<tasks::TaskRunner> runner =
      a_->node().peers().HandoffRunner({{ghost, "upper"}, {real, "upper"}});
  ASSERT_TRUE(
      a_->node()
          .tasks()
          .Create(tasks::NewTask{ForSkill("upper", "hop"), std::move(runner), "upper", ""}, sub)
          .ok());
  ASSERT_TRUE(WaitFor([&] {
    std::vector<StreamResponse> events = sub->events();
    return !events.empty() && tasks::IsFinalEvent(events.back());
  }));
  Task task = sub->last_task();
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED) << task.DebugString();
  EXPECT_EQ(task.status().message().parts(0).text(), "done on upper@b");
  EXPECT_EQ(ghost->outstanding(), 0);  // its slot was given back

  // When no candidate accepts, the task fails and says why, node by node.
  auto ghost2 = std::make_shared<catalog::RemoteAgent>("c", "ghost", Card("ghost", {"upper"}), 4);
  ghost2->Acquire();
  auto lost = std::make_shared<catalog::RemoteAgent>("z", "gone", Card("gone", {"upper"}), 4);
  auto failed_sub = std::make_shared<testing::RecordingSubscriber>();
  ASSERT_TRUE(a_->node()
                  .tasks()
                  .Create(tasks::NewTask{ForSkill("upper", "x"),
                                         a_->node().peers().HandoffRunner(
                                             {{ghost2, "upper"}, {lost, "upper"}}),
                                         "upper", ""},
                          failed_sub)
                  .ok());
  ASSERT_TRUE(WaitFor([&] {
    std::vector<StreamResponse> events = failed_sub->events();
    return !events.empty() && tasks::IsFinalEvent(events.back());
  }));
  Task failed = failed_sub->last_task();
  EXPECT_EQ(failed.status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  std::string reason = failed.status().message().parts(0).text();
  EXPECT_THAT(reason, HasSubstr("no node accepted the task"));
  EXPECT_THAT(reason, HasSubstr("agent ghost is not on node c"));
  EXPECT_THAT(reason, HasSubstr("z (not connected)"));
}

TEST_F(MeshTest, APeerThatDiesMidTaskFailsTheTaskNamingThePeer) {
  std::atomic<int> started{0};
  auto on_c = c_->StartAgent({{"slow", Card("slow", {"slow"}), 4, [&](sdk::TaskContext& task) {
                                 ++started;
                                 task.SetWorking();
                                 task.WaitForCancel(absl::Seconds(30));
                               }}});
  ASSERT_TRUE(Sees(*a_, "slow@c"));
  lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(a_->NewA2aStub()->SendMessage(A2aContext().get(), request, &response).ok());
  ASSERT_TRUE(WaitFor([&] { return started.load() == 1; }));
  c_.reset();  // node C dies with the task running on it (its agent lives on)
  absl::StatusOr<Task> task;
  ASSERT_TRUE(WaitFor([&] {
    task = a_->node().tasks().Get(response.task().id());
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_FAILED;
  }));
  EXPECT_THAT(task->status().message().parts(0).text(),
              HasSubstr("node c shut down while running the task"));
}

TEST_F(MeshTest, FollowUpsReachAnAgentOnAnotherNodeInANewTurn) {
  auto on_c =
      c_->StartAgent({{"ask", Card("ask", {"ask"}), 4, [](sdk::TaskContext& task) {
                         if (task.task().history_size() <= 1) {
                           task.RequireInput("which color?");
                           return;
                         }
                         task.Complete("you chose " + task.text() + " on " + task.node_id());
                       }}});
  ASSERT_TRUE(Sees(*a_, "ask@c"));
  lf::a2a::v1::SendMessageResponse first;
  ASSERT_TRUE(
      a_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("ask", "paint"), &first).ok());
  ASSERT_EQ(first.task().status().state(), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  // The turn is over on C: it keeps nothing of the task.
  EXPECT_TRUE(WaitFor([&] { return c_->node().tasks().active_tasks() == 0; }));
  // The answer comes in through B: forwarded to A (the owner), then a new turn on C.
  lf::a2a::v1::SendMessageRequest answer = SendText("blue");
  answer.mutable_message()->set_task_id(first.task().id());
  lf::a2a::v1::SendMessageResponse done;
  grpc::Status status = b_->NewA2aStub()->SendMessage(A2aContext().get(), answer, &done);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(done.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(done.task().status().message().parts(0).text(), "you chose blue on c");
}

TEST_F(MeshTest, ADrainingNodesRunningTasksMayStillDelegate) {
  absl::Notification go;
  auto on_b = b_->StartAgent({Upper("upper")});
  auto on_a =
      a_->StartAgent({{"planner", Card("planner", {"plan"}), 4, [&](sdk::TaskContext& task) {
                         go.WaitForNotificationWithTimeout(absl::Seconds(20));
                         absl::StatusOr<Task> step =
                             task.Delegate(sdk::TextSubtask("upper", "late"));
                         if (!step.ok()) {
                           task.Fail(std::string(step.status().message()));
                           return;
                         }
                         task.Complete(step->status().message().parts(0).text());
                       }}});
  ASSERT_TRUE(Sees(*a_, "upper@b"));
  lf::a2a::v1::SendMessageRequest request = ForSkill("plan", "x");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(a_->NewA2aStub()->SendMessage(A2aContext().get(), request, &response).ok());
  std::thread drain([&] { EXPECT_EQ(a_->node().Drain(absl::Seconds(20)), 0u); });
  // New client work is refused while the node drains...
  ASSERT_TRUE(WaitFor([&] {
    lf::a2a::v1::SendMessageResponse refused;
    grpc::Status status =
        a_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("upper", "x"), &refused);
    return status.error_code() == grpc::StatusCode::UNAVAILABLE;
  }));
  go.Notify();  // ...but the running planner's subtask is taken.
  drain.join();
  absl::StatusOr<Task> task = a_->node().tasks().Get(response.task().id());
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED)
      << task->status().message().DebugString();
}

}  // namespace
}  // namespace a2amesh
