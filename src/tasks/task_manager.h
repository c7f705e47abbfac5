#ifndef A2AMESH_TASKS_TASK_MANAGER_H_
#define A2AMESH_TASKS_TASK_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "a2amesh/clock.h"
#include "a2amesh/executor.h"
#include "a2amesh/task_store.h"
#include "a2amesh/v1/agent_host.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/telemetry.h"
#include "core/weak_self.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "tasks/orphan_timers.h"
#include "tasks/task_entry.h"
#include "tasks/task_subscriber.h"

namespace a2amesh::tasks {

// Where a task runs: an agent on this node, or on another node through a
// handoff. The router creates one when it picks an agent; while it exists it
// holds one slot of that agent's max_concurrency, and destroying it releases
// the slot. The task manager calls it, and lets it go, only with no lock of its
// own held. Implementations are thread-safe; Assign and Cancel never block.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual const std::string& agent_id() const = 0;
  // Hands a task (new, a follow-up message, or resumed) to the agent.
  virtual void Assign(v1::TaskAssignment assignment) = 0;
  // Tells the agent to stop working on `task_id`.
  virtual void Cancel(const std::string& task_id, const std::string& reason) = 0;
  // Names and annotates the span of a turn it runs (docs/tracing.md), as it
  // starts, under the task's lock: it must not block. By default an agent
  // on this node: "agent turn".
  virtual void DescribeTurn(trace::Span& span) const {}
};

// Finds the agent that already owns a task: for follow-up messages and for tasks
// resumed when their agent registers again. Thread-safe.
class RunnerFactory {
 public:
  virtual ~RunnerFactory() = default;
  // A runner for the connected agent `agent_id`, regardless of its load (the task
  // is already that agent's). UNAVAILABLE if the agent is not connected.
  virtual absl::StatusOr<std::unique_ptr<TaskRunner>> Rebind(const std::string& agent_id) = 0;
};

// A new task, routed: the request that creates it and where it runs.
struct NewTask {
  lf::a2a::v1::SendMessageRequest request;
  std::unique_ptr<TaskRunner> runner;
  std::string skill;
  // For subtasks: the task that delegated this one, and the agents that handle
  // its ancestors ("agent@node", outermost first).
  std::string parent_task_id;
  std::vector<std::string> hops;
  // The task fails if it has not ended by then.
  absl::Time deadline = absl::InfiniteFuture();
  // Who asks for it (security::Principal; empty subject: auth is off).
  std::string principal;
  std::vector<std::string> principal_roles;
  std::string principal_method;
  // Whether the subscriber may pass the task's id on with its first event (a
  // stream, return_immediately, a delegation): then the create is committed
  // on its own, and the first event waits for it. When false (a blocking
  // SendMessage, whose client learns the id with the final answer) the create
  // rides along with the task's next commit, usually that answer's, and every
  // delivery waits for it.
  bool await_create = true;
  // Held by the task until it leaves memory (it ended, or the node stopped):
  // an open-task quota's count (governance/rate_limiter.h).
  std::shared_ptr<void> lease;
  // Set when a policy rule asks for approval: the task is created waiting
  // for it (AUTH_REQUIRED), without assigning the agent; `runner`'s slot is
  // released at once. See TaskManager::DecideApproval.
  std::optional<v1::PendingApproval> approval;
  // The task's id (core/ids.h MakeTaskId), when an Admission had to name the
  // task before it exists (an audit line); empty: made at creation.
  std::string task_id;
  // The trace context its turns are children of (the creating call's span).
  trace::SpanContext trace;
  // Its agent may answer with a direct reply (tasks/task_state.h), and the
  // subscriber can take one as a Message: nobody else will know the task's
  // id before the agent's first answer (no return_immediately, push config or
  // delegation). A reply then ends the task without a trace in the store;
  // otherwise a reply completes the task with its message.
  bool may_reply = false;
};

// One turn of a task owned by another node, run here on a local agent (a
// handoff): not stored on this node; it ends when the turn does (a terminal or
// interrupted state).
struct HostedTask {
  lf::a2a::v1::Task task;
  lf::a2a::v1::Message message;
  v1::TaskInfo info;
  std::unique_ptr<TaskRunner> runner;
};

