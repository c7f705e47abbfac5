#include "governance/governor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/file_stamp.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/status_macros.h"

namespace a2amesh::governance {
namespace {

// An open-task quota's hold on one task, released when the task ends.
class QuotaLease {
 public:
  QuotaLease(RateLimiter& limiter, std::string principal)
      : limiter_(limiter), principal_(std::move(principal)) {}
  ~QuotaLease() { limiter_.Release(principal_); }

 private:
  RateLimiter& limiter_;
  const std::string principal_;
};

std::string Who(const Caller& caller) {
  if (caller.agent.empty()) return caller.principal.subject;
  return absl::StrCat("agent ", caller.agent, " (delegating for ", caller.principal.subject, ")");
}

}  // namespace

std::string DescribeResource(const Resource& resource) {
  std::string out;
  auto add = [&](absl::string_view kind, absl::string_view value) {
    if (value.empty()) return;
    absl::StrAppend(&out, out.empty() ? "" : " ", kind, ":", value);
  };
  add("agent", resource.agent_id);
  add("skill", resource.skill);
  add("node", resource.node_id);
  return out;
}

Governor::Governor(GovernorOptions options)
    : options_(std::move(options)), limiter_(options_.now) {}

absl::StatusOr<std::unique_ptr<Governor>> Governor::Create(GovernorOptions options) {
  auto governor = std::unique_ptr<Governor>(new Governor(std::move(options)));
  const GovernorOptions& o = governor->options_;
  if (!o.policy_file.empty()) {
    std::string stamp = FileStamp(o.policy_file);
    absl::StatusOr<std::shared_ptr<const Policy>> policy = Policy::Load(o.policy_file);
    if (!policy.ok()) return policy.status();
    absl::MutexLock lock(&governor->mu_);
    governor->policy_ = *std::move(policy);
    governor->stamp_ = std::move(stamp);
    governor->next_look_ = o.now() + o.reload_interval;
  }
  if (!o.audit.path.empty()) {
    AuditLogOptions audit = o.audit;
    Telemetry* telemetry = o.telemetry;
    audit.on_drop = [telemetry] { telemetry->AuditDropped(); };
    A2AMESH_ASSIGN_OR_RETURN(governor->audit_, AuditLog::Open(std::move(audit)));
  }
  return governor;
}

absl::Status Governor::Reload() {
  if (options_.policy_file.empty()) return absl::OkStatus();
  std::string stamp = FileStamp(options_.policy_file);
  absl::StatusOr<std::shared_ptr<const Policy>> loaded = Policy::Load(options_.policy_file);
  AuditEntry entry;
  entry.kind = "policy";
  entry.action = "reload";
  entry.resource = options_.policy_file;
  std::shared_ptr<const Policy> replaced;  // freed after the lock
  {
    absl::MutexLock lock(&mu_);
    stamp_ = std::move(stamp);
    next_look_ = options_.now() + options_.reload_interval;
    if (loaded.ok()) {
      replaced = std::exchange(policy_, *loaded);
    }
  }
  options_.telemetry->PolicyReloaded(loaded.ok());
  if (!loaded.ok()) {
    A2AMESH_LOG(Error, "policy file does not load; the previous policy stays in force")
        .With("file", options_.policy_file)
        .With("error", loaded.status().message());
    entry.decision = "kept-previous";
    entry.reason = std::string(loaded.status().message());
    Audit(std::move(entry));
    return loaded.status();
  }
  A2AMESH_LOG(Info, "policy loaded")
      .With("file", options_.policy_file)
      .With("rules", (*loaded)->rule_count())
      .With("digest", (*loaded)->digest());
  entry.decision = "loaded";
  entry.reason = absl::StrCat((*loaded)->rule_count(), " rules, digest ", (*loaded)->digest());
  Audit(std::move(entry));
  return absl::OkStatus();
}

std::shared_ptr<const Policy> Governor::policy() {
  if (options_.policy_file.empty()) return nullptr;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = options_.now();
    if (now < next_look_) return policy_;
    next_look_ = now + options_.reload_interval;
  }
  std::string stamp = FileStamp(options_.policy_file);
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = stamp != stamp_;
  }
  if (changed) Reload().IgnoreError();  // reported by Reload
  absl::MutexLock lock(&mu_);
  return policy_;
}

