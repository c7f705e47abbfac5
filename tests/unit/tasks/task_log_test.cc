#include "tasks/task_log.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/task_state.h"
#include "testing/proto_builders.h"

namespace a2amesh::tasks {
namespace {

using ::a2amesh::testing::ArtifactChunk;
using ::a2amesh::testing::Status;
using ::a2amesh::testing::UserText;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records what it hears as short strings: "task:working", "status:completed",
// "artifact:a", "error".
class Recorder final : public TaskSubscriber {
 public:
  explicit Recorder(bool final_only = false, bool first_only = false)
      : final_only_(final_only), first_only_(first_only) {}
  void OnEvent(const TaskEvent& e) override {
    if (e.event.has_task()) {
      heard.push_back("task:" + Name(e.state));
    } else if (e.event.has_status_update()) {
      heard.push_back("status:" + Name(e.event.status_update().status().state()));
      // A final event comes with the whole task, as of that event.
      if (e.task != nullptr) heard.back() += "+task:" + Name(e.task->status().state());
    } else if (e.event.has_artifact_update()) {
      heard.push_back("artifact:" + e.event.artifact_update().artifact().artifact_id());
    } else if (e.event.has_message()) {
      heard.push_back("message");
    }
    seqs.push_back(e.seq);
  }
  void OnError(const absl::Status&) override { heard.push_back("error"); }
  bool final_only() const override { return final_only_; }
  bool first_only() const override { return first_only_; }

  std::vector<std::string> heard;
  std::vector<int64_t> seqs;  // each event's TaskEvent::seq

 private:
  static std::string Name(lf::a2a::v1::TaskState state) { return std::string(StateName(state)); }
  const bool final_only_;
  const bool first_only_;
};

class TaskLogTest : public ::testing::Test {
 protected:
  TaskLogTest() { task_.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED); }

  // Applies `event`'s state to the task (as the manager does) and logs it.
  int64_t Log(StreamResponse event, bool durable_first = false) {
    if (event.has_status_update()) {
      task_.mutable_status()->set_state(event.status_update().status().state());
    }
    return log_.Append(std::move(event), task_, durable_first);
  }

  // Delivers what the log lets through now, as the manager does after
  // releasing the task's lock.
  void Deliver() {
    TaskLog::Deliveries deliveries;
    log_.Collect(&deliveries);
    for (const auto& delivery : deliveries) delivery.Deliver("n~1");
  }

  Task task_;
  TaskLog log_;
};

TEST_F(TaskLogTest, EventsGetConsecutiveSequenceNumbers) {
  EXPECT_EQ(log_.next_seq(), 1);
  EXPECT_EQ(Log(Status(lf::a2a::v1::TASK_STATE_WORKING)), 1);
  EXPECT_EQ(Log(ArtifactChunk("a", "x", false, true)), 2);
  EXPECT_EQ(log_.next_seq(), 3);
  TaskLog recovered(8);  // after event 7 was the last stored
  EXPECT_EQ(recovered.Append(StreamResponse(), task_, false), 8);
}

TEST_F(TaskLogTest, EverySubscriberHearsTheSameEventsInOrderAfterItsFirstTask) {
  auto early = std::make_shared<Recorder>();
  log_.Attach(early, task_, false);
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  auto late = std::make_shared<Recorder>();
  log_.Attach(late, task_, false);
  Log(ArtifactChunk("a", "x", false, true));
  Deliver();
  EXPECT_THAT(early->heard, ElementsAre("task:submitted", "status:working", "artifact:a"));
  // The late one starts from the task as it stood when it came.
  EXPECT_THAT(late->heard, ElementsAre("task:working", "artifact:a"));
}

TEST_F(TaskLogTest, EventsCarryTheirSequenceNumberAndAFirstTaskTheLastOneItHolds) {
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));  // 1
  auto sub = std::make_shared<Recorder>();
  log_.Attach(sub, task_, false);
  Log(ArtifactChunk("a", "x", false, true));  // 2
  Log(ArtifactChunk("b", "y", false, true));  // 3
  Deliver();
  EXPECT_THAT(sub->heard, ElementsAre("task:working", "artifact:a", "artifact:b"));
  EXPECT_THAT(sub->seqs, ElementsAre(1, 2, 3));
}

TEST_F(TaskLogTest, AResumingSubscriberGetsNoTaskIfItMissedNothingElseTheTaskThatHoldsIt) {
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));  // 1
  Log(ArtifactChunk("a", "x", false, true));     // 2
  // Saw everything up to 2: only what comes next.
  auto current = std::make_shared<Recorder>();
  log_.Attach(current, task_, false, /*resume_after=*/2);
  // Saw only 1: the Task, which holds 2, then what comes next.
  auto behind = std::make_shared<Recorder>();
  log_.Attach(behind, task_, false, /*resume_after=*/1);
  Log(ArtifactChunk("b", "y", false, true));  // 3
  Deliver();
  EXPECT_THAT(current->heard, ElementsAre("artifact:b"));
  EXPECT_THAT(current->seqs, ElementsAre(3));
  EXPECT_THAT(behind->heard, ElementsAre("task:working", "artifact:b"));
  EXPECT_THAT(behind->seqs, ElementsAre(2, 3));
  // An id from elsewhere (ahead of the log) resumes nothing: the Task first.
  auto stranger = std::make_shared<Recorder>();
  log_.Attach(stranger, task_, false, /*resume_after=*/99);
  Deliver();
  EXPECT_THAT(stranger->heard, ElementsAre("task:working"));
  EXPECT_THAT(stranger->seqs, ElementsAre(3));
}

