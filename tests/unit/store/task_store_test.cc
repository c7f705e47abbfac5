#include "a2amesh/task_store.h"

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/telemetry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/memory_task_store.h"
#include "store/sqlite_task_store.h"
#include "testing/status_matchers.h"
#include "testing/store_commit.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh::store {
namespace {

using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::StatusIs;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using lf::a2a::v1::TaskState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TaskStoreOp CreateOp(const std::string& id, const std::string& context, int64_t status_ms,
                     const std::string& agent = "echo", const std::string& skill = "",
                     const std::string& parent = "") {
  Task task;
  task.set_id(id);
  task.set_context_id(context);
  task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
  v1::TaskInfo info;
  info.set_agent_id(agent);
  TaskStoreOp op;
  op.kind = TaskStoreOp::Kind::kCreate;
  op.task_id = id;
  op.context_id = context;
  op.agent_id = agent;
  op.skill = skill;
  op.parent_id = parent;
  op.state = lf::a2a::v1::TASK_STATE_SUBMITTED;
  op.status_unix_ms = status_ms;
  op.payload = task.SerializeAsString();
  op.info = info.SerializeAsString();
  return op;
}

TaskStoreOp EventOp(const std::string& id, int64_t seq, TaskState state, int64_t status_ms) {
  StreamResponse event;
  event.mutable_status_update()->set_task_id(id);
  event.mutable_status_update()->mutable_status()->set_state(state);
  TaskStoreOp op;
  op.kind = TaskStoreOp::Kind::kEvent;
  op.task_id = id;
  op.seq = seq;
  op.state = state;
  op.status_unix_ms = status_ms;
  op.payload = event.SerializeAsString();
  return op;
}

TaskStoreOp SnapshotOp(const std::string& id, int64_t seq, TaskState state, int64_t status_ms) {
  Task task;
  task.set_id(id);
  task.mutable_status()->set_state(state);
  TaskStoreOp op;
  op.kind = TaskStoreOp::Kind::kSnapshot;
  op.task_id = id;
  op.seq = seq;
  op.state = state;
  op.status_unix_ms = status_ms;
  op.payload = task.SerializeAsString();
  return op;
}

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<TaskStore>(const std::string& dir)> open;
};

class TaskStoreTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { store_ = GetParam().open(dir_.path()); }

  absl::Status CommitAndWait(std::vector<TaskStoreOp> ops) {
    absl::Status result = testing::CommitAndWait(*store_, std::move(ops));
    store_->Flush();  // the callback has returned: nothing of ours is in use
    return result;
  }

  testing::TempDir dir_;
  std::unique_ptr<TaskStore> store_;
};

TEST_P(TaskStoreTest, CreatedTaskReadsBack) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~1", "ctx", 1000)}), IsOk());
  absl::StatusOr<StoredTask> task = store_->Get("n~1");
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->snapshot.id(), "n~1");
  EXPECT_EQ(task->snapshot.context_id(), "ctx");
  EXPECT_EQ(task->info.agent_id(), "echo");
  EXPECT_EQ(task->snapshot_seq, 0);
  EXPECT_EQ(task->last_seq, 0);
  EXPECT_TRUE(task->events.empty());
}

TEST_P(TaskStoreTest, UnknownTaskIsNotFound) {
  EXPECT_THAT(store_->Get("n~missing"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("n~missing")));
}

TEST_P(TaskStoreTest, EventsComeBackInOrderAfterTheSnapshot) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~1", "ctx", 1000)}), IsOk());
  ASSERT_THAT(CommitAndWait({EventOp("n~1", 2, lf::a2a::v1::TASK_STATE_WORKING, 1002)}), IsOk());
  ASSERT_THAT(CommitAndWait({EventOp("n~1", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)}), IsOk());
  absl::StatusOr<StoredTask> task = store_->Get("n~1");
  ASSERT_THAT(task, IsOk());
  ASSERT_EQ(task->events.size(), 2u);
  EXPECT_EQ(task->events[0].seq, 1);
  EXPECT_EQ(task->events[1].seq, 2);
  EXPECT_EQ(task->last_seq, 2);
}