// What the task manager needs of push notifications (push/push_notifier.h),
// for a task created with configuration.task_push_notification_config.
class PushHook {
 public:
  virtual ~PushHook() = default;
  // The config as it will be stored with new task `task_id` (ids filled in),
  // or why it is refused (then so is the task). Must not block.
  virtual absl::StatusOr<lf::a2a::v1::TaskPushNotificationConfig> Prepare(
      const std::string& task_id, lf::a2a::v1::TaskPushNotificationConfig config) = 0;
  // The task is stored with `config`: the subscriber that delivers its events
  // from now until it is terminal. `trace`: the task's (the call that
  // created it).
  virtual std::shared_ptr<TaskSubscriber> Attach(
      const lf::a2a::v1::TaskPushNotificationConfig& config, const trace::SpanContext& trace) = 0;
};

struct TaskManagerOptions {
  std::string node_id;
  // How long the tasks of an agent whose stream broke wait for the same agent id
  // to register again before they fail.
  absl::Duration agent_grace = absl::Seconds(10);
  // The same, for unfinished tasks found in the store at start-up.
  absl::Duration recovery_grace = absl::Seconds(30);
  // An agent's turn of a task (from its assignment to a terminal or
  // interrupted state) fails once it has run this long, or the skill's own
  // limit in skill_max_turn; and once its agent has sent nothing for
  // agent_idle_timeout. InfiniteDuration: no limit.
  absl::Duration max_turn = absl::InfiniteDuration();
  absl::flat_hash_map<std::string, absl::Duration> skill_max_turn;
  absl::Duration agent_idle_timeout = absl::InfiniteDuration();
  // A task waiting for its client (input-required, auth-required) fails once
  // it has waited this long. InfiniteDuration: it waits forever.
  absl::Duration interrupted_ttl = absl::InfiniteDuration();
  // Hears of tasks created, first answered and ended (tasks this node owns).
  Telemetry* telemetry = &NoTelemetry();
  // Records each turn's span (docs/tracing.md). Must outlive the manager.
  trace::Tracer* tracer = trace::Tracer::Disabled();
  // Push notifications; nullptr: a push config in a request is refused.
  PushHook* push = nullptr;
};

// A task and the node's record of it (agent, skill, parent, hops).
struct TaskRecord {
  lf::a2a::v1::Task task;
  v1::TaskInfo info;
};

// The trace context stored with a task (TaskInfo.traceparent, tracestate):
// the call that created it, or brought its latest message; invalid if none.
trace::SpanContext TaskTrace(const v1::TaskInfo& info);

struct TaskList {
  std::vector<TaskRecord> tasks;
  int64_t total = 0;
  // Empty on the last page.
  std::string next_page_token;
};

// Owns every task of this node: the A2A state machine, the ordered event log,
// durability through the TaskStore, fan-out to subscribers, and what happens to
// tasks when their agent comes and goes.
//
// Tasks that are not terminal live in memory (and in the store); terminal ones
// only in the store. A task is stored before anyone learns its id, and an event
// that ends a task or a stream (terminal or interrupted state) is stored before
// any subscriber sees it, so what a client was told survives a crash. Other
// events ride along with the next group commit; nobody waits for them.
//
// One owner per task at a time: a change to a task is made under its lock by
// the thread that brings it (a gRPC reaction, the store's writer, a timer), and
// its effects (store writes, deliveries to subscribers, calls to the runner,
// callbacks) run after the lock is released, in the order they were decided,
// on that same thread unless another is already running them (TaskEntry,
// EffectQueue). docs/architecture.md draws it.
//
// Thread-safe. Methods marked "may block" read the store; call them from an
// Executor, never from a gRPC reactor. The others never block.
class TaskManager {
 public:
  TaskManager(TaskManagerOptions options, TaskStore& store, RunnerFactory& runners, Timers& timers,
              Clock& clock);
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Loads the store's unfinished tasks. Tasks that were running wait for their
  // agent to register again within recovery_grace, then fail. Call once, before
  // serving. May block.
  absl::Status Recover();

