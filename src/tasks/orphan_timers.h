#ifndef A2AMESH_TASKS_ORPHAN_TIMERS_H_
#define A2AMESH_TASKS_ORPHAN_TIMERS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "a2amesh/executor.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/weak_self.h"

namespace a2amesh::tasks {

// The grace periods of agents whose tasks wait for them (orphans: the agent's
// stream broke, or the node restarted). Each agent id has a generation, bumped
// whenever it connects or disconnects; a grace armed in one generation expires
// only if the agent has neither connected nor disconnected since.
//
// Thread-safe. `expired` runs on the timer thread, without this class's lock,
// and never once the OrphanTimers is destroyed.
class OrphanTimers {
 public:
  using Expired = std::function<void(const std::string& agent_id, const std::string& reason)>;

  OrphanTimers(Timers& timers, Expired expired);
  ~OrphanTimers();
  OrphanTimers(const OrphanTimers&) = delete;
  OrphanTimers& operator=(const OrphanTimers&) = delete;

  // The agent registered, or went away: graces armed before are void.
  void Connected(const std::string& agent_id) { Bump(agent_id); }
  void Disconnected(const std::string& agent_id) { Bump(agent_id); }
  // After `grace`, `expired(agent_id, reason)`, unless the agent connects or
  // disconnects first: for tasks whose agent went away, or that were
  // recovered at start-up.
  void Arm(const std::string& agent_id, absl::Duration grace, std::string reason);

 private:
  void Bump(const std::string& agent_id);
  void Fire(const std::string& agent_id, uint64_t generation, const std::string& reason);

  Timers& timers_;
  const Expired expired_;
  WeakSelf<OrphanTimers> weak_self_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint64_t> generation_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_ORPHAN_TIMERS_H_
