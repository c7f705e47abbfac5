// AgentHost end to end: raw AgentHost streams and SDK agents against a real
// node on 127.0.0.1:0.

#include <memory>
#include <string>

#include "a2amesh/v1/agent_host.grpc.pb.h"
#include "catalog/agent_catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tasks/task_manager.h"
#include "testing/cards.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::BadRequestField;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::Task;
using ::testing::HasSubstr;

// One raw AgentHost stream, driven by the test.
class RawAgent {
 public:
  explicit RawAgent(const std::string& address)
      : stub_(v1::AgentHost::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        stream_(stub_->Connect(&context_)) {}

  bool Register(const std::string& id, lf::a2a::v1::AgentCard card, int max = 4,
                bool batches = false) {
    v1::AgentToNode message;
    message.mutable_register_()->set_batches(batches);
    auto* agent = message.mutable_register_()->add_agents();
    agent->set_agent_id(id);
    *agent->mutable_card() = std::move(card);
    agent->set_max_concurrency(max);
    return stream_->Write(message);
  }
  bool Send(const v1::AgentToNode& message) { return stream_->Write(message); }
  bool Update(const std::string& task_id, lf::a2a::v1::StreamResponse event) {
    v1::AgentToNode message;
    message.mutable_update()->set_task_id(task_id);
    *message.mutable_update()->mutable_event() = std::move(event);
    return stream_->Write(message);
  }
  bool Read(v1::NodeToAgent* message) { return stream_->Read(message); }
  grpc::Status Finish() {
    v1::NodeToAgent ignored;
    while (stream_->Read(&ignored)) {
    }
    return stream_->Finish();
  }
  void Cancel() { context_.TryCancel(); }

 private:
  std::unique_ptr<v1::AgentHost::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentToNode, v1::NodeToAgent>> stream_;
};

class AgentHostTest : public ::testing::Test {
 protected:
  std::string SubmitTo(const std::string& agent, const std::string& text = "x") {
    lf::a2a::v1::SendMessageRequest request = SendText(text);
    request.set_tenant(agent);
    request.mutable_configuration()->set_return_immediately(true);
    lf::a2a::v1::SendMessageResponse response;
    grpc::Status status = stub_->SendMessage(A2aContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.task().id();
  }
  Task Get(const std::string& id) {
    absl::StatusOr<Task> task = harness_.node().tasks().Get(id);
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? *task : Task();
  }

  NodeHarness harness_;
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub_ = harness_.NewA2aStub();
};

TEST_F(AgentHostTest, RegistersSeveralCardsOnOneStream) {
  RawAgent agent(harness_.address());
  v1::AgentToNode message;
  for (const char* id : {"one", "two"}) {
    auto* reg = message.mutable_register_()->add_agents();
    reg->set_agent_id(id);
    *reg->mutable_card() = Card(id, {id});
  }
  auto* derived = message.mutable_register_()->add_agents();
  *derived->mutable_card() = Card("Word Count", {"wordcount"});
  ASSERT_TRUE(agent.Send(message));
  v1::NodeToAgent reply;
  ASSERT_TRUE(agent.Read(&reply));
  ASSERT_TRUE(reply.has_registered()) << reply.DebugString();
  EXPECT_EQ(reply.registered().node_id(), "n1");
  ASSERT_EQ(reply.registered().agents_size(), 3);
  EXPECT_EQ(reply.registered().agents(2).agent_id(), "word-count");
  EXPECT_EQ(reply.registered().agents(0).max_concurrency(), 16u);  // the node's default
  EXPECT_GT(reply.registered().lease_ms(), 0u);
  EXPECT_EQ(harness_.node().catalog().size(), 3u);
}

TEST_F(AgentHostTest, AnInvalidCardIsRefusedWithTheFieldNamed) {
  RawAgent agent(harness_.address());
  lf::a2a::v1::AgentCard card = Card("bad", {"x"});
  card.mutable_skills(0)->clear_tags();
  ASSERT_TRUE(agent.Register("bad", card));
  grpc::Status status = agent.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("agents[0].card.skills[0].tags"));
  EXPECT_EQ(BadRequestField(status), "agents[0].card.skills[0].tags");
  EXPECT_EQ(harness_.node().catalog().size(), 0u);

