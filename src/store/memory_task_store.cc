#include "store/memory_task_store.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "store/stored_task.h"

namespace a2amesh::store {

MemoryTaskStore::MemoryTaskStore() = default;

MemoryTaskStore::~MemoryTaskStore() = default;

absl::Status MemoryTaskStore::Check(const std::vector<TaskStoreOp>& ops) {
  absl::flat_hash_set<std::string> created;
  for (const TaskStoreOp& op : ops) {
    bool exists = rows_.contains(op.task_id) || created.contains(op.task_id);
    switch (op.kind) {
      case TaskStoreOp::Kind::kCreate:
        if (exists) {
          return absl::AlreadyExistsError(absl::StrCat("task ", op.task_id, " already exists"));
        }
        created.insert(op.task_id);
        break;
      case TaskStoreOp::Kind::kEvent: {
        if (!exists) {
          return absl::NotFoundError(absl::StrCat("task ", op.task_id, " is not in the store"));
        }
        auto it = rows_.find(op.task_id);
        if (it != rows_.end() && it->second.events.count(op.seq) > 0) {
          return absl::AlreadyExistsError(
              absl::StrCat("task ", op.task_id, " already has event ", op.seq));
        }
        break;
      }
      case TaskStoreOp::Kind::kDelete:
        break;
      case TaskStoreOp::Kind::kSnapshot:
      case TaskStoreOp::Kind::kPutPushConfig:
      case TaskStoreOp::Kind::kDeletePushConfig:
      case TaskStoreOp::Kind::kSettlePushConfig:
      case TaskStoreOp::Kind::kSync:
        if (!exists) {
          return absl::NotFoundError(absl::StrCat("task ", op.task_id, " is not in the store"));
        }
        break;
    }
  }
  return absl::OkStatus();
}

void MemoryTaskStore::Apply(TaskStoreOp& op) {
  if (op.kind == TaskStoreOp::Kind::kSync) {
    return;
  }
  if (op.kind == TaskStoreOp::Kind::kDelete) {
    rows_.erase(op.task_id);
    return;
  }
  Row& row = rows_[op.task_id];
  switch (op.kind) {
    case TaskStoreOp::Kind::kSync:
    case TaskStoreOp::Kind::kDelete:
      break;
    case TaskStoreOp::Kind::kPutPushConfig:
      row.push_configs[op.config_id] = std::move(op.payload);
      row.settled_push_configs.erase(op.config_id);
      break;
    case TaskStoreOp::Kind::kDeletePushConfig:
      row.push_configs.erase(op.config_id);
      row.settled_push_configs.erase(op.config_id);
      break;
    case TaskStoreOp::Kind::kSettlePushConfig:
      if (row.push_configs.count(op.config_id) > 0) {
        row.settled_push_configs.insert(op.config_id);
      }
      break;
    case TaskStoreOp::Kind::kCreate:
      row.context_id = std::move(op.context_id);
      row.agent_id = std::move(op.agent_id);
      row.skill = std::move(op.skill);
      row.parent_id = std::move(op.parent_id);
      row.principal = std::move(op.principal);
      row.snapshot = std::move(op.payload);
      row.snapshot_seq = 0;
      row.info = std::move(op.info);
      row.state = op.state;
      row.status_unix_ms = op.status_unix_ms;
      row.last_seq = 0;
      break;
    case TaskStoreOp::Kind::kEvent:
      row.events.emplace(op.seq, std::move(op.payload));
      if (op.seq > row.last_seq) {
        row.last_seq = op.seq;
        row.state = op.state;
        row.status_unix_ms = op.status_unix_ms;
      }
      break;
    case TaskStoreOp::Kind::kSnapshot:
      row.snapshot = std::move(op.payload);
      row.snapshot_seq = op.seq;
      row.events.erase(row.events.begin(), row.events.upper_bound(op.seq));
      if (op.seq >= row.last_seq) {
        row.last_seq = op.seq;
        row.state = op.state;
        row.status_unix_ms = op.status_unix_ms;
      }
      break;
  }
}

absl::Status MemoryTaskStore::CheckAndApply(std::vector<TaskStoreOp>& ops) {
  absl::MutexLock lock(&mu_);
  A2AMESH_RETURN_IF_ERROR(Check(ops));
  for (TaskStoreOp& op : ops) {
    Apply(op);
  }
  return absl::OkStatus();
}

void MemoryTaskStore::Commit(std::vector<TaskStoreOp> ops, DoneCallback done) {
  done(CheckAndApply(ops));
}

void MemoryTaskStore::CommitLazily(std::vector<TaskStoreOp> ops, DoneCallback done) {
  done(CheckAndApply(ops));
}

void MemoryTaskStore::Append(std::vector<TaskStoreOp> ops) {
  if (absl::Status status = CheckAndApply(ops); !status.ok()) {
    A2AMESH_LOG(Error, "task store write failed").With("store", "memory").With("error", status);
  }
}

absl::StatusOr<StoredTask> MemoryTaskStore::Load(absl::string_view id, const Row& row) const {
  A2AMESH_ASSIGN_OR_RETURN(
      StoredTask task, ParseStoredTask(id, row.snapshot, row.snapshot_seq, row.last_seq, row.info));
  for (const auto& [seq, event] : row.events) {
    if (seq > row.snapshot_seq) {
      A2AMESH_RETURN_IF_ERROR(AppendStoredEvent(id, seq, event, &task));
    }
  }
  return task;
}

absl::StatusOr<StoredTask> MemoryTaskStore::Get(absl::string_view task_id) {
  absl::ReaderMutexLock lock(&mu_);
  auto it = rows_.find(task_id);
  if (it == rows_.end()) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " is not in the store"));
  }
  return Load(task_id, it->second);
}

