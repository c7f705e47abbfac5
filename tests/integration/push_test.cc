// Push notifications end to end, in one process: a real node, SDK agents over
// real AgentHost streams, and a webhook receiver that is a real HTTP server on
// loopback (so the node runs with --push-allow-private-targets).

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "store/sqlite_task_store.h"
#include "testing/cards.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::ErrorReason;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::TaskPushNotificationConfig;
using ::testing::HasSubstr;

// A webhook: records every POST (answering 204), or fails as told.
class Receiver {
 public:
  struct Post {
    StreamResponse event;
    std::string token;
    std::string authorization;
    std::string content_type;
    std::string traceparent;
    std::string tracestate;
  };

  Receiver() {
    auto server =
        http::Server::Start("127.0.0.1:0", http::ServerOptions(),
                            [this](const http::Request& request) { return Handle(request); });
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_->port(), "/hook"); }
  // Answers 503 to the next `failures` POSTs.
  void FailNext(int failures) {
    absl::MutexLock lock(&mu_);
    failures_ = failures;
  }
  int attempts() const {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }
  std::vector<Post> posts() const {
    absl::MutexLock lock(&mu_);
    return posts_;
  }
  // Waits for an event whose task state is `state`.
  bool WaitForState(lf::a2a::v1::TaskState state) const {
    return WaitFor([&] {
      for (const Post& post : posts()) {
        if (post.event.status_update().status().state() == state ||
            post.event.task().status().state() == state) {
          return true;
        }
      }
      return false;
    });
  }

 private:
  http::Response Handle(const http::Request& request) {
    absl::MutexLock lock(&mu_);
    ++attempts_;
    http::Response response;
    if (failures_ > 0) {
      --failures_;
      response.status = 503;
      return response;
    }
    Post post;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(request.body, &post.event).ok())
        << request.body;
    auto header = [&](const char* name) {
      const std::string* value = request.Header(name);
      return value == nullptr ? std::string() : *value;
    };
    post.token = header("x-a2a-notification-token");
    post.authorization = header("authorization");
    post.content_type = header("content-type");
    post.traceparent = header("traceparent");
    post.tracestate = header("tracestate");
    posts_.push_back(std::move(post));
    response.status = 204;
    return response;
  }

  mutable absl::Mutex mu_;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Post> posts_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<http::Server> server_;
};

NodeOptions PushOptions(const testing::TempDir* dir = nullptr) {
  NodeOptions options = NodeHarness::TestOptions();
  options.push_allow_private_targets = true;
  options.push_initial_backoff = absl::Milliseconds(20);
  if (dir != nullptr) {
    options.ephemeral = false;
    options.data_dir = dir->File("data");
  }
  return options;
}

std::vector<sdk::AgentSpec> Agents(std::atomic<bool>* release = nullptr) {
  return {
      {"steps", Card("steps", {"steps"}), 8,
       [](sdk::TaskContext& task) {
         task.SetWorking();
         for (int i = 0; i < 3; ++i) {
           task.SendArtifact(sdk::TextArtifact("out", "out", absl::StrCat("part ", i)), i > 0,
                             i == 2);
         }
         task.Complete("done");
       }},
      {"ask", Card("ask", {"ask"}), 8,
       [](sdk::TaskContext& task) {
         if (task.task().history_size() <= 1) {
           task.RequireInput("which color?");
           return;
         }
         task.Complete("you chose " + task.text());
       }},
      {"slow", Card("slow", {"slow"}), 8,
       [](sdk::TaskContext& task) {
         task.SetWorking();
         if (!task.WaitForCancel(absl::Seconds(30))) task.Complete("slow done");
       }},
  };
}

