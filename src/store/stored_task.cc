#include "store/stored_task.h"

#include "absl/strings/str_cat.h"

namespace a2amesh::store {

absl::StatusOr<StoredTask> ParseStoredTask(absl::string_view task_id, absl::string_view snapshot,
                                           int64_t snapshot_seq, int64_t last_seq,
                                           absl::string_view info) {
  StoredTask task;
  if (!task.snapshot.ParseFromArray(snapshot.data(), static_cast<int>(snapshot.size()))) {
    return absl::DataLossError(absl::StrCat("task ", task_id, ": stored snapshot does not parse"));
  }
  if (!task.info.ParseFromArray(info.data(), static_cast<int>(info.size()))) {
    return absl::DataLossError(absl::StrCat("task ", task_id, ": stored task info does not parse"));
  }
  task.snapshot_seq = snapshot_seq;
  task.last_seq = last_seq;
  return task;
}

absl::Status AppendStoredEvent(absl::string_view task_id, int64_t seq, absl::string_view event,
                               StoredTask* task) {
  StoredEvent stored;
  stored.seq = seq;
  if (!stored.event.ParseFromArray(event.data(), static_cast<int>(event.size()))) {
    return absl::DataLossError(
        absl::StrCat("task ", task_id, ": stored event ", seq, " does not parse"));
  }
  task->events.push_back(std::move(stored));
  return absl::OkStatus();
}

}  // namespace a2amesh::store