Decision Governor::Decide(const Policy& policy, const Caller& caller, Action action,
                          const Resource& resource) {
  if (!caller.agent.empty()) {
    // A subtask: the delegating agent must be allowed, and the caller that
    // started the tree too (no escalation through a more powerful agent).
    Decision as_agent = policy.Decide(Subject{nullptr, caller.agent}, action, resource);
    if (!as_agent.allowed) return as_agent;
    Decision as_root = policy.Decide(Subject{&caller.principal, ""}, action, resource);
    if (!as_root.allowed) {
      as_root.rule =
          absl::StrCat(as_root.rule, " (for the root caller ", caller.principal.subject, ")");
      return as_root;
    }
    if (!as_root.approval.has_value()) as_root.approval = std::move(as_agent.approval);
    return as_root;
  }
  return policy.Decide(Subject{&caller.principal, ""}, action, resource);
}

absl::Status Governor::Denial(const Caller& caller, Action action, const std::string& resource,
                              const Decision& decision) const {
  const std::string why = decision.rule == "default-deny"
                              ? "no rule of the policy allows it (denied by default)"
                              : absl::StrCat("the policy's rule '", decision.rule, "' denies it");
  return absl::PermissionDeniedError(absl::StrCat(Who(caller), " may not ", ActionName(action),
                                                  resource.empty() ? "" : " ", resource, ": ",
                                                  why));
}

absl::Status Governor::Authorize(const Caller& caller, Action action, const Resource& resource,
                                 absl::string_view task_id) {
  std::shared_ptr<const Policy> current = policy();
  if (current == nullptr) {
    if (audit_ != nullptr) {
      AuditDecision(caller, action, DescribeResource(resource), Decision{}, task_id, "");
    }
    return absl::OkStatus();
  }
  Decision decision = Decide(*current, caller, action, resource);
  options_.telemetry->PolicyDecision(std::string(ActionName(action)),
                                     decision.allowed ? "allow" : "deny");
  if (decision.allowed && audit_ == nullptr) return absl::OkStatus();  // nothing to describe
  std::string described = DescribeResource(resource);
  absl::Status status =
      decision.allowed ? absl::OkStatus() : Denial(caller, action, described, decision);
  AuditDecision(caller, action, std::move(described), decision, task_id,
                std::string(status.message()));
  return status;
}

absl::Status Governor::MayApprove(const Caller& caller, const v1::PendingApproval& approval,
                                  absl::string_view task_id) {
  std::shared_ptr<const Policy> current = policy();
  const std::vector<std::string> approvers(approval.approvers().begin(),
                                           approval.approvers().end());
  const bool allowed = current != nullptr &&
                       current->Matches(approvers, Subject{&caller.principal, ""}) &&
                       !approvers.empty();
  if (allowed) return absl::OkStatus();
  absl::Status denied = absl::PermissionDeniedError(absl::StrCat(
      caller.principal.subject, " may not decide task ", task_id, ": the policy's rule '",
      approval.rule(), "' names its approvers [", absl::StrJoin(approvers, ", "), "]"));
  AuditEntry entry;
  entry.kind = "approval";
  entry.principal = caller.principal.subject;
  entry.method = caller.principal.method;
  entry.peer = caller.peer;
  entry.action = "approve";
  entry.decision = "deny";
  entry.rule = approval.rule();
  entry.reason = std::string(denied.message());
  entry.task_id = std::string(task_id);
  Audit(std::move(entry));
  return denied;
}

void Governor::Audit(AuditEntry entry) {
  if (audit_ == nullptr) return;
  entry.time = options_.now();
  entry.node = options_.node_id;
  audit_->Record(std::move(entry));
}