lf::a2a::v1::SendMessageRequest WithPush(const std::string& skill, const std::string& url,
                                         const std::string& token) {
  lf::a2a::v1::SendMessageRequest request = SendText("go");
  (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(skill);
  auto* push = request.mutable_configuration()->mutable_task_push_notification_config();
  push->set_url(url);
  push->set_token(token);
  push->mutable_authentication()->set_scheme("Bearer");
  push->mutable_authentication()->set_credentials("s3cret");
  request.mutable_configuration()->set_return_immediately(true);
  return request;
}

std::string Describe(const StreamResponse& event) {
  if (event.has_task()) return absl::StrCat("task ", event.task().status().state());
  if (event.has_status_update()) {
    return absl::StrCat("status ", event.status_update().status().state());
  }
  if (event.has_artifact_update()) {
    return absl::StrCat("artifact ", event.artifact_update().artifact().parts(0).text());
  }
  return "other";
}

// A node that may push to loopback, its agents, a webhook and a client.
class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = harness_.StartAgent(Agents());
    ASSERT_NE(agent_, nullptr);
  }

  NodeHarness harness_{PushOptions()};
  std::unique_ptr<sdk::Agent> agent_;
  Receiver receiver_;
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub_ = harness_.NewA2aStub();
};

TEST_F(PushTest, EachPostCarriesTheTasksTraceContext) {
  // Tracing is off on this node: the caller's context passes through, to the
  // task and from it to each POST (docs/tracing.md).
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto context = A2aContext();
  context->AddMetadata("traceparent", traceparent);
  context->AddMetadata("tracestate", "vendor=opaque");
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status =
      stub_->SendMessage(context.get(), WithPush("steps", receiver_.url(), "tok-t"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(receiver_.WaitForState(lf::a2a::v1::TASK_STATE_COMPLETED));
  ASSERT_FALSE(receiver_.posts().empty());
  for (const Receiver::Post& post : receiver_.posts()) {
    EXPECT_EQ(post.traceparent, traceparent) << Describe(post.event);
    EXPECT_EQ(post.tracestate, "vendor=opaque") << Describe(post.event);
  }

  // A task sent without one: its POSTs carry none.
  ASSERT_TRUE(
      stub_->SendMessage(A2aContext().get(), WithPush("steps", receiver_.url(), "tok-u"), &response)
          .ok());
  ASSERT_TRUE(WaitFor([&] {
    int ended = 0;
    for (const Receiver::Post& post : receiver_.posts()) {
      ended += post.token == "tok-u" &&
               post.event.status_update().status().state() == lf::a2a::v1::TASK_STATE_COMPLETED;
    }
    return ended == 1;
  }));
  for (const Receiver::Post& post : receiver_.posts()) {
    if (post.token == "tok-u") {
      EXPECT_EQ(post.traceparent, "") << Describe(post.event);
    }
  }
}

TEST_F(PushTest, TheWebhookGetsEveryEventOfTheTaskInOrderWithItsCredentials) {
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status = stub_->SendMessage(A2aContext().get(),
                                           WithPush("steps", receiver_.url(), "tok-1"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string id = response.task().id();
  ASSERT_TRUE(receiver_.WaitForState(lf::a2a::v1::TASK_STATE_COMPLETED));

  std::vector<std::string> seen;
  for (const Receiver::Post& post : receiver_.posts()) {
    seen.push_back(Describe(post.event));
    EXPECT_EQ(post.token, "tok-1");
    EXPECT_EQ(post.authorization, "Bearer s3cret");
    EXPECT_EQ(post.content_type, "application/a2a+json");
    if (post.event.has_status_update()) {
      EXPECT_EQ(post.event.status_update().task_id(), id);
    }
  }
  EXPECT_THAT(seen,
              ::testing::ElementsAre(absl::StrCat("task ", lf::a2a::v1::TASK_STATE_SUBMITTED),
                                     absl::StrCat("status ", lf::a2a::v1::TASK_STATE_WORKING),
                                     "artifact part 0", "artifact part 1", "artifact part 2",
                                     absl::StrCat("status ", lf::a2a::v1::TASK_STATE_COMPLETED)));

  // The config is the task's: it can be read back.
  lf::a2a::v1::ListTaskPushNotificationConfigsRequest list;
  list.set_task_id(id);
  lf::a2a::v1::ListTaskPushNotificationConfigsResponse configs;
  ASSERT_TRUE(stub_->ListTaskPushNotificationConfigs(A2aContext().get(), list, &configs).ok());
  ASSERT_EQ(configs.configs_size(), 1);
  EXPECT_EQ(configs.configs(0).url(), receiver_.url());
  EXPECT_FALSE(configs.configs(0).id().empty());
}

TEST_F(PushTest, AReceiverThatFailsTwiceStillGetsEveryEventAfterRetries) {
  receiver_.FailNext(2);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(
      stub_->SendMessage(A2aContext().get(), WithPush("steps", receiver_.url(), "t"), &response)
          .ok());
  ASSERT_TRUE(receiver_.WaitForState(lf::a2a::v1::TASK_STATE_COMPLETED));
  std::vector<std::string> seen;
  for (const Receiver::Post& post : receiver_.posts()) seen.push_back(Describe(post.event));
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen.front(), absl::StrCat("task ", lf::a2a::v1::TASK_STATE_SUBMITTED));
  EXPECT_EQ(seen.back(), absl::StrCat("status ", lf::a2a::v1::TASK_STATE_COMPLETED));
  EXPECT_EQ(receiver_.attempts(), 8);  // 6 events, the first tried three times

  // The receiver holds the last event a moment before the node has read its
  // answer and counted the delivery: wait for the count, not just the event.
  absl::StatusOr<testing::HttpResult> metrics;
  auto scrape = [&] {
    metrics =
        testing::HttpGet(absl::StrCat("127.0.0.1:", harness_.node().metrics_port()), "/metrics");
    return metrics.ok() &&
           absl::StrContains(metrics->body,
                             "a2amesh_push_notifications_total{outcome=\"delivered\"} 6") &&
           absl::StrContains(metrics->body, "a2amesh_push_queued 0");
  };
  EXPECT_TRUE(testing::WaitFor(scrape)) << metrics.value_or(testing::HttpResult()).body;
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("a2amesh_push_notifications_total{outcome=\"retried\"} 2"));
  EXPECT_THAT(metrics->body, HasSubstr("a2amesh_push_queued 0"));
}

TEST_F(PushTest, AWatchLastsThroughInputRequiredUntilTheTaskEnds) {
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(
      stub_->SendMessage(A2aContext().get(), WithPush("ask", receiver_.url(), "t"), &response)
          .ok());
  ASSERT_TRUE(receiver_.WaitForState(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED));
  lf::a2a::v1::SendMessageRequest answer = SendText("blue");
  answer.mutable_message()->set_task_id(response.task().id());
  lf::a2a::v1::SendMessageResponse answered;
  ASSERT_TRUE(stub_->SendMessage(A2aContext().get(), answer, &answered).ok());
  ASSERT_TRUE(receiver_.WaitForState(lf::a2a::v1::TASK_STATE_COMPLETED));
  // A push config comes with the message that creates the task, not later ones.
  lf::a2a::v1::SendMessageRequest late = WithPush("ask", receiver_.url(), "t");
  late.mutable_message()->set_task_id(response.task().id());
  grpc::Status status = stub_->SendMessage(A2aContext().get(), late, &answered);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("CreateTaskPushNotificationConfig"));
}

TEST_F(PushTest, ConfigRpcsCreateGetListAndDeleteAndRefuseWhatIsWrong) {
  lf::a2a::v1::SendMessageRequest slow = SendText("wait");
  (*slow.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value("slow");
  slow.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse started;
  ASSERT_TRUE(stub_->SendMessage(A2aContext().get(), slow, &started).ok());
  const std::string id = started.task().id();

  TaskPushNotificationConfig config;
  config.set_task_id(id);
  config.set_id("hook-a");
  config.set_url(receiver_.url());
  TaskPushNotificationConfig created;
  ASSERT_TRUE(stub_->CreateTaskPushNotificationConfig(A2aContext().get(), config, &created).ok());
  EXPECT_EQ(created.id(), "hook-a");
  // The first push is the task as it stands.
  ASSERT_TRUE(receiver_.WaitForState(lf::a2a::v1::TASK_STATE_WORKING));
  EXPECT_TRUE(receiver_.posts().front().event.has_task());

  lf::a2a::v1::GetTaskPushNotificationConfigRequest get;
  get.set_task_id(id);
  get.set_id("hook-a");
  TaskPushNotificationConfig got;
  ASSERT_TRUE(stub_->GetTaskPushNotificationConfig(A2aContext().get(), get, &got).ok());
  EXPECT_EQ(got.url(), receiver_.url());

  lf::a2a::v1::DeleteTaskPushNotificationConfigRequest remove;
  remove.set_task_id(id);
  remove.set_id("hook-a");
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->DeleteTaskPushNotificationConfig(A2aContext().get(), remove, &empty).ok());
  grpc::Status status = stub_->GetTaskPushNotificationConfig(A2aContext().get(), get, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no push notification config 'hook-a'"));

  // Deleted: the cancel that ends the task is not pushed.
  const size_t before = receiver_.posts().size();
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  lf::a2a::v1::Task canceled;
  ASSERT_TRUE(stub_->CancelTask(A2aContext().get(), cancel, &canceled).ok());

  TaskPushNotificationConfig bad = config;
  bad.set_url("ftp://example.com/");
  status = stub_->CreateTaskPushNotificationConfig(A2aContext().get(), bad, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("url: 'ftp://example.com/' is not an http"));
  bad = config;
  bad.set_task_id("n1~no-such-task");
  status = stub_->CreateTaskPushNotificationConfig(A2aContext().get(), bad, &created);
  EXPECT_EQ(ErrorReason(status), "TASK_NOT_FOUND");
  // The task has ended: the config is taken (as the spec has it), and there
  // is nothing more to push.
  status = stub_->CreateTaskPushNotificationConfig(A2aContext().get(), config, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created.id(), config.id());
  get.set_id(config.id());
  EXPECT_TRUE(stub_->GetTaskPushNotificationConfig(A2aContext().get(), get, &got).ok());
  EXPECT_EQ(receiver_.posts().size(), before);
}

TEST(PushPolicyTest, PrivateTargetsAreRefusedUnlessTheNodeAllowsThem) {
  NodeHarness harness;  // default options: private targets refused
  std::unique_ptr<sdk::Agent> agent = harness.StartAgent(Agents());
  ASSERT_NE(agent, nullptr);
  auto stub = harness.NewA2aStub();
  for (const char* url : {"http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data",
                          "http://[::1]/x", "http://localhost/x", "http://10.0.0.8/x"}) {
    SCOPED_TRACE(url);
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status =
        stub->SendMessage(A2aContext().get(), WithPush("steps", url, "t"), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("loopback, private or link-local"));
  }
}

TEST(PushPolicyTest, AFullQueueDropsAndCountsWhatDoesNotFit) {
  // A webhook that takes the POST and never answers: nothing leaves the queue.
  absl::Mutex mu;
  std::vector<std::shared_ptr<http::Exchange>> held;
  auto webhook = http::Server::Start("127.0.0.1:0", http::ServerOptions(),
                                     [&](std::shared_ptr<http::Exchange> exchange) {
                                       absl::MutexLock lock(&mu);
                                       held.push_back(std::move(exchange));
                                     });
  ASSERT_TRUE(webhook.ok());
  NodeOptions options = PushOptions();
  options.push_max_queued = 2;
  NodeHarness harness(options);
  std::unique_ptr<sdk::Agent> agent = harness.StartAgent(Agents());
  ASSERT_NE(agent, nullptr);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(harness.NewA2aStub()
                  ->SendMessage(
                      A2aContext().get(),
                      WithPush("steps",
                               absl::StrCat("http://127.0.0.1:", (*webhook)->port(), "/hook"), "t"),
                      &response)
                  .ok());
  // Six events: two fit (the first is being POSTed), four are dropped.
  const std::string metrics_address = absl::StrCat("127.0.0.1:", harness.node().metrics_port());
  auto scrape = [&] {
    absl::StatusOr<testing::HttpResult> metrics = testing::HttpGet(metrics_address, "/metrics");
    return metrics.ok() ? metrics->body : std::string();
  };
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(scrape(), "a2amesh_push_notifications_total{outcome=\"dropped\"} 4");
  })) << scrape();
  EXPECT_THAT(scrape(), HasSubstr("a2amesh_push_queued 2"));
  // The first POST reaches the webhook (perhaps after the drops were
  // counted), and only it: deliveries go one at a time, in order.
  auto held_count = [&] {
    absl::MutexLock lock(&mu);
    return held.size();
  };
  EXPECT_TRUE(WaitFor([&] { return held_count() >= 1; }));
  EXPECT_EQ(held_count(), 1u);
}

