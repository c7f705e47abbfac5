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
  // What the writer gathers before it writes, and how long it waits for that.
  static constexpr size_t kBatch = 256;
  static constexpr absl::Duration kBatchWait = absl::Milliseconds(20);

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
  // Recorded entries wait here for the writer, each with its sequence
  // number (the request's thread only moves a pointer in).
  using EntryPtr = std::shared_ptr<const AuditEntry>;
  std::deque<std::pair<uint64_t, EntryPtr>> queue ABSL_GUARDED_BY(mu);
  uint64_t next_sequence ABSL_GUARDED_BY(mu) = 1;
  uint64_t written_through ABSL_GUARDED_BY(mu) = 0;  // sequence
  int64_t dropped ABSL_GUARDED_BY(mu) = 0;
  int64_t written ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;

  // The last `options.keep` written entries, for Tail: a ring the writer
  // copies into, reusing each slot's strings (no allocation once it has
  // turned, and no entry freed cold on a request's thread). Its own mutex:
  // requests never wait for these copies.
  mutable absl::Mutex ring_mu ABSL_ACQUIRED_AFTER(mu);
  std::vector<std::pair<uint64_t, AuditEntry>> ring ABSL_GUARDED_BY(ring_mu);
  size_t ring_next ABSL_GUARDED_BY(ring_mu) = 0;  // the slot written next
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
    // Written a batch at a time: few write(2)s.
    std::setvbuf(core->file, nullptr, _IOFBF, 64 * 1024);
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
  auto shared = std::make_shared<const AuditEntry>(std::move(entry));
  bool dropped = false;
  {
    absl::MutexLock lock(&core_->mu);
    if (core_->queue.size() >= core_->options.max_queued) {
      ++core_->dropped;
      dropped = true;
    } else {
      core_->queue.emplace_back(core_->next_sequence++, std::move(shared));
    }
  }
  if (dropped && core_->options.on_drop) core_->options.on_drop();
}

void AuditLog::Core::Run() {
  std::deque<std::pair<uint64_t, EntryPtr>> batch;
  while (true) {
    bool stop = false;
    {
      absl::MutexLock lock(&mu);
      // Asleep while there is nothing to write; then up to kBatchWait for a
      // batch to gather, so that a busy node wakes this thread (and pays a
      // context switch and a write) once per batch rather than per entry.
      auto any = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping || !queue.empty(); };
      mu.Await(absl::Condition(&any));
      auto full = [this]()
                      ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping || queue.size() >= kBatch; };
      mu.AwaitWithTimeout(absl::Condition(&full), kBatchWait);
      // The batch stays in `queue` until it is in the ring, so that Tail
      // (which reads the queue, then the ring) never misses one in flight.
      batch.assign(queue.begin(), queue.end());
      stop = stopping && batch.empty();
      if (stop) finished = true;
    }
    if (stop) return;
    if (file != nullptr) {
      for (const auto& [sequence, entry] : batch) Write(entry->ToJson());
      std::fflush(file);
    }
    if (options.keep > 0) {
      absl::MutexLock lock(&ring_mu);
      for (const auto& [sequence, entry] : batch) {
        if (ring.size() < options.keep) {
          ring.emplace_back(sequence, *entry);
        } else {
          ring[ring_next].first = sequence;
          ring[ring_next].second = *entry;  // into the slot's strings
        }
        ring_next = (ring_next + 1) % options.keep;
      }
    }
    const uint64_t last = batch.back().first;
    {
      absl::MutexLock lock(&mu);
      queue.erase(queue.begin(), queue.begin() + static_cast<ptrdiff_t>(batch.size()));
      written += static_cast<int64_t>(last - written_through);
      written_through = last;
    }
    batch.clear();  // frees the entries off the lock
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
  if (file != nullptr) std::setvbuf(file, nullptr, _IOFBF, 64 * 1024);
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
  // The written ones (oldest first), then those still queued; copied under
  // the locks, filtered after them: `keep` is the caller's code. The queue is
  // read first: the writer leaves an entry there until it is in the ring, so
  // every entry recorded before this call is in one copy or the other.
  std::vector<std::pair<uint64_t, Core::EntryPtr>> queued;
  {
    absl::MutexLock lock(&core_->mu);
    for (const auto& item : core_->queue) {
      if (item.first > after) queued.push_back(item);
    }
  }
  std::vector<std::pair<uint64_t, AuditEntry>> newer;
  {
    absl::MutexLock lock(&core_->ring_mu);
    const size_t n = core_->ring.size();
    for (size_t i = 0; i < n; ++i) {
      const auto& slot = core_->ring[(core_->ring_next + i) % n];
      if (slot.first > after) newer.push_back(slot);
    }
  }
  const uint64_t ring_last = newer.empty() ? 0 : newer.back().first;
  for (auto& [sequence, entry] : queued) {
    if (sequence > ring_last) newer.emplace_back(sequence, *entry);
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