  // The SDK reports the refusal and stops retrying.
  sdk::AgentOptions options;
  options.node = harness_.address();
  lf::a2a::v1::AgentCard nameless = Card("x", {"x"});
  nameless.clear_description();
  options.agents.push_back({"x", nameless, 1, [](sdk::TaskContext&) {}});
  auto sdk_agent = sdk::Agent::Start(options);
  ASSERT_TRUE(sdk_agent.ok());
  absl::Status registered = (*sdk_agent)->WaitUntilRegistered(absl::Seconds(10));
  EXPECT_EQ(registered.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(registered.message(), HasSubstr("agents[0].card.description: is required"));
}

TEST_F(AgentHostTest, RegistrationErrors) {
  {
    RawAgent agent(harness_.address());
    v1::AgentToNode beat;
    beat.mutable_heartbeat();
    ASSERT_TRUE(agent.Send(beat));
    v1::AgentToNode update;
    update.mutable_update()->set_task_id("n1~x");
    ASSERT_TRUE(agent.Send(update));
    grpc::Status status = agent.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(), HasSubstr("must be a RegisterRequest"));
  }
  {
    RawAgent agent(harness_.address());
    ASSERT_TRUE(agent.Register("Bad Id", Card("x", {"x"})));
    grpc::Status status = agent.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(BadRequestField(status), "agents[0].agent_id");
  }
  RawAgent holder(harness_.address());
  ASSERT_TRUE(holder.Register("taken", Card("taken", {"x"})));
  v1::NodeToAgent reply;
  ASSERT_TRUE(holder.Read(&reply));
  {
    RawAgent agent(harness_.address());
    ASSERT_TRUE(agent.Register("taken", Card("taken", {"x"})));
    grpc::Status status = agent.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_THAT(status.error_message(), HasSubstr("'taken'"));
  }
}

TEST(AgentHostLimitsTest, CardSizeAndAgentCountLimitsNameTheFlag) {
  NodeOptions options = NodeHarness::TestOptions();
  options.max_card_bytes = 500;
  options.max_agents = 1;
  NodeHarness harness(options);
  {
    RawAgent agent(harness.address());
    lf::a2a::v1::AgentCard card = Card("big", {"x"});
    card.set_description(std::string(1000, 'd'));
    ASSERT_TRUE(agent.Register("big", card));
    grpc::Status status = agent.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(), HasSubstr("over the --max-card-bytes limit of 500"));
  }
  RawAgent first(harness.address());
  ASSERT_TRUE(first.Register("first", Card("first", {"x"})));
  v1::NodeToAgent reply;
  ASSERT_TRUE(first.Read(&reply));
  RawAgent second(harness.address());
  ASSERT_TRUE(second.Register("second", Card("second", {"x"})));
  grpc::Status status = second.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("--max-agents limit of 1"));
}

// Registers `count` agents ("<prefix>-0", ...) on the stream.
bool RegisterMany(RawAgent& agent, const std::string& prefix, int count) {
  v1::AgentToNode message;
  for (int i = 0; i < count; ++i) {
    auto* reg = message.mutable_register_()->add_agents();
    reg->set_agent_id(absl::StrCat(prefix, "-", i));
    *reg->mutable_card() = Card(absl::StrCat(prefix, "-", i), {"x"});
  }
  return agent.Send(message);
}

