#ifndef A2AMESH_TASKS_RECOVERY_H_
#define A2AMESH_TASKS_RECOVERY_H_

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/task_store.h"
#include "absl/status/statusor.h"
#include "tasks/task_entry.h"

namespace a2amesh::tasks {

// An unfinished task found in the store at start-up, back in memory.
struct RecoveredTask {
  std::shared_ptr<OwnedTask> entry;
  std::string agent_id;
  // It was running: it waits for its agent to register again (orphaned).
  // Otherwise it waits for its client (input or auth required).
  bool waits_for_agent = false;
};

// Every task the store holds that is not terminal, as entries ready to serve:
// the task replayed from its snapshot and event log, its log continuing after
// the last stored event. May block (reads the store).
absl::StatusOr<std::vector<RecoveredTask>> LoadUnfinishedTasks(TaskStore& store);

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_RECOVERY_H_
