#ifndef A2AMESH_STORE_SQLITE_TASK_STORE_H_
#define A2AMESH_STORE_SQLITE_TASK_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "a2amesh/task_store.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/telemetry.h"

struct sqlite3;

namespace a2amesh::store {

// A TaskStore in one SQLite database file in WAL mode.
//
// Writes are group-committed: one writer thread takes every Commit and Append
// queued since its last transaction and applies them in a single transaction
// (each in a savepoint of its own, so one bad write fails alone), then calls
// the Commits' `done` callbacks in order. With `fsync` (the default) the
// transaction is on disk before `done` runs (synchronous=FULL), so durability
// costs one fsync per group, not per write. Without it (synchronous=NORMAL) a
// commit survives a crash of the process but not of the machine.
//
// Only a Commit (someone waits), a Flush, or a backlog of Appends past
// max_lazy_bytes wakes the writer, so that events nobody waits for cost no
// wake-up of their own. An Append waits for a Commit of its own task (then it
// goes first, in the same transaction) for up to max_lazy_delay: most tasks
// end within it, and their end's snapshot replaces their intermediate events,
// which then are never written at all. A CommitLazily goes with whatever
// transaction comes next, or starts one after max_lazy_commit_delay.
//
// Reads use a second connection, so they run alongside the writer. Thread-safe.
class SqliteTaskStore final : public TaskStore {
 public:
  struct Options {
    // The database file; its directory must exist.
    std::string path;
    bool fsync = true;
    // How long Appends may wait for a Commit to ride along with, and how many
    // bytes of them may wait.
    absl::Duration max_lazy_delay = absl::Milliseconds(100);
    size_t max_lazy_bytes = 1 << 20;
    // How long a CommitLazily may wait for a transaction to ride along with.
    absl::Duration max_lazy_commit_delay = absl::Milliseconds(10);
    // Hears how long each group commit takes.
    Telemetry* telemetry = &NoTelemetry();
  };

  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(const Options& options);
  ~SqliteTaskStore() override;

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
  struct Pending {
    std::vector<TaskStoreOp> ops;
    DoneCallback done;  // empty for an Append
    int64_t seq = 0;    // order of submission
    // Appends and lazy commits: when queued, and their size.
    absl::Time queued_at;
    size_t bytes = 0;
  };
  // The writer's prepared statements, made once.
  struct WriterStatements;

  SqliteTaskStore(const Options& options, sqlite3* write_db, sqlite3* read_db,
                  std::unique_ptr<WriterStatements> statements);
  // Queues an Append (no `done`) or a lazy commit.
  void QueueLazy(std::vector<TaskStoreOp> ops, DoneCallback done);
  void WriterLoop();
  // Whether the writer should start a transaction now.
  bool MustWriteLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves what the next transaction writes from the queue to `batch`: every
  // Commit, and the Appends that are old, or whose task has a Commit queued
  // (all of them, on Flush, stop or backlog). What stays keeps its order.
  void TakeBatchLocked(std::vector<Pending>* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `batch` in one transaction; returns each write's result.
  std::vector<absl::Status> WriteBatch(std::vector<Pending>& batch);
  // What the writer learns within one transaction, to spare statements.
  struct BatchState;
  // Applies one write's ops inside the writer's open transaction.
  absl::Status ApplyOps(std::vector<TaskStoreOp>& ops, BatchState& batch);
  absl::Status ApplyOp(TaskStoreOp& op, BatchState& batch);
  absl::StatusOr<StoredTask> LoadLocked(absl::string_view task_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);
  absl::StatusOr<StoredTask> LoadEventsLocked(absl::string_view task_id, StoredTask task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  const std::string path_;
  const absl::Duration max_lazy_delay_;
  const size_t max_lazy_bytes_;
  const absl::Duration max_lazy_commit_delay_;
  Telemetry* const telemetry_;
  sqlite3* const write_db_;                       // used by the writer thread only
  std::unique_ptr<WriterStatements> statements_;  // writer thread only

  absl::Mutex read_mu_;
  sqlite3* const read_db_ ABSL_PT_GUARDED_BY(read_mu_);

  absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  // Commits in queue_ (someone waits for them).
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes of Appends in queue_, and when the oldest was queued.
  size_t lazy_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time oldest_lazy_ ABSL_GUARDED_BY(mu_);
  // When the oldest lazy commit in queue_ must be written (or never).
  absl::Time lazy_commit_due_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Threads in Flush.
  int flushing_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  // Every write with a lower seq is done (Flush waits on this).
  int64_t done_below_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace a2amesh::store

#endif  // A2AMESH_STORE_SQLITE_TASK_STORE_H_
