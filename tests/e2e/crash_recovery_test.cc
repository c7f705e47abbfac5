// Durability, proven by crashing: a real meshd process with its SQLite store is
// killed with SIGKILL while 100 tasks are in flight, then restarted on the same
// data directory. Every task id any client received must come back from
// GetTask, finished (completed, or failed with a reason): none lost, none
// duplicated.

#include <signal.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/cards.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::BinaryPath;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using lf::a2a::v1::Task;

constexpr int kTasks = 100;

class CrashRecoveryTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- meshd log ---\n" << testing::ReadFileOrEmpty(dir_.File("meshd.log"));
    }
  }

  Subprocess StartMeshd(const std::string& ready_file) {
    std::remove(ready_file.c_str());
    absl::StatusOr<Subprocess> meshd = Subprocess::Start(
        {BinaryPath("meshd"), "--node-id", "crash", "--grpc-address", address_, "--http-address",
         "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--data-dir", dir_.File("data"),
         "--ready-file", ready_file, "--recovery-grace", "30s", "--agent-lease", "3s"},
        dir_.File("meshd.log"));
    EXPECT_TRUE(meshd.ok()) << meshd.status();
    absl::StatusOr<std::string> ready = testing::WaitForReadyFile(ready_file, absl::Seconds(20));
    EXPECT_TRUE(ready.ok()) << ready.status() << "\n"
                            << testing::ReadFileOrEmpty(dir_.File("meshd.log"));
    return std::move(meshd).value();
  }

  testing::TempDir dir_;
  std::string address_ = absl::StrCat("127.0.0.1:", testing::PickFreePort());
};

TEST_F(CrashRecoveryTest, NoAcceptedTaskIsLostOrDuplicatedAcrossSigkill) {
  Subprocess meshd = StartMeshd(dir_.File("ready1.json"));

  // The agent runs in this process and outlives the node: each task works for
  // 0.3-1 s, so all of them are in flight when the node dies.
  std::atomic<int> executions{0};
  sdk::AgentOptions options;
  options.node = address_;
  options.min_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(300);
  options.agents.push_back(
      {"work", Card("work", {"work"}), 200, [&](sdk::TaskContext& task) {
         executions.fetch_add(1);
         task.SetWorking();
         thread_local absl::BitGen gen;
         if (task.WaitForCancel(absl::Milliseconds(absl::Uniform(gen, 300, 1000)))) {
           return;
         }
         task.SendArtifact(sdk::TextArtifact("result", "result", "done: " + task.text()));
         task.Complete();
       }});
  absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(options);
  ASSERT_TRUE(agent.ok());
  ASSERT_TRUE((*agent)->WaitUntilRegistered(absl::Seconds(20)).ok());

  // Clients submit from four threads; every id any of them receives counts.
  absl::Mutex mu;
  std::vector<std::string> received;
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop.load(); ++i) {
        lf::a2a::v1::SendMessageRequest request = SendText(absl::StrCat("job ", c, "/", i));
        request.set_tenant("work");
        request.mutable_configuration()->set_return_immediately(true);
        lf::a2a::v1::SendMessageResponse response;
        grpc::Status status = stub->SendMessage(A2aContext().get(), request, &response);
        if (!status.ok()) {
          refused.fetch_add(1);
          continue;  // the node is gone: keep trying until told to stop
        }
        absl::MutexLock lock(&mu);
        received.push_back(response.task().id());
      }
    });
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return received.size() >= kTasks;
      },
      absl::Seconds(30)));
  meshd.Signal(SIGKILL);
  ASSERT_EQ(*meshd.Wait(absl::Seconds(10)), 128 + SIGKILL);
  // Let the clients run into the dead node for a moment, then stop them.
  ASSERT_TRUE(WaitFor([&] { return refused.load() >= 4; }, absl::Seconds(30)));
  stop = true;
  for (std::thread& t : clients) t.join();

  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu);
    ids = received;
  }
  ASSERT_GE(ids.size(), static_cast<size_t>(kTasks));
  std::set<std::string> unique(ids.begin(), ids.end());
  ASSERT_EQ(unique.size(), ids.size()) << "the node handed out a task id twice";

  Subprocess restarted = StartMeshd(dir_.File("ready2.json"));
  ASSERT_TRUE(WaitFor([&] { return (*agent)->registrations() >= 2; }, absl::Seconds(30)));

  // Every received id comes back and reaches a terminal state.
  std::map<std::string, Task> final_tasks;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const std::string& id : ids) {
          if (final_tasks.count(id) > 0) continue;
          lf::a2a::v1::GetTaskRequest get;
          get.set_id(id);
          Task task;
          grpc::Status status = stub->GetTask(A2aContext().get(), get, &task);
          EXPECT_NE(status.error_code(), grpc::StatusCode::NOT_FOUND) << "lost: " << id;
          if (!status.ok()) return false;
          if (IsTerminalState(task.status().state())) final_tasks[id] = task;
        }
        return final_tasks.size() == ids.size();
      },
      absl::Seconds(60)));

  int completed = 0;
  for (const auto& [id, task] : final_tasks) {
    if (task.status().state() == lf::a2a::v1::TASK_STATE_COMPLETED) {
      ++completed;
      ASSERT_EQ(task.artifacts_size(), 1) << id;
    } else {
      ASSERT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_FAILED) << id;
      ASSERT_GT(task.status().message().parts_size(), 0) << id << " failed without a reason";
      EXPECT_FALSE(task.status().message().parts(0).text().empty());
    }
  }
  // The agent survived, so everything completes, some of it re-run after the
  // restart (resumed tasks run at least once).
  EXPECT_EQ(completed, static_cast<int>(ids.size()));
  EXPECT_GE(executions.load(), static_cast<int>(ids.size()));

  // No duplicates in the store either: each received id is listed exactly once.
  // The store may hold a few tasks no client heard of (accepted as the node
  // died); list once all of them have finished, so that the order is stable.
  ASSERT_TRUE(WaitFor(
      [&] {
        lf::a2a::v1::ListTasksRequest all;
        lf::a2a::v1::ListTasksRequest done;
        done.set_status(lf::a2a::v1::TASK_STATE_COMPLETED);
        lf::a2a::v1::ListTasksResponse all_page;
        lf::a2a::v1::ListTasksResponse done_page;
        return stub->ListTasks(A2aContext().get(), all, &all_page).ok() &&
               stub->ListTasks(A2aContext().get(), done, &done_page).ok() &&
               all_page.total_size() == done_page.total_size();
      },
      absl::Seconds(60)));
  std::map<std::string, int> listed;
  std::string token;
  do {
    lf::a2a::v1::ListTasksRequest list;
    list.set_page_size(100);
    list.set_page_token(token);
    lf::a2a::v1::ListTasksResponse page;
    ASSERT_TRUE(stub->ListTasks(A2aContext().get(), list, &page).ok());
    for (const Task& task : page.tasks()) ++listed[task.id()];
    token = page.next_page_token();
  } while (!token.empty());
  for (const std::string& id : ids) {
    EXPECT_EQ(listed[id], 1) << id;
  }
  restarted.Signal(SIGTERM);
  EXPECT_EQ(*restarted.Wait(absl::Seconds(30)), 0);
}

}  // namespace
}  // namespace a2amesh