TEST_P(TaskStoreTest, SnapshotReplacesTheEventsBeforeIt) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~1", "ctx", 1000),
                             EventOp("n~1", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001),
                             EventOp("n~1", 2, lf::a2a::v1::TASK_STATE_COMPLETED, 1002),
                             SnapshotOp("n~1", 2, lf::a2a::v1::TASK_STATE_COMPLETED, 1002)}),
              IsOk());
  absl::StatusOr<StoredTask> task = store_->Get("n~1");
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->snapshot_seq, 2);
  EXPECT_EQ(task->snapshot.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_TRUE(task->events.empty());
}

TEST_P(TaskStoreTest, ABadCommitFailsAloneAndChangesNothing) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~1", "ctx", 1000)}), IsOk());
  absl::Mutex mu;
  std::vector<absl::Status> results(3);
  absl::Notification all;
  int left = 3;
  auto record = [&](int i) {
    return [&, i](absl::Status status) {
      bool last;
      {
        absl::MutexLock lock(&mu);
        results[i] = status;
        last = --left == 0;
      }
      if (last) all.Notify();
    };
  };
  store_->Commit({CreateOp("n~2", "ctx", 1000)}, record(0));
  // Duplicate id: the whole commit fails, including its valid event.
  store_->Commit(
      {EventOp("n~2", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001), CreateOp("n~1", "ctx", 1000)},
      record(1));
  store_->Commit({EventOp("n~nope", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)}, record(2));
  all.WaitForNotification();
  store_->Flush();
  EXPECT_THAT(results[0], IsOk());
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(results[2], StatusIs(absl::StatusCode::kNotFound, HasSubstr("n~nope")));
  absl::StatusOr<StoredTask> two = store_->Get("n~2");
  ASSERT_THAT(two, IsOk());
  EXPECT_TRUE(two->events.empty());
}

TEST_P(TaskStoreTest, CallbacksRunInCommitOrder) {
  absl::Mutex mu;
  std::vector<int> order;
  for (int i = 0; i < 200; ++i) {
    store_->Commit({CreateOp("n~" + std::to_string(i), "ctx", 1000 + i)},
                   [&, i](absl::Status status) {
                     EXPECT_THAT(status, IsOk());
                     absl::MutexLock lock(&mu);
                     order.push_back(i);
                   });
  }
  store_->Flush();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(order[i], i);
  }
}

std::vector<std::string> Ids(const TaskPage& page) {
  std::vector<std::string> ids;
  for (const StoredTask& task : page.tasks) {
    ids.push_back(task.snapshot.id());
  }
  return ids;
}

TEST_P(TaskStoreTest, ListsNewestFirstWithFiltersAndCursor) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~a", "c1", 1000), CreateOp("n~b", "c1", 3000),
                             CreateOp("n~c", "c2", 2000), CreateOp("n~d", "c1", 3000, "other")}),
              IsOk());
  ASSERT_THAT(CommitAndWait({EventOp("n~a", 1, lf::a2a::v1::TASK_STATE_COMPLETED, 4000)}), IsOk());

  TaskQuery all;
  absl::StatusOr<TaskPage> page = store_->List(all);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~a", "n~d", "n~b", "n~c"));
  EXPECT_EQ(page->total, 4);
  EXPECT_FALSE(page->more);

  TaskQuery by_context;
  by_context.context_id = "c1";
  by_context.page_size = 2;
  page = store_->List(by_context);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~a", "n~d"));
  EXPECT_EQ(page->total, 3);
  EXPECT_TRUE(page->more);
  by_context.has_cursor = true;
  by_context.cursor_status_unix_ms = page->last_status_unix_ms;
  by_context.cursor_id = page->tasks.back().snapshot.id();
  page = store_->List(by_context);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~b"));
  EXPECT_FALSE(page->more);

  TaskQuery by_state;
  by_state.state = lf::a2a::v1::TASK_STATE_SUBMITTED;
  by_state.agent_id = "echo";
  by_state.status_after = absl::FromUnixMillis(1500);
  page = store_->List(by_state);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~b", "n~c"));
}

TEST_P(TaskStoreTest, ListsBySkillAndParent) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~root", "c", 1000, "planner", "plan"),
                             CreateOp("n~a", "c", 1001, "echo", "echo", "n~root"),
                             CreateOp("n~b", "c", 1002, "upper", "upper", "n~root"),
                             CreateOp("n~other", "c", 1003, "echo", "echo", "n~x")}),
              IsOk());
  TaskQuery children;
  children.parent_id = "n~root";
  absl::StatusOr<TaskPage> page = store_->List(children);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~b", "n~a"));
  TaskQuery by_skill;
  by_skill.skill = "echo";
  page = store_->List(by_skill);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~other", "n~a"));
}