  // Creates a task from `task.request` and assigns it to its runner at once;
  // once the task is stored, `subscriber` (if any) gets the new Task as its
  // first event, then the events that came meanwhile. Nobody but the agent
  // hears of the task before it is stored. Errors: INVALID_ARGUMENT for a bad
  // message; a store failure reaches the subscriber's OnError (and cancels the
  // agent's work).
  absl::Status Create(NewTask task, std::shared_ptr<TaskSubscriber> subscriber);

  // Runs a turn of another node's task on a local agent: `subscriber` gets the
  // events from here on (no initial Task). ALREADY_EXISTS if a turn of that
  // task is already running here.
  absl::Status Host(HostedTask task, std::shared_ptr<TaskSubscriber> subscriber);

  // A follow-up message to an existing task, for the agent that owns it. Once
  // the message is stored, `subscriber` gets the Task and then its events.
  // TaskNotFound, UnsupportedOperation for a terminal task, INVALID_ARGUMENT for
  // a context mismatch, UNAVAILABLE when the owning agent is not connected,
  // FAILED_PRECONDITION while it waits for an approval. May block.
  // Decides a task that waits for an approval (NewTask::approval): `approve`
  // assigns it to its agent (WORKING, "approved by <by>"); otherwise it is
  // REJECTED ("denied by <by>: <reason>"). FAILED_PRECONDITION if it is not
  // waiting for one, UNAVAILABLE if its agent is not connected (approve again
  // once it is), TaskNotFound. May block.
  absl::Status DecideApproval(const std::string& task_id, bool approve, const std::string& by,
                              const std::string& reason);
  // Tasks waiting for an approval now (metrics).
  int64_t pending_approvals() const;

  // `trace`: the context of the call that brought the message; the turn it
  // starts is its child.
  absl::Status Continue(const lf::a2a::v1::SendMessageRequest& request,
                        std::shared_ptr<TaskSubscriber> subscriber,
                        const trace::SpanContext& trace = trace::SpanContext());

  // An event for `task_id` from the agents of one AgentHost stream. Refuses
  // events for tasks none of them runs and illegal transitions, naming what was
  // wrong.
  absl::Status ApplyAgentEvent(const std::vector<std::string>& agent_ids,
                               const std::string& task_id, lf::a2a::v1::StreamResponse event);

  // An event from `runner` (a handoff to another node) for `task_id`; refused
  // unless `runner` is the task's current runner.
  absl::Status ApplyRunnerEvent(const TaskRunner* runner, const std::string& task_id,
                                lf::a2a::v1::StreamResponse event);
  // `runner` now runs the task on another agent than the one it was created
  // for (a handoff fell back to another candidate): the task's agent follows.
  void RunnerMoved(const TaskRunner* runner, const std::string& task_id);
  // `runner` lost a task it had accepted (the peer went away): the task fails
  // with `reason`, unless it already ended or has another runner.
  void RunnerFailed(const TaskRunner* runner, const std::string& task_id,
                    const std::string& reason);

  // The node-side record of a task held in memory (running, waiting, or a
  // hosted turn). NOT_FOUND otherwise. Never blocks.
  absl::StatusOr<v1::TaskInfo> ActiveInfo(const std::string& task_id) const;

  // Cancels a task held in memory (running, waiting, or a hosted turn), if it
  // has not ended; does nothing otherwise. Never blocks.
  void CancelActive(const std::string& task_id, const std::string& reason);
  // Cancels the subtasks this node runs for `parent_task_id` (on any node),
  // with `reason`. Never blocks.
  void CancelChildren(const std::string& parent_task_id, const std::string& reason);

  // Cancels a task: it becomes CANCELED, its agent is told, and `done` gets the
  // task once that is stored. TaskNotFound, or TaskNotCancelable for a task that
  // already ended. `done` runs without locks held. May block.
  void Cancel(const std::string& task_id, const std::string& reason,
              absl::AnyInvocable<void(absl::StatusOr<lf::a2a::v1::Task>)> done);

