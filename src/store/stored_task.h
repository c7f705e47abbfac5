#ifndef A2AMESH_STORE_STORED_TASK_H_
#define A2AMESH_STORE_STORED_TASK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "a2amesh/task_store.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace a2amesh::store {

// Builds a StoredTask from its serialized columns; DATA_LOSS names the task and
// the column that does not parse.
absl::StatusOr<StoredTask> ParseStoredTask(absl::string_view task_id, absl::string_view snapshot,
                                           int64_t snapshot_seq, int64_t last_seq,
                                           absl::string_view info);

// Parses one logged event of `task_id` and appends it to `task->events`.
absl::Status AppendStoredEvent(absl::string_view task_id, int64_t seq, absl::string_view event,
                               StoredTask* task);

// The (status time, id) ordering of List: true if `a` comes before `b`.
inline bool NewerFirst(int64_t a_ms, absl::string_view a_id, int64_t b_ms, absl::string_view b_id) {
  return a_ms != b_ms ? a_ms > b_ms : a_id > b_id;
}

}  // namespace a2amesh::store

#endif  // A2AMESH_STORE_STORED_TASK_H_
