#ifndef A2AMESH_TASKS_TASK_ENTRY_H_
#define A2AMESH_TASKS_TASK_ENTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/task_store.h"
#include "a2amesh/v1/agent_host.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/effect_queue.h"
#include "core/log.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "tasks/task_log.h"
#include "trace/tracer.h"

namespace a2amesh::tasks {

class TaskRunner;

// What an event's store write means for its delivery.
enum class Durability {
  kNone,          // not stored here: delivered at once
  kRideAlong,     // appended to the next group commit; delivered at once
  kWaitForStore,  // committed; delivered once stored
};

// One task held in memory by the task manager: its state, its event log and
// the runner that has it. `mu` guards them; the effects of a change (store
// writes, deliveries, calls to the runner, callbacks) are queued in `effects`
// under `mu` and run after it is released (Lock).
//
// Two kinds: a task this node owns (OwnedTask: stored, leaves memory once its
// terminal state is stored) and a turn of another node's task run on a local
// agent (HostedTurn: never stored here, over at its first final state).
class TaskEntry {
 public:
  virtual ~TaskEntry() = default;
  TaskEntry(const TaskEntry&) = delete;
  TaskEntry& operator=(const TaskEntry&) = delete;

  // Holds the entry's lock for a scope, then runs the effects decided in it.
  // Log lines written in the scope, its effects' included, carry the task's
  // trace id.
  class ABSL_SCOPED_LOCKABLE Lock {
   public:
    explicit Lock(TaskEntry* entry) ABSL_EXCLUSIVE_LOCK_FUNCTION(entry->mu)
        : lock_(&entry->mu, &entry->effects) {
      trace_.Set(TraceIdOf(*entry));
    }
    ~Lock() ABSL_UNLOCK_FUNCTION() = default;

   private:
    // Declared first: it outlasts the effects, which run as lock_ ends.
    ScopedLogTrace trace_;
    EffectLock lock_;
  };

  // The trace id in the task's traceparent ("" if none). Under `mu`.
  static absl::string_view TraceIdOf(const TaskEntry& entry) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const std::string& traceparent = entry.info.traceparent();
    return traceparent.size() >= 35 ? absl::string_view(traceparent).substr(3, 32) : "";
  }
  // The same, only if the traceparent's flags say sampled ("00-" trace "-"
  // span "-" flags: the flags' low bit is the last hex digit's). Under `mu`.
  static absl::string_view SampledTraceIdOf(const TaskEntry& entry) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const std::string& traceparent = entry.info.traceparent();
    if (traceparent.size() < 55) return "";
    const char flags = traceparent[54];
    const bool sampled = flags >= 'a' ? ((flags - 'a' + 10) & 1) : ((flags - '0') & 1);
    return sampled ? absl::string_view(traceparent).substr(3, 32) : "";
  }

  virtual bool hosted() const = 0;
  // Builds the store writes of event `seq` (already applied to `task`) into
  // `ops`, and says how its delivery depends on them.
  virtual Durability PersistLocked(const lf::a2a::v1::StreamResponse& event, int64_t seq,
                                   std::vector<TaskStoreOp>* ops)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
  // Whether the task is over here: it leaves memory once its log is quiet.
  virtual bool OverLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // The task id (immutable, readable without the lock).
  const std::string id;

  absl::Mutex mu;
  lf::a2a::v1::Task task ABSL_GUARDED_BY(mu);
  v1::TaskInfo info ABSL_GUARDED_BY(mu);
  // Shared with the effects that call it; the last one to let go releases
  // the agent's slot.
  std::shared_ptr<TaskRunner> runner ABSL_GUARDED_BY(mu);
  TaskLog log ABSL_GUARDED_BY(mu);
  // Running when its agent went away; waits for the agent to come back.
  bool orphaned ABSL_GUARDED_BY(mu) = false;
  // An agent has sent an event for it (telemetry: time to first event).
  bool answered ABSL_GUARDED_BY(mu) = false;
  // Its agent may answer it with a direct reply that its client receives as
  // a Message (NewTask::may_reply), until the agent's first event. A hosted
  // turn passes a reply on: its owner decides.
  bool may_reply ABSL_GUARDED_BY(mu) = false;
  // When the agent's current turn (an assignment until a final event) began,
  // and when the agent last sent an event: for the turn's time limits.
  absl::Time turn_started ABSL_GUARDED_BY(mu);
  absl::Time last_agent_event ABSL_GUARDED_BY(mu);
  // Whether its create is stored. Until then nothing is delivered.
  enum class Creation { kPending, kStored, kFailed };
  Creation creation ABSL_GUARDED_BY(mu) = Creation::kStored;
  // The span of the agent's current turn (an assignment until its runner is
  // released) and, on a node hosting a handoff, the handoff's server span:
  // docs/tracing.md.
  trace::Span turn_span ABSL_GUARDED_BY(mu);
  trace::Span host_span ABSL_GUARDED_BY(mu);
  // Guarded by `mu` (see EffectQueue).
  EffectQueue effects;
  // NewTask::lease: set before the entry is shared, released with it.
  std::shared_ptr<void> lease;

 protected:
  explicit TaskEntry(std::string task_id) : id(std::move(task_id)) {}
};

// A task this node owns: every event is stored; what ends a stream or answers
// a client is stored before anyone sees it.
class OwnedTask final : public TaskEntry {
 public:
  explicit OwnedTask(std::string task_id) : TaskEntry(std::move(task_id)) {}
  bool hosted() const override { return false; }
  Durability PersistLocked(const lf::a2a::v1::StreamResponse& event, int64_t seq,
                           std::vector<TaskStoreOp>* ops) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool OverLocked() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

// A turn of another node's task (a handoff), run here on a local agent. Its
// owner stores it; here its events only go to the handoff's stream, and the
// turn is over at its first final state.
class HostedTurn final : public TaskEntry {
 public:
  explicit HostedTurn(std::string task_id) : TaskEntry(std::move(task_id)) {}
  bool hosted() const override { return true; }
  Durability PersistLocked(const lf::a2a::v1::StreamResponse& event, int64_t,
                           std::vector<TaskStoreOp>*) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool OverLocked() const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return turn_over_; }

 private:
  // A final event came in this turn (the task may have started interrupted:
  // a follow-up to an input-required task).
  bool turn_over_ ABSL_GUARDED_BY(mu) = false;
};

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_TASK_ENTRY_H_
