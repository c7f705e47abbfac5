#include "tasks/retention.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/allocator.h"
#include "core/log.h"

namespace a2amesh::tasks {
namespace {

// Tasks removed per Commit: one transaction stays short, and readers and
// other writers get their turn between batches.
constexpr int kBatch = 500;

}  // namespace

Retention::Retention(TaskStore& store, RetentionOptions options)
    : store_(store), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

Retention::~Retention() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::StatusOr<int64_t> Retention::SweepOnce() {
  int64_t removed = 0;
  if (options_.ttl == absl::InfiniteDuration() && options_.max_finished <= 0) {
    return removed;  // kept forever: nothing to look for
  }
  for (;;) {
    const absl::Time before = options_.ttl == absl::InfiniteDuration() ? absl::InfinitePast()
                                                                       : absl::Now() - options_.ttl;
    absl::StatusOr<std::vector<std::string>> ids =
        store_.ExpiredTasks(before, options_.max_finished, kBatch);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) break;
    std::vector<TaskStoreOp> ops(ids->size());
    for (size_t i = 0; i < ids->size(); ++i) {
      ops[i].kind = TaskStoreOp::Kind::kDelete;
      ops[i].task_id = std::move((*ids)[i]);
    }
    absl::Status result;
    absl::Notification done;
    store_.Commit(std::move(ops), [&](absl::Status status) {
      result = std::move(status);
      done.Notify();
    });
    done.WaitForNotification();
    if (!result.ok()) return result;
    removed += static_cast<int64_t>(ids->size());
    options_.telemetry->TasksExpired(static_cast<int64_t>(ids->size()));
    if (static_cast<int>(ids->size()) < kBatch) break;
    absl::MutexLock lock(&mu_);
    if (stopping_) break;
  }
  return removed;
}

void Retention::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.interval)) return;
    }
    absl::StatusOr<int64_t> removed = SweepOnce();
    if (!removed.ok()) {
      A2AMESH_LOG(Warning, "task retention could not sweep the store")
          .With("error", removed.status().message());
    } else if (*removed > 0) {
      A2AMESH_LOG(Debug, "task retention removed finished tasks").With("tasks", *removed);
    }
    if (options_.trim_memory) ReleaseFreeMemory();
  }
}

}  // namespace a2amesh::tasks