TEST_P(TaskStoreTest, ListsByAgentHereOrOnAnyNode) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~local", "c", 1000, "echo", "echo"),
                             CreateOp("n~on-n2", "c", 1001, "echo@n2", "echo"),
                             CreateOp("n~on-n3", "c", 1002, "echo@n3", "echo"),
                             CreateOp("n~longer", "c", 1003, "echoes@n2", "echo"),
                             CreateOp("n~before", "c", 1004, "echo-1@n2", "echo"),
                             CreateOp("n~prefix", "c", 1005, "ech@n2", "echo")}),
              IsOk());
  TaskQuery exact;
  exact.agent_id = "echo";
  absl::StatusOr<TaskPage> page = store_->List(exact);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~local"));
  TaskQuery any = exact;
  any.agent_on_any_node = true;
  page = store_->List(any);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~on-n3", "n~on-n2", "n~local"));
  EXPECT_EQ(page->total, 3);
  TaskQuery qualified;
  qualified.agent_id = "echo@n2";
  page = store_->List(qualified);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Ids(*page), ElementsAre("n~on-n2"));
}

TEST_P(TaskStoreTest, LoadUnfinishedSkipsTerminalTasks) {
  ASSERT_THAT(CommitAndWait({CreateOp("n~done", "c", 1000), CreateOp("n~running", "c", 1000),
                             CreateOp("n~waiting", "c", 1000)}),
              IsOk());
  ASSERT_THAT(
      CommitAndWait({EventOp("n~done", 1, lf::a2a::v1::TASK_STATE_FAILED, 1001),
                     EventOp("n~running", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001),
                     EventOp("n~waiting", 1, lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, 1001)}),
      IsOk());
  absl::StatusOr<std::vector<StoredTask>> tasks = store_->LoadUnfinished();
  ASSERT_THAT(tasks, IsOk());
  std::vector<std::string> ids;
  for (const StoredTask& task : *tasks) {
    ids.push_back(task.snapshot.id());
    EXPECT_EQ(task.events.size(), 1u);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_THAT(ids, ElementsAre("n~running", "n~waiting"));
}

TaskStoreOp PushOp(const std::string& task_id, const std::string& id, const std::string& url) {
  lf::a2a::v1::TaskPushNotificationConfig config;
  config.set_task_id(task_id);
  config.set_id(id);
  config.set_url(url);
  TaskStoreOp op;
  op.kind = TaskStoreOp::Kind::kPutPushConfig;
  op.task_id = task_id;
  op.config_id = id;
  op.payload = config.SerializeAsString();
  return op;
}

TEST_P(TaskStoreTest, PushConfigsArePutReplacedListedAndDeleted) {
  // With the task's creation, in one commit; then on their own.
  ASSERT_THAT(CommitAndWait({CreateOp("n~a", "c", 1000), PushOp("n~a", "hook-2", "http://b")}),
              IsOk());
  ASSERT_THAT(CommitAndWait({CreateOp("n~done", "c", 1000), PushOp("n~done", "x", "http://x"),
                             EventOp("n~done", 1, lf::a2a::v1::TASK_STATE_COMPLETED, 1001)}),
              IsOk());
  ASSERT_THAT(
      CommitAndWait({PushOp("n~a", "hook-1", "http://a"), PushOp("n~a", "hook-2", "http://c")}),
      IsOk());
  EXPECT_THAT(CommitAndWait({PushOp("n~missing", "h", "http://a")}),
              StatusIs(absl::StatusCode::kNotFound));

  auto urls = [](const absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>>& list) {
    std::vector<std::string> out;
    for (const auto& config : list.value())
      out.push_back(config.task_id() + "/" + config.id() + "=" + config.url());
    return out;
  };
  EXPECT_THAT(urls(store_->ListPushConfigs("n~a")),
              ElementsAre("n~a/hook-1=http://a", "n~a/hook-2=http://c"));
  // All of them: every one not settled, the ended task's too (its end may
  // not have been delivered).
  EXPECT_THAT(urls(store_->ListPushConfigs("")),
              ElementsAre("n~a/hook-1=http://a", "n~a/hook-2=http://c", "n~done/x=http://x"));
  EXPECT_THAT(urls(store_->ListPushConfigs("n~done")), ElementsAre("n~done/x=http://x"));
  // Settled once its end is delivered: no longer among all, still the task's.
  TaskStoreOp settle;
  settle.kind = TaskStoreOp::Kind::kSettlePushConfig;
  settle.task_id = "n~done";
  settle.config_id = "x";
  ASSERT_THAT(CommitAndWait({settle}), IsOk());
  EXPECT_THAT(urls(store_->ListPushConfigs("")),
              ElementsAre("n~a/hook-1=http://a", "n~a/hook-2=http://c"));
  EXPECT_THAT(urls(store_->ListPushConfigs("n~done")), ElementsAre("n~done/x=http://x"));
  // Put again, it is unsettled.
  ASSERT_THAT(CommitAndWait({PushOp("n~done", "x", "http://y")}), IsOk());
  EXPECT_THAT(urls(store_->ListPushConfigs("")),
              ElementsAre("n~a/hook-1=http://a", "n~a/hook-2=http://c", "n~done/x=http://y"));

  TaskStoreOp remove;
  remove.kind = TaskStoreOp::Kind::kDeletePushConfig;
  remove.task_id = "n~a";
  remove.config_id = "hook-1";
  ASSERT_THAT(CommitAndWait({remove}), IsOk());
  EXPECT_THAT(urls(store_->ListPushConfigs("n~a")), ElementsAre("n~a/hook-2=http://c"));
  // Push configs leave the task as it was.
  absl::StatusOr<StoredTask> task = store_->Get("n~a");
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->last_seq, 0);
}

