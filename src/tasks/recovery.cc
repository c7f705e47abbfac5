#include "tasks/recovery.h"

#include <utility>

#include "core/status_macros.h"
#include "tasks/task_state.h"

namespace a2amesh::tasks {

absl::StatusOr<std::vector<RecoveredTask>> LoadUnfinishedTasks(TaskStore& store) {
  A2AMESH_ASSIGN_OR_RETURN(std::vector<StoredTask> stored, store.LoadUnfinished());
  std::vector<RecoveredTask> recovered;
  recovered.reserve(stored.size());
  for (StoredTask& s : stored) {
    RecoveredTask& task = recovered.emplace_back();
    task.entry = std::make_shared<OwnedTask>(s.snapshot.id());
    task.agent_id = s.info.agent_id();
    OwnedTask& entry = *task.entry;
    absl::MutexLock lock(&entry.mu);
    A2AMESH_ASSIGN_OR_RETURN(entry.task, Materialize(s));
    entry.info = std::move(s.info);
    entry.log = TaskLog(s.last_seq + 1);
    task.waits_for_agent = !IsInterruptedState(entry.task.status().state());
    entry.orphaned = task.waits_for_agent;
  }
  return recovered;
}

}  // namespace a2amesh::tasks
