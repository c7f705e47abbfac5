#ifndef A2AMESH_STORE_MEMORY_TASK_STORE_H_
#define A2AMESH_STORE_MEMORY_TASK_STORE_H_

#include <cstdint>
#include <map>
#include <string>

#include "a2amesh/task_store.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh::store {

// A TaskStore in memory, for tests and `--ephemeral` nodes: atomic commits as
// in the SQLite store, but every write is applied at once and `done` runs
// inline from Commit (with no lock of the store's held). Nothing survives the
// process. Thread-safe.
class MemoryTaskStore final : public TaskStore {
 public:
  MemoryTaskStore();
  ~MemoryTaskStore() override;

  void Commit(std::vector<TaskStoreOp> ops, DoneCallback done) override;
  void CommitLazily(std::vector<TaskStoreOp> ops, DoneCallback done) override;
  void Append(std::vector<TaskStoreOp> ops) override;
  absl::StatusOr<StoredTask> Get(absl::string_view task_id) override;
  absl::StatusOr<TaskPage> List(const TaskQuery& query) override;
  absl::StatusOr<std::vector<StoredTask>> LoadUnfinished() override;
  absl::StatusOr<std::vector<std::string>> ExpiredTasks(absl::Time before, int64_t keep_at_most,
                                                        int limit) override;
  absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>> ListPushConfigs(
      absl::string_view task_id) override;
  void Flush() override;

 private:
  struct Row {
    std::string context_id;
    std::string agent_id;
    std::string skill;
    std::string parent_id;
    std::string principal;
    lf::a2a::v1::TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
    int64_t status_unix_ms = 0;
    int64_t last_seq = 0;
    std::string snapshot;
    int64_t snapshot_seq = 0;
    std::string info;
    std::map<int64_t, std::string> events;
    // Serialized TaskPushNotificationConfigs by id.
    std::map<std::string, std::string> push_configs;
    // Configs whose watch delivered the task's end (kSettlePushConfig).
    absl::flat_hash_set<std::string> settled_push_configs;
  };

  absl::Status CheckAndApply(std::vector<TaskStoreOp>& ops) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Check(const std::vector<TaskStoreOp>& ops) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Apply(TaskStoreOp& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<StoredTask> Load(absl::string_view id, const Row& row) const;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Row> rows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::store

#endif  // A2AMESH_STORE_MEMORY_TASK_STORE_H_
