#include "tasks/task_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/proto_builders.h"
#include "testing/status_matchers.h"

namespace a2amesh::tasks {
namespace {

using ::a2amesh::testing::ArtifactChunk;
using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::Status;
using ::a2amesh::testing::StatusIs;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using ::testing::HasSubstr;

Task Working() {
  Task task;
  task.set_id("n~1");
  task.set_context_id("ctx");
  task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_WORKING);
  return task;
}

TEST(TaskStateTest, TerminalStatesNeverChange) {
  for (auto from : {lf::a2a::v1::TASK_STATE_COMPLETED, lf::a2a::v1::TASK_STATE_FAILED,
                    lf::a2a::v1::TASK_STATE_CANCELED, lf::a2a::v1::TASK_STATE_REJECTED}) {
    EXPECT_THAT(CheckTransition(from, lf::a2a::v1::TASK_STATE_WORKING),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already")));
  }
}

TEST(TaskStateTest, LegalAndIllegalTransitions) {
  EXPECT_THAT(CheckTransition(lf::a2a::v1::TASK_STATE_SUBMITTED, lf::a2a::v1::TASK_STATE_WORKING),
              IsOk());
  EXPECT_THAT(CheckTransition(lf::a2a::v1::TASK_STATE_WORKING, lf::a2a::v1::TASK_STATE_WORKING),
              IsOk());
  EXPECT_THAT(
      CheckTransition(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, lf::a2a::v1::TASK_STATE_WORKING),
      IsOk());
  EXPECT_THAT(CheckTransition(lf::a2a::v1::TASK_STATE_WORKING, lf::a2a::v1::TASK_STATE_SUBMITTED),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("back to submitted")));
  EXPECT_THAT(CheckTransition(lf::a2a::v1::TASK_STATE_SUBMITTED, lf::a2a::v1::TASK_STATE_SUBMITTED),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("only the node submits")));
  EXPECT_THAT(
      CheckTransition(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, lf::a2a::v1::TASK_STATE_REJECTED),
      StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckTransition(lf::a2a::v1::TASK_STATE_WORKING, lf::a2a::v1::TASK_STATE_UNSPECIFIED),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TaskStateTest, FinalEventsAreTerminalOrInterruptedStatusUpdates) {
  EXPECT_TRUE(IsFinalEvent(Status(lf::a2a::v1::TASK_STATE_COMPLETED)));
  EXPECT_TRUE(IsFinalEvent(Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED)));
  EXPECT_TRUE(IsFinalEvent(Status(lf::a2a::v1::TASK_STATE_AUTH_REQUIRED)));
  EXPECT_FALSE(IsFinalEvent(Status(lf::a2a::v1::TASK_STATE_WORKING)));
  EXPECT_FALSE(IsFinalEvent(ArtifactChunk("a", "x", false, true)));
}

TEST(TaskStateTest, StatusMessagesJoinTheHistoryInOrder) {
  Task task = Working();
  StreamResponse first = Status(lf::a2a::v1::TASK_STATE_WORKING, "thinking");
  ASSERT_THAT(NormalizeAgentEvent(task, absl::Now(), &first), IsOk());
  ASSERT_THAT(ApplyEvent(first, &task), IsOk());
  StreamResponse second = Status(lf::a2a::v1::TASK_STATE_COMPLETED, "done");
  ASSERT_THAT(NormalizeAgentEvent(task, absl::Now(), &second), IsOk());
  ASSERT_THAT(ApplyEvent(second, &task), IsOk());
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task.status().message().parts(0).text(), "done");
  ASSERT_EQ(task.history_size(), 2);
  EXPECT_EQ(task.history(0).parts(0).text(), "thinking");
  EXPECT_EQ(task.history(1).parts(0).text(), "done");
  EXPECT_EQ(task.history(0).role(), lf::a2a::v1::ROLE_AGENT);
  EXPECT_FALSE(task.history(0).message_id().empty());
  EXPECT_TRUE(task.status().has_timestamp());
}