absl::StatusOr<TaskPage> MemoryTaskStore::List(const TaskQuery& query) {
  absl::ReaderMutexLock lock(&mu_);
  const int64_t after_ms = query.status_after == absl::InfinitePast()
                               ? INT64_MIN
                               : absl::ToUnixMillis(query.status_after);
  std::vector<std::pair<int64_t, const std::string*>> matches;
  for (const auto& [id, row] : rows_) {
    if ((!query.context_id.empty() && row.context_id != query.context_id) ||
        (!query.agent_id.empty() && row.agent_id != query.agent_id &&
         !(query.agent_on_any_node && row.agent_id.size() > query.agent_id.size() &&
           absl::StartsWith(row.agent_id, query.agent_id) &&
           row.agent_id[query.agent_id.size()] == '@')) ||
        (!query.skill.empty() && row.skill != query.skill) ||
        (!query.parent_id.empty() && row.parent_id != query.parent_id) ||
        (!query.principal.empty() && row.principal != query.principal) ||
        (query.state != lf::a2a::v1::TASK_STATE_UNSPECIFIED && row.state != query.state) ||
        row.status_unix_ms <= after_ms) {
      continue;
    }
    matches.emplace_back(row.status_unix_ms, &id);
  }
  std::sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) {
    return NewerFirst(a.first, *a.second, b.first, *b.second);
  });
  TaskPage page;
  page.total = static_cast<int64_t>(matches.size());
  for (const auto& [ms, id] : matches) {
    if (query.has_cursor && !NewerFirst(query.cursor_status_unix_ms, query.cursor_id, ms, *id)) {
      continue;
    }
    if (static_cast<int>(page.tasks.size()) == query.page_size) {
      page.more = true;
      break;
    }
    A2AMESH_ASSIGN_OR_RETURN(StoredTask task, Load(*id, rows_.at(*id)));
    page.tasks.push_back(std::move(task));
    page.last_status_unix_ms = ms;
  }
  return page;
}

absl::StatusOr<std::vector<StoredTask>> MemoryTaskStore::LoadUnfinished() {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<StoredTask> tasks;
  for (const auto& [id, row] : rows_) {
    if (!IsTerminalState(row.state)) {
      A2AMESH_ASSIGN_OR_RETURN(StoredTask task, Load(id, row));
      tasks.push_back(std::move(task));
    }
  }
  return tasks;
}

absl::StatusOr<std::vector<std::string>> MemoryTaskStore::ExpiredTasks(absl::Time before,
                                                                       int64_t keep_at_most,
                                                                       int limit) {
  std::vector<std::pair<int64_t, std::string>> finished;  // (status time, id)
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, row] : rows_) {
      if (IsTerminalState(row.state)) finished.emplace_back(row.status_unix_ms, id);
    }
  }
  std::sort(finished.begin(), finished.end());
  const int64_t before_ms = absl::ToUnixMillis(before);
  const int64_t over =
      keep_at_most > 0 ? static_cast<int64_t>(finished.size()) - keep_at_most : int64_t{0};
  std::vector<std::string> ids;
  for (int64_t i = 0;
       i < static_cast<int64_t>(finished.size()) && static_cast<int>(ids.size()) < limit &&
       (finished[i].first < before_ms || i < over);
       ++i) {
    ids.push_back(std::move(finished[i].second));
  }
  return ids;
}

absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>>
MemoryTaskStore::ListPushConfigs(absl::string_view task_id) {
  absl::ReaderMutexLock lock(&mu_);
  std::map<std::string, const Row*> rows;  // by task id
  if (!task_id.empty()) {
    auto it = rows_.find(task_id);
    if (it != rows_.end()) rows.emplace(it->first, &it->second);
  } else {
    for (const auto& [id, row] : rows_) {
      if (!row.push_configs.empty()) rows.emplace(id, &row);
    }
  }
  std::vector<lf::a2a::v1::TaskPushNotificationConfig> configs;
  for (const auto& [id, row] : rows) {
    for (const auto& [config_id, payload] : row->push_configs) {
      if (task_id.empty() && row->settled_push_configs.contains(config_id)) continue;
      if (!configs.emplace_back().ParseFromString(payload)) {
        return absl::DataLossError(
            absl::StrCat("push config ", config_id, " of task ", id, " is corrupt"));
      }
    }
  }
  return configs;
}

void MemoryTaskStore::Flush() {}  // every write is done when Commit or Append returns

}  // namespace a2amesh::store
