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

AuditLog::AuditLog(AuditLogOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  auto log = std::unique_ptr<AuditLog>(new AuditLog(std::move(options)));
  const std::string& path = log->options_.path;
  if (path == "-") {
    log->file_ = stdout;
  } else if (!path.empty()) {
    log->file_ = std::fopen(path.c_str(), "a");
    if (log->file_ == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--audit-log: cannot open ", path, ": ", std::strerror(errno)));
    }
    std::fseek(log->file_, 0, SEEK_END);
    log->file_bytes_ = std::ftell(log->file_);
  }
  log->writer_ = std::thread([raw = log.get()] { raw->Run(); });
  return log;
}

AuditLog::~AuditLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (file_ != nullptr && file_ != stdout) std::fclose(file_);
}

void AuditLog::Record(AuditEntry entry) {
  bool dropped = false;
  {
    absl::MutexLock lock(&mu_);
    if (queue_.size() >= options_.max_queued) {
      ++dropped_;
      dropped = true;
    } else {
      const uint64_t sequence = next_sequence_++;
      recent_.emplace_back(sequence, entry);
      if (recent_.size() > options_.keep) recent_.pop_front();
      queue_.push_back(std::move(entry));
    }
  }
  if (dropped && options_.on_drop) options_.on_drop();
}

void AuditLog::Run() {
  std::deque<AuditEntry> batch;
  while (true) {
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AuditLog* log) ABSL_EXCLUSIVE_LOCKS_REQUIRED(log->mu_) {
            return log->stopping_ || !log->queue_.empty();
          },
          this));
      batch.swap(queue_);
      stop = stopping_ && batch.empty();
    }
    if (stop) return;
    for (const AuditEntry& entry : batch) {
      if (file_ != nullptr) Write(entry.ToJson());
    }
    if (file_ != nullptr) std::fflush(file_);
    const int64_t count = static_cast<int64_t>(batch.size());
    batch.clear();
    absl::MutexLock lock(&mu_);
    written_ += count;
    written_through_ += static_cast<uint64_t>(count);
  }
}

void AuditLog::Write(const std::string& line) {
  if (file_ != stdout && options_.max_bytes > 0 &&
      file_bytes_ + static_cast<int64_t>(line.size()) + 1 > options_.max_bytes && file_bytes_ > 0) {
    Rotate();
  }
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fputc('\n', file_);
  file_bytes_ += static_cast<int64_t>(line.size()) + 1;
}

void AuditLog::Rotate() {
  std::fclose(file_);
  const std::string& path = options_.path;
  for (int i = options_.max_files - 1; i >= 1; --i) {
    std::rename(absl::StrCat(path, ".", i).c_str(), absl::StrCat(path, ".", i + 1).c_str());
  }
  if (options_.max_files >= 1) {
    std::rename(path.c_str(), absl::StrCat(path, ".1").c_str());
  }
  std::remove(absl::StrCat(path, ".", options_.max_files + 1).c_str());
  file_ = std::fopen(path.c_str(), "w");
  file_bytes_ = 0;
  if (file_ == nullptr) {
    A2AMESH_LOG(Error, "audit log cannot be reopened after rotation; writing to stderr")
        .With("path", path)
        .With("error", std::strerror(errno));
    file_ = stderr;
  }
}

std::vector<AuditLog::Line> AuditLog::Tail(
    size_t limit, uint64_t after, const std::function<bool(const AuditEntry&)>& keep) const {
  // Copied under the lock, filtered after it: `keep` is the caller's code.
  std::vector<std::pair<uint64_t, AuditEntry>> newer;
  {
    absl::MutexLock lock(&mu_);
    auto first = std::partition_point(recent_.begin(), recent_.end(),
                                      [after](const auto& e) { return e.first <= after; });
    newer.assign(first, recent_.end());
  }
  std::vector<Line> lines;
  for (auto it = newer.rbegin(); it != newer.rend() && lines.size() < limit; ++it) {
    if (!keep || keep(it->second)) lines.push_back(Line{it->first, it->second.ToJson()});
  }
  std::reverse(lines.begin(), lines.end());
  return lines;
}

void AuditLog::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = next_sequence_ - 1;
  auto written = [this, target]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return written_through_ >= target;  // Await holds mu_
  };
  mu_.Await(absl::Condition(&written));
}

int64_t AuditLog::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

int64_t AuditLog::written() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

}  // namespace a2amesh::governance
