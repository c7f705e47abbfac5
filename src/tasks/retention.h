#ifndef A2AMESH_TASKS_RETENTION_H_
#define A2AMESH_TASKS_RETENTION_H_

#include <cstdint>
#include <thread>

#include "a2amesh/task_store.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/telemetry.h"

namespace a2amesh::tasks {

struct RetentionOptions {
  // Finished tasks (completed, failed, canceled, rejected) whose status is
  // older than this are removed. InfiniteDuration: kept by age.
  absl::Duration ttl = absl::Hours(24 * 7);
  // At most this many finished tasks are kept (the oldest go first); 0: no cap.
  int64_t max_finished = 0;
  // How often the store is swept (the node derives it from the ttl, the cap
  // and --housekeeping-interval).
  absl::Duration interval = absl::Minutes(1);
  // After each sweep, give the allocator's free memory back to the system
  // (ReleaseFreeMemory, core/allocator.h): what removed tasks, a load peak or refused large
  // inputs left behind would otherwise stay in the process's RSS.
  bool trim_memory = false;
  Telemetry* telemetry = &NoTelemetry();
};

// Removes finished tasks past their retention from a TaskStore, on a thread
// of its own, in bounded batches (each one Commit of kDelete ops). Tasks that
// have not finished are never touched. Thread-safe.
class Retention {
 public:
  Retention(TaskStore& store, RetentionOptions options);
  // Stops the sweeper (a sweep under way finishes its batch).
  ~Retention();
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  // Sweeps now, on the caller's thread: how many tasks it removed.
  absl::StatusOr<int64_t> SweepOnce();

 private:
  void Loop();

  TaskStore& store_;
  const RetentionOptions options_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_RETENTION_H_
