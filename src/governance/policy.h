#ifndef A2AMESH_GOVERNANCE_POLICY_H_
#define A2AMESH_GOVERNANCE_POLICY_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "security/auth.h"

namespace a2amesh::governance {

// What a request does. Every A2A, AgentHost and Admin call is one of these.
enum class Action {
  kSend,           // SendMessage (a new task, or a follow-up)
  kStream,         // SendStreamingMessage
  kGet,            // GetTask
  kList,           // ListTasks
  kCancel,         // CancelTask
  kSubscribe,      // SubscribeToTask
  kPushConfig,     // the push-notification config RPCs
  kCard,           // GetExtendedAgentCard
  kRegisterAgent,  // AgentHost: register an agent
  kInspect,        // Admin reads (nodes, agents, skills, tasks, routes, catalog)
  kDrain,          // Admin Drain
  kAudit,          // Admin: read the audit log
};
inline constexpr int kActionCount = 12;

// "send", "push-config", ...: the name a policy uses.
absl::string_view ActionName(Action action);

// Who asks: a principal (a client, or the root caller of a delegation tree),
// or an agent delegating a subtask (`agent`, its id on the node that hosts
// it). One of the two is set.
struct Subject {
  const security::Principal* principal = nullptr;
  absl::string_view agent;
};

// What a request is about. Empty fields match no pattern of their kind: a
// ListTasks has a node (and an agent when it names one) but no skill.
struct Resource {
  absl::string_view agent_id;  // bare, as its node knows it
  absl::string_view node_id;
  absl::string_view skill;
  const google::protobuf::RepeatedPtrField<std::string>* tags = nullptr;  // the skill's
};

// What a rule that allows a task asks before it may run.
struct ApprovalRule {
  std::string rule;                    // the rule's name
  std::vector<std::string> approvers;  // subjects
  absl::Duration timeout;
};

struct Decision {
  bool allowed = true;
  // The rule that decided; "default-deny" when none matched.
  std::string rule;
  // Set when an allowing rule requires approval.
  std::optional<ApprovalRule> approval;
};

// A token bucket rule (PolicyRateLimit), compiled.
struct RateLimitRule {
  enum class Per { kPrincipal, kSkill, kPrincipalSkill };
  std::string name;
  std::vector<std::string> subjects;
  std::vector<std::string> skills;  // globs; empty: any
  Per per = Per::kPrincipal;
  double rate = 0;  // tokens per second
  double burst = 1;
};

struct QuotaRule {
  std::string name;
  std::vector<std::string> subjects;
  int max_open_tasks = 0;
};

// A loaded policy (proto/a2amesh/v1/policy.proto, docs/governance.md):
// immutable, shared by every request that started under it. Thread-safe.
class Policy {
 public:
  // Parses and checks a policy's JSON: INVALID_ARGUMENT naming `source`, the
  // rule and the field when something is wrong (an unknown field, subject
  // kind, action or effect; a duplicate rule name; a bad timeout or rate).
  static absl::StatusOr<std::shared_ptr<const Policy>> Parse(absl::string_view json,
                                                             absl::string_view source);
  // Reads and parses a file.
  static absl::StatusOr<std::shared_ptr<const Policy>> Load(const std::string& path);

  // Deny wins: the first matching "deny" rule denies; else the first
  // matching "allow" rule allows (with approval if any matching allow rule
  // asks for it); else the request is denied by default.
  Decision Decide(const Subject& subject, Action action, const Resource& resource) const;

  // Whether `principal` is one of `subjects` (as approvers, rate limits and
  // quotas name them).
  bool Matches(const std::vector<std::string>& subjects, const Subject& subject) const;

  const std::vector<RateLimitRule>& rate_limits() const { return rate_limits_; }
  const std::vector<QuotaRule>& quotas() const { return quotas_; }
  size_t rule_count() const { return rules_.size(); }
  // The file (or "" when parsed from text) and a digest of the text, for
  // logs and the Admin API.
  const std::string& source() const { return source_; }
  const std::string& digest() const { return digest_; }

 private:
  struct Rule {
    std::string name;
    bool deny = false;
    std::vector<std::string> subjects;
    uint32_t actions = 0;                // bit per Action
    std::vector<std::string> resources;  // empty: every resource
    std::optional<ApprovalRule> approval;
  };
  bool SubjectMatches(absl::string_view pattern, const Subject& subject) const;
  static bool ResourceMatches(absl::string_view pattern, const Resource& resource);
  static bool RuleMatches(const Rule& rule, const Policy& policy, const Subject& subject,
                          Action action, const Resource& resource);

  std::string source_;
  std::string digest_;
  absl::flat_hash_map<std::string, std::vector<std::string>> groups_;
  std::vector<Rule> rules_;
  std::vector<RateLimitRule> rate_limits_;
  std::vector<QuotaRule> quotas_;
};

// Shell-style glob (fnmatch, '*' crossing '/'): what every pattern in a
// policy is.
bool GlobMatches(absl::string_view pattern, absl::string_view text);

}  // namespace a2amesh::governance

#endif  // A2AMESH_GOVERNANCE_POLICY_H_
