#include "tasks/orphan_timers.h"

#include <utility>

namespace a2amesh::tasks {

OrphanTimers::OrphanTimers(Timers& timers, Expired expired)
    : timers_(timers), expired_(std::move(expired)), weak_self_(this) {}

OrphanTimers::~OrphanTimers() { weak_self_.Reset(); }

void OrphanTimers::Bump(const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  ++generation_[agent_id];
}

void OrphanTimers::Arm(const std::string& agent_id, absl::Duration grace, std::string reason) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = generation_[agent_id];
  }
  timers_.RunAfter(
      grace, weak_self_.Bind([agent_id, generation, reason = std::move(reason)](
                                 OrphanTimers& self) { self.Fire(agent_id, generation, reason); }));
}

void OrphanTimers::Fire(const std::string& agent_id, uint64_t generation,
                        const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    auto it = generation_.find(agent_id);
    if (it == generation_.end() || it->second != generation) {
      return;  // the agent came back (and maybe left again) since
    }
  }
  expired_(agent_id, reason);
}

}  // namespace a2amesh::tasks