  // Subscribes to a task's events; the first is the Task as it stands. TaskNotFound,
  // or UnsupportedOperation for a terminal task. May block. `resume_after`
  // (>= 0): the last event the subscriber saw before (TaskEvent::seq; SSE's
  // Last-Event-ID): no first event if nothing happened since (TaskLog::Attach).
  absl::Status Subscribe(const std::string& task_id, std::shared_ptr<TaskSubscriber> subscriber,
                         int64_t resume_after = -1);
  // Like Subscribe, but the subscription outlives interrupted states (input
  // or auth required) and ends only when the task is terminal: for watchers
  // of the whole task, such as push notifications. May block.
  absl::Status Watch(const std::string& task_id, std::shared_ptr<TaskSubscriber> subscriber);
  // Ends a subscription. An event already on its way may still reach
  // `subscriber` (it is held by shared_ptr until then); no later one does.
  void Unsubscribe(const std::string& task_id, const TaskSubscriber* subscriber);

  // The task as it stands, as far as it is stored: a final state shows once it
  // is durable. TaskNotFound. May block.
  absl::StatusOr<lf::a2a::v1::Task> Get(const std::string& task_id);
  // The same, with the node's record of the task. May block.
  absl::StatusOr<TaskRecord> GetRecord(const std::string& task_id);

  // A page of tasks, newest status first. `page_token` continues a previous
  // page; INVALID_ARGUMENT if it is not one of ours. Tasks whose status changes
  // while a client pages move in the order, as with any list sorted by a live
  // key. May block.
  absl::StatusOr<TaskList> List(TaskQuery query, const std::string& page_token);

  // Fails every turn this node runs for other nodes (the node is stopping), so
  // that their owners learn why.
  void FailHosted(const std::string& reason);

  // Agent lifecycle, from AgentHost. A connected agent gets back its orphaned
  // tasks (resumed); a disconnected agent's running tasks are orphaned and fail
  // after agent_grace unless it connects again.
  void AgentConnected(const std::string& agent_id);
  void AgentDisconnected(const std::string& agent_id, const std::string& reason);

  // Tasks held in memory (not terminal, or terminal but not yet stored).
  size_t active_tasks() const;
  // Tasks an agent is working on or will resume: neither terminal nor waiting
  // for their client. A draining node waits for these.
  size_t running_tasks() const;
  // Tasks held in memory by state name ("working", "input-required", ...).
  std::map<std::string, int64_t> active_by_state() const;
  // Tasks this node holds that no agent has started yet (SUBMITTED), by
  // skill: the demand waiting on a skill's agents.
  std::map<std::string, int64_t> submitted_by_skill() const;

 private:
  using EntryPtr = std::shared_ptr<TaskEntry>;
  // Runs as an effect once an event is stored (at once if it is not stored).
  using DurableCallback = absl::AnyInvocable<void(absl::Status) &&>;

  EntryPtr Find(const std::string& task_id) const;
  // Puts a new entry in the index; UNAVAILABLE once shutting down.
  absl::Status Insert(const EntryPtr& entry, const std::string& agent_id,
                      const std::string& parent_task_id);
  // A task that is not in memory, hence terminal, from the store; TaskNotFound
  // if the store does not have it either. May block.
  absl::StatusOr<TaskRecord> LoadEnded(const std::string& task_id);
  // Never show a state before it is stored (a crash could undo it): returns
  // once what `entry` waits for from the store is stored (if `only_an_end`,
  // only when that is its end). Blocks: call it where a store read may run.
  void AwaitStored(const EntryPtr& entry, bool only_an_end);

