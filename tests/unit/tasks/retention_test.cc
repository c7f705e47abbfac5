// Retention against real stores: a SQLite file that gives its space back, and
// the in-memory store.
#include "tasks/retention.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/memory_task_store.h"
#include "store/sqlite_task_store.h"
#include "testing/store_commit.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh::tasks {
namespace {

using ::a2amesh::testing::CommitAndWait;
using ::a2amesh::testing::WaitFor;

class CountingTelemetry final : public Telemetry {
 public:
  void TasksExpired(int64_t count) override { expired += count; }
  std::atomic<int64_t> expired{0};
};

// A task created and ended at `status_ms` (in `state`), with a snapshot of
// `padding` bytes: what a finished task with its artifacts weighs.
std::vector<TaskStoreOp> FinishedTask(const std::string& id, int64_t status_ms,
                                      lf::a2a::v1::TaskState state, size_t padding) {
  lf::a2a::v1::Task task;
  task.set_id(id);
  task.set_context_id("c");
  task.mutable_status()->set_state(state);
  task.add_artifacts()->add_parts()->set_text(std::string(padding, 'x'));
  TaskStoreOp create;
  create.kind = TaskStoreOp::Kind::kCreate;
  create.task_id = id;
  create.context_id = "c";
  create.agent_id = "echo";
  create.state = state;
  create.status_unix_ms = status_ms;
  create.payload = task.SerializeAsString();
  create.info = v1::TaskInfo().SerializeAsString();
  return {create};
}

int64_t FileBytes(const std::string& path) {
  int64_t bytes = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(path + suffix, error);
    if (!error) bytes += static_cast<int64_t>(size);
  }
  return bytes;
}

TEST(RetentionTest, OldFinishedTasksLeaveTheSqliteFileAndItsSpaceIsGivenBack) {
  testing::TempDir dir;
  const std::string path = dir.File("tasks.db");
  absl::StatusOr<std::unique_ptr<store::SqliteTaskStore>> store =
      store::SqliteTaskStore::Open({path, /*fsync=*/false});
  ASSERT_TRUE(store.ok()) << store.status();
  const int64_t old_ms = absl::ToUnixMillis(absl::Now() - absl::Hours(2));
  // 1,200 finished tasks of 16 KB, two hours old; a working one as old; and
  // a finished one from now.
  for (int i = 0; i < 1200; ++i) {
    ASSERT_TRUE(CommitAndWait(**store, FinishedTask(absl::StrCat("n~old-", i), old_ms + i,
                                                    lf::a2a::v1::TASK_STATE_COMPLETED, 16 * 1024))
                    .ok());
  }
  ASSERT_TRUE(CommitAndWait(**store, FinishedTask("n~working", old_ms,
                                                  lf::a2a::v1::TASK_STATE_WORKING, 16 * 1024))
                  .ok());
  ASSERT_TRUE(CommitAndWait(**store, FinishedTask("n~fresh", absl::ToUnixMillis(absl::Now()),
                                                  lf::a2a::v1::TASK_STATE_FAILED, 16 * 1024))
                  .ok());
  const int64_t full = FileBytes(path);
  EXPECT_GT(full, 1200 * 16 * 1024);

  CountingTelemetry telemetry;
  RetentionOptions options;
  options.ttl = absl::Hours(1);
  options.interval = absl::Hours(1);  // only the sweeps the test asks for
  options.telemetry = &telemetry;
  Retention retention(**store, options);
  absl::StatusOr<int64_t> removed = retention.SweepOnce();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1200);  // in batches: more than one Commit
  EXPECT_EQ(telemetry.expired.load(), 1200);
  EXPECT_EQ((*store)->Get("n~old-0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->Get("n~old-1199").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*store)->Get("n~working").ok());
  EXPECT_TRUE((*store)->Get("n~fresh").ok());
  // The pages went back to the file system, and the WAL was truncated.
  EXPECT_LT(FileBytes(path), full / 10) << "from " << full;
  // Nothing more is due.
  EXPECT_EQ(retention.SweepOnce().value_or(-1), 0);
}

TEST(RetentionTest, TheSweeperKeepsAnInMemoryStoreUnderItsCap) {
  store::MemoryTaskStore store;
  CountingTelemetry telemetry;
  RetentionOptions options;
  options.ttl = absl::InfiniteDuration();
  options.max_finished = 100;
  options.interval = absl::Milliseconds(10);
  options.telemetry = &telemetry;
  Retention retention(store, options);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (int i = 0; i < 350; ++i) {
    ASSERT_TRUE(CommitAndWait(store, FinishedTask(absl::StrCat("n~", i), now_ms + i,
                                                  lf::a2a::v1::TASK_STATE_COMPLETED, 64))
                    .ok());
  }
  // The sweeper, on its own thread, removes the 250 oldest.
  EXPECT_TRUE(WaitFor([&] { return telemetry.expired.load() == 250; }));
  EXPECT_EQ(store.Get("n~249").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store.Get("n~250").ok());
  EXPECT_TRUE(store.Get("n~349").ok());
}

}  // namespace
}  // namespace a2amesh::tasks
