#include "tasks/task_entry.h"

#include <utility>

#include "google/protobuf/util/time_util.h"
#include "tasks/task_state.h"

namespace a2amesh::tasks {

Durability OwnedTask::PersistLocked(const lf::a2a::v1::StreamResponse& event, int64_t seq,
                                    std::vector<TaskStoreOp>* ops) {
  if (IsDirectReply(event)) {
    // The client gets a Message and never learns of the task: nothing of it
    // is kept. The delete is stored before the reply is delivered, so that a
    // crash cannot bring back a task whose client was answered.
    TaskStoreOp& op = ops->emplace_back();
    op.kind = TaskStoreOp::Kind::kDelete;
    op.task_id = id;
    return Durability::kWaitForStore;
  }
  const lf::a2a::v1::TaskState state = task.status().state();
  const bool final = IsFinalEvent(event);
  TaskStoreOp& op = ops->emplace_back();
  op.kind = TaskStoreOp::Kind::kEvent;
  op.task_id = id;
  op.seq = seq;
  op.state = state;
  op.status_unix_ms =
      google::protobuf::util::TimeUtil::TimestampToMilliseconds(task.status().timestamp());
  op.payload = event.SerializeAsString();
  if (final && IsTerminalState(state)) {
    // The last word: a snapshot replaces the event log.
    TaskStoreOp& snapshot = ops->emplace_back();
    const TaskStoreOp& logged = (*ops)[ops->size() - 2];
    snapshot.kind = TaskStoreOp::Kind::kSnapshot;
    snapshot.task_id = id;
    snapshot.seq = seq;
    snapshot.state = state;
    snapshot.status_unix_ms = logged.status_unix_ms;
    snapshot.payload = task.SerializeAsString();
  }
  // What ends a stream or answers a client, and what a client sent, is stored
  // before it takes effect.
  const bool from_client = event.has_message() && event.message().role() == lf::a2a::v1::ROLE_USER;
  return final || from_client ? Durability::kWaitForStore : Durability::kRideAlong;
}

bool OwnedTask::OverLocked() const { return IsTerminalState(task.status().state()); }

Durability HostedTurn::PersistLocked(const lf::a2a::v1::StreamResponse& event, int64_t,
                                     std::vector<TaskStoreOp>*) {
  turn_over_ = turn_over_ || IsFinalEvent(event);
  return Durability::kNone;
}

}  // namespace a2amesh::tasks