TEST_F(TaskLogTest, AnEventThatMustBeStoredHoldsBackEverythingAfterIt) {
  auto sub = std::make_shared<Recorder>();
  log_.Attach(sub, task_, false);
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  const int64_t question = Log(Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED), true);
  EXPECT_TRUE(log_.waiting_for_store());
  auto newcomer = std::make_shared<Recorder>();
  log_.Attach(newcomer, task_, false);
  Deliver();
  EXPECT_THAT(sub->heard, ElementsAre("task:submitted", "status:working"));
  EXPECT_THAT(newcomer->heard, IsEmpty());  // nobody sees past an unstored event
  EXPECT_FALSE(log_.quiet());

  log_.MarkStored(question);
  Deliver();
  EXPECT_THAT(sub->heard, ElementsAre("task:submitted", "status:working",
                                      "status:input-required+task:input-required"));
  EXPECT_THAT(newcomer->heard, ElementsAre("task:input-required"));
  EXPECT_FALSE(log_.waiting_for_store());
  EXPECT_TRUE(log_.quiet());
}

TEST_F(TaskLogTest, StreamsEndWithAFinalEventAndWatchersWithATerminalOne) {
  auto stream = std::make_shared<Recorder>();
  auto watcher = std::make_shared<Recorder>();
  log_.Attach(stream, task_, /*until_terminal=*/false);
  log_.Attach(watcher, task_, /*until_terminal=*/true);
  Log(Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED));
  StreamResponse answer;
  *answer.mutable_message() = UserText("blue");
  Log(std::move(answer));
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  Log(Status(lf::a2a::v1::TASK_STATE_COMPLETED));
  Deliver();
  EXPECT_THAT(stream->heard,
              ElementsAre("task:submitted", "status:input-required+task:input-required"));
  // The client's message is never delivered: subscribers see it in the Task.
  EXPECT_THAT(watcher->heard,
              ElementsAre("task:submitted", "status:input-required+task:input-required",
                          "status:working", "status:completed+task:completed"));
  EXPECT_THAT(log_.TakeSubscribers(), IsEmpty());
}

TEST_F(TaskLogTest, AFinalOnlySubscriberHearsOnlyTheEventThatEndsIt) {
  auto waiter = std::make_shared<Recorder>(/*final_only=*/true);
  log_.Attach(waiter, task_, false);
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  Log(ArtifactChunk("a", "x", false, true));
  Log(Status(lf::a2a::v1::TASK_STATE_COMPLETED));
  Deliver();
  EXPECT_THAT(waiter->heard, ElementsAre("status:completed+task:completed"));
}

TEST_F(TaskLogTest, AFirstOnlySubscriberHearsTheTaskAndNothingAfterIt) {
  log_.HoldUntilCreated();
  auto accepted = std::make_shared<Recorder>(/*final_only=*/false, /*first_only=*/true);
  auto stream = std::make_shared<Recorder>();
  log_.Attach(accepted, task_, false);
  EXPECT_FALSE(log_.watched());  // it will not hear what comes next
  log_.Attach(stream, task_, false);
  EXPECT_TRUE(log_.watched());
  log_.MarkStored(0);
  Deliver();
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  Deliver();
  EXPECT_THAT(accepted->heard, ElementsAre("task:submitted"));
  EXPECT_THAT(stream->heard, ElementsAre("task:submitted", "status:working"));
  // Once the stream ends too, nobody watches the task.
  Log(Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED));
  Deliver();
  EXPECT_FALSE(log_.watched());
}

TEST_F(TaskLogTest, NothingIsDeliveredBeforeTheCreateIsStored) {
  log_.HoldUntilCreated();
  auto sub = std::make_shared<Recorder>();
  log_.Attach(sub, task_, false);
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));  // the agent started at once
  Deliver();
  EXPECT_THAT(sub->heard, IsEmpty());
  EXPECT_TRUE(log_.waiting_for_store());
  log_.MarkStored(0);
  Deliver();
  EXPECT_THAT(sub->heard, ElementsAre("task:submitted", "status:working"));
}

TEST_F(TaskLogTest, FollowingStartsWithTheNextEventAndNoTask) {
  auto handoff = std::make_shared<Recorder>();
  log_.Follow(handoff);
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  Deliver();
  EXPECT_THAT(handoff->heard, ElementsAre("status:working"));
}

TEST_F(TaskLogTest, ADetachedSubscriberHearsNothingMoreEvenBeforeItJoined) {
  auto sub = std::make_shared<Recorder>();
  log_.Attach(sub, task_, false);
  Log(Status(lf::a2a::v1::TASK_STATE_WORKING));
  Deliver();
  EXPECT_EQ(log_.Detach(sub.get()), sub);
  Log(ArtifactChunk("a", "x", false, true));
  const int64_t held = Log(Status(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED), true);
  auto waiting = std::make_shared<Recorder>();
  log_.Attach(waiting, task_, false);  // queued behind the unstored event
  EXPECT_EQ(log_.Detach(waiting.get()), waiting);
  EXPECT_EQ(log_.Detach(waiting.get()), nullptr);
  log_.MarkStored(held);
  Deliver();
  EXPECT_THAT(sub->heard, ElementsAre("task:submitted", "status:working"));
  EXPECT_THAT(waiting->heard, IsEmpty());
}

}  // namespace
}  // namespace a2amesh::tasks