TEST(AgentHostLimitsTest, OneStreamOrOneAddressCannotTakeEverySlot) {
  NodeOptions options = NodeHarness::TestOptions();
  options.max_agents_per_connection = 3;
  options.max_agents_per_address = 5;
  NodeHarness harness(options);
  {
    RawAgent greedy(harness.address());
    ASSERT_TRUE(RegisterMany(greedy, "greedy", 4));
    grpc::Status status = greedy.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(),
                HasSubstr("4 agents on one stream, over the --max-agents-per-connection limit "
                          "of 3"));
  }
  // Streams from one address: 3, then 2 more fit; a sixth does not.
  auto first = std::make_unique<RawAgent>(harness.address());
  ASSERT_TRUE(RegisterMany(*first, "a", 3));
  v1::NodeToAgent reply;
  ASSERT_TRUE(first->Read(&reply));
  RawAgent second(harness.address());
  ASSERT_TRUE(RegisterMany(second, "b", 2));
  ASSERT_TRUE(second.Read(&reply));
  ASSERT_TRUE(reply.has_registered());
  {
    RawAgent third(harness.address());
    ASSERT_TRUE(RegisterMany(third, "c", 1));
    grpc::Status status = third.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(), HasSubstr("has 5 agents registered; 1 more would pass the "
                                                  "--max-agents-per-address limit of 5"));
  }
  EXPECT_EQ(harness.node().catalog().size(), 5u);
  // When a stream ends, its agents no longer count.
  first->Cancel();
  first.reset();
  EXPECT_TRUE(WaitFor([&] { return harness.node().catalog().size() == 2; }));
  RawAgent fourth(harness.address());
  ASSERT_TRUE(RegisterMany(fourth, "d", 3));
  ASSERT_TRUE(fourth.Read(&reply));
  EXPECT_TRUE(reply.has_registered());
}

TEST_F(AgentHostTest, ADisconnectedAgentsTasksFailWithAReason) {
  auto agent = harness_.StartAgent({{"slow", Card("slow", {"slow"}), 4, [](sdk::TaskContext& task) {
                                       task.SetWorking();
                                       task.WaitForCancel(absl::Seconds(30));
                                     }}});
  std::string id = SubmitTo("slow");
  ASSERT_TRUE(WaitFor([&] { return Get(id).status().state() == lf::a2a::v1::TASK_STATE_WORKING; }));
  agent.reset();  // the process goes away
  EXPECT_TRUE(WaitFor([&] { return harness_.node().catalog().size() == 0; }));
  ASSERT_TRUE(WaitFor([&] { return Get(id).status().state() == lf::a2a::v1::TASK_STATE_FAILED; }));
  // The stream's end reads as a close or a cancel, depending on timing.
  std::string reason = Get(id).status().message().parts(0).text();
  EXPECT_THAT(reason, HasSubstr("agent slow disconnected (the "));
  EXPECT_THAT(reason, HasSubstr(") and did not come back within 300ms"));
}

TEST_F(AgentHostTest, AnAgentThatReconnectsWithinTheGraceGetsItsTaskBack) {
  NodeOptions options = NodeHarness::TestOptions();
  options.agent_grace = absl::Seconds(20);
  NodeHarness harness(options);
  auto stub = harness.NewA2aStub();
  std::string id;
  {
    RawAgent agent(harness.address());
    ASSERT_TRUE(agent.Register("worker", Card("worker", {"work"})));
    v1::NodeToAgent message;
    ASSERT_TRUE(agent.Read(&message));
    lf::a2a::v1::SendMessageRequest request = SendText("job");
    request.set_tenant("worker");
    request.mutable_configuration()->set_return_immediately(true);
    lf::a2a::v1::SendMessageResponse response;
    ASSERT_TRUE(stub->SendMessage(A2aContext().get(), request, &response).ok());
    id = response.task().id();
    ASSERT_TRUE(agent.Read(&message));
    ASSERT_TRUE(message.has_assignment());
    EXPECT_FALSE(message.assignment().resumed());
    agent.Cancel();  // the stream breaks mid-task
  }
  ASSERT_TRUE(WaitFor([&] { return harness.node().catalog().size() == 0; }));
  RawAgent again(harness.address());
  ASSERT_TRUE(again.Register("worker", Card("worker", {"work"})));
  v1::NodeToAgent message;
  ASSERT_TRUE(again.Read(&message));
  ASSERT_TRUE(message.has_registered());
  ASSERT_TRUE(again.Read(&message));
  ASSERT_TRUE(message.has_assignment());
  EXPECT_TRUE(message.assignment().resumed());
  EXPECT_EQ(message.assignment().task().id(), id);
  EXPECT_EQ(message.assignment().message().parts(0).text(), "job");
  ASSERT_TRUE(again.Update(id, testing::Status(lf::a2a::v1::TASK_STATE_COMPLETED, "done")));
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<Task> task = harness.node().tasks().Get(id);
    return task.ok() && task->status().state() == lf::a2a::v1::TASK_STATE_COMPLETED;
  }));
}