TEST(PushRestartTest, ConfigsSurviveARestartAndTheirTasksAreWatchedAgain) {
  testing::TempDir dir;
  Receiver receiver;
  std::string id;
  {
    NodeHarness harness(PushOptions(&dir));
    std::unique_ptr<sdk::Agent> agent = harness.StartAgent(Agents());
    ASSERT_NE(agent, nullptr);
    auto stub = harness.NewA2aStub();
    lf::a2a::v1::SendMessageResponse response;
    ASSERT_TRUE(
        stub->SendMessage(A2aContext().get(), WithPush("slow", receiver.url(), "t"), &response)
            .ok());
    id = response.task().id();
    ASSERT_TRUE(receiver.WaitForState(lf::a2a::v1::TASK_STATE_WORKING));
  }
  NodeHarness harness(PushOptions(&dir));
  auto stub = harness.NewA2aStub();
  lf::a2a::v1::ListTaskPushNotificationConfigsRequest list;
  list.set_task_id(id);
  lf::a2a::v1::ListTaskPushNotificationConfigsResponse configs;
  ASSERT_TRUE(stub->ListTaskPushNotificationConfigs(A2aContext().get(), list, &configs).ok());
  ASSERT_EQ(configs.configs_size(), 1);
  EXPECT_EQ(configs.configs(0).token(), "t");
  // Watched again: the cancel that ends it is pushed.
  lf::a2a::v1::CancelTaskRequest cancel;
  cancel.set_id(id);
  lf::a2a::v1::Task canceled;
  ASSERT_TRUE(harness.NewA2aStub()->CancelTask(A2aContext().get(), cancel, &canceled).ok());
  EXPECT_TRUE(receiver.WaitForState(lf::a2a::v1::TASK_STATE_CANCELED));
}

