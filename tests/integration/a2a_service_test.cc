// The A2A gRPC binding end to end, in one process: a real node on
// 127.0.0.1:0, SDK agents over real AgentHost streams, clients over real gRPC.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/task_manager.h"
#include "testing/cards.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::BadRequestField;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::ErrorReason;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::ReadAll;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

lf::a2a::v1::SendMessageRequest ForSkill(const std::string& skill, const std::string& text) {
  lf::a2a::v1::SendMessageRequest request = SendText(text);
  (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(skill);
  return request;
}

// Every case runs twice: on the in-memory store and on SQLite.
class A2aServiceTest : public ::testing::TestWithParam<bool> {
 protected:
  static NodeOptions Options(const testing::TempDir& dir) {
    NodeOptions options = NodeHarness::TestOptions();
    if (GetParam()) {
      options.ephemeral = false;
      options.data_dir = dir.File("data");
    }
    return options;
  }

  void SetUp() override {
    stub_ = harness_.NewA2aStub();
    agent_ = harness_.StartAgent({
        {"echo", Card("echo", {"echo"}), 8,
         [](sdk::TaskContext& task) {
           task.SetWorking();
           task.SendArtifact(sdk::TextArtifact("echo", "echo", task.text()));
           task.Complete("echo: " + task.text());
         }},
        {"chunks", Card("chunks", {"chunks"}), 8,
         [](sdk::TaskContext& task) {
           task.SetWorking();
           for (int i = 0; i < 5; ++i) {
             task.SendArtifact(sdk::TextArtifact("out", "out", std::to_string(i)), i > 0, i == 4);
           }
           task.Complete();
         }},
        {"slow", Card("slow", {"slow"}), 2,
         [this](sdk::TaskContext& task) {
           task.SetWorking();
           started_.fetch_add(1);
           if (task.WaitForCancel(absl::Seconds(20))) {
             cancels_seen_.fetch_add(1);
             return;
           }
           task.Complete("slow done");
         }},
        {"ask", Card("ask", {"ask"}), 8,
         [](sdk::TaskContext& task) {
           if (task.task().history_size() <= 1) {
             task.RequireInput("which color?");
             return;
           }
           task.Complete("you chose " + task.text());
         }},
    });
    ASSERT_NE(agent_, nullptr);
  }

  lf::a2a::v1::SendMessageResponse Send(const lf::a2a::v1::SendMessageRequest& request,
                                        grpc::Status* status) {
    lf::a2a::v1::SendMessageResponse response;
    *status = stub_->SendMessage(A2aContext().get(), request, &response);
    return response;
  }

  Task Get(const std::string& id, grpc::Status* status) {
    lf::a2a::v1::GetTaskRequest request;
    request.set_id(id);
    Task task;
    *status = stub_->GetTask(A2aContext().get(), request, &task);
    return task;
  }

  testing::TempDir dir_;
  NodeHarness harness_{Options(dir_)};
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub_;
  std::unique_ptr<sdk::Agent> agent_;
  std::atomic<int> started_{0};
  std::atomic<int> cancels_seen_{0};
};

TEST_P(A2aServiceTest, SendMessageBlocksUntilTheTaskEnds) {
  grpc::Status status;
  lf::a2a::v1::SendMessageResponse response = Send(ForSkill("echo", "hello"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.has_task());
  const Task& task = response.task();
  EXPECT_THAT(task.id(), HasSubstr("n1~"));
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task.status().message().parts(0).text(), "echo: hello");
  ASSERT_EQ(task.artifacts_size(), 1);
  EXPECT_EQ(task.artifacts(0).parts(0).text(), "hello");
  EXPECT_EQ(task.history(0).parts(0).text(), "hello");
}

TEST_P(A2aServiceTest, ReturnImmediatelyAnswersWithTheSubmittedTask) {
  lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  grpc::Status status;
  lf::a2a::v1::SendMessageResponse response = Send(request, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
  std::string id = response.task().id();
  ASSERT_TRUE(WaitFor([&] {
    grpc::Status s;
    return Get(id, &s).status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));
}

TEST_P(A2aServiceTest, HistoryLengthTrimsTheAnswer) {
  lf::a2a::v1::SendMessageRequest request = ForSkill("echo", "hello");
  request.mutable_configuration()->set_history_length(0);
  grpc::Status status;
  lf::a2a::v1::SendMessageResponse response = Send(request, &status);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(response.task().history_size(), 0);

  lf::a2a::v1::GetTaskRequest get;
  get.set_id(response.task().id());
  get.set_history_length(1);
  Task task;
  ASSERT_TRUE(stub_->GetTask(A2aContext().get(), get, &task).ok());
  ASSERT_EQ(task.history_size(), 1);
  EXPECT_EQ(task.history(0).parts(0).text(), "echo: hello");
  get.clear_history_length();
  ASSERT_TRUE(stub_->GetTask(A2aContext().get(), get, &task).ok());
  EXPECT_EQ(task.history_size(), 2);
  get.set_history_length(-1);
  grpc::Status bad = stub_->GetTask(A2aContext().get(), get, &task);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(bad), "history_length");
}

TEST_P(A2aServiceTest, StreamingDeliversEveryEventInOrder) {
  auto context = A2aContext();
  auto reader = stub_->SendStreamingMessage(context.get(), ForSkill("chunks", "go"));
  grpc::Status status;
  std::vector<StreamResponse> events = ReadAll(*reader, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(events, SizeIs(8));
  EXPECT_EQ(events[0].task().status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
  EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  for (int i = 0; i < 5; ++i) {
    const auto& update = events[2 + i].artifact_update();
    EXPECT_EQ(update.artifact().parts(0).text(), std::to_string(i));
    EXPECT_EQ(update.append(), i > 0);
    EXPECT_EQ(update.last_chunk(), i == 4);
    EXPECT_EQ(update.task_id(), events[0].task().id());
  }
  EXPECT_EQ(events[7].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
}

TEST_P(A2aServiceTest, ThreeSubscribersSeeIdenticalEvents) {
  lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  grpc::Status status;
  std::string id = Send(request, &status).task().id();
  ASSERT_TRUE(status.ok());
  // The node has applied the agent's WORKING (not just the agent sent it).
  ASSERT_TRUE(WaitFor([&] {
    grpc::Status s;
    return Get(id, &s).status().state() == lf::a2a::v1::TASK_STATE_WORKING;
  }));

  std::vector<std::vector<StreamResponse>> seen(3);
  std::vector<grpc::Status> results(3);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<StreamResponse>>> readers;
  lf::a2a::v1::SubscribeToTaskRequest subscribe;
  subscribe.set_id(id);
  for (int i = 0; i < 3; ++i) {
    contexts.push_back(A2aContext());
    readers.push_back(stub_->SubscribeToTask(contexts.back().get(), subscribe));
  }
  // Each has its first event (the Task) before the task moves on.
  std::vector<StreamResponse> first(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(readers[i]->Read(&first[i]));
    EXPECT_EQ(first[i].task().id(), id);
    EXPECT_EQ(first[i].task().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  }
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  Task canceled;
  ASSERT_TRUE(stub_->CancelTask(A2aContext().get(), cancel, &canceled).ok());
  for (int i = 0; i < 3; ++i) {
    seen[i] = ReadAll(*readers[i], &results[i]);
    EXPECT_TRUE(results[i].ok()) << results[i].error_message();
  }
  ASSERT_THAT(seen[0], SizeIs(1));
  EXPECT_EQ(seen[0][0].status_update().status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  for (int i = 1; i < 3; ++i) {
    ASSERT_EQ(seen[i].size(), seen[0].size());
    for (size_t j = 0; j < seen[0].size(); ++j) {
      EXPECT_EQ(seen[i][j].SerializeAsString(), seen[0][j].SerializeAsString());
    }
  }
}

TEST_P(A2aServiceTest, SubscribeErrors) {
  grpc::Status status;
  std::string id = Send(ForSkill("echo", "x"), &status).task().id();
  lf::a2a::v1::SubscribeToTaskRequest subscribe;
  subscribe.set_id(id);
  auto context = A2aContext();
  auto reader = stub_->SubscribeToTask(context.get(), subscribe);
  std::vector<StreamResponse> events = ReadAll(*reader, &status);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "UNSUPPORTED_OPERATION");
  EXPECT_THAT(status.error_message(), HasSubstr("already completed"));

  subscribe.set_id("n1~nope");
  auto context2 = A2aContext();
  auto reader2 = stub_->SubscribeToTask(context2.get(), subscribe);
  ReadAll(*reader2, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorReason(status), "TASK_NOT_FOUND");
}

TEST_P(A2aServiceTest, CancelReachesTheAgent) {
  lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  grpc::Status status;
  std::string id = Send(request, &status).task().id();
  ASSERT_TRUE(WaitFor([&] { return started_.load() == 1; }));
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  Task task;
  status = stub_->CancelTask(A2aContext().get(), cancel, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_CANCELED);
  EXPECT_TRUE(WaitFor([&] { return cancels_seen_.load() == 1; }));

  status = stub_->CancelTask(A2aContext().get(), cancel, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "TASK_NOT_CANCELABLE");
  cancel.set_id("n1~nope");
  status = stub_->CancelTask(A2aContext().get(), cancel, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorReason(status), "TASK_NOT_FOUND");
  cancel.clear_id();
  status = stub_->CancelTask(A2aContext().get(), cancel, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "id");
}

TEST_P(A2aServiceTest, GetTaskErrors) {
  grpc::Status status;
  Get("n1~nope", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorReason(status), "TASK_NOT_FOUND");
  Get("", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(A2aServiceTest, ListTasksFiltersPagesAndOmitsArtifacts) {
  std::vector<std::string> ids;
  std::string context_id;
  for (int i = 0; i < 5; ++i) {
    lf::a2a::v1::SendMessageRequest request = ForSkill("echo", "m" + std::to_string(i));
    if (i < 3) {
      request.mutable_message()->set_context_id("ctx-a");
    }
    grpc::Status status;
    ids.push_back(Send(request, &status).task().id());
    ASSERT_TRUE(status.ok());
    absl::SleepFor(absl::Milliseconds(2));  // distinct status timestamps (ms)
  }
  lf::a2a::v1::ListTasksRequest list;
  list.set_context_id("ctx-a");
  list.set_page_size(2);
  lf::a2a::v1::ListTasksResponse page;
  ASSERT_TRUE(stub_->ListTasks(A2aContext().get(), list, &page).ok());
  EXPECT_EQ(page.total_size(), 3);
  EXPECT_EQ(page.page_size(), 2);
  ASSERT_EQ(page.tasks_size(), 2);
  EXPECT_EQ(page.tasks(0).id(), ids[2]);  // newest first
  EXPECT_EQ(page.tasks(0).artifacts_size(), 0);
  EXPECT_FALSE(page.next_page_token().empty());
  list.set_page_token(page.next_page_token());
  list.set_include_artifacts(true);
  ASSERT_TRUE(stub_->ListTasks(A2aContext().get(), list, &page).ok());
  ASSERT_EQ(page.tasks_size(), 1);
  EXPECT_EQ(page.tasks(0).id(), ids[0]);
  EXPECT_EQ(page.tasks(0).artifacts_size(), 1);
  EXPECT_TRUE(page.next_page_token().empty());

  lf::a2a::v1::ListTasksRequest by_state;
  by_state.set_status(lf::a2a::v1::TASK_STATE_COMPLETED);
  ASSERT_TRUE(stub_->ListTasks(A2aContext().get(), by_state, &page).ok());
  EXPECT_EQ(page.total_size(), 5);

  lf::a2a::v1::ListTasksRequest bad;
  bad.set_page_size(101);
  grpc::Status status = stub_->ListTasks(A2aContext().get(), bad, &page);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(BadRequestField(status), "page_size");
  bad.set_page_size(10);
  bad.set_page_token("not-a-token");
  status = stub_->ListTasks(A2aContext().get(), bad, &page);
  EXPECT_EQ(BadRequestField(status), "page_token");
}

TEST_P(A2aServiceTest, FollowUpMessagesGoToTheOwningAgent) {
  grpc::Status status;
  lf::a2a::v1::SendMessageResponse first = Send(ForSkill("ask", "paint it"), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(first.task().status().state(), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  EXPECT_EQ(first.task().status().message().parts(0).text(), "which color?");

  lf::a2a::v1::SendMessageRequest answer = SendText("red");
  answer.mutable_message()->set_task_id(first.task().id());
  answer.mutable_message()->set_context_id(first.task().context_id());
  lf::a2a::v1::SendMessageResponse done = Send(answer, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(done.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(done.task().status().message().parts(0).text(), "you chose red");
  // history: request, question, answer, result.
  EXPECT_EQ(done.task().history_size(), 4);

  Send(answer, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "UNSUPPORTED_OPERATION");
  answer.mutable_message()->set_task_id("n1~nope");
  Send(answer, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(A2aServicePushOffTest, PushNotificationRpcsAreNotSupportedWhenPushIsOff) {
  NodeOptions options = NodeHarness::TestOptions();
  options.push_notifications = false;
  NodeHarness harness(options);
  std::unique_ptr<sdk::Agent> agent = harness.StartAgent(
      {{"echo", Card("echo", {"echo"}), 8, [](sdk::TaskContext& task) { task.Complete("x"); }}});
  ASSERT_NE(agent, nullptr);
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub = harness.NewA2aStub();
  lf::a2a::v1::TaskPushNotificationConfig config;
  config.set_task_id("n1~x");
  config.set_url("https://example.com/hook");
  lf::a2a::v1::TaskPushNotificationConfig out;
  grpc::Status status = stub->CreateTaskPushNotificationConfig(A2aContext().get(), config, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "PUSH_NOTIFICATION_NOT_SUPPORTED");

  lf::a2a::v1::GetTaskPushNotificationConfigRequest get;
  status = stub->GetTaskPushNotificationConfig(A2aContext().get(), get, &out);
  EXPECT_EQ(ErrorReason(status), "PUSH_NOTIFICATION_NOT_SUPPORTED");
  lf::a2a::v1::ListTaskPushNotificationConfigsRequest list;
  lf::a2a::v1::ListTaskPushNotificationConfigsResponse configs;
  status = stub->ListTaskPushNotificationConfigs(A2aContext().get(), list, &configs);
  EXPECT_EQ(ErrorReason(status), "PUSH_NOTIFICATION_NOT_SUPPORTED");
  lf::a2a::v1::DeleteTaskPushNotificationConfigRequest del;
  google::protobuf::Empty empty;
  status = stub->DeleteTaskPushNotificationConfig(A2aContext().get(), del, &empty);
  EXPECT_EQ(ErrorReason(status), "PUSH_NOTIFICATION_NOT_SUPPORTED");

  lf::a2a::v1::SendMessageRequest with_push = ForSkill("echo", "x");
  *with_push.mutable_configuration()->mutable_task_push_notification_config() = config;
  lf::a2a::v1::SendMessageResponse response;
  status = stub->SendMessage(A2aContext().get(), with_push, &response);
  EXPECT_EQ(ErrorReason(status), "PUSH_NOTIFICATION_NOT_SUPPORTED");
}

class RetentionNodeTest : public ::testing::TestWithParam<bool> {};

TEST_P(RetentionNodeTest, AFinishedTaskIsForgottenAfterItsRetentionAndAWorkingOneIsNot) {
  testing::TempDir dir;
  NodeOptions options = NodeHarness::TestOptions();
  if (GetParam()) {
    options.ephemeral = false;
    options.data_dir = dir.File("data");
  }
  options.task_retention = absl::Milliseconds(300);
  NodeHarness harness(options);
  std::atomic<bool> release{false};
  std::unique_ptr<sdk::Agent> agent = harness.StartAgent(
      {{"echo", Card("echo", {"echo"}), 8, [](sdk::TaskContext& task) { task.Complete("x"); }},
       {"hold", Card("hold", {"hold"}), 8, [&](sdk::TaskContext& task) {
          task.SetWorking();
          WaitFor([&] { return release.load(); }, absl::Seconds(30));
          task.Complete("held");
        }}});
  ASSERT_NE(agent, nullptr);
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub = harness.NewA2aStub();
  lf::a2a::v1::SendMessageResponse done;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), ForSkill("echo", "x"), &done).ok());
  lf::a2a::v1::SendMessageRequest hold = ForSkill("hold", "x");
  hold.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse held;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), hold, &held).ok());

  lf::a2a::v1::GetTaskRequest get;
  get.set_id(done.task().id());
  Task task;
  EXPECT_TRUE(WaitFor([&] {
    return ErrorReason(stub->GetTask(A2aContext().get(), get, &task)) == "TASK_NOT_FOUND";
  }));
  // Retention never touches a task that has not finished, however old.
  get.set_id(held.task().id());
  ASSERT_TRUE(stub->GetTask(A2aContext().get(), get, &task).ok());
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_WORKING);
  // The expirations are counted (once the sweep that removed it returns).
  EXPECT_TRUE(WaitFor([&] {
    absl::StatusOr<testing::HttpResult> scrape =
        testing::HttpGet(absl::StrCat("127.0.0.1:", harness.node().metrics_port()), "/metrics");
    return scrape.ok() && absl::StrContains(scrape->body, "\na2amesh_tasks_expired_total ") &&
           !absl::StrContains(scrape->body, "\na2amesh_tasks_expired_total 0\n");
  }));
  release = true;
}

TEST(TurnLimitNodeTest, AnAgentThatNeverAnswersHasItsTaskFailedAtTheTimeout) {
  NodeOptions options = NodeHarness::TestOptions();
  options.agent_idle_timeout = absl::Milliseconds(300);
  NodeHarness harness(options);
  std::atomic<bool> canceled{false};
  // Connected, heartbeating, never a word about the task.
  std::unique_ptr<sdk::Agent> agent =
      harness.StartAgent({{"mute", Card("mute", {"mute"}), 8, [&](sdk::TaskContext& task) {
                             if (task.WaitForCancel(absl::Seconds(30))) canceled = true;
                           }}});
  ASSERT_NE(agent, nullptr);
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub = harness.NewA2aStub();
  lf::a2a::v1::SendMessageResponse response;
  const absl::Time start = absl::Now();
  grpc::Status status =
      stub->SendMessage(A2aContext().get(), ForSkill("mute", "hello?"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(response.task().status().message().parts(0).text(),
              HasSubstr("agent mute sent nothing for 300ms (--agent-idle-timeout)"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  // The agent was told to stop.
  EXPECT_TRUE(WaitFor([&] { return canceled.load(); }));
}

TEST(GrpcConnectionLimitsTest, AConnectionIdleForTheLimitIsClosed) {
  NodeOptions options = NodeHarness::TestOptions();
  options.grpc_max_connection_idle = absl::Milliseconds(300);
  NodeHarness harness(options);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(harness.address(), grpc::InsecureChannelCredentials());
  auto stub = lf::a2a::v1::A2AService::NewStub(channel);
  lf::a2a::v1::GetTaskRequest get;
  get.set_id("n1~nothing");
  Task task;
  EXPECT_EQ(stub->GetTask(A2aContext().get(), get, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // No call for 300 ms: the node sends a GOAWAY and the channel goes idle.
  EXPECT_TRUE(WaitFor([&] { return channel->GetState(false) == GRPC_CHANNEL_IDLE; }));
  // A new call connects again.
  EXPECT_EQ(stub->GetTask(A2aContext().get(), get, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(Stores, RetentionNodeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Sqlite" : "Memory";
                         });

TEST_P(A2aServiceTest, ExtendedAgentCardIsNotDeclared) {
  lf::a2a::v1::GetExtendedAgentCardRequest request;
  lf::a2a::v1::AgentCard card;
  grpc::Status status = stub_->GetExtendedAgentCard(A2aContext().get(), request, &card);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "UNSUPPORTED_OPERATION");
}

TEST_P(A2aServiceTest, RequestsWithoutTheVersionAreRefused) {
  grpc::ClientContext context;
  lf::a2a::v1::GetTaskRequest request;
  request.set_id("n1~x");
  Task task;
  grpc::Status status = stub_->GetTask(&context, request, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "VERSION_NOT_SUPPORTED");
  EXPECT_THAT(status.error_message(), HasSubstr("0.3"));

  grpc::ClientContext old;
  old.AddMetadata("a2a-version", "0.3");
  lf::a2a::v1::SendMessageResponse response;
  status = stub_->SendMessage(&old, ForSkill("echo", "x"), &response);
  EXPECT_EQ(ErrorReason(status), "VERSION_NOT_SUPPORTED");

  grpc::ClientContext stream_context;
  auto reader = stub_->SendStreamingMessage(&stream_context, ForSkill("echo", "x"));
  ReadAll(*reader, &status);
  EXPECT_EQ(ErrorReason(status), "VERSION_NOT_SUPPORTED");
}

TEST_P(A2aServiceTest, BadMessagesNameTheField) {
  struct Case {
    std::function<void(lf::a2a::v1::SendMessageRequest&)> mutate;
    std::string field;
  } cases[] = {
      {[](auto& r) { r.clear_message(); }, "message"},
      {[](auto& r) { r.mutable_message()->clear_message_id(); }, "message.message_id"},
      {[](auto& r) { r.mutable_message()->set_role(lf::a2a::v1::ROLE_UNSPECIFIED); },
       "message.role"},
      {[](auto& r) { r.mutable_message()->clear_parts(); }, "message.parts"},
      {[](auto& r) { r.mutable_message()->add_parts(); }, "message.parts[1]"},
      {[](auto& r) { r.mutable_configuration()->set_history_length(-2); },
       "configuration.history_length"},
      {[](auto& r) {
         (*r.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_number_value(1);
       },
       "metadata.a2amesh/skill"},
  };
  for (const Case& c : cases) {
    lf::a2a::v1::SendMessageRequest request = ForSkill("echo", "x");
    c.mutate(request);
    grpc::Status status;
    Send(request, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(BadRequestField(status), c.field);
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
}

TEST_P(A2aServiceTest, UnroutableRequestsSayWhatWasAsked) {
  grpc::Status status;
  Send(ForSkill("translate", "x"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(status), "UNSUPPORTED_OPERATION");
  EXPECT_THAT(status.error_message(),
              HasSubstr("no agent offers skill 'translate'; skills: ask, chunks, echo, slow"));

  lf::a2a::v1::SendMessageRequest by_tenant = SendText("hi");
  by_tenant.set_tenant("echo");
  lf::a2a::v1::SendMessageResponse response = Send(by_tenant, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().message().parts(0).text(), "echo: hi");

  lf::a2a::v1::SendMessageRequest image = ForSkill("echo", "x");
  image.mutable_message()->mutable_parts(0)->set_media_type("image/png");
  Send(image, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorReason(status), "CONTENT_TYPE_NOT_SUPPORTED");
}

TEST_P(A2aServiceTest, MaxConcurrencyIsRespected) {
  // "slow" takes two tasks at once.
  for (int i = 0; i < 2; ++i) {
    lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
    request.mutable_configuration()->set_return_immediately(true);
    grpc::Status status;
    Send(request, &status);
    ASSERT_TRUE(status.ok());
  }
  grpc::Status status;
  Send(ForSkill("slow", "x"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_concurrency"));
}

INSTANTIATE_TEST_SUITE_P(Stores, A2aServiceTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Sqlite" : "Memory";
                         });

// What an autoscaler reads: per skill, the agents' capacity, the tasks they
// run and the tasks not yet started; and every request by method and code.
TEST(NodeMetricsTest, SkillGaugesFollowTheLoadAndRequestsAreCountedByMethodAndCode) {
  NodeHarness harness(NodeHarness::TestOptions());
  absl::Notification start;
  absl::Notification finish;
  std::unique_ptr<sdk::Agent> agent = harness.StartAgent({
      {"held", Card("held", {"held"}), 3,
       [&](sdk::TaskContext& task) {
         start.WaitForNotification();
         task.SetWorking();
         finish.WaitForNotification();
         task.Complete("done");
       }},
  });
  ASSERT_NE(agent, nullptr);
  const std::string metrics = absl::StrCat("127.0.0.1:", harness.node().metrics_port());
  auto sample = [&](const std::string& series) {
    return testing::ScrapeSample(metrics, series).value_or(-1);
  };
  EXPECT_EQ(sample("a2amesh_skill_capacity{skill=\"held\"}"), 3);
  EXPECT_EQ(sample("a2amesh_skill_running{skill=\"held\"}"), 0);
  EXPECT_EQ(sample("a2amesh_skill_waiting{skill=\"held\"}"), 0);

  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub = harness.NewA2aStub();
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    lf::a2a::v1::SendMessageRequest request = ForSkill("held", "x");
    request.mutable_configuration()->set_return_immediately(true);
    lf::a2a::v1::SendMessageResponse response;
    ASSERT_TRUE(stub->SendMessage(A2aContext().get(), request, &response).ok());
    ids.push_back(response.task().id());
  }
  // Assigned, not started: running on the agent and waiting to start.
  EXPECT_TRUE(WaitFor([&] {
    return sample("a2amesh_skill_running{skill=\"held\"}") == 2 &&
           sample("a2amesh_skill_waiting{skill=\"held\"}") == 2;
  }));
  start.Notify();
  EXPECT_TRUE(WaitFor([&] { return sample("a2amesh_skill_waiting{skill=\"held\"}") == 0; }));
  EXPECT_EQ(sample("a2amesh_skill_running{skill=\"held\"}"), 2);
  finish.Notify();
  EXPECT_TRUE(WaitFor([&] { return sample("a2amesh_skill_running{skill=\"held\"}") == 0; }));
  EXPECT_EQ(sample("a2amesh_skill_capacity{skill=\"held\"}"), 3);

  // gRPC calls by method and code; the HTTP binding's by binding, method and
  // HTTP status (and not counted again as gRPC calls).
  lf::a2a::v1::GetTaskRequest missing;
  missing.set_id("n1~no-such-task");
  Task task;
  EXPECT_EQ(stub->GetTask(A2aContext().get(), missing, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  lf::a2a::v1::SubscribeToTaskRequest subscribe;
  subscribe.set_id(ids[1]);  // ended: refused
  std::unique_ptr<grpc::ClientContext> subscribe_context = A2aContext();
  grpc::Status subscribed;
  ReadAll(*stub->SubscribeToTask(subscribe_context.get(), subscribe), &subscribed);
  EXPECT_EQ(subscribed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const std::string http = absl::StrCat("127.0.0.1:", harness.node().http_port());
  ASSERT_TRUE(testing::A2aHttp(http, "GET", absl::StrCat("/a2a/rest/tasks/", ids[0]), "").ok());
  ASSERT_TRUE(testing::HttpGet(http, "/healthz").ok());
  ASSERT_TRUE(testing::HttpGet(http, "/nothing-here").ok());
  // (A call is counted once gRPC has released it, just after its answer.)
  EXPECT_TRUE(WaitFor([&] {
    return sample(
               "a2amesh_grpc_requests_total{service=\"lf.a2a.v1.A2AService\","
               "method=\"SubscribeToTask\",code=\"FAILED_PRECONDITION\"}") == 1;
  }));
  EXPECT_EQ(
      sample("a2amesh_grpc_requests_total{service=\"lf.a2a.v1.A2AService\",method=\"SendMessage\","
             "code=\"OK\"}"),
      2);
  EXPECT_EQ(
      sample("a2amesh_grpc_requests_total{service=\"lf.a2a.v1.A2AService\",method=\"GetTask\","
             "code=\"NOT_FOUND\"}"),
      1);
  EXPECT_EQ(sample("a2amesh_grpc_request_duration_seconds_count{service=\"lf.a2a.v1.A2AService\","
                   "method=\"SendMessage\"}"),
            2);
  EXPECT_EQ(
      sample("a2amesh_grpc_requests_total{service=\"lf.a2a.v1.A2AService\",method=\"GetTask\","
             "code=\"OK\"}"),
      -1);
  EXPECT_EQ(sample("a2amesh_http_requests_total{binding=\"rest\",method=\"GetTask\",code=\"200\"}"),
            1);
  EXPECT_EQ(
      sample("a2amesh_http_requests_total{binding=\"probe\",method=\"healthz\",code=\"200\"}"), 1);
  EXPECT_EQ(sample("a2amesh_http_requests_total{binding=\"none\",method=\"\",code=\"404\"}"), 1);
  EXPECT_EQ(sample("a2amesh_http_requests_total{binding=\"rest\",method=\"GetTask\",code=\"404\"}"),
            -1);
  // The agent's own stream is not counted (it is open as long as the agent).
  absl::StatusOr<testing::HttpResult> scrape = testing::HttpGet(metrics, "/metrics");
  ASSERT_TRUE(scrape.ok());
  EXPECT_THAT(scrape->body, Not(HasSubstr("a2amesh.v1.AgentHost")));
  EXPECT_EQ(
      sample("a2amesh_http_request_duration_seconds_count{binding=\"rest\",method=\"GetTask\"}"),
      1);
}

TEST(A2aLimitsTest, OversizedMessagesNameTheLimit) {
  NodeOptions options = NodeHarness::TestOptions();
  options.max_message_bytes = 2000;
  options.max_parts = 3;
  NodeHarness harness(options);
  auto stub = harness.NewA2aStub();
  lf::a2a::v1::SendMessageRequest big = SendText(std::string(5000, 'x'));
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status = stub->SendMessage(A2aContext().get(), big, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("over the --max-message-bytes limit of 2000"));

  lf::a2a::v1::SendMessageRequest many = SendText("a");
  for (int i = 0; i < 3; ++i) many.mutable_message()->add_parts()->set_text("b");
  status = stub->SendMessage(A2aContext().get(), many, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("4 parts, over the --max-parts limit of 3"));
}

TEST(A2aLimitsTest, OpenStreamsAreLimited) {
  NodeOptions options = NodeHarness::TestOptions();
  options.max_open_streams = 1;
  NodeHarness harness(options);
  auto stub = harness.NewA2aStub();
  absl::Notification release;
  auto agent = harness.StartAgent({{"slow", Card("slow", {"slow"}), 4, [&](sdk::TaskContext& task) {
                                      task.SetWorking();
                                      release.WaitForNotificationWithTimeout(absl::Seconds(20));
                                    }}});
  auto first_context = A2aContext();
  auto first = stub->SendStreamingMessage(first_context.get(), ForSkill("slow", "x"));
  StreamResponse event;
  ASSERT_TRUE(first->Read(&event));  // the stream is open
  auto second_context = A2aContext();
  auto second = stub->SendStreamingMessage(second_context.get(), ForSkill("slow", "y"));
  grpc::Status status;
  ReadAll(*second, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("its --max-open-streams limit"));
  release.Notify();
  ReadAll(*first, &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(A2aDrainTest, ADrainingNodeRefusesNewTasksButFinishesRunningOnes) {
  NodeHarness harness;
  auto stub = harness.NewA2aStub();
  absl::Notification release;
  auto agent = harness.StartAgent({{"slow", Card("slow", {"slow"}), 4, [&](sdk::TaskContext& task) {
                                      release.WaitForNotificationWithTimeout(absl::Seconds(20));
                                      task.Complete("finished");
                                    }}});
  lf::a2a::v1::SendMessageRequest request = ForSkill("slow", "x");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), request, &response).ok());
  std::string id = response.task().id();
  std::thread drain([&] { EXPECT_EQ(harness.node().Drain(absl::Seconds(20)), 0u); });
  ASSERT_TRUE(WaitFor([&] {
    grpc::Status s = stub->SendMessage(A2aContext().get(), request, &response);
    return s.error_code() == grpc::StatusCode::UNAVAILABLE &&
           s.error_message().find("draining") != std::string::npos;
  }));
  // A node stopping (SIGTERM's drain) cannot be put back into routing.
  absl::Status undo = harness.node().StopDraining();
  EXPECT_EQ(undo.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(undo.message()), HasSubstr("is stopping: its drain cannot be undone"));
  EXPECT_EQ(stub->SendMessage(A2aContext().get(), request, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  release.Notify();
  drain.join();
  absl::StatusOr<Task> task = harness.node().tasks().Get(id);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
}

}  // namespace
}  // namespace a2amesh
