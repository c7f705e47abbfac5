#include "tasks/task_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/memory_task_store.h"
#include "store/sqlite_task_store.h"
#include "tasks/task_state.h"
#include "testing/fake_clock.h"
#include "testing/fake_runner.h"
#include "testing/proto_builders.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh::tasks {
namespace {

using ::a2amesh::testing::ArtifactChunk;
using ::a2amesh::testing::FakeAgent;
using ::a2amesh::testing::FakeRunner;
using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::RecordingSubscriber;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::Status;
using ::a2amesh::testing::StatusIs;
using lf::a2a::v1::Message;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class TaskManagerTest : public ::testing::Test {
 protected:
  TaskManagerTest() { manager_ = MakeManager(); }

  std::unique_ptr<TaskManager> MakeManager(TaskManagerOptions options = {}) {
    options.node_id = "n1";
    options.agent_grace = absl::Seconds(10);
    options.recovery_grace = absl::Seconds(30);
    return std::make_unique<TaskManager>(options, store_, runners_, timers_, clock_);
  }

  // Creates a task for `agent` and returns its id, once it is stored.
  std::string CreateTask(const std::string& agent, std::shared_ptr<RecordingSubscriber> sub = {},
                         const std::string& text = "hello") {
    if (sub == nullptr) {
      sub = std::make_shared<RecordingSubscriber>();
    }
    NewTask task{SendText(text), runners_.RunnerFor(agent), "echo", ""};
    EXPECT_THAT(manager_->Create(std::move(task), sub), IsOk());
    store_.Flush();
    std::vector<StreamResponse> events = sub->events();
    EXPECT_THAT(events, SizeIs(::testing::Ge(1u)));
    return events.empty() ? "" : events[0].task().id();
  }

  absl::StatusOr<Task> CancelAndWait(const std::string& id) {
    absl::Notification done;
    absl::StatusOr<Task> result;
    manager_->Cancel(id, "canceled by the client", [&](absl::StatusOr<Task> task) {
      result = std::move(task);
      done.Notify();
    });
    done.WaitForNotification();
    store_.Flush();  // the callback has returned
    return result;
  }

  store::MemoryTaskStore store_;
  testing::FakeRunnerFactory runners_;
  testing::FakeTimers timers_;
  testing::FakeClock clock_;
  std::unique_ptr<TaskManager> manager_;
};

TEST_F(TaskManagerTest, CreateStoresAttachesThenAssigns) {
  auto sub = std::make_shared<RecordingSubscriber>();
  std::string id = CreateTask("echo", sub);
  EXPECT_THAT(id, HasSubstr("n1~"));
  std::vector<StreamResponse> events = sub->events();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].task().status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
  ASSERT_EQ(events[0].task().history_size(), 1);
  EXPECT_EQ(events[0].task().history(0).task_id(), id);
  EXPECT_FALSE(events[0].task().context_id().empty());

  std::shared_ptr<FakeAgent> agent = runners_.Connect("echo");
  ASSERT_THAT(agent->assignments(), SizeIs(1));
  EXPECT_EQ(agent->assignments()[0].task().id(), id);
  EXPECT_EQ(agent->assignments()[0].message().parts(0).text(), "hello");
  EXPECT_EQ(agent->assignments()[0].skill(), "echo");
  EXPECT_EQ(agent->slots(), 1);
  EXPECT_THAT(store_.Get(id), IsOk());
}

TEST_F(TaskManagerTest, SubscribersSeeTheSameEventsInOrder) {
  std::string id = CreateTask("echo");
  std::vector<std::shared_ptr<RecordingSubscriber>> subs;
  for (int i = 0; i < 3; ++i) {
    subs.push_back(std::make_shared<RecordingSubscriber>());
    ASSERT_THAT(manager_->Subscribe(id, subs.back()), IsOk());
  }
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id,
                                          ArtifactChunk("out", std::to_string(i), i > 0, i == 4)),
                IsOk());
  }
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
              IsOk());
  store_.Flush();
  std::vector<StreamResponse> first = subs[0]->events();
  ASSERT_THAT(first, SizeIs(8));
  EXPECT_TRUE(first[0].has_task());
  EXPECT_EQ(first[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(first[2 + i].artifact_update().artifact().parts(0).text(), std::to_string(i));
  }
  EXPECT_EQ(first[7].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  for (int i = 1; i < 3; ++i) {
    std::vector<StreamResponse> other = subs[i]->events();
    ASSERT_EQ(other.size(), first.size());
    for (size_t j = 0; j < first.size(); ++j) {
      EXPECT_EQ(other[j].SerializeAsString(), first[j].SerializeAsString()) << j;
    }
  }
}

TEST_F(TaskManagerTest, TerminalTasksLeaveMemoryAndReadBackFromTheStore) {
  std::string id = CreateTask("echo");
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, ArtifactChunk("out", "a", false, false)),
              IsOk());
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, ArtifactChunk("out", "b", true, true)),
              IsOk());
  ASSERT_THAT(
      manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED, "done")),
      IsOk());
  store_.Flush();
  EXPECT_EQ(manager_->active_tasks(), 0u);
  EXPECT_EQ(runners_.Connect("echo")->slots(), 0);
  absl::StatusOr<Task> task = manager_->Get(id);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task->status().message().parts(0).text(), "done");
  ASSERT_EQ(task->artifacts_size(), 1);
  EXPECT_EQ(task->artifacts(0).parts_size(), 2);
  ASSERT_EQ(task->history_size(), 2);
  EXPECT_EQ(task->history(1).parts(0).text(), "done");
}

