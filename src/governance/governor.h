#ifndef A2AMESH_GOVERNANCE_GOVERNOR_H_
#define A2AMESH_GOVERNANCE_GOVERNOR_H_

#include <functional>
#include <memory>
#include <string>

#include "a2amesh/v1/store.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/telemetry.h"
#include "governance/audit_log.h"
#include "governance/policy.h"
#include "governance/rate_limiter.h"
#include "routing/admission.h"
#include "security/auth.h"

namespace a2amesh::governance {

struct GovernorOptions {
  std::string node_id;
  // The policy (JSON, docs/governance.md); "": none, every authenticated
  // caller may do what its roles allow, as without governance.
  std::string policy_file;
  // How often the policy file is looked at for changes.
  absl::Duration reload_interval = absl::Seconds(10);
  // Where audit lines go (AuditLogOptions::path): a file, "-" for stdout;
  // "": no audit log.
  AuditLogOptions audit;
  Telemetry* telemetry = &NoTelemetry();
  std::function<absl::Time()> now = absl::Now;
};

// Who asks, and from where.
struct Caller {
  // The client; for a subtask, the principal that started its tree.
  security::Principal principal;
  // For a subtask: the agent that delegates it.
  std::string agent;
  // The client's address.
  std::string peer;
  std::string parent_task_id;
  // The trace the request belongs to (32 hex digits; "" if none).
  std::string trace_id;
};

// The node's governance (docs/governance.md): the policy, loaded from a file
// and reloaded when it changes or on SIGHUP (a file that does not load keeps
// the policy in force, and is reported); the rate limits and quotas it sets;
// and the audit log of every decision. Every decision is made once, at the
// node that receives the request, before any routing I/O. Thread-safe.
class Governor {
 public:
  // Loads the policy and opens the audit log: INVALID_ARGUMENT naming the
  // file and what is wrong.
  static absl::StatusOr<std::unique_ptr<Governor>> Create(GovernorOptions options);

  // Whether a policy file is configured (then what no rule allows is denied).
  bool governs() const { return !options_.policy_file.empty(); }
  // Whether requests need it at all: a policy, or an audit log.
  bool active() const { return governs() || audit_ != nullptr; }

  // Re-reads the policy file now: the error, when it does not load (the
  // previous policy stays).
  absl::Status Reload();
  // The policy in force (null: none), re-read if its file changed.
  std::shared_ptr<const Policy> policy();

  // Authorizes `action` on `resource` for `caller` and audits the decision:
  // OK, or PERMISSION_DENIED naming the rule that refuses.
  absl::Status Authorize(const Caller& caller, Action action, const Resource& resource,
                         absl::string_view task_id = "");

  // Governs one request's new task (a SendMessage or SendStreamingMessage,
  // or a delegation): lives for one Dispatcher::Send.
  class TaskAdmission final : public routing::Admission {
   public:
    TaskAdmission(Governor& governor, Caller caller, Action action);
    absl::Status Check(const routing::RouteTarget& target) override;
    absl::Status Admit(const routing::RouteTarget& target, tasks::NewTask& task) override;
    void Refused(const absl::Status& status) override;

   private:
    Governor& governor_;
    const Caller caller_;
    const Action action_;
    const std::shared_ptr<const Policy> policy_;  // for the whole request
    // The first candidate's refusal, recorded by Refused.
    Decision denied_;
    std::string denied_resource_;
  };

  // Whether `caller` is one of the approvers a waiting task names (matched
  // with the policy in force, for its groups): OK, or PERMISSION_DENIED
  // (audited) naming the rule and its approvers.
  absl::Status MayApprove(const Caller& caller, const v1::PendingApproval& approval,
                          absl::string_view task_id);

  // Records an audit entry (stamped with the time and this node).
  void Audit(AuditEntry entry);
  // Null when the node keeps no audit log.
  AuditLog* audit_log() { return audit_.get(); }
  RateLimiter& limiter() { return limiter_; }

 private:
  explicit Governor(GovernorOptions options);
  // The decision for `caller`: as the delegating agent and as the root
  // principal when it delegates (both must allow), else as the principal.
  static Decision Decide(const Policy& policy, const Caller& caller, Action action,
                         const Resource& resource);
  absl::Status Denial(const Caller& caller, Action action, const std::string& resource,
                      const Decision& decision) const;
  void AuditDecision(const Caller& caller, Action action, std::string resource,
                     const Decision& decision, absl::string_view task_id, std::string reason);

  const GovernorOptions options_;
  std::unique_ptr<AuditLog> audit_;
  RateLimiter limiter_;
  absl::Mutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);
  std::string stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time next_look_ ABSL_GUARDED_BY(mu_);
};

// "agent:echo skill:echo node:n1": a resource as audit lines and errors name it.
std::string DescribeResource(const Resource& resource);

}  // namespace a2amesh::governance

#endif  // A2AMESH_GOVERNANCE_GOVERNOR_H_
