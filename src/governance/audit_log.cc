#include "governance/audit_log.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace a2amesh::governance {
namespace {

void AppendField(std::string* json, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  json->push_back(',');
  AppendJsonString(json, key);
  json->push_back(':');
  AppendJsonString(json, value);
}

}  // namespace

std::string AuditEntry::ToJson() const {
  std::string json = "{\"time\":";
  AppendJsonString(&json, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()));
  AppendField(&json, "kind", kind);
  AppendField(&json, "node", node);
  AppendField(&json, "principal", principal);
  AppendField(&json, "method", method);
  AppendField(&json, "agent", agent);
  AppendField(&json, "peer", peer);
  AppendField(&json, "action", action);
  AppendField(&json, "resource", resource);
  AppendField(&json, "decision", decision);
  AppendField(&json, "rule", rule);
  AppendField(&json, "reason", reason);
  AppendField(&json, "task_id", task_id);
  AppendField(&json, "parent_task_id", parent_task_id);
  AppendField(&json, "trace_id", trace_id);
  json.push_back('}');
  return json;
}

struct AuditLog::Core {
  explicit Core(AuditLogOptions o) : options(std::move(o)) {}
  ~Core() {
    if (file != nullptr && file != stdout && file != stderr) std::fclose(file);
  }

  void Run();
  // Writes one line; rotates first if the file is full.
  void Write(const std::string& line);
  void Rotate();

  const AuditLogOptions options;
  FILE* file = nullptr;  // the writer thread's (and Open's, before it starts)
  int64_t file_bytes = 0;

  mutable absl::Mutex mu;
  std::deque<AuditEntry> queue ABSL_GUARDED_BY(mu);
  std::deque<std::pair<uint64_t, AuditEntry>> recent ABSL_GUARDED_BY(mu);
  uint64_t next_sequence ABSL_GUARDED_BY(mu) = 1;
  uint64_t written_through ABSL_GUARDED_BY(mu) = 0;  // sequence
  int64_t dropped ABSL_GUARDED_BY(mu) = 0;
  int64_t written ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;
};

AuditLog::AuditLog(std::shared_ptr<Core> core) : core_(std::move(core)) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  auto core = std::make_shared<Core>(std::move(options));
  const std::string& path = core->options.path;
  if (path == "-") {
    core->file = stdout;
  } else if (!path.empty()) {
    core->file = std::fopen(path.c_str(), "a");
    if (core->file == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--audit-log: cannot open ", path, ": ", std::strerror(errno)));
    }
    std::fseek(core->file, 0, SEEK_END);
    core->file_bytes = std::ftell(core->file);
  }
  auto log = std::unique_ptr<AuditLog>(new AuditLog(core));
  log->writer_ = std::thread([core] { core->Run(); });
  return log;
}

AuditLog::~AuditLog() {
  bool finished;
  {
    absl::MutexLock lock(&core_->mu);
    core_->stopping = true;
    auto done = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return core_->finished; };
    finished = core_->mu.AwaitWithTimeout(absl::Condition(&done), kStopWait);
  }
  if (finished) {
    writer_.join();
  } else {
    A2AMESH_LOG(Warning, "the audit log's writer is stuck in a write; leaving it behind")
        .With("path", core_->options.path);
    writer_.detach();  // it holds the core
  }
}

void AuditLog::Record(AuditEntry entry) {
  bool dropped = false;
  {
    absl::MutexLock lock(&core_->mu);
    if (core_->queue.size() >= core_->options.max_queued) {
      ++core_->dropped;
      dropped = true;
    } else {
      const uint64_t sequence = core_->next_sequence++;
      core_->recent.emplace_back(sequence, entry);
      if (core_->recent.size() > core_->options.keep) core_->recent.pop_front();
      core_->queue.push_back(std::move(entry));
    }
  }
  if (dropped && core_->options.on_drop) core_->options.on_drop();
}

void AuditLog::Core::Run() {
  std::deque<AuditEntry> batch;
  while (true) {
    bool stop = false;
    {
      absl::MutexLock lock(&mu);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping || !queue.empty(); };
      mu.Await(absl::Condition(&ready));
      batch.swap(queue);
      stop = stopping && batch.empty();
      if (stop) finished = true;
    }
    if (stop) return;
    for (const AuditEntry& entry : batch) {
      if (file != nullptr) Write(entry.ToJson());
    }
    if (file != nullptr) std::fflush(file);
    const int64_t count = static_cast<int64_t>(batch.size());
    batch.clear();
    absl::MutexLock lock(&mu);
    written += count;
    written_through += static_cast<uint64_t>(count);
  }
}

void AuditLog::Core::Write(const std::string& line) {
  if (file != stdout && options.max_bytes > 0 &&
      file_bytes + static_cast<int64_t>(line.size()) + 1 > options.max_bytes && file_bytes > 0) {
    Rotate();
  }
  std::fwrite(line.data(), 1, line.size(), file);
  std::fputc('\n', file);
  file_bytes += static_cast<int64_t>(line.size()) + 1;
}

void AuditLog::Core::Rotate() {
  std::fclose(file);
  const std::string& path = options.path;
  for (int i = options.max_files - 1; i >= 1; --i) {
    std::rename(absl::StrCat(path, ".", i).c_str(), absl::StrCat(path, ".", i + 1).c_str());
  }
  if (options.max_files >= 1) {
    std::rename(path.c_str(), absl::StrCat(path, ".1").c_str());
  }
  std::remove(absl::StrCat(path, ".", options.max_files + 1).c_str());
  file = std::fopen(path.c_str(), "w");
  file_bytes = 0;
  if (file == nullptr) {
    A2AMESH_LOG(Error, "audit log cannot be reopened after rotation; writing to stderr")
        .With("path", path)
        .With("error", std::strerror(errno));
    file = stderr;
  }
}

std::vector<AuditLog::Line> AuditLog::Tail(
    size_t limit, uint64_t after, const std::function<bool(const AuditEntry&)>& keep) const {
  // Copied under the lock, filtered after it: `keep` is the caller's code.
  std::vector<std::pair<uint64_t, AuditEntry>> newer;
  {
    absl::MutexLock lock(&core_->mu);
    auto first = std::partition_point(core_->recent.begin(), core_->recent.end(),
                                      [after](const auto& e) { return e.first <= after; });
    newer.assign(first, core_->recent.end());
  }
  std::vector<Line> lines;
  for (auto it = newer.rbegin(); it != newer.rend() && lines.size() < limit; ++it) {
    if (!keep || keep(it->second)) lines.push_back(Line{it->first, it->second.ToJson()});
  }
  std::reverse(lines.begin(), lines.end());
  return lines;
}

void AuditLog::Flush() {
  absl::MutexLock lock(&core_->mu);
  const uint64_t target = core_->next_sequence - 1;
  auto written = [this, target]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return core_->written_through >= target;  // Await holds mu
  };
  core_->mu.Await(absl::Condition(&written));
}

int64_t AuditLog::dropped() const {
  absl::MutexLock lock(&core_->mu);
  return core_->dropped;
}

int64_t AuditLog::written() const {
  absl::MutexLock lock(&core_->mu);
  return core_->written;
}

}  // namespace a2amesh::governance
