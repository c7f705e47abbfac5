#ifndef A2AMESH_TASK_STORE_H_
#define A2AMESH_TASK_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "a2amesh/v1/store.pb.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh {

// One change to the store. Writes are built by the task manager, serialized once
// on the caller's thread, and applied by the store in the order given.
struct TaskStoreOp {
  enum class Kind {
    // A new task: `task` is its first snapshot (sequence 0), `info` its TaskInfo.
    kCreate,
    // Event `seq` of the task's log (a serialized lf.a2a.v1.StreamResponse).
    kEvent,
    // A full snapshot as of `seq`; events up to `seq` are no longer needed.
    kSnapshot,
    // A push-notification config of the task (`payload`: a serialized
    // lf.a2a.v1.TaskPushNotificationConfig whose id is `config_id`), added or
    // replaced. The task's state and sequence are left as they are.
    kPutPushConfig,
    // Removes push-notification config `config_id` of the task, if it exists.
    kDeletePushConfig,
    // Push-notification config `config_id` of the task has delivered (or
    // given up) the last event of its watch: a restart need not send its
    // task again. A later kPutPushConfig of the same id unsettles it.
    kSettlePushConfig,
    // Writes nothing: a Commit of it returns once the task's earlier writes
    // are durable (it must exist).
    kSync,
    // Removes the task, its events and its push-notification configs, if it
    // exists (retention: a finished task past its time).
    kDelete,
  };
  Kind kind = Kind::kEvent;
  std::string task_id;
  int64_t seq = 0;
  // The task's state and status timestamp after this op.
  lf::a2a::v1::TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
  int64_t status_unix_ms = 0;
  // kCreate only.
  std::string context_id;
  std::string agent_id;
  std::string skill;
  std::string parent_id;
  // The subject of the principal that created the task ("" if none: auth off).
  std::string principal;
  std::string info;  // serialized TaskInfo
  // kPutPushConfig, kDeletePushConfig, kSettlePushConfig.
  std::string config_id;
  // kCreate, kSnapshot: a serialized lf.a2a.v1.Task. kEvent: a serialized
  // StreamResponse. kPutPushConfig: a serialized TaskPushNotificationConfig.
  std::string payload;
};

struct StoredEvent {
  int64_t seq = 0;
  lf::a2a::v1::StreamResponse event;
};

// A task as stored: a snapshot plus the events logged after it. The task manager
// replays `events` onto `snapshot` to get the current Task.
struct StoredTask {
  lf::a2a::v1::Task snapshot;
  int64_t snapshot_seq = 0;
  int64_t last_seq = 0;
  std::vector<StoredEvent> events;
  v1::TaskInfo info;
};

// Filters for List. Empty strings and TASK_STATE_UNSPECIFIED match everything.
struct TaskQuery {
  std::string context_id;
  // Tasks of this agent: as the store holds it ("echo" for an agent of this
  // node, "echo@n2" for one elsewhere).
  std::string agent_id;
  // With a bare agent_id: that agent on any node ("echo" and "echo@*").
  bool agent_on_any_node = false;
  std::string skill;
  // Subtasks of this task.
  std::string parent_id;
  // Tasks created by this principal (subject).
  std::string principal;
  lf::a2a::v1::TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
  // Only tasks whose status timestamp is after this.
  absl::Time status_after = absl::InfinitePast();
  int page_size = 50;
  // Continue after this (status_unix_ms, id) position; unset on the first page.
  bool has_cursor = false;
  int64_t cursor_status_unix_ms = 0;
  std::string cursor_id;
};

struct TaskPage {
  // Newest status first; ties by id, descending.
  std::vector<StoredTask> tasks;
  // How many tasks match the filters, over all pages.
  int64_t total = 0;
  // Whether tasks remain after the last one returned.
  bool more = false;
  // The position of the last returned task, for the next page's cursor.
  int64_t last_status_unix_ms = 0;
};

