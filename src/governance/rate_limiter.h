#ifndef A2AMESH_GOVERNANCE_RATE_LIMITER_H_
#define A2AMESH_GOVERNANCE_RATE_LIMITER_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "governance/policy.h"

namespace a2amesh::governance {

// The policy's token buckets (PolicyRateLimit) and open-task quotas
// (PolicyQuota), as new tasks draw on them. Buckets are keyed by the limit's
// name, so they carry over a policy reload. Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(std::function<absl::Time()> now = absl::Now);

  // Takes one token from every bucket of `policy` that applies to a new task
  // of `principal` (as `subject` matches the limits' subjects) for `skill`:
  // all of them, or none. RESOURCE_EXHAUSTED naming the limit, with the time
  // until a token is there (GetRetryAfter), when one is empty.
  absl::Status Take(const Policy& policy, const Subject& subject, absl::string_view principal,
                    absl::string_view skill);

  // Counts an open task of `principal` against the quotas that apply to it:
  // RESOURCE_EXHAUSTED naming the quota when the principal is at one; true
  // when it was counted (the policy has quotas), and must be matched by one
  // Release when the task ends.
  absl::StatusOr<bool> Open(const Policy& policy, const Subject& subject,
                            const std::string& principal);
  void Release(const std::string& principal);

  // Open tasks counted for `principal` (tests, metrics).
  int open(const std::string& principal) const;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  const std::function<absl::Time()> now_;
  mutable absl::Mutex mu_;
  // Node-based: Take holds pointers to several buckets while adding others.
  absl::node_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::governance

#endif  // A2AMESH_GOVERNANCE_RATE_LIMITER_H_
