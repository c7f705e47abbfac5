#ifndef A2AMESH_TESTS_TESTING_STORE_COMMIT_H_
#define A2AMESH_TESTS_TESTING_STORE_COMMIT_H_

#include <utility>
#include <vector>

#include "a2amesh/task_store.h"
#include "absl/status/status.h"
#include "absl/synchronization/notification.h"

namespace a2amesh::testing {

// Commits `ops` to `store` and waits for their outcome.
inline absl::Status CommitAndWait(TaskStore& store, std::vector<TaskStoreOp> ops) {
  absl::Notification done;
  absl::Status result;
  store.Commit(std::move(ops), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_STORE_COMMIT_H_