lf::a2a::v1::Message Reply(const std::string& text) {
  lf::a2a::v1::Message message;
  message.set_message_id("reply-1");
  message.set_role(lf::a2a::v1::ROLE_AGENT);
  message.add_parts()->set_text(text);
  return message;
}

TEST_F(TaskManagerTest, ADirectReplyToATaskNobodyWasGivenLeavesNoTrace) {
  auto sub = std::make_shared<RecordingSubscriber>();
  NewTask task{SendText("hi"), runners_.RunnerFor("chat"), "chat", ""};
  task.may_reply = true;
  ASSERT_THAT(manager_->Create(std::move(task), sub), IsOk());
  store_.Flush();
  ASSERT_THAT(sub->events(), SizeIs(1));
  const std::string id = sub->events()[0].task().id();
  EXPECT_TRUE(sub->may_reply()[0]);  // the Task may be held for a reply

  ASSERT_THAT(manager_->ApplyAgentEvent({"chat"}, id, tasks::DirectReplyEvent(Reply("hello!"))),
              IsOk());
  store_.Flush();
  std::vector<StreamResponse> events = sub->events();
  ASSERT_THAT(events, SizeIs(2));
  ASSERT_TRUE(tasks::IsDirectReply(events[1]));
  Message answer = tasks::DirectReplyMessage(events[1]);
  EXPECT_EQ(answer.parts(0).text(), "hello!");
  EXPECT_TRUE(answer.task_id().empty());
  EXPECT_EQ(answer.context_id(), events[0].task().context_id());
  // Nothing is kept: not in memory, not in the store; the agent's slot is free.
  EXPECT_EQ(manager_->active_tasks(), 0u);
  EXPECT_EQ(runners_.Connect("chat")->slots(), 0);
  EXPECT_EQ(store_.Get(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(manager_->Get(id).ok());
}

TEST_F(TaskManagerTest, AReplyToATaskItsClientWasGivenCompletesIt) {
  std::string id = CreateTask("chat");  // may_reply unset: e.g. return_immediately
  ASSERT_THAT(manager_->ApplyAgentEvent({"chat"}, id, tasks::DirectReplyEvent(Reply("hello!"))),
              IsOk());
  store_.Flush();
  absl::StatusOr<Task> task = manager_->Get(id);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task->status().message().parts(0).text(), "hello!");
  EXPECT_FALSE(task->metadata().fields().contains(tasks::kDirectReplyKey));
}

TEST_F(TaskManagerTest, ADirectReplyAnswersOnlyTheFirstMessageBeforeAnyEvent) {
  auto sub = std::make_shared<RecordingSubscriber>();
  NewTask task{SendText("hi"), runners_.RunnerFor("chat"), "chat", ""};
  task.may_reply = true;
  ASSERT_THAT(manager_->Create(std::move(task), sub), IsOk());
  store_.Flush();
  const std::string id = sub->events()[0].task().id();
  ASSERT_THAT(manager_->ApplyAgentEvent({"chat"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  absl::Status late =
      manager_->ApplyAgentEvent({"chat"}, id, tasks::DirectReplyEvent(Reply("too late")));
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.message(), HasSubstr("only the first message of a new task"));
  EXPECT_THAT(late.message(), HasSubstr("working"));
  ASSERT_THAT(manager_->ApplyAgentEvent({"chat"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
              IsOk());
  store_.Flush();
  EXPECT_EQ(manager_->Get(id)->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
}

TEST_F(TaskManagerTest, RefusesIllegalTransitionsAndOtherAgentsEvents) {
  std::string id = CreateTask("echo");
  EXPECT_THAT(manager_->ApplyAgentEvent({"intruder"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("belongs to agent echo, not to intruder")));
  EXPECT_THAT(
      manager_->ApplyAgentEvent({"echo"}, "n1~nope", Status(lf::a2a::v1::TASK_STATE_WORKING)),
      StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  EXPECT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_SUBMITTED)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("back to submitted")));
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
              IsOk());
  store_.Flush();
  EXPECT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not running")));
}

TEST_F(TaskManagerTest, CancelEndsTheTaskAndTellsTheAgent) {
  auto sub = std::make_shared<RecordingSubscriber>();
  std::string id = CreateTask("echo", sub);
  absl::StatusOr<Task> canceled = CancelAndWait(id);
  ASSERT_THAT(canceled, IsOk());
  EXPECT_EQ(canceled->status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  EXPECT_THAT(runners_.Connect("echo")->cancels(), ::testing::ElementsAre(id));
  std::vector<StreamResponse> events = sub->events();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_CANCELED);

  EXPECT_THAT(CancelAndWait(id),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already canceled")));
  EXPECT_THAT(CancelAndWait("n1~unknown"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("n1~unknown")));
}

TEST_F(TaskManagerTest, FollowUpMessagesGoToTheOwningAgent) {
  std::string id = CreateTask("echo");
  ASSERT_THAT(manager_->ApplyAgentEvent(
                  {"echo"}, id, Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, "which one?")),
              IsOk());
  store_.Flush();
  EXPECT_EQ(runners_.Connect("echo")->slots(), 0);

  lf::a2a::v1::SendMessageRequest follow_up = SendText("the red one");
  follow_up.mutable_message()->set_task_id(id);
  auto sub = std::make_shared<RecordingSubscriber>();
  ASSERT_THAT(manager_->Continue(follow_up, sub), IsOk());
  store_.Flush();
  std::vector<v1::TaskAssignment> assignments = runners_.Connect("echo")->assignments();
  ASSERT_THAT(assignments, SizeIs(2));
  EXPECT_EQ(assignments[1].message().parts(0).text(), "the red one");
  EXPECT_FALSE(assignments[1].resumed());
  ASSERT_THAT(sub->events(), SizeIs(1));
  const Task task = sub->events()[0].task();
  // history: the first message, the agent's question, the follow-up.
  ASSERT_EQ(task.history_size(), 3);
  EXPECT_EQ(task.history(2).parts(0).text(), "the red one");

  lf::a2a::v1::SendMessageRequest wrong_context = follow_up;
  wrong_context.mutable_message()->set_context_id("another");
  EXPECT_THAT(manager_->Continue(wrong_context, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message.context_id")));

  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
              IsOk());
  store_.Flush();
  EXPECT_THAT(manager_->Continue(follow_up, nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("takes no more messages")));
  lf::a2a::v1::SendMessageRequest unknown = follow_up;
  unknown.mutable_message()->set_task_id("n1~unknown");
  EXPECT_THAT(manager_->Continue(unknown, nullptr), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TaskManagerTest, ADisconnectedAgentsTasksFailAfterTheGrace) {
  auto sub = std::make_shared<RecordingSubscriber>();
  std::string id = CreateTask("echo", sub);
  runners_.Disconnect("echo");
  manager_->AgentDisconnected("echo", "stream closed");
  EXPECT_EQ(timers_.last_delay(), absl::Seconds(10));
  EXPECT_EQ(timers_.FireAll(), 1);
  store_.Flush();
  absl::StatusOr<Task> task = manager_->Get(id);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(task->status().message().parts(0).text(),
              HasSubstr("agent echo disconnected (stream closed)"));
  EXPECT_EQ(sub->events().back().status_update().status().state(), lf::a2a::v1::TASK_STATE_FAILED);
}

TEST_F(TaskManagerTest, AnAgentThatComesBackInTimeGetsItsTasksAgain) {
  std::string id = CreateTask("echo");
  runners_.Disconnect("echo");
  manager_->AgentDisconnected("echo", "stream closed");
  std::shared_ptr<FakeAgent> agent = runners_.Connect("echo");
  manager_->AgentConnected("echo");
  std::vector<v1::TaskAssignment> assignments = agent->assignments();
  ASSERT_THAT(assignments, SizeIs(2));
  EXPECT_TRUE(assignments[1].resumed());
  EXPECT_EQ(assignments[1].task().id(), id);
  EXPECT_EQ(assignments[1].message().parts(0).text(), "hello");
  timers_.FireAll();  // the stale grace timer does nothing
  store_.Flush();
  absl::StatusOr<Task> task = manager_->Get(id);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
}

TEST_F(TaskManagerTest, RecoverResumesOrFailsUnfinishedTasks) {
  std::string resumed = CreateTask("echo");
  std::string failed = CreateTask("gone");
  std::string waiting = CreateTask("echo");
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, resumed, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, waiting,
                                        Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, "?")),
              IsOk());
  store_.Flush();
  // A new manager over the same store, as after a restart.
  manager_.reset();
  timers_.FireAll();
  runners_.Disconnect("echo");
  runners_.Disconnect("gone");
  manager_ = MakeManager();
  ASSERT_THAT(manager_->Recover(), IsOk());
  EXPECT_EQ(manager_->active_tasks(), 3u);
  EXPECT_EQ(timers_.pending(), 2u);
  EXPECT_EQ(timers_.last_delay(), absl::Seconds(30));

  std::shared_ptr<FakeAgent> echo = runners_.Connect("echo");
  size_t before = echo->assignments().size();
  manager_->AgentConnected("echo");
  std::vector<v1::TaskAssignment> assignments = echo->assignments();
  ASSERT_EQ(assignments.size(), before + 1);  // the input-required task is not re-sent
  EXPECT_EQ(assignments.back().task().id(), resumed);
  EXPECT_TRUE(assignments.back().resumed());
  EXPECT_EQ(assignments.back().task().status().state(), lf::a2a::v1::TASK_STATE_WORKING);

  timers_.FireAll();
  store_.Flush();
  absl::StatusOr<Task> task = manager_->Get(failed);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(task->status().message().parts(0).text(),
              HasSubstr("the node restarted and agent gone did not register again"));
  EXPECT_EQ(manager_->Get(resumed)->status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  EXPECT_EQ(manager_->Get(waiting)->status().state(), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  // The event log continues where it left off.
  ASSERT_THAT(
      manager_->ApplyAgentEvent({"echo"}, resumed, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
      IsOk());
  store_.Flush();
  EXPECT_EQ(manager_->Get(resumed)->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
}

TEST_F(TaskManagerTest, ListPagesWithTokens) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    ids.push_back(CreateTask("echo"));
  }
  TaskQuery query;
  query.page_size = 2;
  absl::StatusOr<TaskList> page = manager_->List(query, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_THAT(page->tasks, SizeIs(2));
  EXPECT_EQ(page->tasks[0].task.id(), ids[4]);
  EXPECT_EQ(page->total, 5);
  std::vector<std::string> seen;
  std::string token = page->next_page_token;
  for (const TaskRecord& t : page->tasks) seen.push_back(t.task.id());
  while (!token.empty()) {
    page = manager_->List(query, token);
    ASSERT_THAT(page, IsOk());
    for (const TaskRecord& t : page->tasks) seen.push_back(t.task.id());
    token = page->next_page_token;
  }
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));
  EXPECT_THAT(manager_->List(query, "garbage!"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
}

TEST_F(TaskManagerTest, SubscribeToAnEndedTaskIsUnsupported) {
  std::string id = CreateTask("echo");
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_FAILED, "x")),
              IsOk());
  store_.Flush();
  EXPECT_THAT(manager_->Subscribe(id, std::make_shared<RecordingSubscriber>()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already failed")));
  EXPECT_THAT(manager_->Subscribe("n1~x", std::make_shared<RecordingSubscriber>()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TaskManagerTest, ShutdownEndsOpenSubscriptions) {
  std::string id = CreateTask("echo");
  auto sub = std::make_shared<RecordingSubscriber>();
  ASSERT_THAT(manager_->Subscribe(id, sub), IsOk());
  manager_.reset();
  EXPECT_THAT(sub->error(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
}

TEST_F(TaskManagerTest, HostedTurnsPublishWithoutStoringAndEndWithTheTurn) {
  HostedTask hosted;
  hosted.task.set_id("other~1");
  hosted.task.set_context_id("ctx");
  hosted.task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
  hosted.message = testing::UserText("remote work");
  *hosted.task.add_history() = hosted.message;
  hosted.info.set_agent_id("echo");
  hosted.runner = runners_.RunnerFor("echo");
  auto sub = std::make_shared<RecordingSubscriber>();
  ASSERT_THAT(manager_->Host(std::move(hosted), sub), IsOk());
  std::vector<v1::TaskAssignment> assignments = runners_.Connect("echo")->assignments();
  ASSERT_THAT(assignments, SizeIs(1));
  EXPECT_EQ(assignments[0].task().id(), "other~1");
  EXPECT_EQ(assignments[0].message().parts(0).text(), "remote work");

  HostedTask again;
  again.task.set_id("other~1");
  again.info.set_agent_id("echo");
  again.runner = runners_.RunnerFor("echo");
  EXPECT_THAT(manager_->Host(std::move(again), std::make_shared<RecordingSubscriber>()),
              StatusIs(absl::StatusCode::kAlreadyExists));

  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, "other~1", ArtifactChunk("a", "x", false, true)),
              IsOk());
  ASSERT_THAT(
      manager_->ApplyAgentEvent({"echo"}, "other~1", Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
      IsOk());
  store_.Flush();
  std::vector<StreamResponse> events = sub->events();
  ASSERT_THAT(events, SizeIs(2));  // no initial Task: the owner has it
  EXPECT_TRUE(events[0].has_artifact_update());
  EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(manager_->active_tasks(), 0u);
  EXPECT_THAT(store_.Get("other~1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(runners_.Connect("echo")->slots(), 0);
}

TEST_F(TaskManagerTest, RunnerEventsComeOnlyFromTheCurrentRunner) {
  auto sub = std::make_shared<RecordingSubscriber>();
  auto runner = runners_.RunnerFor("x@n2");
  const TaskRunner* remote = runner.get();
  NewTask task{SendText("hi"), std::move(runner), "echo", ""};
  ASSERT_THAT(manager_->Create(std::move(task), sub), IsOk());
  store_.Flush();
  std::string id = sub->events()[0].task().id();
  ASSERT_THAT(manager_->ApplyRunnerEvent(remote, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  FakeRunner stranger(runners_.Connect("y@n3"));
  EXPECT_THAT(manager_->ApplyRunnerEvent(&stranger, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  manager_->RunnerFailed(&stranger, id, "ignored");
  manager_->RunnerFailed(remote, id, "peer n2 went away while running the task");
  store_.Flush();
  absl::StatusOr<Task> failed = manager_->Get(id);
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_EQ(failed->status().message().parts(0).text(), "peer n2 went away while running the task");
}

TEST_F(TaskManagerTest, CancellingAParentCancelsItsChildren) {
  std::string parent = CreateTask("planner");
  auto child_sub = std::make_shared<RecordingSubscriber>();
  NewTask child{SendText("sub"), runners_.RunnerFor("echo"), "echo", parent};
  child.hops = {"planner@n1"};
  ASSERT_THAT(manager_->Create(std::move(child), child_sub), IsOk());
  store_.Flush();
  std::string child_id = child_sub->events()[0].task().id();
  absl::StatusOr<v1::TaskInfo> info = manager_->ActiveInfo(child_id);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->parent_task_id(), parent);
  EXPECT_THAT(info->hops(), ::testing::ElementsAre("planner@n1"));

  ASSERT_THAT(CancelAndWait(parent), IsOk());
  store_.Flush();
  absl::StatusOr<Task> task = manager_->Get(child_id);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  EXPECT_THAT(task->status().message().parts(0).text(),
              HasSubstr("its parent task " + parent + " ended"));
  EXPECT_THAT(runners_.Connect("echo")->cancels(), ::testing::Contains(child_id));
}

TEST_F(TaskManagerTest, ACompletedParentLeavesItsChildrenRunning) {
  std::string parent = CreateTask("planner");
  auto child_sub = std::make_shared<RecordingSubscriber>();
  ASSERT_THAT(manager_->Create(NewTask{SendText("sub"), runners_.RunnerFor("echo"), "echo", parent},
                               child_sub),
              IsOk());
  store_.Flush();
  std::string child_id = child_sub->events()[0].task().id();
  ASSERT_THAT(
      manager_->ApplyAgentEvent({"planner"}, parent, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
      IsOk());
  store_.Flush();
  EXPECT_EQ(manager_->Get(child_id)->status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
}

TEST_F(TaskManagerTest, TasksFailAtTheirDeadline) {
  auto sub = std::make_shared<RecordingSubscriber>();
  NewTask task{SendText("hi"), runners_.RunnerFor("echo"), "echo", ""};
  task.deadline = clock_.Now() + absl::Seconds(5);
  ASSERT_THAT(manager_->Create(std::move(task), sub), IsOk());
  store_.Flush();
  std::string id = sub->events()[0].task().id();
  EXPECT_EQ(manager_->ActiveInfo(id)->deadline_unix_ms(),
            absl::ToUnixMillis(clock_.Now() + absl::Seconds(5)));
  EXPECT_EQ(timers_.last_delay(), absl::Seconds(5));
  timers_.FireAll();
  store_.Flush();
  absl::StatusOr<Task> failed = manager_->Get(id);
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(failed->status().message().parts(0).text(), HasSubstr("deadline"));
  EXPECT_THAT(runners_.Connect("echo")->cancels(), ::testing::Contains(id));
}

TEST_F(TaskManagerTest, ATurnFailsWhenItsAgentGoesQuietOrRunsTooLong) {
  TaskManagerOptions options;
  options.max_turn = absl::Hours(1);
  options.skill_max_turn["research"] = absl::Hours(4);
  options.agent_idle_timeout = absl::Minutes(10);
  manager_.reset();
  manager_ = MakeManager(options);
  // One sweep of every task in memory, every quarter of the shortest limit
  // (at most 5 s): no timer per task.
  EXPECT_EQ(timers_.pending(), 1u);
  EXPECT_EQ(timers_.last_delay(), absl::Seconds(5));
  auto sweep = [&](absl::Duration later) {
    clock_.Advance(later);
    EXPECT_EQ(timers_.FireAll(), 1);  // the sweep, which arms the next
    store_.Flush();
  };
  auto state = [&](const std::string& id) { return manager_->Get(id)->status().state(); };
  std::shared_ptr<FakeAgent> agent = runners_.Connect("echo");

  // Quiet: an event at 6 min keeps it alive at 10; at 16 it has been quiet for 10.
  std::string quiet = CreateTask("echo");
  EXPECT_EQ(timers_.pending(), 1u);
  clock_.Advance(absl::Minutes(6));
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, quiet, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  sweep(absl::Minutes(4));
  EXPECT_EQ(state(quiet), lf::a2a::v1::TASK_STATE_WORKING);
  sweep(absl::Minutes(6));
  absl::StatusOr<Task> failed = manager_->Get(quiet);
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(failed->status().message().parts(0).text(),
              HasSubstr("agent echo sent nothing for 10m (--agent-idle-timeout)"));
  EXPECT_THAT(agent->cancels(), ::testing::Contains(quiet));

  // Too long: events keep coming, the turn limit ends it at 1 h; a task that
  // asked for input meanwhile is past its turn and untouched; a research
  // task has its skill's 4 h.
  std::string busy = CreateTask("echo");
  std::string waiting = CreateTask("echo");
  auto research_sub = std::make_shared<RecordingSubscriber>();
  ASSERT_THAT(manager_->Create(NewTask{SendText("dig"), runners_.RunnerFor("echo"), "research", ""},
                               research_sub),
              IsOk());
  store_.Flush();
  const std::string research = research_sub->events()[0].task().id();
  ASSERT_THAT(
      manager_->ApplyAgentEvent({"echo"}, waiting, Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED)),
      IsOk());
  for (int minutes = 10; minutes <= 240; minutes += 10) {
    clock_.Advance(absl::Minutes(10));
    for (const std::string& id : {busy, research}) {
      if (state(id) == lf::a2a::v1::TASK_STATE_WORKING ||
          state(id) == lf::a2a::v1::TASK_STATE_SUBMITTED) {
        ASSERT_THAT(
            manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
            IsOk());
      }
    }
    sweep(absl::ZeroDuration());
    EXPECT_EQ(state(busy) == lf::a2a::v1::TASK_STATE_FAILED, minutes >= 60) << minutes;
    EXPECT_EQ(state(research) == lf::a2a::v1::TASK_STATE_FAILED, minutes >= 240) << minutes;
  }
  EXPECT_THAT(manager_->Get(busy)->status().message().parts(0).text(),
              HasSubstr("did not finish its turn in 1h (--max-turn-duration)"));
  EXPECT_THAT(manager_->Get(research)->status().message().parts(0).text(), HasSubstr("in 4h"));
  EXPECT_EQ(state(waiting), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
}

TEST_F(TaskManagerTest, ATaskWaitingForItsClientTooLongFails) {
  TaskManagerOptions options;
  options.interrupted_ttl = absl::Hours(24);
  manager_.reset();
  manager_ = MakeManager(options);
  runners_.Connect("echo");
  std::string abandoned = CreateTask("echo");
  std::string answered = CreateTask("echo");
  for (const std::string& id : {abandoned, answered}) {
    ASSERT_THAT(
        manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED)),
        IsOk());
  }
  store_.Flush();
  // The client answers one of them: its agent has it again.
  lf::a2a::v1::SendMessageRequest follow_up = SendText("the red one");
  follow_up.mutable_message()->set_task_id(answered);
  ASSERT_THAT(manager_->Continue(follow_up, nullptr), IsOk());
  store_.Flush();
  clock_.Advance(absl::Hours(23));
  timers_.FireAll();
  store_.Flush();
  EXPECT_EQ(manager_->Get(abandoned)->status().state(), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  clock_.Advance(absl::Hours(1));
  timers_.FireAll();
  store_.Flush();
  absl::StatusOr<Task> failed = manager_->Get(abandoned);
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(failed->status().message().parts(0).text(),
              HasSubstr("waited for its client (input-required) for 24h without an answer "
                        "(--interrupted-task-ttl)"));
  EXPECT_NE(manager_->Get(answered)->status().state(), lf::a2a::v1::TASK_STATE_FAILED);
}

// A runner and a subscriber that call back into the task manager from their
// callbacks, as real ones may (a subscriber unsubscribes, a runner looks the
// task up). Had the manager called them with the task's lock held, each call
// would deadlock on that lock.
class ReentrantRunner final : public TaskRunner {
 public:
  ReentrantRunner(TaskManager** manager, std::vector<std::string>* seen)
      : manager_(manager), seen_(seen) {}
  const std::string& agent_id() const override { return id_; }
  void Assign(v1::TaskAssignment assignment) override {
    absl::StatusOr<v1::TaskInfo> info = (*manager_)->ActiveInfo(assignment.task().id());
    seen_->push_back(info.ok() ? "assign:" + info->agent_id() : "assign:?");
  }
  void Cancel(const std::string& task_id, const std::string&) override {
    seen_->push_back((*manager_)->ActiveInfo(task_id).ok() ? "cancel:active" : "cancel:gone");
  }

 private:
  TaskManager** const manager_;
  std::vector<std::string>* const seen_;
  const std::string id_ = "echo";
};

class ReentrantSubscriber final : public TaskSubscriber {
 public:
  ReentrantSubscriber(TaskManager& manager, std::vector<std::string>* seen)
      : manager_(manager), seen_(seen) {}
  void OnEvent(const TaskEvent& e) override {
    seen_->push_back(manager_.ActiveInfo(e.task_id).ok() ? "event:active" : "event:gone");
    if (IsFinalEvent(e.event)) {
      manager_.Unsubscribe(e.task_id, this);
    }
  }
  void OnError(const absl::Status&) override { seen_->push_back("error"); }

 private:
  TaskManager& manager_;
  std::vector<std::string>* const seen_;
};

TEST_F(TaskManagerTest, CallbacksRunWithoutTheTasksLockAndMayCallBack) {
  std::vector<std::string> seen;
  TaskManager* manager = manager_.get();
  auto sub = std::make_shared<ReentrantSubscriber>(*manager_, &seen);
  NewTask task{SendText("hi"), std::make_unique<ReentrantRunner>(&manager, &seen), "echo", ""};
  ASSERT_THAT(manager_->Create(std::move(task), sub), IsOk());
  EXPECT_THAT(seen, ::testing::ElementsAre("assign:echo", "event:active"));
  std::string id = manager_->List(TaskQuery(), "")->tasks.at(0).task.id();
  absl::Notification done;
  manager_->Cancel(id, "no", [&](absl::StatusOr<Task> canceled) {
    // The reply runs after the task's lock is released, too.
    seen.push_back(manager_->Get(id).ok() ? "done:readable" : "done:?");
    done.Notify();
  });
  ASSERT_TRUE(done.HasBeenNotified());  // the memory store completes inline
  EXPECT_THAT(seen, ::testing::ElementsAre("assign:echo", "event:active", "cancel:active",
                                           "event:active", "done:readable"));
}

// The node's default store: intermediate events ride along with the final
// one's group commit, and nobody waits for them.
class DurableTaskManagerTest : public ::testing::Test {
 protected:
  DurableTaskManagerTest() {
    store::SqliteTaskStore::Options options;
    options.path = dir_.path() + "/tasks.db";
    options.max_lazy_delay = absl::Hours(1);  // only a commit or Flush writes them
    options.max_lazy_commit_delay = absl::Hours(1);
    options.telemetry = &commits_;
    store_ = *store::SqliteTaskStore::Open(options);
    TaskManagerOptions manager;
    manager.node_id = "n1";
    manager_ = std::make_unique<TaskManager>(manager, *store_, runners_, timers_, clock_);
  }

  class CountingTelemetry final : public Telemetry {
   public:
    void StoreCommitted(absl::Duration, bool ok) override {
      absl::MutexLock lock(&mu_);
      ++(ok ? committed_ : failed_);
    }
    int committed() const {
      absl::MutexLock lock(&mu_);
      return committed_;
    }

   private:
    mutable absl::Mutex mu_;
    int committed_ ABSL_GUARDED_BY(mu_) = 0;
    int failed_ ABSL_GUARDED_BY(mu_) = 0;
  };

  testing::TempDir dir_;
  CountingTelemetry commits_;
  std::unique_ptr<store::SqliteTaskStore> store_;
  testing::FakeRunnerFactory runners_;
  testing::FakeTimers timers_;
  testing::FakeClock clock_;
  std::unique_ptr<TaskManager> manager_;
};

TEST_F(DurableTaskManagerTest, OnlyWhatEndsTheCallWaitsForTheDisk) {
  // A blocking call: its waiter hears only the final state.
  class Waiter final : public TaskSubscriber {
   public:
    void OnEvent(const TaskEvent& e) override {
      absl::MutexLock lock(&mu);
      final = *e.task;
    }
    void OnError(const absl::Status&) override {}
    bool final_only() const override { return true; }
    absl::Mutex mu;
    std::optional<Task> final ABSL_GUARDED_BY(mu);
  };
  auto waiter = std::make_shared<Waiter>();
  NewTask task{SendText("hi"), runners_.RunnerFor("echo"), "echo", ""};
  task.await_create = false;  // its client learns the id with the answer
  ASSERT_THAT(manager_->Create(std::move(task), waiter), IsOk());
  // The agent has it at once; nothing was written yet.
  ASSERT_THAT(runners_.Connect("echo")->assignments(), SizeIs(1));
  const std::string id = runners_.Connect("echo")->assignments()[0].task().id();
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_WORKING)),
              IsOk());
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, ArtifactChunk("a", "x", false, true)),
              IsOk());
  EXPECT_EQ(commits_.committed(), 0);  // no group commit for events nobody waits for
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
              IsOk());
  // The final event is the one commit: the create and the other events ride in it.
  store_->Flush();
  EXPECT_EQ(commits_.committed(), 1);
  {
    absl::MutexLock lock(&waiter->mu);
    ASSERT_TRUE(waiter->final.has_value());
    EXPECT_EQ(waiter->final->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  }
  absl::StatusOr<StoredTask> stored = store_->Get(id);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(stored->snapshot.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(stored->snapshot.artifacts_size(), 1);
  EXPECT_EQ(stored->last_seq, 3);
  EXPECT_TRUE(stored->events.empty());  // the snapshot replaced them before they were written
}

TEST_F(DurableTaskManagerTest, TheEndOfATaskNobodyWatchesRidesAlongButIsStoredBeforeItIsSeen) {
  // Accepted (return_immediately): its client hears the stored task, and
  // then nobody waits for it.
  class Accepted final : public TaskSubscriber {
   public:
    void OnEvent(const TaskEvent& e) override {
      absl::MutexLock lock(&mu);
      heard.push_back(e.state);
    }
    void OnError(const absl::Status&) override {}
    bool first_only() const override { return true; }
    absl::Mutex mu;
    std::vector<lf::a2a::v1::TaskState> heard ABSL_GUARDED_BY(mu);
  };
  auto accepted = std::make_shared<Accepted>();
  ASSERT_THAT(manager_->Create({SendText("hi"), runners_.RunnerFor("echo"), "echo", ""}, accepted),
              IsOk());
  ASSERT_TRUE(testing::WaitFor([&] {
    absl::MutexLock lock(&accepted->mu);
    return !accepted->heard.empty();
  }));
  EXPECT_EQ(commits_.committed(), 1);  // the create
  ASSERT_TRUE(
      testing::WaitFor([&] { return runners_.Connect("echo")->assignments().size() == 1; }));
  const std::string id = runners_.Connect("echo")->assignments()[0].task().id();
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, id, Status(lf::a2a::v1::TASK_STATE_COMPLETED)),
              IsOk());
  // The end starts no group commit of its own...
  EXPECT_EQ(commits_.committed(), 1);
  EXPECT_EQ(store_->Get(id)->snapshot.status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
  // ...but whoever asks sees it only once it is stored.
  absl::StatusOr<Task> got = manager_->Get(id);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(store_->Get(id)->snapshot.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(commits_.committed(), 2);
  {
    absl::MutexLock lock(&accepted->mu);
    EXPECT_THAT(accepted->heard, ::testing::ElementsAre(lf::a2a::v1::TASK_STATE_SUBMITTED));
  }

  // The same for a client that asks to cancel it.
  auto again = std::make_shared<Accepted>();
  ASSERT_THAT(manager_->Create({SendText("again"), runners_.RunnerFor("echo"), "echo", ""}, again),
              IsOk());
  ASSERT_TRUE(testing::WaitFor([&] {
    absl::MutexLock lock(&again->mu);
    return !again->heard.empty();
  }));
  ASSERT_TRUE(
      testing::WaitFor([&] { return runners_.Connect("echo")->assignments().size() == 2; }));
  const std::string second = runners_.Connect("echo")->assignments()[1].task().id();
  ASSERT_THAT(manager_->ApplyAgentEvent({"echo"}, second, Status(lf::a2a::v1::TASK_STATE_FAILED)),
              IsOk());
  EXPECT_EQ(store_->Get(second)->snapshot.status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
  absl::Notification refused;
  manager_->Cancel(second, "no", [&](absl::StatusOr<Task> result) {
    EXPECT_THAT(result.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
    refused.Notify();
  });
  ASSERT_TRUE(refused.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(store_->Get(second)->snapshot.status().state(), lf::a2a::v1::TASK_STATE_FAILED);
}

TEST_F(DurableTaskManagerTest, ASubscriberWaitsForTheCreateToBeStored) {
  auto sub = std::make_shared<RecordingSubscriber>();
  NewTask task{SendText("hi"), runners_.RunnerFor("echo"), "echo", ""};
  ASSERT_THAT(manager_->Create(std::move(task), sub), IsOk());  // await_create
  store_->Flush();
  ASSERT_THAT(sub->events(), SizeIs(1));
  const std::string id = sub->events()[0].task().id();
  EXPECT_THAT(store_->Get(id), IsOk());  // stored before anyone heard of it
  EXPECT_EQ(commits_.committed(), 1);
}

}  // namespace
}  // namespace a2amesh::tasks
