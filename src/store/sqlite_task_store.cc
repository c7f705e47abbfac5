#include "store/sqlite_task_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "store/stored_task.h"

namespace a2amesh::store {
namespace {

// 1: the first schema. 2: tasks.skill and tasks.parent_id (admin views and
// the subtask tree), filled in from each task's TaskInfo when upgrading.
// 3: push_configs (a version 2 store gains the empty table).
// 4: push_configs.settled: whether a config's watch delivered its task's end
// (a version 3 store marks the configs of its ended tasks settled, as they
// were treated before).
// 5: tasks.principal (ListTasks answers a caller its own tasks), filled in
// from each task's TaskInfo when upgrading.
constexpr int kSchemaVersion = 5;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tasks (
  id           TEXT PRIMARY KEY,
  context_id   TEXT NOT NULL,
  agent_id     TEXT NOT NULL,
  state        INTEGER NOT NULL,
  status_ms    INTEGER NOT NULL,
  last_seq     INTEGER NOT NULL,
  snapshot     BLOB NOT NULL,
  snapshot_seq INTEGER NOT NULL,
  info         BLOB NOT NULL,
  skill        TEXT NOT NULL DEFAULT '',
  parent_id    TEXT NOT NULL DEFAULT '',
  principal    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_by_status_time ON tasks (status_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_by_context ON tasks (context_id, status_ms DESC);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state);
CREATE INDEX IF NOT EXISTS tasks_by_parent ON tasks (parent_id) WHERE parent_id != '';
CREATE INDEX IF NOT EXISTS tasks_by_principal ON tasks (principal, status_ms DESC)
  WHERE principal != '';
CREATE TABLE IF NOT EXISTS events (
  task_id TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  event   BLOB NOT NULL,
  PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS push_configs (
  task_id TEXT NOT NULL,
  id      TEXT NOT NULL,
  config  BLOB NOT NULL,
  settled INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, id)
) WITHOUT ROWID;
)sql";

// A prepared statement, finalized on destruction. Not thread-safe.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status prepared() const {
    return rc_ == SQLITE_OK
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  Statement& Bind(int i, absl::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindBlob(int i, absl::string_view blob) {
    sqlite3_bind_blob(stmt_, i, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& Bind(int i, int64_t value) {
    sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  // Makes a cached statement ready for its next use.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // The index of a named parameter such as ":id", or 0 if the statement has none.
  int ParamIndex(const char* name) { return sqlite3_bind_parameter_index(stmt_, name); }
  int ParamCount() { return sqlite3_bind_parameter_count(stmt_); }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  absl::string_view Blob(int col) {
    const void* data = sqlite3_column_blob(stmt_, col);
    int size = sqlite3_column_bytes(stmt_, col);
    return data == nullptr ? absl::string_view()
                           : absl::string_view(static_cast<const char*>(data), size);
  }
  absl::string_view Text(int col) {
    const unsigned char* data = sqlite3_column_text(stmt_, col);
    int size = sqlite3_column_bytes(stmt_, col);
    return data == nullptr ? absl::string_view()
                           : absl::string_view(reinterpret_cast<const char*>(data), size);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// Resets a cached statement when it goes out of scope.
class Use {
 public:
  explicit Use(Statement& statement) : statement_(statement) {}
  ~Use() { statement_.Reset(); }
  Statement* operator->() { return &statement_; }
  Statement& operator*() { return statement_; }

 private:
  Statement& statement_;
};

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  int code = sqlite3_extended_errcode(db);
  std::string message = absl::StrCat(what, ": ", sqlite3_errmsg(db));
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<sqlite3*> OpenDb(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = absl::StrCat("cannot open task store ", path, ": ",
                                       db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return absl::UnavailableError(message);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

// In one transaction: adds columns to `tasks` (`alters`, ALTER TABLE
// statements), then fills them in for every task from its TaskInfo with
// `update` (an UPDATE whose last parameter is the task id), its other
// parameters bound by `bind`, which returns false to leave a task as it is.
absl::Status AddTaskColumnsFromInfo(
    sqlite3* db, const std::string& path, std::initializer_list<const char*> alters,
    const char* update_sql,
    const std::function<bool(const v1::TaskInfo& info, Statement& update)>& bind) {
  auto exec = [&](const char* sql) -> absl::Status {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return SqliteError(db, absl::StrCat("upgrading task store ", path));
    }
    return absl::OkStatus();
  };
  A2AMESH_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
  absl::Status status;
  for (const char* alter : alters) {
    if (status.ok()) status = exec(alter);
  }
  if (status.ok()) {
    Statement rows(db, "SELECT id, info FROM tasks");
    Statement update(db, update_sql);
    status = rows.prepared();
    if (status.ok()) status = update.prepared();
    const int id_param = update.ParamCount();
    while (status.ok() && rows.Step() == SQLITE_ROW) {
      v1::TaskInfo info;
      absl::string_view blob = rows.Blob(1);
      if (!info.ParseFromArray(blob.data(), static_cast<int>(blob.size())) || !bind(info, update)) {
        continue;  // unreadable info, or nothing to fill in: the columns stay empty
      }
      update.Bind(id_param, rows.Text(0));
      if (update.Step() != SQLITE_DONE) {
        status = SqliteError(db, absl::StrCat("upgrading task store ", path, ": ", update_sql));
      }
      update.Reset();
    }
  }
  if (status.ok()) {
    return exec("COMMIT");
  }
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

// Version 1 stores lack tasks.skill and tasks.parent_id.
absl::Status UpgradeFromVersion1(sqlite3* db, const std::string& path) {
  return AddTaskColumnsFromInfo(db, path,
                                {"ALTER TABLE tasks ADD COLUMN skill TEXT NOT NULL DEFAULT ''",
                                 "ALTER TABLE tasks ADD COLUMN parent_id TEXT NOT NULL DEFAULT ''"},
                                "UPDATE tasks SET skill = ?1, parent_id = ?2 WHERE id = ?3",
                                [](const v1::TaskInfo& info, Statement& update) {
                                  update.Bind(1, info.skill()).Bind(2, info.parent_task_id());
                                  return true;
                                });
}

absl::Status UpgradeFromVersion3(sqlite3* db, const std::string& path) {
  constexpr const char* kUpgrade =
      "BEGIN IMMEDIATE;"
      "ALTER TABLE push_configs ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;"
      "UPDATE push_configs SET settled = 1 "
      "WHERE task_id IN (SELECT id FROM tasks WHERE state IN (3, 4, 5, 7));"
      "COMMIT;";
  if (sqlite3_exec(db, kUpgrade, nullptr, nullptr, nullptr) != SQLITE_OK) {
    absl::Status status = SqliteError(db, absl::StrCat("upgrading task store ", path));
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }
  return absl::OkStatus();
}

// Stores before version 5 lack tasks.principal.
absl::Status UpgradeToVersion5(sqlite3* db, const std::string& path) {
  return AddTaskColumnsFromInfo(db, path,
                                {"ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT ''"},
                                "UPDATE tasks SET principal = ?1 WHERE id = ?2",
                                [](const v1::TaskInfo& info, Statement& update) {
                                  if (info.principal().empty()) return false;
                                  update.Bind(1, info.principal());
                                  return true;
                                });
}

}  // namespace

struct SqliteTaskStore::WriterStatements {
  explicit WriterStatements(sqlite3* db)
      : insert_task(db,
                    "INSERT INTO tasks (id, context_id, agent_id, state, status_ms, last_seq, "
                    "snapshot, snapshot_seq, info, skill, parent_id, principal) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?10, ?6, ?10, ?7, ?8, ?9, ?11)"),
        exists(db, "SELECT 1 FROM tasks WHERE id = ?1"),
        insert_event(db, "INSERT INTO events (task_id, seq, event) VALUES (?1, ?2, ?3)"),
        put_snapshot(db,
                     "UPDATE tasks SET snapshot = ?1, snapshot_seq = ?2 "
                     "WHERE id = ?3 AND snapshot_seq <= ?2"),
        trim_events(db, "DELETE FROM events WHERE task_id = ?1 AND seq <= ?2"),
        update_summary(db,
                       "UPDATE tasks SET state = ?1, status_ms = ?2, last_seq = ?3 "
                       "WHERE id = ?4 AND last_seq <= ?3"),
        put_push_config(db,
                        "INSERT OR REPLACE INTO push_configs (task_id, id, config) "
                        "VALUES (?1, ?2, ?3)"),
        delete_push_config(db, "DELETE FROM push_configs WHERE task_id = ?1 AND id = ?2"),
        settle_push_config(db,
                           "UPDATE push_configs SET settled = 1 WHERE task_id = ?1 AND id = ?2"),
        delete_task(db, "DELETE FROM tasks WHERE id = ?1"),
        delete_events(db, "DELETE FROM events WHERE task_id = ?1"),
        delete_push_configs(db, "DELETE FROM push_configs WHERE task_id = ?1"),
        begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        savepoint(db, "SAVEPOINT w"),
        release(db, "RELEASE w"),
        rollback_to(db, "ROLLBACK TO w") {}

  absl::Status prepared() const {
    for (const Statement* s :
         {&insert_task, &exists, &insert_event, &put_snapshot, &trim_events, &update_summary,
          &put_push_config, &delete_push_config, &settle_push_config, &delete_task, &delete_events,
          &delete_push_configs, &begin, &commit, &savepoint, &release, &rollback_to}) {
      A2AMESH_RETURN_IF_ERROR(s->prepared());
    }
    return absl::OkStatus();
  }

  Statement insert_task;
  Statement exists;
  Statement insert_event;
  Statement put_snapshot;
  Statement trim_events;
  Statement update_summary;
  Statement put_push_config;
  Statement delete_push_config;
  Statement settle_push_config;
  Statement delete_task;
  Statement delete_events;
  Statement delete_push_configs;
  // Transaction control, prepared once rather than parsed per write.
  Statement begin;
  Statement commit;
  Statement savepoint;
  Statement release;
  Statement rollback_to;
};

// Within one transaction: which tasks are known to exist, which events a
// snapshot later in the same batch trims anyway (they are not written at all),
// and each task's newest summary (state, status time, last sequence), written
// once per task when the batch ends rather than once per event: each summary
// write updates three indexes. A task created and ended in the same batch (a
// short task whose create rode along with its answer) is inserted once, in its
// final form. What a write learns counts only once its savepoint is released.
//
// Writes of one batch are atomic together only through the transaction, so
// skipping rows that a later write in the batch replaces relies on that later
// write succeeding: it can fail alone only if its task is missing, and then
// there is nothing to replace.
struct SqliteTaskStore::BatchState {
  struct Summary {
    int64_t seq = -1;
    int64_t state = 0;
    int64_t status_unix_ms = 0;
  };

  explicit BatchState(const std::vector<Pending>& batch) {
    for (const Pending& pending : batch) {
      for (const TaskStoreOp& op : pending.ops) {
        if (op.kind == TaskStoreOp::Kind::kSnapshot) {
          const TaskStoreOp*& last = snapshots[op.task_id];
          if (last == nullptr || op.seq > last->seq) {
            last = &op;
          }
        }
      }
    }
  }

  // Whether event `seq` of `task_id` is trimmed by a snapshot in this batch.
  bool Superseded(absl::string_view task_id, int64_t seq) const {
    auto it = snapshots.find(task_id);
    return it != snapshots.end() && seq <= it->second->seq;
  }
  // The last snapshot of `task_id` in this batch, if any.
  const TaskStoreOp* Snapshot(absl::string_view task_id) const {
    auto it = snapshots.find(task_id);
    return it == snapshots.end() ? nullptr : it->second;
  }
  // Whether the row of `task_id` was written as of `seq` already.
  bool Written(absl::string_view task_id, int64_t seq) const {
    auto it = inserted_final.find(task_id);
    return it != inserted_final.end() && seq <= it->second;
  }

  // The ops of a write whose savepoint was released.
  void Released(const std::vector<TaskStoreOp>& ops) {
    for (const TaskStoreOp& op : ops) {
      known.insert(op.task_id);
      if (op.kind == TaskStoreOp::Kind::kEvent || op.kind == TaskStoreOp::Kind::kSnapshot) {
        Summary& summary = summaries[op.task_id];
        if (op.seq >= summary.seq) {
          summary = Summary{op.seq, static_cast<int64_t>(op.state), op.status_unix_ms};
        }
      }
    }
    known_here.clear();
  }
  void RolledBack() { known_here.clear(); }

  absl::flat_hash_map<absl::string_view, const TaskStoreOp*> snapshots;
  // Tasks inserted in their final form, and as of which event.
  absl::flat_hash_map<absl::string_view, int64_t> inserted_final;
  // Tasks that exist, as of the last released savepoint and within the
  // current one.
  absl::flat_hash_set<absl::string_view> known;
  absl::flat_hash_set<absl::string_view> known_here;
  absl::flat_hash_map<absl::string_view, Summary> summaries;
  // Whether a task was deleted: the free pages go back to the file system.
  bool deleted = false;
};

absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(const Options& options) {
  A2AMESH_ASSIGN_OR_RETURN(sqlite3 * write_db, OpenDb(options.path));
  auto exec = [&](const char* sql) -> absl::Status {
    char* error = nullptr;
    if (sqlite3_exec(write_db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      absl::Status status = absl::UnavailableError(
          absl::StrCat("task store ", options.path, ": ", error != nullptr ? error : "?"));
      sqlite3_free(error);
      return status;
    }
    return absl::OkStatus();
  };
  // The schema version first: it is a read, and it says whether this is a
  // new file.
  int64_t found_version = 0;
  absl::Status status;
  {
    Statement version(write_db, "PRAGMA user_version");
    status = version.prepared();
    if (status.ok() && version.Step() == SQLITE_ROW) {
      found_version = version.Int(0);
    }
    if (status.ok() && found_version > kSchemaVersion) {
      status = absl::FailedPreconditionError(absl::StrCat(
          "task store ", options.path, " has schema version ", found_version,
          "; this meshd understands up to ", kSchemaVersion, " (a newer meshd wrote it)"));
    }
  }
  // A new store gives the pages of removed tasks back to the file system
  // (retention runs incremental_vacuum). It takes effect only in a file that
  // has no page yet -- before WAL mode writes the first -- and is a no-op on
  // an older store, which reuses the pages for new tasks instead. Only on a
  // new file: the pragma is a write transaction (page 1's meta, three
  // fdatasyncs in WAL mode) even when it changes nothing, which was most of
  // what opening an up-to-date store cost at start-up.
  if (status.ok() && found_version == 0) status = exec("PRAGMA auto_vacuum=INCREMENTAL");
  if (status.ok()) status = exec("PRAGMA journal_mode=WAL");
  if (status.ok()) {
    status = exec(options.fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  }
  if (status.ok() && found_version == 1) {
    status = UpgradeFromVersion1(write_db, options.path);
  }
  if (status.ok() && found_version == 3) {
    status = UpgradeFromVersion3(write_db, options.path);
  }
  if (status.ok() && found_version >= 1 && found_version < 5) {
    status = UpgradeToVersion5(write_db, options.path);
  }
  // A store of this version opens without writing anything (no transaction,
  // no fsync); a new or older one gets the schema and its version at once.
  if (status.ok() && found_version != kSchemaVersion) {
    status = exec(absl::StrCat("BEGIN IMMEDIATE;", kSchema, "PRAGMA user_version=", kSchemaVersion,
                               ";COMMIT;")
                      .c_str());
    if (!status.ok()) {
      sqlite3_exec(write_db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  if (!status.ok()) {
    sqlite3_close(write_db);
    return status;
  }
  auto statements = std::make_unique<WriterStatements>(write_db);
  if (absl::Status prepared = statements->prepared(); !prepared.ok()) {
    statements.reset();
    sqlite3_close(write_db);
    return prepared;
  }
  absl::StatusOr<sqlite3*> read_db = OpenDb(options.path);
  if (!read_db.ok()) {
    statements.reset();
    sqlite3_close(write_db);
    return read_db.status();
  }
  return std::unique_ptr<SqliteTaskStore>(
      new SqliteTaskStore(options, write_db, *read_db, std::move(statements)));
}

SqliteTaskStore::SqliteTaskStore(const Options& options, sqlite3* write_db, sqlite3* read_db,
                                 std::unique_ptr<WriterStatements> statements)
    : path_(options.path),
      max_lazy_delay_(options.max_lazy_delay),
      max_lazy_bytes_(options.max_lazy_bytes),
      max_lazy_commit_delay_(options.max_lazy_commit_delay),
      telemetry_(options.telemetry),
      write_db_(write_db),
      statements_(std::move(statements)),
      read_db_(read_db) {
  writer_ = std::thread([this] { WriterLoop(); });
}

SqliteTaskStore::~SqliteTaskStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  statements_.reset();  // finalized before their connection closes
  sqlite3_close(write_db_);
  absl::MutexLock lock(&read_mu_);
  sqlite3_close(read_db_);
}

void SqliteTaskStore::Commit(std::vector<TaskStoreOp> ops, DoneCallback done) {
  absl::MutexLock lock(&mu_);
  Pending& pending = queue_.emplace_back();
  pending.ops = std::move(ops);
  pending.done = std::move(done);
  pending.seq = ++submitted_;
  ++waiting_;
}

void SqliteTaskStore::CommitLazily(std::vector<TaskStoreOp> ops, DoneCallback done) {
  QueueLazy(std::move(ops), std::move(done));
}

void SqliteTaskStore::Append(std::vector<TaskStoreOp> ops) { QueueLazy(std::move(ops), nullptr); }

void SqliteTaskStore::QueueLazy(std::vector<TaskStoreOp> ops, DoneCallback done) {
  size_t bytes = 1;
  for (const TaskStoreOp& op : ops) {
    bytes += op.payload.size() + op.info.size();
  }
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (lazy_bytes_ == 0) {
    oldest_lazy_ = now;
  }
  lazy_bytes_ += bytes;
  if (done) {
    lazy_commit_due_ = std::min(lazy_commit_due_, now + max_lazy_commit_delay_);
  }
  Pending& pending = queue_.emplace_back();
  pending.ops = std::move(ops);
  pending.done = std::move(done);
  pending.seq = ++submitted_;
  pending.queued_at = now;
  pending.bytes = bytes;
}

void SqliteTaskStore::Flush() {
  absl::MutexLock lock(&mu_);
  const int64_t target = submitted_;
  ++flushing_;
  auto flushed = [this, target]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_below_ > target; };
  mu_.Await(absl::Condition(&flushed));
  --flushing_;
}

bool SqliteTaskStore::MustWriteLocked() const {
  return stopping_ || waiting_ > 0 || flushing_ > 0 || lazy_bytes_ >= max_lazy_bytes_;
}

void SqliteTaskStore::TakeBatchLocked(std::vector<Pending>* batch) {
  const bool everything = stopping_ || flushing_ > 0 || lazy_bytes_ >= max_lazy_bytes_;
  waiting_ = 0;
  // Every Commit is taken, lazy ones included.
  lazy_commit_due_ = absl::InfiniteFuture();
  if (everything) {
    batch->swap(queue_);
    lazy_bytes_ = 0;
    return;
  }
  // Tasks with a Commit queued: their earlier Appends go with it.
  absl::flat_hash_set<absl::string_view> committing;
  for (const Pending& pending : queue_) {
    if (pending.done) {
      for (const TaskStoreOp& op : pending.ops) {
        committing.insert(op.task_id);
      }
    }
  }
  const absl::Time cutoff = absl::Now() - max_lazy_delay_;
  std::vector<bool> take(queue_.size());
  for (size_t i = 0; i < queue_.size(); ++i) {
    const Pending& pending = queue_[i];
    take[i] = pending.done || pending.queued_at <= cutoff || pending.ops.empty() ||
              committing.contains(pending.ops.front().task_id);
  }
  std::vector<Pending> kept;
  lazy_bytes_ = 0;
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (take[i]) {
      batch->push_back(std::move(queue_[i]));
    } else {
      if (lazy_bytes_ == 0) {
        oldest_lazy_ = queue_[i].queued_at;
      }
      lazy_bytes_ += queue_[i].bytes;
      kept.push_back(std::move(queue_[i]));
    }
  }
  queue_.swap(kept);
}

void SqliteTaskStore::WriterLoop() {
  while (true) {
    std::vector<Pending> batch;
    {
      absl::MutexLock lock(&mu_);
      auto must_write = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return MustWriteLocked(); };
      auto queued = [this]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
      while (true) {
        if (queue_.empty()) {
          if (stopping_) {
            return;  // everything queued is written
          }
          mu_.Await(absl::Condition(&queued));
          continue;
        }
        if (MustWriteLocked()) {
          break;
        }
        // Only Appends and lazy commits: write them when the oldest has
        // waited long enough, unless a reason to write comes first.
        const absl::Time due = std::min(oldest_lazy_ + max_lazy_delay_, lazy_commit_due_);
        if (absl::Now() >= due) {
          break;
        }
        mu_.AwaitWithDeadline(absl::Condition(&must_write), due);
      }
      TakeBatchLocked(&batch);
    }
    std::vector<absl::Status> results = WriteBatch(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) {
        batch[i].done(std::move(results[i]));
      } else if (!results[i].ok()) {
        A2AMESH_LOG(Error, "task store write failed").With("path", path_).With("error", results[i]);
      }
    }
    absl::MutexLock lock(&mu_);
    done_below_ = queue_.empty() ? submitted_ + 1 : queue_.front().seq;
  }
}

std::vector<absl::Status> SqliteTaskStore::WriteBatch(std::vector<Pending>& batch) {
  WriterStatements& st = *statements_;
  auto step = [this](Statement& statement, const char* what) -> absl::Status {
    Use use(statement);
    if (use->Step() != SQLITE_DONE) {
      return SqliteError(write_db_, absl::StrCat("task store ", path_, ": ", what));
    }
    return absl::OkStatus();
  };
  std::vector<absl::Status> results(batch.size());
  const absl::Time started = absl::Now();
  absl::Status txn = step(st.begin, "BEGIN");
  BatchState state(batch);
  for (size_t i = 0; txn.ok() && i < batch.size(); ++i) {
    std::vector<TaskStoreOp>& ops = batch[i].ops;
    // A write of one statement fails alone without a savepoint: SQLite backs
    // out a failed statement and keeps the transaction.
    const bool single = ops.size() == 1 && ops[0].kind != TaskStoreOp::Kind::kSnapshot;
    if (!single) {
      txn = step(st.savepoint, "SAVEPOINT");
      if (!txn.ok()) {
        break;
      }
    }
    results[i] = ApplyOps(ops, state);
    if (!results[i].ok()) {
      state.RolledBack();
      if (!single) {
        txn = step(st.rollback_to, "ROLLBACK TO");
      }
    } else {
      state.Released(ops);
    }
    if (txn.ok() && !single) {
      txn = step(st.release, "RELEASE");
    }
  }
  // Summaries move forward, never back.
  for (const auto& [task_id, summary] : state.summaries) {
    if (!txn.ok()) {
      break;
    }
    if (state.Written(task_id, summary.seq)) {
      continue;
    }
    Use update(st.update_summary);
    update->Bind(1, summary.state)
        .Bind(2, summary.status_unix_ms)
        .Bind(3, summary.seq)
        .Bind(4, task_id);
    if (update->Step() != SQLITE_DONE) {
      txn = SqliteError(write_db_, absl::StrCat("update task ", task_id));
    }
  }
  if (txn.ok()) {
    txn = step(st.commit, "COMMIT");
  }
  if (txn.ok() && state.deleted) {
    // Retention removed tasks: give their pages back (auto_vacuum is
    // incremental) and keep the WAL file from growing with them.
    sqlite3_exec(write_db_, "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);", nullptr,
                 nullptr, nullptr);
  }
  telemetry_->StoreCommitted(absl::Now() - started, txn.ok());
  if (!txn.ok()) {
    sqlite3_exec(write_db_, "ROLLBACK", nullptr, nullptr, nullptr);
    A2AMESH_LOG(Error, "task store write failed").With("path", path_).With("error", txn);
    for (absl::Status& result : results) {
      result = txn;
    }
  }
  return results;
}

absl::Status SqliteTaskStore::ApplyOps(std::vector<TaskStoreOp>& ops, BatchState& batch) {
  for (TaskStoreOp& op : ops) {
    A2AMESH_RETURN_IF_ERROR(ApplyOp(op, batch));
  }
  return absl::OkStatus();
}

absl::Status SqliteTaskStore::ApplyOp(TaskStoreOp& op, BatchState& batch) {
  sqlite3* db = write_db_;
  WriterStatements& st = *statements_;
  auto missing = [&]() -> absl::Status {
    if (batch.known.contains(op.task_id) || batch.known_here.contains(op.task_id)) {
      return absl::OkStatus();
    }
    Use exists(st.exists);
    exists->Bind(1, op.task_id);
    if (exists->Step() != SQLITE_ROW) {
      return absl::NotFoundError(absl::StrCat("task ", op.task_id, " is not in the store"));
    }
    batch.known_here.insert(op.task_id);
    return absl::OkStatus();
  };
  switch (op.kind) {
    case TaskStoreOp::Kind::kSync:
      return missing();
    case TaskStoreOp::Kind::kDelete: {
      for (Statement* statement : {&st.delete_events, &st.delete_push_configs, &st.delete_task}) {
        Use remove(*statement);
        remove->Bind(1, op.task_id);
        if (remove->Step() != SQLITE_DONE) {
          return SqliteError(db, absl::StrCat("delete task ", op.task_id));
        }
      }
      batch.deleted = true;
      return absl::OkStatus();
    }
    case TaskStoreOp::Kind::kPutPushConfig: {
      A2AMESH_RETURN_IF_ERROR(missing());
      Use put(st.put_push_config);
      put->Bind(1, op.task_id).Bind(2, op.config_id).BindBlob(3, op.payload);
      if (put->Step() != SQLITE_DONE) {
        return SqliteError(db,
                           absl::StrCat("put push config ", op.config_id, " of task ", op.task_id));
      }
      return absl::OkStatus();
    }
    case TaskStoreOp::Kind::kDeletePushConfig: {
      A2AMESH_RETURN_IF_ERROR(missing());
      Use remove(st.delete_push_config);
      remove->Bind(1, op.task_id).Bind(2, op.config_id);
      if (remove->Step() != SQLITE_DONE) {
        return SqliteError(
            db, absl::StrCat("delete push config ", op.config_id, " of task ", op.task_id));
      }
      return absl::OkStatus();
    }
    case TaskStoreOp::Kind::kSettlePushConfig: {
      A2AMESH_RETURN_IF_ERROR(missing());
      Use settle(st.settle_push_config);
      settle->Bind(1, op.task_id).Bind(2, op.config_id);
      if (settle->Step() != SQLITE_DONE) {
        return SqliteError(
            db, absl::StrCat("settle push config ", op.config_id, " of task ", op.task_id));
      }
      return absl::OkStatus();
    }
    case TaskStoreOp::Kind::kCreate: {
      // Ended in this same batch: the row goes in as it ends.
      const TaskStoreOp* last = batch.Snapshot(op.task_id);
      const TaskStoreOp& row = last != nullptr ? *last : op;
      Use insert(st.insert_task);
      insert->Bind(1, op.task_id)
          .Bind(2, op.context_id)
          .Bind(3, op.agent_id)
          .Bind(4, static_cast<int64_t>(row.state))
          .Bind(5, row.status_unix_ms)
          .BindBlob(6, row.payload)
          .BindBlob(7, op.info)
          .Bind(8, op.skill)
          .Bind(9, op.parent_id)
          .Bind(10, last != nullptr ? last->seq : int64_t{0})
          .Bind(11, op.principal);
      if (insert->Step() != SQLITE_DONE) {
        return SqliteError(db, absl::StrCat("create task ", op.task_id));
      }
      batch.known_here.insert(op.task_id);
      if (last != nullptr) {
        batch.inserted_final[op.task_id] = last->seq;
      }
      return absl::OkStatus();
    }
    case TaskStoreOp::Kind::kEvent: {
      A2AMESH_RETURN_IF_ERROR(missing());
      if (batch.Superseded(op.task_id, op.seq)) {
        return absl::OkStatus();  // a snapshot in this batch replaces it
      }
      Use insert(st.insert_event);
      insert->Bind(1, op.task_id).Bind(2, op.seq).BindBlob(3, op.payload);
      if (insert->Step() != SQLITE_DONE) {
        return SqliteError(db, absl::StrCat("append event ", op.seq, " of task ", op.task_id));
      }
      return absl::OkStatus();
    }
    case TaskStoreOp::Kind::kSnapshot: {
      A2AMESH_RETURN_IF_ERROR(missing());
      if (batch.Written(op.task_id, op.seq)) {
        return absl::OkStatus();  // inserted as of this snapshot, with no events
      }
      {
        Use put(st.put_snapshot);
        put->BindBlob(1, op.payload).Bind(2, op.seq).Bind(3, op.task_id);
        if (put->Step() != SQLITE_DONE) {
          return SqliteError(db, absl::StrCat("snapshot task ", op.task_id));
        }
      }
      Use trim(st.trim_events);
      trim->Bind(1, op.task_id).Bind(2, op.seq);
      if (trim->Step() != SQLITE_DONE) {
        return SqliteError(db, absl::StrCat("trim events of task ", op.task_id));
      }
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StoredTask> SqliteTaskStore::LoadEventsLocked(absl::string_view task_id,
                                                             StoredTask task) {
  Statement events(read_db_,
                   "SELECT seq, event FROM events WHERE task_id = ?1 AND seq > ?2 ORDER BY seq");
  A2AMESH_RETURN_IF_ERROR(events.prepared());
  events.Bind(1, task_id).Bind(2, task.snapshot_seq);
  int rc;
  while ((rc = events.Step()) == SQLITE_ROW) {
    A2AMESH_RETURN_IF_ERROR(AppendStoredEvent(task_id, events.Int(0), events.Blob(1), &task));
  }
  if (rc != SQLITE_DONE) {
    return SqliteError(read_db_, absl::StrCat("read events of task ", task_id));
  }
  return task;
}

absl::StatusOr<StoredTask> SqliteTaskStore::LoadLocked(absl::string_view task_id) {
  Statement row(read_db_, "SELECT snapshot, snapshot_seq, last_seq, info FROM tasks WHERE id = ?1");
  A2AMESH_RETURN_IF_ERROR(row.prepared());
  row.Bind(1, task_id);
  int rc = row.Step();
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " is not in the store"));
  }
  if (rc != SQLITE_ROW) {
    return SqliteError(read_db_, absl::StrCat("read task ", task_id));
  }
  A2AMESH_ASSIGN_OR_RETURN(
      StoredTask task, ParseStoredTask(task_id, row.Blob(0), row.Int(1), row.Int(2), row.Blob(3)));
  return LoadEventsLocked(task_id, std::move(task));
}

absl::StatusOr<StoredTask> SqliteTaskStore::Get(absl::string_view task_id) {
  absl::MutexLock lock(&read_mu_);
  return LoadLocked(task_id);
}

absl::StatusOr<TaskPage> SqliteTaskStore::List(const TaskQuery& query) {
  std::string where = "WHERE 1";
  if (!query.context_id.empty()) {
    where += " AND context_id = :context";
  }
  if (!query.agent_id.empty()) {
    // Every "echo@..." sorts from "echo@" up to (not to) "echoA" ('@' + 1).
    where += query.agent_on_any_node ? " AND (agent_id = :agent OR (agent_id >= :agent || '@' AND "
                                       "agent_id < :agent || 'A'))"
                                     : " AND agent_id = :agent";
  }
  if (!query.skill.empty()) {
    where += " AND skill = :skill";
  }
  if (!query.parent_id.empty()) {
    where += " AND parent_id = :parent";
  }
  if (!query.principal.empty()) {
    where += " AND principal = :principal";
  }
  if (query.state != lf::a2a::v1::TASK_STATE_UNSPECIFIED) {
    where += " AND state = :state";
  }
  if (query.status_after != absl::InfinitePast()) {
    where += " AND status_ms > :after";
  }
  std::string page_where = where;
  if (query.has_cursor) {
    page_where += " AND (status_ms < :cms OR (status_ms = :cms AND id < :cid))";
  }
  std::string count_sql = absl::StrCat("SELECT COUNT(*) FROM tasks ", where);
  std::string page_sql =
      absl::StrCat("SELECT id, status_ms, snapshot, snapshot_seq, last_seq, info FROM tasks ",
                   page_where, " ORDER BY status_ms DESC, id DESC LIMIT :limit");

  auto bind = [&](Statement& stmt) {
    if (int i = stmt.ParamIndex(":context")) stmt.Bind(i, query.context_id);
    if (int i = stmt.ParamIndex(":agent")) stmt.Bind(i, query.agent_id);
    if (int i = stmt.ParamIndex(":skill")) stmt.Bind(i, query.skill);
    if (int i = stmt.ParamIndex(":parent")) stmt.Bind(i, query.parent_id);
    if (int i = stmt.ParamIndex(":principal")) stmt.Bind(i, query.principal);
    if (int i = stmt.ParamIndex(":state")) stmt.Bind(i, static_cast<int64_t>(query.state));
    if (int i = stmt.ParamIndex(":after")) stmt.Bind(i, absl::ToUnixMillis(query.status_after));
    if (int i = stmt.ParamIndex(":cms")) stmt.Bind(i, query.cursor_status_unix_ms);
    if (int i = stmt.ParamIndex(":cid")) stmt.Bind(i, query.cursor_id);
    if (int i = stmt.ParamIndex(":limit")) stmt.Bind(i, static_cast<int64_t>(query.page_size) + 1);
  };

  absl::MutexLock lock(&read_mu_);
  TaskPage page;
  Statement count(read_db_, count_sql.c_str());
  A2AMESH_RETURN_IF_ERROR(count.prepared());
  bind(count);
  if (count.Step() != SQLITE_ROW) {
    return SqliteError(read_db_, "count tasks");
  }
  page.total = count.Int(0);

  Statement rows(read_db_, page_sql.c_str());
  A2AMESH_RETURN_IF_ERROR(rows.prepared());
  bind(rows);
  int rc;
  while ((rc = rows.Step()) == SQLITE_ROW) {
    if (static_cast<int>(page.tasks.size()) == query.page_size) {
      page.more = true;
      break;
    }
    std::string id(rows.Text(0));
    A2AMESH_ASSIGN_OR_RETURN(
        StoredTask task, ParseStoredTask(id, rows.Blob(2), rows.Int(3), rows.Int(4), rows.Blob(5)));
    A2AMESH_ASSIGN_OR_RETURN(task, LoadEventsLocked(id, std::move(task)));
    page.tasks.push_back(std::move(task));
    page.last_status_unix_ms = rows.Int(1);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return SqliteError(read_db_, "list tasks");
  }
  return page;
}

absl::StatusOr<std::vector<StoredTask>> SqliteTaskStore::LoadUnfinished() {
  absl::MutexLock lock(&read_mu_);
  std::vector<std::string> ids;
  {
    Statement rows(read_db_, "SELECT id FROM tasks WHERE state NOT IN (3, 4, 5, 7)");
    A2AMESH_RETURN_IF_ERROR(rows.prepared());
    int rc;
    while ((rc = rows.Step()) == SQLITE_ROW) {
      ids.emplace_back(rows.Text(0));
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(read_db_, "list unfinished tasks");
    }
  }
  std::vector<StoredTask> tasks;
  tasks.reserve(ids.size());
  for (const std::string& id : ids) {
    A2AMESH_ASSIGN_OR_RETURN(StoredTask task, LoadLocked(id));
    tasks.push_back(std::move(task));
  }
  return tasks;
}

absl::StatusOr<std::vector<std::string>> SqliteTaskStore::ExpiredTasks(absl::Time before,
                                                                       int64_t keep_at_most,
                                                                       int limit) {
  absl::MutexLock lock(&read_mu_);
  std::vector<std::string> ids;
  auto collect = [&](Statement& rows, const char* what) -> absl::Status {
    int rc;
    while ((rc = rows.Step()) == SQLITE_ROW) ids.emplace_back(rows.Text(0));
    return rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(read_db_, what);
  };
  int64_t over = 0;
  if (keep_at_most > 0) {
    Statement count(read_db_, "SELECT COUNT(*) FROM tasks WHERE state IN (3, 4, 5, 7)");
    A2AMESH_RETURN_IF_ERROR(count.prepared());
    if (count.Step() != SQLITE_ROW) return SqliteError(read_db_, "count finished tasks");
    over = std::max<int64_t>(0, count.Int(0) - keep_at_most);
  }
  // The oldest finished tasks: past their time, or beyond the cap.
  Statement rows(read_db_,
                 "SELECT id FROM tasks WHERE state IN (3, 4, 5, 7) "
                 "ORDER BY status_ms, id LIMIT ?1");
  A2AMESH_RETURN_IF_ERROR(rows.prepared());
  rows.Bind(1, static_cast<int64_t>(std::min<int64_t>(limit, std::max<int64_t>(over, 0))));
  A2AMESH_RETURN_IF_ERROR(collect(rows, "list finished tasks over the cap"));
  if (static_cast<int>(ids.size()) < limit) {
    Statement old(read_db_,
                  "SELECT id FROM tasks WHERE state IN (3, 4, 5, 7) AND status_ms < ?1 "
                  "ORDER BY status_ms, id LIMIT ?2 OFFSET ?3");
    A2AMESH_RETURN_IF_ERROR(old.prepared());
    old.Bind(1, absl::ToUnixMillis(before))
        .Bind(2, static_cast<int64_t>(limit - ids.size()))
        .Bind(3, static_cast<int64_t>(ids.size()));
    A2AMESH_RETURN_IF_ERROR(collect(old, "list expired tasks"));
  }
  return ids;
}

absl::StatusOr<std::vector<lf::a2a::v1::TaskPushNotificationConfig>>
SqliteTaskStore::ListPushConfigs(absl::string_view task_id) {
  absl::MutexLock lock(&read_mu_);
  Statement rows(read_db_, task_id.empty() ? "SELECT task_id, id, config FROM push_configs "
                                             "WHERE settled = 0 ORDER BY task_id, id"
                                           : "SELECT task_id, id, config FROM push_configs "
                                             "WHERE task_id = ?1 ORDER BY id");
  A2AMESH_RETURN_IF_ERROR(rows.prepared());
  if (!task_id.empty()) rows.Bind(1, task_id);
  std::vector<lf::a2a::v1::TaskPushNotificationConfig> configs;
  int rc;
  while ((rc = rows.Step()) == SQLITE_ROW) {
    absl::string_view blob = rows.Blob(2);
    if (!configs.emplace_back().ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      return absl::DataLossError(absl::StrCat("push config ", rows.Text(1), " of task ",
                                              rows.Text(0), " in ", path_, " is corrupt"));
    }
  }
  if (rc != SQLITE_DONE) {
    return SqliteError(read_db_, "list push configs");
  }
  return configs;
}

}  // namespace a2amesh::store
