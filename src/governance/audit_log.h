#ifndef A2AMESH_GOVERNANCE_AUDIT_LOG_H_
#define A2AMESH_GOVERNANCE_AUDIT_LOG_H_

#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace a2amesh::governance {

// One audited event: a policy decision, or a state change that matters (an
// approval, a policy reload). Empty fields are left out of the line.
struct AuditEntry {
  absl::Time time;
  // "decision", "approval", "policy".
  std::string kind;
  std::string principal;  // who: the subject (the root caller for a subtask)
  std::string method;     // how it was proven ("token", "jwt", "mtls", "node", "none")
  std::string agent;      // the delegating agent, for a subtask
  std::string peer;       // from where: the client's address
  std::string action;     // "send", "get", "approve", ...
  std::string resource;   // "agent:echo skill:echo node:n1"
  std::string decision;   // "allow", "deny", "approval-required", "approved", ...
  std::string rule;       // the rule that decided
  std::string reason;     // a refusal's message, an approver's reason
  std::string task_id;
  std::string parent_task_id;
  std::string trace_id;
  std::string node;  // the node that decided

  // The entry as one JSON object, without a newline.
  std::string ToJson() const;
};

struct AuditLogOptions {
  // A file path, or "-" for stdout; "" keeps entries only in memory (for
  // `meshctl audit`).
  std::string path;
  // A file is rotated when it reaches this size: FILE becomes FILE.1 (FILE.1
  // becomes FILE.2, ... up to `max_files`, the oldest removed).
  int64_t max_bytes = 100 * 1024 * 1024;
  int max_files = 3;
  // Entries waiting for the writer; past it new ones are dropped and counted.
  size_t max_queued = 65536;
  // Entries kept in memory for Tail().
  size_t keep = 10000;
  // Hears of each dropped entry (a metric).
  std::function<void()> on_drop;
};

// The audit trail: Record never blocks on I/O (a bounded queue, written by a
// thread of its own); the last entries stay in memory for the Admin API.
// Thread-safe.
class AuditLog {
 public:
  // Opens the file (INVALID_ARGUMENT naming it if it cannot be).
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);
  // Writes what is queued, then stops; gives the writer `kStopWait` to get
  // there, then leaves it behind (a pipe nobody reads must not keep the
  // node from stopping).
  ~AuditLog();
  static constexpr absl::Duration kStopWait = absl::Seconds(2);

  void Record(AuditEntry entry);

  // The newest entries (oldest first, at most `limit`) that `keep` accepts
  // and that came after sequence number `after` (0: any); and each one's
  // sequence number.
  struct Line {
    uint64_t sequence;
    std::string json;
  };
  std::vector<Line> Tail(size_t limit, uint64_t after,
                         const std::function<bool(const AuditEntry&)>& keep) const;

  // Blocks until every entry recorded before the call is written (tests).
  void Flush();

  int64_t dropped() const;
  int64_t written() const;

 private:
  // Everything the writer thread touches: shared with it, so that a writer
  // left blocked in a write outlives the AuditLog safely.
  struct Core;
  explicit AuditLog(std::shared_ptr<Core> core);

  const std::shared_ptr<Core> core_;
  std::thread writer_;
};

}  // namespace a2amesh::governance

#endif  // A2AMESH_GOVERNANCE_AUDIT_LOG_H_
