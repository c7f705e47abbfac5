// A partition between the node that owns a task and the node running it:
// two real nodes whose every link passes through a TCP relay the test cuts
// (each node advertises its relay's address, so the other dials it), real
// gRPC, an SDK agent on the executing node.

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cards.h"
#include "testing/mesh_fixture.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/tcp_proxy.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::TcpProxy;
using ::a2amesh::testing::WaitFor;
using ::testing::HasSubstr;

class PartitionTest : public ::testing::Test {
 protected:
  NodeOptions Options(const std::string& id, const TcpProxy& relay, absl::Duration grace) {
    NodeOptions options = NodeHarness::TestOptions(id);
    options.advertise_address = relay.address();
    options.peer_heartbeat = absl::Milliseconds(100);
    options.peer_timeout = absl::Milliseconds(600);
    options.handoff_grace = grace;
    return options;
  }

  // Owner a, executing node b with agent "worker" (skill "work"), which
  // works until the test releases it, or until it is canceled.
  void Start(absl::Duration grace) {
    a_ = std::make_unique<NodeHarness>(Options("a", to_a_, grace));
    to_a_.SetTarget(a_->address());
    NodeOptions b = Options("b", to_b_, grace);
    b.peers = {to_a_.address()};
    b_ = std::make_unique<NodeHarness>(std::move(b));
    to_b_.SetTarget(b_->address());
    agent_ = b_->StartAgent({{"worker", Card("worker", {"work"}), 4, [&](sdk::TaskContext& task) {
                                ++started_;
                                task.SetWorking();
                                while (!release_) {
                                  if (task.WaitForCancel(absl::Milliseconds(20))) {
                                    ++canceled_;
                                    return;
                                  }
                                }
                                task.SendArtifact(sdk::TextArtifact("out", "out", "the work"));
                                task.Complete("done on b");
                                ++finished_;
                              }}});
    ASSERT_NE(agent_, nullptr);
    ASSERT_TRUE(
        WaitFor([&] { return a_->node().remote_catalog().Find("b", "worker") != nullptr; }));
  }

  // A task for "work" sent to a, once b runs it.
  std::string SendAndWaitUntilRunning() {
    lf::a2a::v1::SendMessageRequest request = testing::ForSkill("work", "go");
    request.mutable_configuration()->set_return_immediately(true);
    lf::a2a::v1::SendMessageResponse response;
    EXPECT_TRUE(a_->NewA2aStub()->SendMessage(A2aContext().get(), request, &response).ok());
    EXPECT_TRUE(WaitFor([&] { return started_.load() == 1; }));
    const std::string id = response.task().id();
    EXPECT_TRUE(WaitFor([&] { return StateOnA(id) == lf::a2a::v1::TASK_STATE_WORKING; }));
    return id;
  }

  void Partition() {
    to_a_.Cut();
    to_b_.Cut();
  }
  void Heal() {
    to_a_.Heal();
    to_b_.Heal();
  }

  lf::a2a::v1::TaskState StateOnA(const std::string& id, std::string* text = nullptr) {
    absl::StatusOr<lf::a2a::v1::Task> task = a_->node().tasks().Get(id);
    if (!task.ok()) return lf::a2a::v1::TASK_STATE_UNSPECIFIED;
    if (text != nullptr && task->status().message().parts_size() > 0) {
      *text = task->status().message().parts(0).text();
    }
    return task->status().state();
  }

  TcpProxy to_a_;
  TcpProxy to_b_;
  std::unique_ptr<NodeHarness> a_;
  std::unique_ptr<NodeHarness> b_;
  std::unique_ptr<sdk::Agent> agent_;
  std::atomic<int> started_{0};
  std::atomic<int> canceled_{0};
  std::atomic<int> finished_{0};
  std::atomic<bool> release_{false};
};

TEST_F(PartitionTest, APartitionShorterThanTheGraceCompletesTheTask) {
  Start(absl::Seconds(30));
  const std::string id = SendAndWaitUntilRunning();
  Partition();
  // a sees b gone, and keeps the task working.
  ASSERT_TRUE(WaitFor([&] { return a_->node().peers().peers_up() == 0; }));
  EXPECT_EQ(StateOnA(id), lf::a2a::v1::TASK_STATE_WORKING);
  // The agent finishes while the nodes cannot talk: its events wait on b.
  release_ = true;
  ASSERT_TRUE(WaitFor([&] { return finished_.load() == 1; }));
  EXPECT_EQ(StateOnA(id), lf::a2a::v1::TASK_STATE_WORKING);
  Heal();
  // a resumes the turn on b from the events it lacks.
  std::string text;
  ASSERT_TRUE(WaitFor([&] { return StateOnA(id, &text) == lf::a2a::v1::TASK_STATE_COMPLETED; },
                      absl::Seconds(20)))
      << lf::a2a::v1::TaskState_Name(StateOnA(id, &text)) << ": " << text;
  EXPECT_EQ(text, "done on b");
  absl::StatusOr<lf::a2a::v1::Task> task = a_->node().tasks().Get(id);
  ASSERT_TRUE(task.ok());
  ASSERT_EQ(task->artifacts_size(), 1);
  EXPECT_EQ(task->artifacts(0).parts(0).text(), "the work");
  EXPECT_EQ(canceled_.load(), 0);
}

TEST_F(PartitionTest, APartitionLongerThanTheGraceFailsTheTaskAndCancelsTheRemoteTurn) {
  Start(absl::Seconds(1));
  const std::string id = SendAndWaitUntilRunning();
  Partition();
  std::string text;
  ASSERT_TRUE(WaitFor([&] { return StateOnA(id, &text) == lf::a2a::v1::TASK_STATE_FAILED; },
                      absl::Seconds(20)));
  EXPECT_THAT(text, HasSubstr("node b was unreachable for 1s while running the task"));
  // b gives the owner as long (and a little more), then cancels the turn.
  EXPECT_TRUE(WaitFor([&] { return canceled_.load() == 1; }, absl::Seconds(20)));
  Heal();
}

TEST_F(PartitionTest, WithoutAGraceABrokenLinkFailsTheTaskAtOnce) {
  Start(absl::ZeroDuration());
  const std::string id = SendAndWaitUntilRunning();
  Partition();
  std::string text;
  ASSERT_TRUE(WaitFor([&] { return StateOnA(id, &text) == lf::a2a::v1::TASK_STATE_FAILED; }));
  EXPECT_THAT(text, HasSubstr("node b went away while running the task"));
  EXPECT_TRUE(WaitFor([&] { return canceled_.load() == 1; }));
  Heal();
}

}  // namespace
}  // namespace a2amesh