TEST_F(AgentHostTest, RefusedUpdatesComeBackAndKeepTheStreamOpen) {
  RawAgent agent(harness_.address());
  ASSERT_TRUE(agent.Register("raw", Card("raw", {"raw"})));
  v1::NodeToAgent message;
  ASSERT_TRUE(agent.Read(&message));
  std::string id = SubmitTo("raw");
  ASSERT_TRUE(agent.Read(&message));
  ASSERT_TRUE(message.has_assignment());

  ASSERT_TRUE(agent.Update(id, testing::Status(lf::a2a::v1::TASK_STATE_SUBMITTED)));
  ASSERT_TRUE(agent.Read(&message));
  ASSERT_TRUE(message.has_update_rejected()) << message.DebugString();
  EXPECT_EQ(message.update_rejected().task_id(), id);
  EXPECT_EQ(message.update_rejected().code(),
            static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_THAT(message.update_rejected().reason(),
              HasSubstr("cannot go back to submitted (only the node submits)"));

  ASSERT_TRUE(agent.Update("n1~other", testing::Status(lf::a2a::v1::TASK_STATE_WORKING)));
  ASSERT_TRUE(agent.Read(&message));
  EXPECT_EQ(message.update_rejected().code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));

  // Still usable.
  ASSERT_TRUE(agent.Update(id, testing::Status(lf::a2a::v1::TASK_STATE_COMPLETED)));
  ASSERT_TRUE(
      WaitFor([&] { return Get(id).status().state() == lf::a2a::v1::TASK_STATE_COMPLETED; }));
}

TEST_F(AgentHostTest, ABatchingAgentGetsEveryAssignmentAndMayAnswerInOneMessage) {
  RawAgent agent(harness_.address());
  ASSERT_TRUE(agent.Register("raw", Card("raw", {"raw"}), 64, /*batches=*/true));
  v1::NodeToAgent message;
  ASSERT_TRUE(agent.Read(&message));
  ASSERT_TRUE(message.registered().batches());  // the node reads batches
  // Many tasks: assignments that wait for the stream may come as batches.
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(SubmitTo("raw"));
  std::vector<std::string> assigned;
  int messages = 0;
  while (assigned.size() < ids.size() && agent.Read(&message)) {
    ++messages;
    if (message.has_batch()) {
      for (const v1::NodeToAgent& inner : message.batch().messages()) {
        ASSERT_TRUE(inner.has_assignment()) << inner.DebugString();
        assigned.push_back(inner.assignment().task().id());
      }
    } else if (message.has_assignment()) {
      assigned.push_back(message.assignment().task().id());
    }
  }
  EXPECT_THAT(assigned, ::testing::UnorderedElementsAreArray(ids));
  EXPECT_GE(messages, 1);

  // The agent answers every task in one message.
  v1::AgentToNode answers;
  for (const std::string& id : ids) {
    auto* update = answers.mutable_batch()->add_messages()->mutable_update();
    update->set_task_id(id);
    *update->mutable_event() = testing::Status(lf::a2a::v1::TASK_STATE_COMPLETED, "done");
  }
  ASSERT_TRUE(agent.Send(answers));
  for (const std::string& id : ids) {
    ASSERT_TRUE(
        WaitFor([&] { return Get(id).status().state() == lf::a2a::v1::TASK_STATE_COMPLETED; }));
  }

  // A batch may not nest, nor register: the stream is closed, naming why.
  v1::AgentToNode bad;
  bad.mutable_batch()->add_messages()->mutable_batch();
  ASSERT_TRUE(agent.Send(bad));
  grpc::Status status = agent.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("batch.messages"));
}