TEST_P(TaskStoreTest, AppendsKeepTheirTasksOrderAndAreReadAfterFlush) {
  store_->Append({CreateOp("n~1", "ctx", 1000)});
  store_->Append({EventOp("n~1", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)});
  store_->Append({EventOp("n~1", 2, lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, 1002)});
  store_->Append({EventOp("n~nope", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)});  // logged only
  store_->Flush();
  absl::StatusOr<StoredTask> task = store_->Get("n~1");
  ASSERT_THAT(task, IsOk());
  ASSERT_EQ(task->events.size(), 2u);
  EXPECT_EQ(task->events[1].seq, 2);
  EXPECT_EQ(task->last_seq, 2);
  EXPECT_THAT(store_->Get("n~nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(TaskStoreTest, ACommitMakesItsTasksEarlierAppendsDurable) {
  store_->Append({CreateOp("n~1", "ctx", 1000)});
  store_->Append({EventOp("n~1", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)});
  TaskStoreOp sync;
  sync.kind = TaskStoreOp::Kind::kSync;
  sync.task_id = "n~1";
  ASSERT_THAT(CommitAndWait({sync}), IsOk());
  absl::StatusOr<StoredTask> task = store_->Get("n~1");
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->last_seq, 1);
  sync.task_id = "n~missing";
  EXPECT_THAT(CommitAndWait({sync}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(TaskStoreTest, ATaskCreatedAndEndedInOneGroupReadsAsItEnded) {
  // As a short task's writes arrive: the create and two events ride along,
  // the final event and its snapshot are committed.
  store_->Append({CreateOp("n~1", "ctx", 1000)});
  store_->Append({EventOp("n~1", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)});
  store_->Append({EventOp("n~1", 2, lf::a2a::v1::TASK_STATE_WORKING, 1002)});
  ASSERT_THAT(CommitAndWait({EventOp("n~1", 3, lf::a2a::v1::TASK_STATE_COMPLETED, 1003),
                             SnapshotOp("n~1", 3, lf::a2a::v1::TASK_STATE_COMPLETED, 1003)}),
              IsOk());
  absl::StatusOr<StoredTask> task = store_->Get("n~1");
  ASSERT_THAT(task, IsOk());
  EXPECT_EQ(task->snapshot.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task->snapshot_seq, 3);
  EXPECT_EQ(task->last_seq, 3);
  EXPECT_TRUE(task->events.empty());
  TaskQuery query;
  query.state = lf::a2a::v1::TASK_STATE_COMPLETED;
  absl::StatusOr<TaskPage> completed = store_->List(query);
  ASSERT_THAT(completed, IsOk());
  EXPECT_EQ(completed->total, 1);  // the summary columns say so too
  EXPECT_EQ(completed->tasks[0].snapshot.id(), "n~1");
  absl::StatusOr<std::vector<StoredTask>> unfinished = store_->LoadUnfinished();
  ASSERT_THAT(unfinished, IsOk());
  EXPECT_TRUE(unfinished->empty());
}

TEST_P(TaskStoreTest, ExpiredTasksAreTheOldFinishedOnesAndDeleteRemovesThemWhole) {
  // Finished at 1000, 2000 and 3000 ms; one still working, older than all.
  ASSERT_THAT(CommitAndWait({CreateOp("n~running", "c", 500), CreateOp("n~a", "c", 900),
                             CreateOp("n~b", "c", 900), CreateOp("n~c", "c", 900)}),
              IsOk());
  ASSERT_THAT(CommitAndWait({EventOp("n~running", 1, lf::a2a::v1::TASK_STATE_WORKING, 500),
                             EventOp("n~a", 1, lf::a2a::v1::TASK_STATE_COMPLETED, 1000),
                             EventOp("n~b", 1, lf::a2a::v1::TASK_STATE_FAILED, 2000),
                             EventOp("n~c", 1, lf::a2a::v1::TASK_STATE_CANCELED, 3000),
                             PushOp("n~a", "hook", "https://example.com/a")}),
              IsOk());
  auto expired = [&](int64_t before_ms, int64_t keep, int limit) {
    absl::StatusOr<std::vector<std::string>> ids =
        store_->ExpiredTasks(absl::FromUnixMillis(before_ms), keep, limit);
    EXPECT_THAT(ids, IsOk());
    return ids.value_or(std::vector<std::string>{});
  };
  using ::testing::ElementsAre;
  using ::testing::IsEmpty;
  // By age: older than the cut, oldest first; the running task never.
  EXPECT_THAT(expired(2500, 0, 10), ElementsAre("n~a", "n~b"));
  EXPECT_THAT(expired(2500, 0, 1), ElementsAre("n~a"));
  EXPECT_THAT(expired(0, 0, 10), IsEmpty());
  // By count: beyond the newest `keep`, whatever their age; and both.
  EXPECT_THAT(expired(0, 1, 10), ElementsAre("n~a", "n~b"));
  EXPECT_THAT(expired(0, 3, 10), IsEmpty());
  EXPECT_THAT(expired(1500, 2, 10), ElementsAre("n~a"));
  EXPECT_THAT(expired(2500, 2, 10), ElementsAre("n~a", "n~b"));
  EXPECT_THAT(expired(5000, 1, 2), ElementsAre("n~a", "n~b"));

  // A delete takes the task, its events and its push configs; deleting what
  // is gone is not an error.
  TaskStoreOp remove;
  remove.kind = TaskStoreOp::Kind::kDelete;
  remove.task_id = "n~a";
  ASSERT_THAT(CommitAndWait({remove}), IsOk());
  ASSERT_THAT(CommitAndWait({remove}), IsOk());
  EXPECT_EQ(store_->Get("n~a").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>> configs =
      store_->ListPushConfigs("n~a");
  ASSERT_THAT(configs, IsOk());
  EXPECT_THAT(*configs, IsEmpty());
  EXPECT_THAT(expired(2500, 0, 10), ElementsAre("n~b"));
  EXPECT_THAT(store_->Get("n~running"), IsOk());
  // The id can be used again, from scratch.
  ASSERT_THAT(CommitAndWait({CreateOp("n~a", "c", 9000)}), IsOk());
}

INSTANTIATE_TEST_SUITE_P(
    Stores, TaskStoreTest,
    ::testing::Values(StoreFactory{"Memory",
                                   [](const std::string&) -> std::unique_ptr<TaskStore> {
                                     return std::make_unique<MemoryTaskStore>();
                                   }},
                      StoreFactory{"Sqlite",
                                   [](const std::string& dir) -> std::unique_ptr<TaskStore> {
                                     auto store = SqliteTaskStore::Open({dir + "/tasks.db", true});
                                     EXPECT_THAT(store, IsOk());
                                     return std::move(store).value();
                                   }}),
    [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

// Counts group commits (transactions).
class CommitCounter final : public Telemetry {
 public:
  void StoreCommitted(absl::Duration, bool) override {
    absl::MutexLock lock(&mu_);
    ++commits_;
  }
  int commits() const {
    absl::MutexLock lock(&mu_);
    return commits_;
  }

 private:
  mutable absl::Mutex mu_;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
};

// A store in `dir` whose commits `counter` counts.
absl::StatusOr<std::unique_ptr<SqliteTaskStore>> OpenCounted(
    testing::TempDir& dir, CommitCounter& counter, absl::Duration max_lazy_delay,
    absl::Duration max_lazy_commit_delay = absl::Milliseconds(10)) {
  SqliteTaskStore::Options options;
  options.path = dir.File("tasks.db");
  options.max_lazy_delay = max_lazy_delay;
  options.max_lazy_commit_delay = max_lazy_commit_delay;
  options.telemetry = &counter;
  return SqliteTaskStore::Open(options);
}

TEST(SqliteTaskStoreTest, AppendsWaitForACommitOfTheirTaskAndNeverWakeTheWriter) {
  testing::TempDir dir;
  CommitCounter counter;
  auto opened = OpenCounted(dir, counter, absl::Hours(1));
  ASSERT_THAT(opened, IsOk());
  SqliteTaskStore& store = **opened;
  auto commit = [&](std::vector<TaskStoreOp> ops) {
    return testing::CommitAndWait(store, std::move(ops));
  };
  ASSERT_THAT(commit({CreateOp("n~a", "ctx", 1000), CreateOp("n~b", "ctx", 1000)}), IsOk());
  ASSERT_EQ(counter.commits(), 1);
  for (int seq = 1; seq <= 50; ++seq) {
    store.Append({EventOp("n~a", seq, lf::a2a::v1::TASK_STATE_WORKING, 1000 + seq)});
    store.Append({EventOp("n~b", seq, lf::a2a::v1::TASK_STATE_WORKING, 1000 + seq)});
  }
  // Nothing waits for them: no transaction started.
  EXPECT_EQ(counter.commits(), 1);
  EXPECT_EQ(store.Get("n~a")->last_seq, 0);

  // A commit of task a takes a's appends along, in order, not b's.
  ASSERT_THAT(commit({EventOp("n~a", 51, lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, 1051)}), IsOk());
  EXPECT_EQ(counter.commits(), 2);
  absl::StatusOr<StoredTask> a = store.Get("n~a");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->last_seq, 51);
  ASSERT_EQ(a->events.size(), 51u);
  EXPECT_EQ(a->events[50].event.status_update().status().state(),
            lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  EXPECT_EQ(store.Get("n~b")->last_seq, 0);  // b's wait for b's own commit

  store.Flush();  // everything
  EXPECT_EQ(store.Get("n~b")->last_seq, 50);
  EXPECT_EQ(counter.commits(), 3);
}

TEST(SqliteTaskStoreTest, OldAppendsAreWrittenWithinTheLazyDelay) {
  testing::TempDir dir;
  CommitCounter counter;
  auto opened = OpenCounted(dir, counter, absl::Milliseconds(20));
  ASSERT_THAT(opened, IsOk());
  (*opened)->Append({CreateOp("n~a", "ctx", 1000)});
  // No commit and no Flush: the writer takes it when it has waited its delay.
  EXPECT_TRUE(testing::WaitFor([&] { return counter.commits() == 1; }));
  EXPECT_THAT((*opened)->Get("n~a"), IsOk());
}

TEST(SqliteTaskStoreTest, ALazyCommitRidesAlongWithTheNextCommitOfAnyTask) {
  testing::TempDir dir;
  CommitCounter counter;
  auto opened = OpenCounted(dir, counter, absl::Hours(1), absl::Hours(1));
  ASSERT_THAT(opened, IsOk());
  SqliteTaskStore& store = **opened;
  ASSERT_THAT(testing::CommitAndWait(store, {CreateOp("n~a", "ctx", 1000)}), IsOk());
  ASSERT_EQ(counter.commits(), 1);
  store.Append({EventOp("n~a", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)});
  absl::Notification ended;
  absl::Status ended_status = absl::UnknownError("not called");
  store.CommitLazily({EventOp("n~a", 2, lf::a2a::v1::TASK_STATE_COMPLETED, 1002),
                      SnapshotOp("n~a", 2, lf::a2a::v1::TASK_STATE_COMPLETED, 1002)},
                     [&](absl::Status status) {
                       ended_status = status;
                       ended.Notify();
                     });
  // Nobody waits for it: no transaction of its own.
  EXPECT_FALSE(ended.HasBeenNotified());
  EXPECT_EQ(counter.commits(), 1);

  // Another task's commit takes it along (with its task's earlier append),
  // in one transaction, and its callback runs before that commit's.
  absl::Notification created;
  bool ended_first = false;
  store.Commit({CreateOp("n~b", "ctx", 1003)}, [&](absl::Status status) {
    EXPECT_THAT(status, IsOk());
    ended_first = ended.HasBeenNotified();
    created.Notify();
  });
  created.WaitForNotification();
  EXPECT_TRUE(ended_first);
  EXPECT_THAT(ended_status, IsOk());
  EXPECT_EQ(counter.commits(), 2);
  absl::StatusOr<StoredTask> a = store.Get("n~a");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->snapshot.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(a->last_seq, 2);
}

TEST(SqliteTaskStoreTest, ALazyCommitIsWrittenWithinItsDelayOrAtFlush) {
  testing::TempDir dir;
  CommitCounter counter;
  auto opened = OpenCounted(dir, counter, absl::Hours(1), absl::Milliseconds(5));
  ASSERT_THAT(opened, IsOk());
  absl::Notification done;
  (*opened)->CommitLazily({CreateOp("n~a", "ctx", 1000)}, [&](absl::Status status) {
    EXPECT_THAT(status, IsOk());
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(counter.commits(), 1);

  opened->reset();
  auto slow = OpenCounted(dir, counter, absl::Hours(1), absl::Hours(1));
  ASSERT_THAT(slow, IsOk());
  bool flushed = false;
  (*slow)->CommitLazily({CreateOp("n~b", "ctx", 1000)},
                        [&](absl::Status status) { flushed = status.ok(); });
  (*slow)->Flush();
  EXPECT_TRUE(flushed);
  EXPECT_THAT((*slow)->Get("n~b"), IsOk());
}

TEST(SqliteTaskStoreTest, SurvivesReopen) {
  testing::TempDir dir;
  SqliteTaskStore::Options options{dir.File("tasks.db"), true};
  {
    auto store = SqliteTaskStore::Open(options);
    ASSERT_THAT(store, IsOk());
    absl::Notification done;
    (*store)->Commit(
        {CreateOp("n~1", "ctx", 1000), EventOp("n~1", 1, lf::a2a::v1::TASK_STATE_WORKING, 1001)},
        [&](absl::Status status) {
          EXPECT_THAT(status, IsOk());
          done.Notify();
        });
    done.WaitForNotification();
  }
  auto store = SqliteTaskStore::Open(options);
  ASSERT_THAT(store, IsOk());
  absl::StatusOr<StoredTask> task = (*store)->Get("n~1");
  ASSERT_THAT(task, IsOk());
  ASSERT_EQ(task->events.size(), 1u);
  EXPECT_EQ(task->events[0].event.status_update().status().state(),
            lf::a2a::v1::TASK_STATE_WORKING);
}

// The file change counter in a SQLite database header (bytes 24..27): every
// write transaction that reaches the file moves it.
uint32_t FileChangeCounter(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  unsigned char header[28] = {};
  file.read(reinterpret_cast<char*>(header), sizeof header);
  return static_cast<uint32_t>(header[24]) << 24 | static_cast<uint32_t>(header[25]) << 16 |
         static_cast<uint32_t>(header[26]) << 8 | header[27];
}

TEST(SqliteTaskStoreTest, AnUpToDateStoreOpensWithoutWriting) {
  testing::TempDir dir;
  SqliteTaskStore::Options options{dir.File("tasks.db"), true};
  ASSERT_THAT(SqliteTaskStore::Open(options), IsOk());  // new: the schema is written
  const uint32_t counter = FileChangeCounter(options.path);
  ASSERT_GT(counter, 0u);
  {
    auto store = SqliteTaskStore::Open(options);
    ASSERT_THAT(store, IsOk());
    // A write would be in the WAL now (the file itself is written only when
    // the store closes and checkpoints).
    std::error_code error;
    EXPECT_EQ(std::filesystem::file_size(options.path + "-wal", error), 0u) << error.message();
  }
  EXPECT_EQ(FileChangeCounter(options.path), counter);
  // And the new store was made to give removed tasks' pages back.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options.path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA auto_vacuum", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 2);  // INCREMENTAL
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SqliteTaskStoreTest, UpgradesAVersion1StoreInPlace) {
  testing::TempDir dir;
  std::string path = dir.File("tasks.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* v1 =
      "CREATE TABLE tasks (id TEXT PRIMARY KEY, context_id TEXT NOT NULL, agent_id TEXT NOT NULL,"
      " state INTEGER NOT NULL, status_ms INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
      " snapshot BLOB NOT NULL, snapshot_seq INTEGER NOT NULL, info BLOB NOT NULL);"
      "CREATE TABLE events (task_id TEXT NOT NULL, seq INTEGER NOT NULL, event BLOB NOT NULL,"
      " PRIMARY KEY (task_id, seq)) WITHOUT ROWID;"
      "PRAGMA user_version=1;";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
  TaskStoreOp old = CreateOp("n~child", "c", 1000, "echo", "echo", "n~parent");
  v1::TaskInfo info;
  info.set_skill("echo");
  info.set_parent_task_id("n~parent");
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO tasks VALUES ('n~child', 'c', 'echo', 1, 1000, 0, ?1, "
                               "0, ?2)",
                               -1, &insert, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(insert, 1, old.payload.data(), static_cast<int>(old.payload.size()),
                    SQLITE_STATIC);
  std::string blob = info.SerializeAsString();
  sqlite3_bind_blob(insert, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
  sqlite3_finalize(insert);
  sqlite3_close(db);

  auto store = SqliteTaskStore::Open({path, true});
  ASSERT_THAT(store, IsOk());
  TaskQuery children;
  children.parent_id = "n~parent";
  children.skill = "echo";
  absl::StatusOr<TaskPage> page = (*store)->List(children);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].snapshot.id(), "n~child");
}

TEST(SqliteTaskStoreTest, AVersion3StoreKeepsItsEndedTasksConfigsSettled) {
  testing::TempDir dir;
  std::string path = dir.File("tasks.db");
  {
    // A version 3 store: push_configs without `settled`, tasks without
    // `principal`.
    auto store = SqliteTaskStore::Open({path, true});
    ASSERT_THAT(store, IsOk());
    absl::Notification done;
    (*store)->Commit({CreateOp("n~run", "c", 1000), PushOp("n~run", "a", "http://a"),
                      CreateOp("n~end", "c", 1000), PushOp("n~end", "b", "http://b"),
                      EventOp("n~end", 1, lf::a2a::v1::TASK_STATE_COMPLETED, 1001)},
                     [&](absl::Status status) {
                       EXPECT_THAT(status, IsOk());
                       done.Notify();
                     });
    done.WaitForNotification();
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* v3 =
      "DROP INDEX tasks_by_principal; ALTER TABLE tasks DROP COLUMN principal;"
      "CREATE TABLE p3 (task_id TEXT NOT NULL, id TEXT NOT NULL, config BLOB NOT NULL,"
      " PRIMARY KEY (task_id, id)) WITHOUT ROWID;"
      "INSERT INTO p3 SELECT task_id, id, config FROM push_configs;"
      "DROP TABLE push_configs; ALTER TABLE p3 RENAME TO push_configs;"
      "PRAGMA user_version=3;";
  ASSERT_EQ(sqlite3_exec(db, v3, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);

  auto store = SqliteTaskStore::Open({path, true});
  ASSERT_THAT(store, IsOk());
  // As before the upgrade: the ended task's config is not sent again.
  absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>> unsettled =
      (*store)->ListPushConfigs("");
  ASSERT_THAT(unsettled, IsOk());
  ASSERT_EQ(unsettled->size(), 1u);
  EXPECT_EQ((*unsettled)[0].task_id(), "n~run");
}

TEST(SqliteTaskStoreTest, OpenNamesTheBadPath) {
  EXPECT_THAT(SqliteTaskStore::Open({"/nonexistent-dir/x/tasks.db", true}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("/nonexistent-dir/x/tasks.db")));
}

TEST(SqliteTaskStoreTest, RefusesAStoreWrittenByANewerVersion) {
  testing::TempDir dir;
  std::string path = dir.File("tasks.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(SqliteTaskStore::Open({path, true}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("schema version 99")));
}

}  // namespace
}  // namespace a2amesh::store