TEST(PushRestartTest, AnEndNotDeliveredBeforeAStopIsDeliveredAfterTheNextStart) {
  testing::TempDir dir;
  Receiver receiver;
  receiver.FailNext(1 << 20);  // the webhook is down while the first node runs
  std::string id;
  {
    NodeHarness harness(PushOptions(&dir));
    std::unique_ptr<sdk::Agent> agent = harness.StartAgent(Agents());
    ASSERT_NE(agent, nullptr);
    auto stub = harness.NewA2aStub();
    lf::a2a::v1::SendMessageResponse response;
    ASSERT_TRUE(
        stub->SendMessage(A2aContext().get(), WithPush("steps", receiver.url(), "t"), &response)
            .ok());
    id = response.task().id();
    // The task ends; its events wait in the queue behind the first, retried.
    ASSERT_TRUE(WaitFor([&] {
      lf::a2a::v1::GetTaskRequest get;
      get.set_id(id);
      lf::a2a::v1::Task task;
      return stub->GetTask(A2aContext().get(), get, &task).ok() &&
             task.status().state() == lf::a2a::v1::TASK_STATE_COMPLETED;
    }));
    ASSERT_TRUE(WaitFor([&] { return receiver.attempts() >= 2; }));
    EXPECT_TRUE(receiver.posts().empty());
  }
  receiver.FailNext(0);
  {
    // No agent needed: the task has ended; what the webhook missed is its end.
    NodeHarness harness(PushOptions(&dir));
    ASSERT_TRUE(receiver.WaitForState(lf::a2a::v1::TASK_STATE_COMPLETED));
    std::vector<Receiver::Post> posts = receiver.posts();
    ASSERT_EQ(posts.size(), 1u);
    const lf::a2a::v1::Task& task = posts[0].event.task();
    EXPECT_EQ(task.id(), id);
    ASSERT_EQ(task.artifacts_size(), 1);
    const auto& parts = task.artifacts(0).parts();
    ASSERT_EQ(parts.size(), 3);
    EXPECT_EQ(parts[2].text(), "part 2");
    EXPECT_EQ(posts[0].token, "t");
    EXPECT_EQ(posts[0].authorization, "Bearer s3cret");
  }
  // Delivered, the config is settled: a third start has nothing to send.
  absl::StatusOr<std::unique_ptr<store::SqliteTaskStore>> store =
      store::SqliteTaskStore::Open({dir.File("data") + "/tasks.db", true});
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::vector<TaskPushNotificationConfig>> unsettled = (*store)->ListPushConfigs("");
  ASSERT_TRUE(unsettled.ok()) << unsettled.status();
  EXPECT_TRUE(unsettled->empty());
  EXPECT_EQ(receiver.posts().size(), 1u);
}

}  // namespace
}  // namespace a2amesh