// Durable storage of tasks and their event logs.
//
// Three kinds of write. Commit is for what someone waits for (a new task
// before its id is returned, the event that ends a stream): it calls `done`
// once the ops are durable, or failed. CommitLazily is a Commit nobody waits
// for yet: it rides along with the next group commit. Append is for everything else (intermediate
// status, artifact chunks): nobody is called back, and its ops ride along with
// a later group commit. The writes of one task keep the order in which they
// were issued, and a Commit is durable only with every earlier write of its
// tasks; writes of different tasks may be reordered (an Append can wait past
// another task's Commit, in the hope that its task's own snapshot, coming
// soon, makes it unnecessary).
//
// `done` runs on the store's writer thread, or inline from Commit in a store
// that completes at once (MemoryTaskStore), in commit order, never with the
// store's locks held; it must not block. So Commit and Append must not be
// called with a lock held that `done` takes.
//
// Reads are synchronous and may block on disk; call them from an Executor,
// never from a gRPC reactor. Reads see every write whose `done` has run, and
// every Append issued before the last Flush.
//
// Implementations are thread-safe.
class TaskStore {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  virtual ~TaskStore() = default;

  // Applies `ops` atomically and in order. Commit never fails synchronously; an
  // error (a duplicate task id, a disk error) comes back through `done`.
  virtual void Commit(std::vector<TaskStoreOp> ops, DoneCallback done) = 0;

  // Like Commit, but starts no group commit of its own: `ops` ride along with
  // the next one (anyone's Commit, a Flush), or are written within the
  // store's lazy delay; then `done` runs as for a Commit. For what must be
  // durable before anyone sees it when nobody is looking yet (the end of a
  // task that no client waits for): a reader that would see it Flushes first.
  virtual void CommitLazily(std::vector<TaskStoreOp> ops, DoneCallback done) = 0;

  // Applies `ops` (of one task) atomically and in order with a later group
  // commit, without starting one for them: they are written with their task's
  // next Commit, or within the store's lazy delay, or at Flush. Never blocks.
  // An error is logged and counted, not returned: nobody waits for these ops,
  // and a crash may lose those not yet written (what they recorded is not what
  // a client was told last).
  virtual void Append(std::vector<TaskStoreOp> ops) = 0;

  // The task with `task_id`; NOT_FOUND if there is none.
  virtual absl::StatusOr<StoredTask> Get(absl::string_view task_id) = 0;

  // One page of the tasks matching `query`.
  virtual absl::StatusOr<TaskPage> List(const TaskQuery& query) = 0;

  // Every task that is not in a terminal state, for recovery after a restart.
  virtual absl::StatusOr<std::vector<StoredTask>> LoadUnfinished() = 0;

  // The ids of the tasks in a terminal state that retention removes, oldest
  // status first, at most `limit`: those whose status is older than `before`,
  // and, if `keep_at_most` > 0, the oldest beyond the newest `keep_at_most`.
  virtual absl::StatusOr<std::vector<std::string>> ExpiredTasks(absl::Time before,
                                                                int64_t keep_at_most,
                                                                int limit) = 0;

  // The push-notification configs of task `task_id`, or, if `task_id` is
  // empty, every config not settled (those of every task not in a terminal
  // state, and of ended tasks whose end was not yet delivered), by task, then
  // config id.
  virtual absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>> ListPushConfigs(
      absl::string_view task_id) = 0;

  // Blocks until every Commit issued before the call has called `done` and
  // every Append issued before it is written.
  virtual void Flush() = 0;
};

// Terminal states end a task for good.
inline bool IsTerminalState(lf::a2a::v1::TaskState state) {
  return state == lf::a2a::v1::TASK_STATE_COMPLETED || state == lf::a2a::v1::TASK_STATE_FAILED ||
         state == lf::a2a::v1::TASK_STATE_CANCELED || state == lf::a2a::v1::TASK_STATE_REJECTED;
}

// Interrupted states wait for the client (more input, or authorization).
inline bool IsInterruptedState(lf::a2a::v1::TaskState state) {
  return state == lf::a2a::v1::TASK_STATE_INPUT_REQUIRED ||
         state == lf::a2a::v1::TASK_STATE_AUTH_REQUIRED;
}

}  // namespace a2amesh

#endif  // A2AMESH_TASK_STORE_H_
