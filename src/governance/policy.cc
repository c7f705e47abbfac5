#include "governance/policy.h"

#include <openssl/sha.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "a2amesh/v1/policy.pb.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/json_depth.h"
#include "google/protobuf/util/json_util.h"

namespace a2amesh::governance {
namespace {

constexpr absl::string_view kActionNames[kActionCount] = {
    "send", "stream",         "get",     "list",  "cancel", "subscribe", "push-config",
    "card", "register-agent", "inspect", "drain", "audit"};

// A policy nests 5 deep (policy, rules, a rule, its approval, approvers):
// deeper is refused before protobuf's JSON parser sees it.
constexpr int kMaxDepth = 16;

constexpr uint32_t Bit(Action action) { return 1u << static_cast<int>(action); }

std::optional<Action> ActionFromName(absl::string_view name) {
  for (int i = 0; i < kActionCount; ++i) {
    if (kActionNames[i] == name) return static_cast<Action>(i);
  }
  return std::nullopt;
}

// "role:reader" -> {"role", "reader"}; a pattern without a kind is {"", it}.
std::pair<absl::string_view, absl::string_view> SplitKind(absl::string_view pattern) {
  const size_t colon = pattern.find(':');
  if (colon == absl::string_view::npos) return {"", pattern};
  return {pattern.substr(0, colon), pattern.substr(colon + 1)};
}

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status CheckSubjects(const google::protobuf::RepeatedPtrField<std::string>& subjects,
                           const absl::flat_hash_map<std::string, std::vector<std::string>>& groups,
                           absl::string_view where, bool required) {
  if (required && subjects.empty()) {
    return Invalid(where, "is empty: name at least one subject (\"*\" for anyone)");
  }
  for (const std::string& subject : subjects) {
    if (subject == "*") continue;
    auto [kind, name] = SplitKind(subject);
    if (kind != "principal" && kind != "role" && kind != "group" && kind != "agent") {
      return Invalid(where, absl::StrCat("'", subject,
                                         "' is not a subject: use \"*\", \"principal:GLOB\", "
                                         "\"role:GLOB\", \"group:NAME\" or \"agent:GLOB\""));
    }
    if (name.empty()) return Invalid(where, absl::StrCat("'", subject, "' names nothing"));
    if (kind == "group" && !groups.contains(name)) {
      return Invalid(where, absl::StrCat("'", subject, "': no group '", name,
                                         "' is defined under \"groups\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text, absl::string_view where) {
  if (text.empty()) return absl::Hours(24);
  absl::Duration duration;
  if (!absl::ParseDuration(text, &duration) || duration <= absl::ZeroDuration()) {
    return Invalid(where,
                   absl::StrCat("'", text, "' is not a positive duration (\"30m\", \"2h\")"));
  }
  return duration;
}

std::string Digest(absl::string_view text) {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), hash);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(hash), sizeof(hash)).substr(0, 8));
}

}  // namespace

absl::string_view ActionName(Action action) { return kActionNames[static_cast<int>(action)]; }

bool GlobMatches(absl::string_view pattern, absl::string_view text) {
  // Iterative wildcard matching with one backtrack point (the last '*').
  size_t p = 0, t = 0;
  size_t star = absl::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Parse(absl::string_view json,
                                                            absl::string_view source) {
  const std::string where = source.empty() ? "the policy" : absl::StrCat("policy ", source);
  if (JsonNestsDeeperThan(json, kMaxDepth)) {
    return Invalid(where, absl::StrCat("nests arrays and objects deeper than ", kMaxDepth,
                                       " levels; a policy needs 5"));
  }
  v1::Policy proto;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (auto status = google::protobuf::util::JsonStringToMessage(std::string(json), &proto, options);
      !status.ok()) {
    return Invalid(where, absl::string_view(status.message().data(), status.message().size()));
  }
  auto policy = std::shared_ptr<Policy>(new Policy());
  policy->source_ = std::string(source);
  policy->digest_ = Digest(json);
  for (const auto& [name, group] : proto.groups()) {
    if (group.members().empty()) {
      return Invalid(where, absl::StrCat("groups.", name, " has no members"));
    }
    policy->groups_[name].assign(group.members().begin(), group.members().end());
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < proto.rules_size(); ++i) {
    const v1::PolicyRule& in = proto.rules(i);
    Rule rule;
    rule.name = in.name().empty() ? absl::StrCat("rules[", i, "]") : in.name();
    const std::string at = absl::StrCat(where, ", rule '", rule.name, "'");
    if (!names.insert(rule.name).second) {
      return Invalid(at, "another rule has the same name");
    }
    if (in.effect() == "deny") {
      rule.deny = true;
    } else if (in.effect() != "allow") {
      return Invalid(absl::StrCat(at, ", effect"),
                     absl::StrCat("'", in.effect(), "' is neither \"allow\" nor \"deny\""));
    }
    if (absl::Status s =
            CheckSubjects(in.subjects(), policy->groups_, absl::StrCat(at, ", subjects"),
                          /*required=*/true);
        !s.ok()) {
      return s;
    }
    rule.subjects.assign(in.subjects().begin(), in.subjects().end());
    if (in.actions().empty()) {
      return Invalid(absl::StrCat(at, ", actions"), "is empty: name at least one (\"*\" for all)");
    }
    for (const std::string& name : in.actions()) {
      if (name == "*") {
        rule.actions = ~0u;
        continue;
      }
      std::optional<Action> action = ActionFromName(name);
      if (!action.has_value()) {
        return Invalid(absl::StrCat(at, ", actions"),
                       absl::StrCat("'", name, "' is not an action: use one of ",
                                    absl::StrJoin(kActionNames, ", "), ", or \"*\""));
      }
      rule.actions |= Bit(*action);
    }
    for (const std::string& resource : in.resources()) {
      if (resource == "*") continue;
      auto [kind, name] = SplitKind(resource);
      if (kind != "agent" && kind != "skill" && kind != "tag" && kind != "node") {
        return Invalid(absl::StrCat(at, ", resources"),
                       absl::StrCat("'", resource,
                                    "' is not a resource: use \"*\", \"agent:GLOB\", "
                                    "\"skill:GLOB\", \"tag:GLOB\" or \"node:GLOB\""));
      }
    }
    // "*" among the resources means every resource: keep none.
    if (std::find(in.resources().begin(), in.resources().end(), "*") == in.resources().end()) {
      rule.resources.assign(in.resources().begin(), in.resources().end());
    }
    if (in.has_approval()) {
      if (rule.deny) {
        return Invalid(absl::StrCat(at, ", approval"), "only an \"allow\" rule can ask for one");
      }
      if ((rule.actions & ~(Bit(Action::kSend) | Bit(Action::kStream))) != 0) {
        return Invalid(absl::StrCat(at, ", approval"),
                       "approvals are for new tasks: its actions must be \"send\" and/or "
                       "\"stream\"");
      }
      ApprovalRule approval;
      approval.rule = rule.name;
      if (absl::Status s = CheckSubjects(in.approval().approvers(), policy->groups_,
                                         absl::StrCat(at, ", approval.approvers"), true);
          !s.ok()) {
        return s;
      }
      approval.approvers.assign(in.approval().approvers().begin(), in.approval().approvers().end());
      absl::StatusOr<absl::Duration> timeout =
          ParseTimeout(in.approval().timeout(), absl::StrCat(at, ", approval.timeout"));
      if (!timeout.ok()) return timeout.status();
      approval.timeout = *timeout;
      rule.approval = std::move(approval);
    }
    policy->rules_.push_back(std::move(rule));
  }
  absl::flat_hash_set<std::string> limit_names;
  for (int i = 0; i < proto.rate_limits_size(); ++i) {
    const v1::PolicyRateLimit& in = proto.rate_limits(i);
    RateLimitRule limit;
    limit.name = in.name().empty() ? absl::StrCat("rateLimits[", i, "]") : in.name();
    const std::string at = absl::StrCat(where, ", rate limit '", limit.name, "'");
    // A limit's buckets are kept by its name (across reloads): one name, one limit.
    if (!limit_names.insert(limit.name).second) {
      return Invalid(at, "another rate limit has the same name");
    }
    if (absl::Status s = CheckSubjects(in.subjects(), policy->groups_,
                                       absl::StrCat(at, ", subjects"), /*required=*/false);
        !s.ok()) {
      return s;
    }
    limit.subjects.assign(in.subjects().begin(), in.subjects().end());
    limit.skills.assign(in.skills().begin(), in.skills().end());
    if (in.per().empty() || in.per() == "principal") {
      limit.per = RateLimitRule::Per::kPrincipal;
    } else if (in.per() == "skill") {
      limit.per = RateLimitRule::Per::kSkill;
    } else if (in.per() == "principal-skill") {
      limit.per = RateLimitRule::Per::kPrincipalSkill;
    } else {
      return Invalid(absl::StrCat(at, ", per"),
                     absl::StrCat("'", in.per(),
                                  "' is not one of \"principal\", \"skill\", \"principal-skill\""));
    }
    if (!(in.rate() > 0)) {
      return Invalid(absl::StrCat(at, ", rate"), "must be more than 0 (tasks per second)");
    }
    limit.rate = in.rate();
    limit.burst = in.burst() > 0 ? in.burst() : std::max(1.0, in.rate());
    policy->rate_limits_.push_back(std::move(limit));
  }
  for (int i = 0; i < proto.quotas_size(); ++i) {
    const v1::PolicyQuota& in = proto.quotas(i);
    QuotaRule quota;
    quota.name = in.name().empty() ? absl::StrCat("quotas[", i, "]") : in.name();
    const std::string at = absl::StrCat(where, ", quota '", quota.name, "'");
    if (absl::Status s = CheckSubjects(in.subjects(), policy->groups_,
                                       absl::StrCat(at, ", subjects"), /*required=*/false);
        !s.ok()) {
      return s;
    }
    if (in.max_open_tasks() <= 0) {
      return Invalid(absl::StrCat(at, ", maxOpenTasks"), "must be more than 0");
    }
    quota.subjects.assign(in.subjects().begin(), in.subjects().end());
    quota.max_open_tasks = in.max_open_tasks();
    policy->quotas_.push_back(std::move(quota));
  }
  return std::shared_ptr<const Policy>(std::move(policy));
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("policy ", path, ": cannot be read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

bool Policy::SubjectMatches(absl::string_view pattern, const Subject& subject) const {
  if (pattern == "*") return true;
  const auto split = SplitKind(pattern);
  const absl::string_view kind = split.first;
  const absl::string_view name = split.second;
  if (kind == "agent") {
    return !subject.agent.empty() && GlobMatches(name, subject.agent);
  }
  const security::Principal* principal = subject.principal;
  if (principal == nullptr) return false;
  if (kind == "principal") return GlobMatches(name, principal->subject);
  if (kind == "role") {
    return std::any_of(principal->roles.begin(), principal->roles.end(),
                       [&](const std::string& role) { return GlobMatches(name, role); });
  }
  if (kind == "group") {
    auto it = groups_.find(name);
    if (it == groups_.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [&](const std::string& member) {
      return GlobMatches(member, principal->subject);
    });
  }
  return false;
}

bool Policy::ResourceMatches(absl::string_view pattern, const Resource& resource) {
  const auto split = SplitKind(pattern);
  const absl::string_view kind = split.first;
  const absl::string_view name = split.second;
  if (kind == "agent") return !resource.agent_id.empty() && GlobMatches(name, resource.agent_id);
  if (kind == "skill") return !resource.skill.empty() && GlobMatches(name, resource.skill);
  if (kind == "node") return !resource.node_id.empty() && GlobMatches(name, resource.node_id);
  if (kind == "tag") {
    return resource.tags != nullptr &&
           std::any_of(resource.tags->begin(), resource.tags->end(),
                       [&](const std::string& tag) { return GlobMatches(name, tag); });
  }
  return false;
}

bool Policy::Matches(const std::vector<std::string>& subjects, const Subject& subject) const {
  return subjects.empty() ||
         std::any_of(subjects.begin(), subjects.end(),
                     [&](const std::string& pattern) { return SubjectMatches(pattern, subject); });
}

bool Policy::RuleMatches(const Rule& rule, const Policy& policy, const Subject& subject,
                         Action action, const Resource& resource) {
  if ((rule.actions & Bit(action)) == 0) return false;
  if (!rule.resources.empty() &&
      std::none_of(rule.resources.begin(), rule.resources.end(), [&](const std::string& pattern) {
        return ResourceMatches(pattern, resource);
      })) {
    return false;
  }
  return policy.Matches(rule.subjects, subject);
}

Decision Policy::Decide(const Subject& subject, Action action, const Resource& resource) const {
  Decision decision;
  decision.allowed = false;
  const Rule* allow = nullptr;
  for (const Rule& rule : rules_) {
    if (!RuleMatches(rule, *this, subject, action, resource)) continue;
    if (rule.deny) {
      decision.rule = rule.name;
      decision.approval.reset();
      return decision;
    }
    if (allow == nullptr) allow = &rule;
    if (rule.approval.has_value() && !decision.approval.has_value()) {
      decision.approval = rule.approval;
    }
  }
  if (allow == nullptr) {
    decision.rule = "default-deny";
    return decision;
  }
  decision.allowed = true;
  decision.rule = decision.approval.has_value() ? decision.approval->rule : allow->name;
  return decision;
}

}  // namespace a2amesh::governance
