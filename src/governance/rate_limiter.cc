#include "governance/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/a2a_error.h"

namespace a2amesh::governance {
namespace {

// Buckets past this many are pruned of the full ones (equivalent to none).
constexpr size_t kPruneAbove = 10000;

bool SkillMatches(const RateLimitRule& limit, absl::string_view skill) {
  return limit.skills.empty() ||
         std::any_of(limit.skills.begin(), limit.skills.end(),
                     [&](const std::string& glob) { return GlobMatches(glob, skill); });
}

std::string BucketKey(const RateLimitRule& limit, absl::string_view principal,
                      absl::string_view skill) {
  switch (limit.per) {
    case RateLimitRule::Per::kPrincipal:
      return absl::StrCat(limit.name, "\x1fp\x1f", principal);
    case RateLimitRule::Per::kSkill:
      return absl::StrCat(limit.name, "\x1fs\x1f", skill);
    case RateLimitRule::Per::kPrincipalSkill:
      return absl::StrCat(limit.name, "\x1fps\x1f", principal, "\x1f", skill);
  }
  return limit.name;
}

absl::string_view PerWord(RateLimitRule::Per per) {
  switch (per) {
    case RateLimitRule::Per::kPrincipal:
      return "per principal";
    case RateLimitRule::Per::kSkill:
      return "per skill";
    case RateLimitRule::Per::kPrincipalSkill:
      return "per principal and skill";
  }
  return "";
}

}  // namespace

RateLimiter::RateLimiter(std::function<absl::Time()> now) : now_(std::move(now)) {}

absl::Status RateLimiter::Take(const Policy& policy, const Subject& subject,
                               absl::string_view principal, absl::string_view skill) {
  if (policy.rate_limits().empty()) return absl::OkStatus();
  std::vector<std::pair<const RateLimitRule*, std::string>> applies;
  for (const RateLimitRule& limit : policy.rate_limits()) {
    if (SkillMatches(limit, skill) && policy.Matches(limit.subjects, subject)) {
      applies.emplace_back(&limit, BucketKey(limit, principal, skill));
    }
  }
  if (applies.empty()) return absl::OkStatus();
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  if (buckets_.size() > kPruneAbove) {
    absl::erase_if(buckets_, [&](const auto& entry) {
      // A bucket idle for a minute has refilled for any rate of 1/min or more.
      return now - entry.second.updated > absl::Minutes(1);
    });
  }
  std::vector<Bucket*> buckets;
  for (const auto& [limit, key] : applies) {
    auto [it, inserted] = buckets_.try_emplace(key);
    Bucket& bucket = it->second;
    if (inserted) {
      bucket.tokens = limit->burst;
    } else {
      bucket.tokens = std::min(
          limit->burst, bucket.tokens + limit->rate * absl::ToDoubleSeconds(now - bucket.updated));
    }
    bucket.updated = now;
    if (bucket.tokens < 1) {
      const absl::Duration wait = absl::Seconds((1 - bucket.tokens) / limit->rate);
      return WithRetryAfter(
          absl::ResourceExhaustedError(absl::StrCat(
              "rate limit '", limit->name, "' (", limit->rate, " tasks/s, burst ", limit->burst,
              ", ", PerWord(limit->per), ") is used up for ", principal,
              skill.empty() ? "" : absl::StrCat(" and skill '", skill, "'"), "; retry in ",
              absl::FormatDuration(absl::Ceil(wait, absl::Milliseconds(1))))),
          wait);
    }
    buckets.push_back(&bucket);
  }
  for (Bucket* bucket : buckets) bucket->tokens -= 1;
  return absl::OkStatus();
}

absl::StatusOr<bool> RateLimiter::Open(const Policy& policy, const Subject& subject,
                                       const std::string& principal) {
  if (policy.quotas().empty()) return false;
  absl::MutexLock lock(&mu_);
  auto it = open_.find(principal);
  const int open = it == open_.end() ? 0 : it->second;
  for (const QuotaRule& quota : policy.quotas()) {
    if (open >= quota.max_open_tasks && policy.Matches(quota.subjects, subject)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("quota '", quota.name, "': ", principal, " has ", open, " open task(s), ",
                       "its limit of ", quota.max_open_tasks, "; wait for one to end"));
    }
  }
  ++open_[principal];
  return true;
}

void RateLimiter::Release(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(principal);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

int RateLimiter::open(const std::string& principal) const {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(principal);
  return it == open_.end() ? 0 : it->second;
}

}  // namespace a2amesh::governance
