// What an operator's tools see of a real meshd process, on loopback: the
// per-skill gauges an autoscaler reads move with the load, and an SSE stream
// behind a proxy stays open (keep-alive comments) and resumes after the last
// event it saw (Last-Event-ID). The agent is echo-agent with a long --delay,
// which keeps every task WORKING until it is cancelled.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::HttpConnection;
using ::a2amesh::testing::SseEvents;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(OperatorSignalsE2eTest, SkillGaugesFollowTheLoadAndSseStreamsKeepAliveAndResume) {
  testing::TempDir dir;
  E2eNode node(dir, "ops", {"--ephemeral", "--sse-keepalive", "300ms"});
  ASSERT_TRUE(node.Start());
  // echo-agent with a long delay holds each task WORKING until it is cancelled.
  Subprocess agent = node.StartAgent("echo-agent", {"--max-concurrency", "4", "--delay", "10m"});
  ASSERT_TRUE(node.WaitForAgent("echo"));
  auto sample = [&](const std::string& series) {
    return testing::ScrapeSample(node.metrics_address(), series).value_or(-1);
  };
  EXPECT_EQ(sample("a2amesh_skill_capacity{skill=\"echo\"}"), 4);
  EXPECT_EQ(sample("a2amesh_skill_running{skill=\"echo\"}"), 0);

  // Three tasks held: the gauge says so, and the capacity stays.
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    lf::a2a::v1::SendMessageRequest request = testing::SendText("hold on");
    (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value("echo");
    request.mutable_configuration()->set_return_immediately(true);
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status = stub->SendMessage(A2aContext().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.push_back(response.task().id());
  }
  EXPECT_TRUE(WaitFor([&] { return sample("a2amesh_skill_running{skill=\"echo\"}") == 3; }));
  EXPECT_EQ(sample("a2amesh_skill_capacity{skill=\"echo\"}"), 4);
  // Once the agent has marked them WORKING, none waits to start.
  EXPECT_TRUE(WaitFor([&] { return sample("a2amesh_skill_waiting{skill=\"echo\"}") == 0; }));

  auto subscribe = [&](const std::string& id, const std::string& last_event_id) {
    absl::StatusOr<std::unique_ptr<HttpConnection>> connection =
        testing::SubscribeOverRest(node.http_address(), id, last_event_id);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return *std::move(connection);
  };

  // A quiet stream: the Task with its id, then keep-alive comments.
  std::unique_ptr<HttpConnection> first = subscribe(ids[0], "");
  ASSERT_TRUE(first->ReadUntil([](const std::string& got) {
    return !SseEvents(got).empty() && absl::StrContains(got, ": keep-alive\n\n");
  })) << first->received();
  const testing::SseEvent task = SseEvents(first->received())[0];
  EXPECT_THAT(task.data, HasSubstr("TASK_STATE_WORKING"));
  ASSERT_GE(task.seq, 0) << first->received();
  first->Close();

  // Back after that event, nothing missed: the stream opens with no Task; the
  // cancel is the next event, with a later id, and ends it.
  std::unique_ptr<HttpConnection> resumed = subscribe(ids[0], task.id);
  ASSERT_TRUE(resumed->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "text/event-stream");
  })) << resumed->received();
  absl::StatusOr<testing::HttpResult> canceled = testing::A2aHttp(
      node.http_address(), "POST", absl::StrCat("/a2a/rest/tasks/", ids[0], ":cancel"), "");
  ASSERT_TRUE(canceled.ok());
  EXPECT_EQ(canceled->status, 200) << canceled->body;
  ASSERT_TRUE(resumed->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "TASK_STATE_CANCELED") && absl::StrContains(got, "0\r\n\r\n");
  })) << resumed->received();
  std::vector<testing::SseEvent> events = SseEvents(resumed->received());
  ASSERT_EQ(events.size(), 1u) << resumed->received();
  EXPECT_THAT(events[0].data, Not(HasSubstr("{\"task\":")));
  EXPECT_GT(events[0].seq, task.seq);

  // Back to a task that has ended: an ordinary error, not an empty stream.
  std::unique_ptr<HttpConnection> ended = subscribe(ids[0], events[0].id);
  ASSERT_TRUE(ended->ReadUntil([](const std::string& got) {
    return absl::StrContains(got, "\r\n\r\n{");
  })) << ended->received();
  EXPECT_THAT(ended->received(), HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(ended->received(), Not(HasSubstr("text/event-stream")));

  // An id from before the last event: the Task, which holds what was missed.
  const std::string epoch = task.id.substr(task.id.find('.') + 1);
  std::unique_ptr<HttpConnection> behind = subscribe(ids[1], absl::StrCat("0.", epoch));
  ASSERT_TRUE(behind->ReadUntil([](const std::string& got) { return !SseEvents(got).empty(); }))
      << behind->received();
  events = SseEvents(behind->received());
  EXPECT_THAT(events[0].data, HasSubstr("{\"task\":"));
  ASSERT_GT(events[0].seq, 0);
  const testing::SseEvent current = events[0];
  behind->Close();
  // The current id, but of another process (the node restarted since: what
  // it had sent may be gone): the Task again, not a resume.
  std::unique_ptr<HttpConnection> other = subscribe(ids[1], absl::StrCat(current.seq, ".0"));
  ASSERT_TRUE(other->ReadUntil([](const std::string& got) { return !SseEvents(got).empty(); }))
      << other->received();
  EXPECT_THAT(SseEvents(other->received())[0].data, HasSubstr("{\"task\":"));
  other->Close();

  // The load goes: so does the gauge.
  for (size_t i = 1; i < ids.size(); ++i) {
    lf::a2a::v1::CancelTaskRequest cancel;
    cancel.set_id(ids[i]);
    lf::a2a::v1::Task ended;
    ASSERT_TRUE(stub->CancelTask(A2aContext().get(), cancel, &ended).ok());
  }
  EXPECT_TRUE(WaitFor([&] { return sample("a2amesh_skill_running{skill=\"echo\"}") == 0; }));
}

}  // namespace
}  // namespace a2amesh