void Governor::AuditDecision(const Caller& caller, Action action, std::string resource,
                             const Decision& decision, absl::string_view task_id,
                             std::string reason) {
  if (audit_ == nullptr) return;
  AuditEntry entry;
  entry.kind = "decision";
  entry.principal = caller.principal.subject;
  entry.method = caller.principal.method;
  entry.agent = caller.agent;
  entry.peer = caller.peer;
  entry.action = std::string(ActionName(action));
  entry.resource = std::move(resource);
  entry.decision = !decision.allowed               ? "deny"
                   : decision.approval.has_value() ? "approval-required"
                                                   : "allow";
  entry.rule = decision.rule;
  entry.reason = std::move(reason);
  entry.task_id = std::string(task_id);
  entry.parent_task_id = caller.parent_task_id;
  entry.trace_id = caller.trace_id;
  Audit(std::move(entry));
}

Governor::TaskAdmission::TaskAdmission(Governor& governor, Caller caller, Action action)
    : governor_(governor),
      caller_(std::move(caller)),
      action_(action),
      policy_(governor.policy()) {}

absl::Status Governor::TaskAdmission::Check(const routing::RouteTarget& target) {
  if (policy_ == nullptr) return absl::OkStatus();
  Resource resource{target.agent_id, target.node_id, target.skill, target.tags};
  Decision decision = Decide(*policy_, caller_, action_, resource);
  if (decision.allowed) return absl::OkStatus();
  std::string described = DescribeResource(resource);
  absl::Status denial = governor_.Denial(caller_, action_, described, decision);
  if (denied_resource_.empty()) {
    denied_ = std::move(decision);
    denied_resource_ = std::move(described);
  }
  return denial;
}

absl::Status Governor::TaskAdmission::Admit(const routing::RouteTarget& target,
                                            tasks::NewTask& task) {
  Resource resource{target.agent_id, target.node_id, target.skill, target.tags};
  Decision decision;
  if (policy_ != nullptr) {
    decision = Decide(*policy_, caller_, action_, resource);
    if (decision.approval.has_value()) {
      v1::PendingApproval& approval = task.approval.emplace();
      approval.set_rule(decision.approval->rule);
      for (const std::string& approver : decision.approval->approvers) {
        approval.add_approvers(approver);
      }
      approval.set_deadline_unix_ms(
          absl::ToUnixMillis(governor_.options_.now() + decision.approval->timeout));
    }
    const std::string& principal = caller_.principal.subject;
    const Subject subject{&caller_.principal, ""};
    absl::Status limited = governor_.limiter_.Take(*policy_, subject, principal, target.skill);
    if (limited.ok()) {
      absl::StatusOr<bool> counted = governor_.limiter_.Open(*policy_, subject, principal);
      if (!counted.ok()) {
        limited = counted.status();
      } else if (*counted) {
        task.lease = std::make_shared<QuotaLease>(governor_.limiter_, principal);
      }
    }
    governor_.options_.telemetry->PolicyDecision(std::string(ActionName(action_)),
                                                 limited.ok() ? "allow" : "limited");
    if (!limited.ok()) {
      governor_.options_.telemetry->RateLimited(caller_.principal.method,
                                                std::string(target.skill));
      decision.allowed = false;
      governor_.AuditDecision(caller_, action_, DescribeResource(resource), decision, "",
                              std::string(limited.message()));
      return limited;
    }
  }
  if (governor_.audit_ != nullptr) {
    task.task_id = MakeTaskId(governor_.options_.node_id, governor_.options_.now());
    governor_.AuditDecision(caller_, action_, DescribeResource(resource), decision, task.task_id,
                            "");
  }
  return absl::OkStatus();
}

void Governor::TaskAdmission::Refused(const absl::Status& status) {
  if (denied_resource_.empty()) return;  // refused for another reason than the policy
  governor_.options_.telemetry->PolicyDecision(std::string(ActionName(action_)), "deny");
  governor_.AuditDecision(caller_, action_, std::move(denied_resource_), denied_, "",
                          std::string(status.message()));
}

}  // namespace a2amesh::governance