TEST(TaskStateTest, ArtifactChunksAppendOrReplace) {
  Task task = Working();
  ASSERT_THAT(ApplyEvent(ArtifactChunk("out", "a", false, false), &task), IsOk());
  ASSERT_THAT(ApplyEvent(ArtifactChunk("out", "b", true, false), &task), IsOk());
  ASSERT_THAT(ApplyEvent(ArtifactChunk("out", "c", true, true), &task), IsOk());
  ASSERT_EQ(task.artifacts_size(), 1);
  ASSERT_EQ(task.artifacts(0).parts_size(), 3);
  EXPECT_EQ(task.artifacts(0).parts(2).text(), "c");
  ASSERT_THAT(ApplyEvent(ArtifactChunk("out", "z", false, true), &task), IsOk());
  ASSERT_EQ(task.artifacts(0).parts_size(), 1);
  EXPECT_EQ(task.artifacts(0).parts(0).text(), "z");
  ASSERT_THAT(ApplyEvent(ArtifactChunk("other", "y", true, true), &task), IsOk());
  EXPECT_EQ(task.artifacts_size(), 2);
}

TEST(TaskStateTest, NormalizeRefusesBadAgentEvents) {
  Task task = Working();
  StreamResponse wrong_task = Status(lf::a2a::v1::TASK_STATE_WORKING);
  wrong_task.mutable_status_update()->set_task_id("n~other");
  EXPECT_THAT(NormalizeAgentEvent(task, absl::Now(), &wrong_task),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("status_update.task_id")));

  StreamResponse no_id = ArtifactChunk("", "x", false, true);
  EXPECT_THAT(NormalizeAgentEvent(task, absl::Now(), &no_id),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("artifact_id")));

  StreamResponse empty_parts;
  empty_parts.mutable_message()->set_role(lf::a2a::v1::ROLE_AGENT);
  EXPECT_THAT(NormalizeAgentEvent(task, absl::Now(), &empty_parts),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message.parts")));

  StreamResponse as_user;
  as_user.mutable_message()->set_role(lf::a2a::v1::ROLE_USER);
  as_user.mutable_message()->add_parts()->set_text("x");
  EXPECT_THAT(NormalizeAgentEvent(task, absl::Now(), &as_user),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ROLE_AGENT")));

  StreamResponse whole_task;
  *whole_task.mutable_task() = task;
  EXPECT_THAT(NormalizeAgentEvent(task, absl::Now(), &whole_task),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the node owns the Task")));

  task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_COMPLETED);
  StreamResponse late = Status(lf::a2a::v1::TASK_STATE_WORKING);
  EXPECT_THAT(NormalizeAgentEvent(task, absl::Now(), &late),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already completed")));
}

TEST(TaskStateTest, TrimHistoryKeepsTheLastN) {
  Task task = Working();
  for (int i = 0; i < 5; ++i) {
    task.add_history()->set_message_id(std::to_string(i));
  }
  Task all = task;
  TrimHistory(std::nullopt, &all);
  EXPECT_EQ(all.history_size(), 5);
  Task two = task;
  TrimHistory(2, &two);
  ASSERT_EQ(two.history_size(), 2);
  EXPECT_EQ(two.history(0).message_id(), "3");
  Task none = task;
  TrimHistory(0, &none);
  EXPECT_EQ(none.history_size(), 0);
}

TEST(TaskStateTest, MaterializeReplaysTheLog) {
  StoredTask stored;
  stored.snapshot = Working();
  stored.events.push_back({1, ArtifactChunk("out", "a", false, false)});
  stored.events.push_back({2, ArtifactChunk("out", "b", true, true)});
  stored.events.push_back({3, Status(lf::a2a::v1::TASK_STATE_COMPLETED)});
  absl::StatusOr<Task> task = Materialize(stored);
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task->artifacts(0).parts_size(), 2);
}

}  // namespace
}  // namespace a2amesh::tasks
