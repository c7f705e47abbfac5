// A node whose task store's disk fills up: new tasks are refused with an error
// that says so, what was stored stays readable, and once there is space again
// the node takes tasks as before. The store is on a small tmpfs the test
// mounts (it needs CAP_SYS_ADMIN: root in CI; skipped, with the reason,
// elsewhere).
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cards.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/temp_dir.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::NodeHarness;
using ::testing::HasSubstr;

class DiskFullE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_point_ = dir_.File("store");
    ASSERT_EQ(mkdir(mount_point_.c_str(), 0700), 0);
    if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=400k") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                   << "): the disk-full test needs CAP_SYS_ADMIN";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
  }

  testing::TempDir dir_;
  std::string mount_point_;
  bool mounted_ = false;
};

TEST_F(DiskFullE2eTest, NewTasksAreRefusedReadsWorkAndTheNodeRecoversWhenSpaceReturns) {
  std::vector<std::string> stored;
  {
    NodeOptions options = NodeHarness::TestOptions();
    options.ephemeral = false;
    options.data_dir = mount_point_ + "/data";
    NodeHarness harness(options);
    std::unique_ptr<sdk::Agent> agent =
        harness.StartAgent({{"echo", Card("echo", {"echo"}), 8, [](sdk::TaskContext& task) {
                               task.Complete("echo: " + task.text());
                             }}});
    ASSERT_NE(agent, nullptr);
    auto stub = harness.NewA2aStub();
    auto send = [&](const std::string& text, lf::a2a::v1::SendMessageResponse* response) {
      lf::a2a::v1::SendMessageRequest request = testing::SendText(text);
      (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value("echo");
      return stub->SendMessage(A2aContext().get(), request, response);
    };
    // 20 KB tasks until the 400 KB disk is full.
    grpc::Status refused;
    for (int i = 0; i < 100 && refused.ok(); ++i) {
      lf::a2a::v1::SendMessageResponse response;
      refused = send(std::string(20000, 'x'), &response);
      if (refused.ok()) stored.push_back(response.task().id());
    }
    ASSERT_FALSE(refused.ok()) << "the disk never filled";
    ASSERT_FALSE(stored.empty());
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(refused.error_message(), HasSubstr("the task could not be stored"));
    EXPECT_THAT(refused.error_message(), HasSubstr("disk is full"));

    // What was stored is still there.
    lf::a2a::v1::GetTaskRequest get;
    get.set_id(stored.front());
    lf::a2a::v1::Task task;
    ASSERT_TRUE(stub->GetTask(A2aContext().get(), get, &task).ok());
    EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

    // Space returns (the volume grows): tasks are taken again, no restart.
    ASSERT_EQ(mount(nullptr, mount_point_.c_str(), nullptr, MS_REMOUNT, "size=8m"), 0)
        << std::strerror(errno);
    lf::a2a::v1::SendMessageResponse after;
    grpc::Status status = send("after the disk grew", &after);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(after.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
    stored.push_back(after.task().id());
  }
  // And it all survives a restart.
  NodeOptions options = NodeHarness::TestOptions();
  options.ephemeral = false;
  options.data_dir = mount_point_ + "/data";
  NodeHarness restarted(options);
  auto stub = restarted.NewA2aStub();
  for (const std::string& id : stored) {
    lf::a2a::v1::GetTaskRequest get;
    get.set_id(id);
    lf::a2a::v1::Task task;
    EXPECT_TRUE(stub->GetTask(A2aContext().get(), get, &task).ok()) << id;
  }
}

}  // namespace
}  // namespace a2amesh