  // Applies `event` to the task, logs it, and queues its store write and its
  // deliveries. `on_stored` runs once the event is stored (at once if it need
  // not wait for the store).
  void AppendLocked(const EntryPtr& entry, lf::a2a::v1::StreamResponse event,
                    DurableCallback on_stored = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // Event `seq` of the task is stored (or failed to be).
  void OnStored(const EntryPtr& entry, int64_t seq, absl::Status status, DurableCallback on_stored);
  // A commit that follows the task's create is done (or failed): what waited
  // for the create may be delivered, and `push_watch` (if any) starts
  // watching.
  void OnCreated(const EntryPtr& entry, absl::Status status,
                 std::shared_ptr<TaskSubscriber> push_watch = nullptr);
  // The create is stored (status OK), or could not be: the task is refused,
  // its subscribers hear why and its agent is told to stop.
  void ConfirmCreatedLocked(const EntryPtr& entry, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // Queues what the log can deliver now, and the task's removal from memory
  // once it is over and nothing is left to deliver.
  void CollectLocked(const EntryPtr& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // Queues `assignment` for the task's runner.
  void AssignLocked(const EntryPtr& entry, const lf::a2a::v1::Message& message, bool resumed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // The span of the turn AssignLocked begins (and, hosting a handoff, the
  // handoff's server span), and their end as the turn's runner is released.
  void StartTurnSpanLocked(const EntryPtr& entry, bool resumed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  void EndTurnSpanLocked(const EntryPtr& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // The span of a store commit that task `task_id` waits for (an event's
  // delivery, or its client's answer, is held until it is stored): child of
  // `parent`, recorded only if that is sampled. EndStoreSpan ends it with the
  // commit's status.
  trace::Span StoreSpan(const trace::SpanContext& parent, const std::string& task_id) const;
  static void EndStoreSpan(trace::Span& span, const absl::Status& status);

  // Lets go of the task's runner (its slot), outside the lock.
  void ReleaseRunnerLocked(const EntryPtr& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // Sends the Task as it stands to `subscriber` and adds it for later events.
  absl::Status Attach(const std::string& task_id, std::shared_ptr<TaskSubscriber> subscriber,
                      bool until_terminal, int64_t resume_after = -1);
  // Tells the agent (if any can be reached) and logs CANCELED.
  void CancelLocked(const EntryPtr& entry, const std::string& reason, DurableCallback on_stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  // Fails the task (a node-side status update) if it is not terminal yet.
  void FailLocked(const EntryPtr& entry, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry->mu);
  void Remove(const std::string& task_id, const std::string& agent_id,
              const std::string& parent_task_id);
  // Fails the task with `reason` at `deadline` if it is still running then.
  void ArmDeadline(const std::string& task_id, absl::Time deadline);
  // Rejects the task at `deadline` if it still waits for an approval then.
  void ArmApproval(const std::string& task_id, absl::Time deadline);
  // Every sweep_interval_: fails the turns past their limits (max_turn,
  // skill_max_turn, agent_idle_timeout) and the tasks that waited for their
  // client past interrupted_ttl. A pass over the tasks in memory, so that a
  // task costs no timer of its own.
  void ArmLimitsSweep();
  void SweepLimits();
  void FailIfActive(const std::string& task_id, const std::string& reason);
  std::vector<EntryPtr> EntriesOf(const std::string& agent_id) const;
  // The agent's grace expired: its orphaned tasks fail with `reason`.
  void FailOrphans(const std::string& agent_id, const std::string& reason);
  // Telemetry for an agent's event, before it is applied.
  // An agent's event for the task: a direct reply is refused unless it is the
  // agent's first answer to a new task, and becomes a plain completion when
  // the task's client cannot take it as a Message (TaskEntry::may_reply).
  absl::Status AdmitReplyLocked(TaskEntry& entry, lf::a2a::v1::StreamResponse* event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu);
  void NoteAgentEventLocked(TaskEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu);
  // How long ago the entry's task was created.
  absl::Duration AgeLocked(const TaskEntry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu);
  lf::a2a::v1::StreamResponse StatusEventLocked(const TaskEntry& entry,
                                                lf::a2a::v1::TaskState state,
                                                const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu);

  const TaskManagerOptions options_;
  TaskStore& store_;
  RunnerFactory& runners_;
  absl::Duration sweep_interval_ = absl::InfiniteDuration();
  Timers& timers_;
  Clock& clock_;
  // Timer callbacks go through this: they do nothing once we are gone.
  WeakSelf<TaskManager> weak_self_;
  OrphanTimers orphans_;

  // Lock order: mu_ before any TaskEntry::mu; TaskEntry::mu is never held
  // while taking mu_, and no effect runs while mu_ is held. The catalog's and
  // the store's locks are leaves below both.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, EntryPtr> active_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_agent_ ABSL_GUARDED_BY(mu_);
  // parent task id -> its subtasks that are still active on this node.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> children_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_TASK_MANAGER_H_