TEST_F(AgentHostTest, AnAgentThatDoesNotAskForBatchesGetsNone) {
  RawAgent agent(harness_.address());
  ASSERT_TRUE(agent.Register("plain", Card("plain", {"plain"}), 64));
  v1::NodeToAgent message;
  ASSERT_TRUE(agent.Read(&message));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(SubmitTo("plain"));
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(agent.Read(&message));
    EXPECT_TRUE(message.has_assignment()) << message.DebugString();
  }
}

TEST_F(AgentHostTest, AnInlineHandlerAnswersOnTheStreamsThreadAndCannotWait) {
  absl::Mutex mu;
  absl::Status delegated;
  bool waited = true;
  auto agent = harness_.StartAgent({{"inline", Card("inline", {"inline"}), 8,
                                     [&](sdk::TaskContext& task) {
                                       absl::StatusOr<Task> sub =
                                           task.Delegate(sdk::TextSubtask("inline", "x"));
                                       const absl::Time before = absl::Now();
                                       bool cancelled = task.WaitForCancel(absl::Seconds(30));
                                       absl::MutexLock lock(&mu);
                                       delegated = sub.status();
                                       waited =
                                           cancelled || absl::Now() - before > absl::Seconds(1);
                                       task.SendArtifact(sdk::TextArtifact("a", "a", task.text()));
                                       task.Complete("inline");
                                     },
                                     /*inline_handler=*/true}});
  lf::a2a::v1::SendMessageRequest request = SendText("hello");
  request.set_tenant("inline");
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status = stub_->SendMessage(A2aContext().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  ASSERT_EQ(response.task().artifacts_size(), 1);
  EXPECT_EQ(response.task().artifacts(0).parts(0).text(), "hello");
  absl::MutexLock lock(&mu);
  EXPECT_EQ(delegated.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(delegated.message()), HasSubstr("inline_handler"));
  EXPECT_FALSE(waited);  // WaitForCancel returned at once
}

TEST(AgentHostLeaseTest, ASilentAgentLosesItsLease) {
  NodeOptions options = NodeHarness::TestOptions();
  options.agent_lease = absl::Milliseconds(300);
  NodeHarness harness(options);
  RawAgent agent(harness.address());
  ASSERT_TRUE(agent.Register("quiet", Card("quiet", {"x"})));
  v1::NodeToAgent message;
  ASSERT_TRUE(agent.Read(&message));
  EXPECT_EQ(message.registered().lease_ms(), 300u);
  grpc::Status status = agent.Finish();  // says nothing until the node gives up
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("past its lease of 300ms"));
  EXPECT_EQ(harness.node().catalog().size(), 0u);
}

TEST(AgentHostLeaseTest, HeartbeatsKeepTheLease) {
  NodeOptions options = NodeHarness::TestOptions();
  options.agent_lease = absl::Milliseconds(300);
  NodeHarness harness(options);
  // The SDK heartbeats every lease/3; ten answered heartbeats span three leases.
  auto agent = harness.StartAgent({{"alive", Card("alive", {"x"}), 1, [](sdk::TaskContext&) {}}});
  ASSERT_TRUE(WaitFor([&] { return agent->heartbeats_acknowledged() >= 10; }));
  EXPECT_TRUE(agent->connected());
  EXPECT_EQ(agent->registrations(), 1);
  EXPECT_EQ(harness.node().catalog().size(), 1u);
}

}  // namespace
}  // namespace a2amesh
