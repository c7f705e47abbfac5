#include "tasks/task_manager.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "tasks/page_token.h"
#include "tasks/recovery.h"
#include "tasks/task_state.h"

namespace a2amesh::tasks {

namespace {

// Whether the task waits for an approver (NewTask::approval).
bool AwaitsApprovalLocked(const TaskEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu) {
  return entry.info.has_approval() &&
         entry.task.status().state() == lf::a2a::v1::TASK_STATE_AUTH_REQUIRED;
}

}  // namespace

using lf::a2a::v1::Message;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using lf::a2a::v1::TaskState;

namespace {

// The message an agent should act on when a task is resumed: the last one the
// client sent.
const Message* LastUserMessage(const Task& task) {
  for (int i = task.history_size() - 1; i >= 0; --i) {
    if (task.history(i).role() == lf::a2a::v1::ROLE_USER) {
      return &task.history(i);
    }
  }
  return nullptr;
}

}  // namespace

TaskManager::TaskManager(TaskManagerOptions options, TaskStore& store, RunnerFactory& runners,
                         Timers& timers, Clock& clock)
    : options_(std::move(options)),
      store_(store),
      runners_(runners),
      timers_(timers),
      clock_(clock),
      weak_self_(this),
      orphans_(timers, [this](const std::string& agent_id, const std::string& reason) {
        FailOrphans(agent_id, reason);
      }) {
  absl::Duration shortest =
      std::min({options_.max_turn, options_.agent_idle_timeout, options_.interrupted_ttl});
  for (const auto& [skill, limit] : options_.skill_max_turn) shortest = std::min(shortest, limit);
  if (shortest != absl::InfiniteDuration()) {
    // A limit is noticed within a quarter of itself (at most 5 s late): one
    // pass over the tasks in memory, instead of timers per task.
    sweep_interval_ = std::clamp(shortest / 4, absl::Milliseconds(10), absl::Seconds(5));
    ArmLimitsSweep();
  }
}

void TaskManager::ArmLimitsSweep() {
  timers_.RunAfter(sweep_interval_, weak_self_.Bind([](TaskManager& self) {
    self.SweepLimits();
    self.ArmLimitsSweep();
  }));
}

void TaskManager::SweepLimits() {
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.reserve(active_.size());
    for (const auto& [id, entry] : active_) entries.push_back(entry);
  }
  for (const EntryPtr& entry : entries) {
    TaskEntry::Lock lock(entry.get());
    const TaskState state = entry->task.status().state();
    if (IsTerminalState(state)) continue;
    const absl::Time now = clock_.Now();
    if (entry->runner != nullptr) {
      // In a turn (assigned, no final event yet).
      auto skill_limit = options_.skill_max_turn.find(entry->info.skill());
      const absl::Duration limit =
          skill_limit != options_.skill_max_turn.end() ? skill_limit->second : options_.max_turn;
      if (now - entry->turn_started >= limit) {
        FailLocked(entry,
                   absl::StrCat("agent ", entry->info.agent_id(), " did not finish its turn in ",
                                absl::FormatDuration(limit), " (--max-turn-duration)"));
      } else if (now - entry->last_agent_event >= options_.agent_idle_timeout) {
        FailLocked(entry, absl::StrCat("agent ", entry->info.agent_id(), " sent nothing for ",
                                       absl::FormatDuration(options_.agent_idle_timeout),
                                       " (--agent-idle-timeout)"));
      }
    } else if (IsInterruptedState(state) && !entry->hosted() && !AwaitsApprovalLocked(*entry)) {
      // Waiting for its client since its status changed (also before a restart).
      const absl::Time since =
          absl::FromUnixMillis(google::protobuf::util::TimeUtil::TimestampToMilliseconds(
              entry->task.status().timestamp()));
      if (now - since >= options_.interrupted_ttl) {
        FailLocked(entry, absl::StrCat("the task waited for its client (", StateName(state),
                                       ") for ", absl::FormatDuration(options_.interrupted_ttl),
                                       " without an answer (--interrupted-task-ttl)"));
      }
    }
  }
}

TaskManager::~TaskManager() {
  weak_self_.Reset();  // no timer callback runs from here on
  store_.Flush();      // every store callback that refers to us has run
  std::vector<std::shared_ptr<TaskSubscriber>> subscribers;
  std::vector<std::shared_ptr<TaskRunner>> runners;
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [id, entry] : active_) {
      entries.push_back(entry);
    }
  }
  for (const EntryPtr& entry : entries) {
    absl::MutexLock lock(&entry->mu);
    for (auto& subscriber : entry->log.TakeSubscribers()) {
      subscribers.push_back(std::move(subscriber));
    }
    runners.push_back(std::move(entry->runner));
  }
  for (auto& subscriber : subscribers) {
    subscriber->OnError(absl::UnavailableError("the node is shutting down"));
  }
}

TaskManager::EntryPtr TaskManager::Find(const std::string& task_id) const {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(task_id);
  return it == active_.end() ? nullptr : it->second;
}

absl::Status TaskManager::Insert(const EntryPtr& entry, const std::string& agent_id,
                                 const std::string& parent_task_id) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) {
    return absl::UnavailableError("the node is shutting down");
  }
  if (!active_.emplace(entry->id, entry).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("a turn of task ", entry->id, " is already running on this node"));
  }
  by_agent_[agent_id].insert(entry->id);
  if (!parent_task_id.empty()) {
    children_[parent_task_id].insert(entry->id);
  }
  return absl::OkStatus();
}

absl::StatusOr<TaskRecord> TaskManager::LoadEnded(const std::string& task_id) {
  absl::StatusOr<StoredTask> stored = store_.Get(task_id);
  if (absl::IsNotFound(stored.status())) {
    return TaskNotFoundError(task_id);
  }
  if (!stored.ok()) {
    return stored.status();
  }
  TaskRecord record;
  A2AMESH_ASSIGN_OR_RETURN(record.task, Materialize(*stored));
  record.info = std::move(stored->info);
  return record;
}

int64_t TaskManager::pending_approvals() const {
  absl::MutexLock lock(&mu_);
  int64_t pending = 0;
  for (const auto& [id, entry] : active_) {
    absl::MutexLock entry_lock(&entry->mu);
    if (AwaitsApprovalLocked(*entry)) ++pending;
  }
  return pending;
}

std::map<std::string, int64_t> TaskManager::active_by_state() const {
  std::map<std::string, int64_t> counts;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : active_) {
    absl::MutexLock entry_lock(&entry->mu);
    ++counts[std::string(StateName(entry->task.status().state()))];
  }
  return counts;
}

std::map<std::string, int64_t> TaskManager::submitted_by_skill() const {
  std::map<std::string, int64_t> counts;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : active_) {
    absl::MutexLock entry_lock(&entry->mu);
    if (entry->task.status().state() == lf::a2a::v1::TASK_STATE_SUBMITTED &&
        !entry->info.skill().empty()) {
      ++counts[entry->info.skill()];
    }
  }
  return counts;
}

size_t TaskManager::active_tasks() const {
  absl::MutexLock lock(&mu_);
  return active_.size();
}

size_t TaskManager::running_tasks() const {
  absl::MutexLock lock(&mu_);
  size_t running = 0;
  for (const auto& [id, entry] : active_) {
    absl::MutexLock entry_lock(&entry->mu);
    TaskState state = entry->task.status().state();
    if (!IsTerminalState(state) && !IsInterruptedState(state)) {
      ++running;
    }
  }
  return running;
}

StreamResponse TaskManager::StatusEventLocked(const TaskEntry& entry, TaskState state,
                                              const std::string& text) {
  StreamResponse event;
  auto* update = event.mutable_status_update();
  update->set_task_id(entry.id);
  update->set_context_id(entry.task.context_id());
  auto* status = update->mutable_status();
  status->set_state(state);
  *status->mutable_timestamp() = StatusTimestamp(clock_.Now());
  if (!text.empty()) {
    Message* message = status->mutable_message();
    message->set_message_id(NewUuid());
    message->set_role(lf::a2a::v1::ROLE_AGENT);
    message->set_task_id(entry.id);
    message->set_context_id(entry.task.context_id());
    message->add_parts()->set_text(text);
  }
  return event;
}

void TaskManager::AssignLocked(const EntryPtr& entry, const Message& message, bool resumed) {
  v1::TaskAssignment assignment;
  assignment.set_agent_id(entry->info.agent_id());
  *assignment.mutable_task() = entry->task;
  *assignment.mutable_message() = message;
  if (entry->info.has_request_metadata()) {
    *assignment.mutable_request_metadata() = entry->info.request_metadata();
  }
  *assignment.mutable_accepted_output_modes() = entry->info.accepted_output_modes();
  assignment.set_skill(entry->info.skill());
  assignment.set_resumed(resumed);
  *assignment.mutable_hops() = entry->info.hops();
  assignment.set_deadline_unix_ms(entry->info.deadline_unix_ms());
  assignment.set_parent_task_id(entry->info.parent_task_id());
  if (!entry->info.principal().empty()) {
    assignment.set_principal(entry->info.principal());
    *assignment.mutable_principal_roles() = entry->info.principal_roles();
    assignment.set_principal_method(entry->info.principal_method());
  }
  StartTurnSpanLocked(entry, resumed);
  if (std::string traceparent = trace::FormatTraceparent(entry->turn_span.context());
      !traceparent.empty()) {
    assignment.set_traceparent(std::move(traceparent));
    assignment.set_tracestate(entry->turn_span.context().trace_state);
  }
  entry->effects.Add([runner = entry->runner, assignment = std::move(assignment)]() mutable {
    runner->Assign(std::move(assignment));
  });
  // A turn begins: the limits sweep (SweepLimits) counts from here.
  entry->turn_started = clock_.Now();
  entry->last_agent_event = entry->turn_started;
}

trace::SpanContext TaskTrace(const v1::TaskInfo& info) {
  if (info.traceparent().empty()) return trace::SpanContext();
  return trace::ParseTraceContext(info.traceparent(), info.tracestate())
      .value_or(trace::SpanContext());
}

void TaskManager::StartTurnSpanLocked(const EntryPtr& entry, bool resumed) {
  trace::SpanContext parent = TaskTrace(entry->info);
  bool remote = true;
  if (entry->hosted() && !entry->host_span.context().valid() && parent.valid()) {
    // The owner's handoff, as this node serves it.
    entry->host_span = options_.tracer->StartSpan("a2amesh.v1.Peer/Handoff",
                                                  trace::SpanKind::kServer, &parent, true);
    if (entry->host_span.recording()) {
      entry->host_span.SetAttribute("rpc.system", "grpc");
      entry->host_span.SetAttribute("a2a.task_id", entry->id);
      entry->host_span.SetAttribute("a2amesh.node", options_.node_id);
    }
    parent = entry->host_span.context();
    remote = false;
  }
  entry->turn_span = options_.tracer->StartSpan("agent turn", trace::SpanKind::kClient,
                                                parent.valid() ? &parent : nullptr, remote);
  trace::Span& span = entry->turn_span;
  if (!span.recording()) return;
  span.SetAttribute("a2a.task_id", entry->id);
  span.SetAttribute("a2a.context_id", entry->task.context_id());
  span.SetAttribute("a2amesh.agent", entry->info.agent_id());
  span.SetAttribute("a2amesh.node", options_.node_id);
  if (!entry->info.skill().empty()) span.SetAttribute("a2amesh.skill", entry->info.skill());
  if (!entry->info.parent_task_id().empty()) {
    span.SetAttribute("a2amesh.parent_task_id", entry->info.parent_task_id());
  }
  if (resumed) span.SetAttribute("a2amesh.resumed", true);
  if (entry->runner != nullptr) entry->runner->DescribeTurn(span);
}

trace::Span TaskManager::StoreSpan(const trace::SpanContext& parent,
                                   const std::string& task_id) const {
  if (!options_.tracer->enabled() || !parent.valid() || !parent.sampled()) return trace::Span();
  trace::Span span =
      options_.tracer->StartSpan("task store commit", trace::SpanKind::kInternal, &parent);
  span.SetAttribute("a2a.task_id", task_id);
  span.SetAttribute("a2amesh.node", options_.node_id);
  return span;
}

void TaskManager::EndStoreSpan(trace::Span& span, const absl::Status& status) {
  if (!span.recording()) return;
  if (!status.ok()) span.SetError(status.message());
  span.End();
}

void TaskManager::EndTurnSpanLocked(const EntryPtr& entry) {
  const TaskState state = entry->task.status().state();
  for (trace::Span* span : {&entry->turn_span, &entry->host_span}) {
    if (!span->recording()) {
      *span = trace::Span();
      continue;
    }
    span->SetAttribute("a2a.task.state", StateName(state));
    if (state == lf::a2a::v1::TASK_STATE_FAILED || state == lf::a2a::v1::TASK_STATE_REJECTED) {
      std::string reason;
      for (const auto& part : entry->task.status().message().parts()) {
        if (part.has_text()) absl::StrAppend(&reason, reason.empty() ? "" : "\n", part.text());
      }
      span->SetError(reason.empty() ? std::string(StateName(state)) : reason);
    } else if (!IsTerminalState(state) && !IsInterruptedState(state)) {
      span->SetError("the turn ended before the agent's answer");
    }
    span->End();
  }
}

void TaskManager::ReleaseRunnerLocked(const EntryPtr& entry) {
  EndTurnSpanLocked(entry);
  if (entry->runner != nullptr) {
    // Destroyed when the effect is, after the lock is released.
    entry->effects.Add([runner = std::move(entry->runner)] {});
  }
}

void TaskManager::CollectLocked(const EntryPtr& entry) {
  TaskLog::Deliveries deliveries;
  entry->log.Collect(&deliveries);
  for (TaskLog::Delivery& delivery : deliveries) {
    entry->effects.Add([entry, delivery = std::move(delivery)] { delivery.Deliver(entry->id); });
  }
  // A task leaves memory once it is over (terminal and stored; for a hosted
  // turn, final) and nothing is left to deliver.
  if (entry->OverLocked() && entry->log.quiet()) {
    const TaskState state = entry->task.status().state();
    const bool cascade = state == lf::a2a::v1::TASK_STATE_CANCELED ||
                         state == lf::a2a::v1::TASK_STATE_FAILED ||
                         state == lf::a2a::v1::TASK_STATE_REJECTED;
    entry->effects.Add([this, id = entry->id, agent_id = entry->info.agent_id(),
                        parent_id = entry->info.parent_task_id(), cascade] {
      Remove(id, agent_id, parent_id);
      if (cascade) {
        CancelChildren(id, absl::StrCat("its parent task ", id, " ended"));
      }
    });
  }
}

void TaskManager::AppendLocked(const EntryPtr& entry, StreamResponse event,
                               DurableCallback on_stored) {
  absl::Status applied = ApplyEvent(event, &entry->task);
  // Events reach here validated; a failure is a bug in the caller.
  if (!applied.ok()) {
    A2AMESH_LOG(Error, "event not applied").With("task", entry->id).With("error", applied);
  }
  const TaskState state = entry->task.status().state();
  const bool final = IsFinalEvent(event);
  if (event.has_status_update() && entry->turn_span.recording()) {
    entry->turn_span.AddEvent("a2a.task.status", "a2a.task.state", StateName(state));
  }
  if (final && IsTerminalState(state) && !entry->hosted()) {
    options_.telemetry->TaskEnded(entry->info.skill(),
                                  IsDirectReply(event) ? "replied" : std::string(StateName(state)),
                                  AgeLocked(*entry), TaskEntry::SampledTraceIdOf(*entry));
  }
  if (final) {
    // The agent is done with the task, or waits for the client: free its slot.
    ReleaseRunnerLocked(entry);
  }
  const int64_t seq = entry->log.next_seq();
  std::vector<TaskStoreOp> ops;
  const Durability durability = entry->PersistLocked(event, seq, &ops);
  entry->log.Append(std::move(event), entry->task,
                    /*durable_first=*/durability == Durability::kWaitForStore);
  switch (durability) {
    case Durability::kWaitForStore: {
      // The end of a task that nobody watches or waits for (its client was
      // answered when it was accepted) rides along with the next group
      // commit instead of starting one: under load that halves the commits
      // of accepted tasks. It is still stored before anyone sees it: a
      // reader that would flushes the store first (AwaitStored).
      const bool lazy = !on_stored && IsTerminalState(state) && !entry->log.watched();
      trace::Span commit;
      // (An unsampled task's flags say so: nothing to parse.)
      if (options_.tracer->enabled() && !TaskEntry::SampledTraceIdOf(*entry).empty()) {
        const trace::SpanContext& turn = entry->turn_span.context();
        commit = StoreSpan(turn.valid() ? turn : TaskTrace(entry->info), entry->id);
        if (commit.recording()) {
          commit.SetAttribute("a2amesh.store.seq", seq);
          if (lazy) commit.SetAttribute("a2amesh.store.lazy", true);
        }
      }
      entry->effects.Add([this, entry, seq, lazy, ops = std::move(ops),
                          on_stored = std::move(on_stored), commit = std::move(commit)]() mutable {
        auto done = [this, entry, seq, on_stored = std::move(on_stored),
                     commit = std::move(commit)](absl::Status status) mutable {
          EndStoreSpan(commit, status);
          OnStored(entry, seq, std::move(status), std::move(on_stored));
        };
        if (lazy) {
          store_.CommitLazily(std::move(ops), std::move(done));
        } else {
          store_.Commit(std::move(ops), std::move(done));
        }
      });
      break;
    }
    case Durability::kRideAlong:
      entry->effects.Add([this, ops = std::move(ops)]() mutable { store_.Append(std::move(ops)); });
      [[fallthrough]];
    case Durability::kNone:
      if (on_stored) {
        entry->effects.Add([on_stored = std::move(on_stored)]() mutable {
          std::move(on_stored)(absl::OkStatus());
        });
      }
      break;
  }
  CollectLocked(entry);
}

void TaskManager::OnStored(const EntryPtr& entry, int64_t seq, absl::Status status,
                           DurableCallback on_stored) {
  TaskEntry::Lock lock(entry.get());
  if (!status.ok()) {
    // Delivering anyway keeps clients going; the store logs the error once per
    // batch, and here per event.
    A2AMESH_LOG(Error, "task event not stored")
        .With("task", entry->id)
        .With("seq", seq)
        .With("error", status);
  }
  // The store keeps the order of writes: whatever was written before this
  // commit, the task's create included, is stored too.
  ConfirmCreatedLocked(entry, status);
  entry->log.MarkStored(seq);
  CollectLocked(entry);
  if (on_stored) {
    entry->effects.Add([on_stored = std::move(on_stored), status = std::move(status)]() mutable {
      std::move(on_stored)(std::move(status));
    });
  }
}

void TaskManager::NoteAgentEventLocked(TaskEntry& entry) {
  entry.last_agent_event = clock_.Now();
  if (entry.answered || entry.hosted()) {
    return;
  }
  entry.answered = true;
  options_.telemetry->TaskFirstEvent(entry.info.skill(), AgeLocked(entry),
                                     TaskEntry::SampledTraceIdOf(entry));
}

absl::Duration TaskManager::AgeLocked(const TaskEntry& entry) const {
  return clock_.Now() - absl::FromUnixMillis(entry.info.created_unix_ms());
}

void TaskManager::Remove(const std::string& task_id, const std::string& agent_id,
                         const std::string& parent_task_id) {
  absl::MutexLock lock(&mu_);
  active_.erase(task_id);
  if (!parent_task_id.empty()) {
    auto siblings = children_.find(parent_task_id);
    if (siblings != children_.end()) {
      siblings->second.erase(task_id);
      if (siblings->second.empty()) {
        children_.erase(siblings);
      }
    }
  }
  auto it = by_agent_.find(agent_id);
  if (it != by_agent_.end()) {
    it->second.erase(task_id);
    if (it->second.empty()) {
      by_agent_.erase(it);
    }
  }
}

absl::Status TaskManager::Create(NewTask request, std::shared_ptr<TaskSubscriber> subscriber) {
  const Message& in = request.request.message();
  const absl::Time created = clock_.Now();
  const std::string task_id =
      request.task_id.empty() ? MakeTaskId(options_.node_id, created) : std::move(request.task_id);
  const std::string agent_id = request.runner->agent_id();
  std::optional<lf::a2a::v1::TaskPushNotificationConfig> push;
  if (request.request.configuration().has_task_push_notification_config()) {
    if (options_.push == nullptr) {
      return MakeA2aError(A2aError::kPushNotificationNotSupported,
                          "push notifications are not enabled on this node");
    }
    A2AMESH_ASSIGN_OR_RETURN(
        push, options_.push->Prepare(
                  task_id, request.request.configuration().task_push_notification_config()));
  }
  EntryPtr entry = std::make_shared<OwnedTask>(task_id);
  entry->lease = std::move(request.lease);
  std::vector<TaskStoreOp> ops;
  Message message = in;
  {
    absl::MutexLock lock(&entry->mu);
    Task& task = entry->task;
    task.set_id(task_id);
    task.set_context_id(in.context_id().empty() ? NewTimeOrderedUuid(created) : in.context_id());
    task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
    *task.mutable_status()->mutable_timestamp() = StatusTimestamp(created);
    message.set_task_id(task_id);
    message.set_context_id(task.context_id());
    *task.add_history() = message;

    v1::TaskInfo& info = entry->info;
    info.set_agent_id(agent_id);
    info.set_skill(request.skill);
    info.set_parent_task_id(request.parent_task_id);
    *info.mutable_accepted_output_modes() = request.request.configuration().accepted_output_modes();
    if (request.request.has_metadata()) {
      *info.mutable_request_metadata() = request.request.metadata();
    }
    info.set_created_unix_ms(absl::ToUnixMillis(created));
    info.set_created_unix_us(absl::ToUnixMicros(created));
    if (request.trace.valid()) {
      info.set_traceparent(trace::FormatTraceparent(request.trace));
      info.set_tracestate(request.trace.trace_state);
    }
    for (const std::string& hop : request.hops) {
      info.add_hops(hop);
    }
    if (request.deadline != absl::InfiniteFuture()) {
      info.set_deadline_unix_ms(absl::ToUnixMillis(request.deadline));
    }
    if (!request.principal.empty()) {
      info.set_principal(request.principal);
      for (const std::string& role : request.principal_roles) info.add_principal_roles(role);
      info.set_principal_method(request.principal_method);
    }
    entry->runner = std::move(request.runner);
    if (request.approval.has_value()) *info.mutable_approval() = *request.approval;
    TaskStoreOp& op = ops.emplace_back();
    op.kind = TaskStoreOp::Kind::kCreate;
    op.task_id = task_id;
    op.context_id = task.context_id();
    op.agent_id = agent_id;
    op.skill = info.skill();
    op.parent_id = info.parent_task_id();
    op.principal = info.principal();
    op.state = task.status().state();
    op.status_unix_ms = absl::ToUnixMillis(created);
    op.payload = task.SerializeAsString();
    op.info = info.SerializeAsString();
  }
  if (push.has_value()) {
    TaskStoreOp& put = ops.emplace_back();
    put.kind = TaskStoreOp::Kind::kPutPushConfig;
    put.task_id = task_id;
    put.config_id = push->id();
    put.payload = push->SerializeAsString();
  }
  {
    // The task's first effect is its creation: whatever happens to it once
    // it is in the index (a cancel cascading from its parent) queues behind,
    // so its store writes follow the create. The agent starts at once, while
    // the create is written; nobody else hears of the task before the create
    // is stored (the log holds every delivery back until then).
    absl::MutexLock lock(&entry->mu);
    entry->creation = TaskEntry::Creation::kPending;
    entry->log.HoldUntilCreated();
    entry->may_reply = request.may_reply && !push.has_value() && !request.approval.has_value();
    if (subscriber != nullptr) {
      entry->log.Attach(std::move(subscriber), entry->task, /*until_terminal=*/false,
                        /*resume_after=*/-1, entry->may_reply);
    }
    if (request.await_create || push.has_value()) {
      trace::Span commit = StoreSpan(request.trace, task_id);
      entry->effects.Add([this, entry, ops = std::move(ops), push = std::move(push),
                          trace = request.trace, commit = std::move(commit)]() mutable {
        store_.Commit(std::move(ops),
                      [this, entry, push = std::move(push), trace = std::move(trace),
                       commit = std::move(commit)](absl::Status status) mutable {
                        EndStoreSpan(commit, status);
                        std::shared_ptr<TaskSubscriber> watch;
                        if (status.ok() && push.has_value()) {
                          watch = options_.push->Attach(*push, trace);
                        }
                        OnCreated(entry, std::move(status), std::move(watch));
                      });
      });
    } else {
      // Confirmed by the next commit of the task (OnStored).
      entry->effects.Add([this, ops = std::move(ops)]() mutable { store_.Append(std::move(ops)); });
    }
    if (request.approval.has_value()) {
      // It waits for an approver, not for its agent (whose slot this final
      // event frees): callers hear AUTH_REQUIRED as from an agent.
      const v1::PendingApproval& approval = *request.approval;
      AppendLocked(
          entry,
          StatusEventLocked(
              *entry, lf::a2a::v1::TASK_STATE_AUTH_REQUIRED,
              absl::StrCat("waiting for approval: the policy's rule '", approval.rule(),
                           "' requires one of [", absl::StrJoin(approval.approvers(), ", "),
                           "] to approve it (meshctl approve ", task_id, ") by ",
                           absl::FormatTime(absl::RFC3339_sec,
                                            absl::FromUnixMillis(approval.deadline_unix_ms()),
                                            absl::UTCTimeZone()))));
    } else {
      AssignLocked(entry, message, /*resumed=*/false);
    }
  }
  if (absl::Status inserted = Insert(entry, agent_id, request.parent_task_id); !inserted.ok()) {
    EffectQueue unrun;  // the create is not issued
    std::shared_ptr<TaskRunner> runner;
    {
      absl::MutexLock lock(&entry->mu);
      runner = std::move(entry->runner);
      std::swap(unrun, entry->effects);
    }
    return inserted;
  }
  if (request.deadline != absl::InfiniteFuture()) {
    ArmDeadline(task_id, request.deadline);
  }
  if (request.approval.has_value()) {
    ArmApproval(task_id, absl::FromUnixMillis(request.approval->deadline_unix_ms()));
  }
  TaskEntry::Lock run(entry.get());  // issues the create, unless someone already did
  return absl::OkStatus();
}

void TaskManager::OnCreated(const EntryPtr& entry, absl::Status status,
                            std::shared_ptr<TaskSubscriber> push_watch) {
  TaskEntry::Lock lock(entry.get());
  ConfirmCreatedLocked(entry, status);
  if (push_watch != nullptr && entry->creation == TaskEntry::Creation::kStored) {
    entry->log.Attach(std::move(push_watch), entry->task, /*until_terminal=*/true);
  }
  CollectLocked(entry);
}

void TaskManager::ConfirmCreatedLocked(const EntryPtr& entry, const absl::Status& status) {
  if (entry->creation != TaskEntry::Creation::kPending) {
    return;
  }
  if (status.ok()) {
    entry->creation = TaskEntry::Creation::kStored;
    options_.telemetry->TaskCreated(entry->info.skill());
    entry->log.MarkStored(0);
    return;
  }
  A2AMESH_LOG(Error, "task not stored; refused").With("task", entry->id).With("error", status);
  entry->creation = TaskEntry::Creation::kFailed;
  if (entry->runner != nullptr) {
    entry->effects.Add([runner = entry->runner, id = entry->id] {
      runner->Cancel(id, "the task could not be stored");
    });
  }
  ReleaseRunnerLocked(entry);
  entry->effects.Add([this, id = entry->id, agent_id = entry->info.agent_id(),
                      parent_id = entry->info.parent_task_id(),
                      subscribers = entry->log.TakeSubscribers(),
                      error = absl::UnavailableError(
                          absl::StrCat("the task could not be stored: ", status.message()))] {
    Remove(id, agent_id, parent_id);
    for (const auto& subscriber : subscribers) {
      subscriber->OnError(error);
    }
  });
}

absl::Status TaskManager::Host(HostedTask hosted, std::shared_ptr<TaskSubscriber> subscriber) {
  const std::string agent_id = hosted.info.agent_id();
  EntryPtr entry = std::make_shared<HostedTurn>(hosted.task.id());
  absl::Time deadline = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&entry->mu);
    entry->task = std::move(hosted.task);
    entry->info = std::move(hosted.info);
    entry->runner = std::move(hosted.runner);
    if (entry->info.deadline_unix_ms() > 0) {
      deadline = absl::FromUnixMillis(entry->info.deadline_unix_ms());
    }
  }
  if (absl::Status inserted = Insert(entry, agent_id, ""); !inserted.ok()) {
    std::shared_ptr<TaskRunner> runner;
    {
      absl::MutexLock lock(&entry->mu);
      runner = std::move(entry->runner);
    }
    return inserted;
  }
  {
    TaskEntry::Lock lock(entry.get());
    entry->log.Follow(std::move(subscriber));  // the owner already has the task
    CollectLocked(entry);
    AssignLocked(entry, hosted.message, /*resumed=*/false);
  }
  if (deadline != absl::InfiniteFuture()) {
    ArmDeadline(entry->id, deadline);
  }
  return absl::OkStatus();
}

absl::Status TaskManager::ApplyRunnerEvent(const TaskRunner* runner, const std::string& task_id,
                                           StreamResponse event) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " is not active on this node"));
  }
  TaskEntry::Lock lock(entry.get());
  if (entry->runner.get() != runner) {
    // `runner` may be gone: compare it, never use it.
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is no longer run by that runner"));
  }
  A2AMESH_RETURN_IF_ERROR(NormalizeAgentEvent(entry->task, clock_.Now(), &event));
  A2AMESH_RETURN_IF_ERROR(AdmitReplyLocked(*entry, &event));
  NoteAgentEventLocked(*entry);
  AppendLocked(entry, std::move(event));
  return absl::OkStatus();
}

absl::Status TaskManager::AdmitReplyLocked(TaskEntry& entry, StreamResponse* event) {
  const bool could_reply = entry.may_reply;
  entry.may_reply = false;  // the agent has answered, one way or the other
  if (!IsDirectReply(*event)) {
    return absl::OkStatus();
  }
  if (!AwaitsFirstAnswer(entry.task)) {
    entry.may_reply = could_reply;  // refused: nothing happened
    return absl::FailedPreconditionError(absl::StrCat(
        "a direct reply answers only the first message of a new task, before any other event; "
        "task ",
        entry.id, " is ", StateName(entry.task.status().state()),
        entry.task.history_size() > 1 ? " with more than one message" : "",
        ": send a status update instead"));
  }
  if (!could_reply && !entry.hosted()) {
    // Its client already knows the task (return_immediately, a push config, a
    // delegation): the reply completes it, its message the status message.
    auto* fields = event->mutable_status_update()->mutable_metadata()->mutable_fields();
    fields->erase(kDirectReplyKey);
    if (fields->empty()) event->mutable_status_update()->clear_metadata();
  }
  return absl::OkStatus();
}

void TaskManager::RunnerMoved(const TaskRunner* runner, const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(task_id);
  if (it == active_.end()) {
    return;
  }
  const EntryPtr& entry = it->second;
  absl::MutexLock entry_lock(&entry->mu);
  if (entry->runner.get() != runner || entry->info.agent_id() == runner->agent_id()) {
    return;
  }
  auto& old_tasks = by_agent_[entry->info.agent_id()];
  old_tasks.erase(task_id);
  if (old_tasks.empty()) {
    by_agent_.erase(entry->info.agent_id());
  }
  entry->info.set_agent_id(runner->agent_id());
  by_agent_[entry->info.agent_id()].insert(task_id);
}

void TaskManager::RunnerFailed(const TaskRunner* runner, const std::string& task_id,
                               const std::string& reason) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return;
  }
  TaskEntry::Lock lock(entry.get());
  if (entry->runner.get() == runner) {
    FailLocked(entry, reason);
  }
}

absl::StatusOr<v1::TaskInfo> TaskManager::ActiveInfo(const std::string& task_id) const {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " is not active on this node"));
  }
  absl::MutexLock lock(&entry->mu);
  return entry->info;
}

void TaskManager::CancelChildren(const std::string& parent_task_id, const std::string& reason) {
  std::vector<std::string> children;
  {
    absl::MutexLock lock(&mu_);
    auto it = children_.find(parent_task_id);
    if (it == children_.end()) {
      return;
    }
    children.assign(it->second.begin(), it->second.end());
  }
  for (const std::string& child : children) {
    CancelActive(child, reason);
  }
}

void TaskManager::CancelActive(const std::string& task_id, const std::string& reason) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return;
  }
  TaskEntry::Lock lock(entry.get());
  if (!IsTerminalState(entry->task.status().state())) {
    CancelLocked(entry, reason, nullptr);
  }
}

void TaskManager::ArmDeadline(const std::string& task_id, absl::Time deadline) {
  timers_.RunAfter(deadline - clock_.Now(), weak_self_.Bind([task_id](TaskManager& self) {
    self.FailIfActive(task_id, "the task's deadline passed");
  }));
}

void TaskManager::FailIfActive(const std::string& task_id, const std::string& reason) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return;
  }
  TaskEntry::Lock lock(entry.get());
  FailLocked(entry, reason);
}

void TaskManager::ArmApproval(const std::string& task_id, absl::Time deadline) {
  timers_.RunAfter(deadline - clock_.Now(), weak_self_.Bind([task_id](TaskManager& self) {
    EntryPtr entry = self.Find(task_id);
    if (entry == nullptr) return;
    TaskEntry::Lock lock(entry.get());
    if (!AwaitsApprovalLocked(*entry)) return;
    self.options_.telemetry->ApprovalDecided("expired");
    self.AppendLocked(entry,
                      self.StatusEventLocked(*entry, lf::a2a::v1::TASK_STATE_REJECTED,
                                             absl::StrCat("rejected: nobody approved it before ",
                                                          "its deadline (the policy's rule '",
                                                          entry->info.approval().rule(), "')")));
  }));
}

absl::Status TaskManager::DecideApproval(const std::string& task_id, bool approve,
                                         const std::string& by, const std::string& reason) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    A2AMESH_ASSIGN_OR_RETURN(TaskRecord ended, LoadEnded(task_id));
    return absl::FailedPreconditionError(absl::StrCat("task ", task_id, " is already ",
                                                      StateName(ended.task.status().state()),
                                                      " and waits for no approval"));
  }
  TaskEntry::Lock lock(entry.get());
  if (!AwaitsApprovalLocked(*entry)) {
    return absl::FailedPreconditionError(absl::StrCat("task ", task_id, " is ",
                                                      StateName(entry->task.status().state()),
                                                      " and waits for no approval"));
  }
  if (!approve) {
    options_.telemetry->ApprovalDecided("denied");
    AppendLocked(entry, StatusEventLocked(
                            *entry, lf::a2a::v1::TASK_STATE_REJECTED,
                            absl::StrCat("denied by ", by, reason.empty() ? "" : ": ", reason)));
    return absl::OkStatus();
  }
  // The catalog's lock is a leaf: taking it here is safe.
  absl::StatusOr<std::unique_ptr<TaskRunner>> runner = runners_.Rebind(entry->info.agent_id());
  if (!runner.ok()) {
    return absl::UnavailableError(absl::StrCat("agent ", entry->info.agent_id(),
                                               ", which is to run task ", task_id,
                                               ", is not connected; approve it again once it is"));
  }
  options_.telemetry->ApprovalDecided("approved");
  entry->runner = std::move(runner).value();
  AppendLocked(entry, StatusEventLocked(
                          *entry, lf::a2a::v1::TASK_STATE_WORKING,
                          absl::StrCat("approved by ", by, reason.empty() ? "" : ": ", reason)));
  // The agent gets the message that created the task.
  AssignLocked(entry, entry->task.history(0), /*resumed=*/false);
  return absl::OkStatus();
}

absl::Status TaskManager::Continue(const lf::a2a::v1::SendMessageRequest& request,
                                   std::shared_ptr<TaskSubscriber> subscriber,
                                   const trace::SpanContext& trace) {
  const std::string& task_id = request.message().task_id();
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    A2AMESH_ASSIGN_OR_RETURN(TaskRecord ended, LoadEnded(task_id));
    return MakeA2aError(
        A2aError::kUnsupportedOperation,
        absl::StrCat("task ", task_id, " is already ", StateName(ended.task.status().state()),
                     " and takes no more messages"));
  }
  AwaitStored(entry, /*only_an_end=*/true);
  TaskEntry::Lock lock(entry.get());
  if (IsTerminalState(entry->task.status().state())) {
    return MakeA2aError(
        A2aError::kUnsupportedOperation,
        absl::StrCat("task ", task_id, " is already ", StateName(entry->task.status().state()),
                     " and takes no more messages"));
  }
  if (!request.message().context_id().empty() &&
      request.message().context_id() != entry->task.context_id()) {
    return InvalidFieldError(
        "message.context_id",
        absl::StrCat("task ", task_id, " belongs to context ", entry->task.context_id(), ", not ",
                     request.message().context_id()));
  }
  if (AwaitsApprovalLocked(*entry)) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " waits for an approval (the policy's rule '",
                     entry->info.approval().rule(), "') and takes no messages until then"));
  }
  if (entry->orphaned) {
    return absl::UnavailableError(absl::StrCat("agent ", entry->info.agent_id(),
                                               ", which runs task ", task_id,
                                               ", is reconnecting; retry shortly"));
  }
  if (entry->runner == nullptr) {
    // The catalog's lock is a leaf: taking it here is safe.
    absl::StatusOr<std::unique_ptr<TaskRunner>> runner = runners_.Rebind(entry->info.agent_id());
    if (!runner.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "agent ", entry->info.agent_id(), ", which owns task ", task_id, ", is not connected"));
    }
    entry->runner = std::move(runner).value();
  }
  if (trace.valid()) {
    // The turn this message starts belongs to the call that brought it.
    entry->info.set_traceparent(trace::FormatTraceparent(trace));
    entry->info.set_tracestate(trace.trace_state);
  }
  StreamResponse event;
  Message* message = event.mutable_message();
  *message = request.message();
  message->set_context_id(entry->task.context_id());
  Message assigned = *message;
  AppendLocked(entry, std::move(event),
               [this, entry, subscriber = std::move(subscriber),
                assigned = std::move(assigned)](absl::Status status) mutable {
                 if (!status.ok()) {
                   if (subscriber != nullptr) {
                     subscriber->OnError(absl::UnavailableError(
                         absl::StrCat("the message could not be stored: ", status.message())));
                   }
                   return;
                 }
                 TaskEntry::Lock lock(entry.get());
                 if (subscriber != nullptr) {
                   entry->log.Attach(std::move(subscriber), entry->task, false);
                   CollectLocked(entry);
                 }
                 if (entry->runner != nullptr && !IsTerminalState(entry->task.status().state())) {
                   AssignLocked(entry, assigned, /*resumed=*/false);
                 }
               });
  return absl::OkStatus();
}

absl::Status TaskManager::ApplyAgentEvent(const std::vector<std::string>& agent_ids,
                                          const std::string& task_id, StreamResponse event) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " is not running on this node"));
  }
  TaskEntry::Lock lock(entry.get());
  const std::string& agent_id = entry->info.agent_id();
  if (std::find(agent_ids.begin(), agent_ids.end(), agent_id) == agent_ids.end()) {
    return absl::PermissionDeniedError(absl::StrCat("task ", task_id, " belongs to agent ",
                                                    agent_id, ", not to ",
                                                    absl::StrJoin(agent_ids, ", ")));
  }
  A2AMESH_RETURN_IF_ERROR(NormalizeAgentEvent(entry->task, clock_.Now(), &event));
  A2AMESH_RETURN_IF_ERROR(AdmitReplyLocked(*entry, &event));
  if (event.has_status_update() &&
      event.status_update().status().state() == lf::a2a::v1::TASK_STATE_FAILED) {
    const Message& why = event.status_update().status().message();
    A2AMESH_LOG(Info, "task failed")
        .With("task", task_id)
        .With("agent", agent_id)
        .With("reason", why.parts_size() > 0 ? why.parts(0).text() : "");
  }
  NoteAgentEventLocked(*entry);
  AppendLocked(entry, std::move(event));
  return absl::OkStatus();
}

void TaskManager::Cancel(const std::string& task_id, const std::string& reason,
                         absl::AnyInvocable<void(absl::StatusOr<Task>)> done) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    absl::StatusOr<TaskRecord> ended = LoadEnded(task_id);
    if (!ended.ok()) {
      done(ended.status());
      return;
    }
    done(MakeA2aError(
        A2aError::kTaskNotCancelable,
        absl::StrCat("task ", task_id, " is already ", StateName(ended->task.status().state()),
                     "; it cannot be canceled")));
    return;
  }
  AwaitStored(entry, /*only_an_end=*/true);
  TaskEntry::Lock lock(entry.get());
  TaskState state = entry->task.status().state();
  if (IsTerminalState(state)) {
    entry->effects.Add(
        [done = std::move(done),
         error = MakeA2aError(A2aError::kTaskNotCancelable,
                              absl::StrCat("task ", task_id, " is already ", StateName(state),
                                           "; it cannot be canceled"))]() mutable {
          done(std::move(error));
        });
    return;
  }
  // The reply waits for the store, like every answer that ends a task.
  CancelLocked(entry, reason, [entry, done = std::move(done)](absl::Status) mutable {
    Task canceled;
    {
      absl::MutexLock lock(&entry->mu);
      canceled = entry->task;
    }
    done(std::move(canceled));
  });
}

void TaskManager::CancelLocked(const EntryPtr& entry, const std::string& reason,
                               DurableCallback on_stored) {
  if (entry->runner != nullptr) {
    entry->effects.Add(
        [runner = entry->runner, id = entry->id, reason] { runner->Cancel(id, reason); });
  } else if (!AwaitsApprovalLocked(*entry)) {
    // The agent holds no slot for it (waiting for input) but may keep state.
    entry->effects.Add([this, agent_id = entry->info.agent_id(), id = entry->id, reason] {
      if (absl::StatusOr<std::unique_ptr<TaskRunner>> runner = runners_.Rebind(agent_id);
          runner.ok()) {
        (*runner)->Cancel(id, reason);
      }
    });
  }
  entry->orphaned = false;
  AppendLocked(entry, StatusEventLocked(*entry, lf::a2a::v1::TASK_STATE_CANCELED, reason),
               std::move(on_stored));
}

absl::Status TaskManager::Subscribe(const std::string& task_id,
                                    std::shared_ptr<TaskSubscriber> subscriber,
                                    int64_t resume_after) {
  return Attach(task_id, std::move(subscriber), /*until_terminal=*/false, resume_after);
}

absl::Status TaskManager::Watch(const std::string& task_id,
                                std::shared_ptr<TaskSubscriber> subscriber) {
  return Attach(task_id, std::move(subscriber), /*until_terminal=*/true);
}

absl::Status TaskManager::Attach(const std::string& task_id,
                                 std::shared_ptr<TaskSubscriber> subscriber, bool until_terminal,
                                 int64_t resume_after) {
  EntryPtr entry = Find(task_id);
  TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
  if (entry == nullptr) {
    A2AMESH_ASSIGN_OR_RETURN(TaskRecord ended, LoadEnded(task_id));
    state = ended.task.status().state();
  } else {
    AwaitStored(entry, /*only_an_end=*/true);
    TaskEntry::Lock lock(entry.get());
    state = entry->task.status().state();
    if (!IsTerminalState(state)) {
      entry->log.Attach(std::move(subscriber), entry->task, until_terminal, resume_after);
      if (entry->creation == TaskEntry::Creation::kPending) {
        // Its create rides along with a later commit: this one makes it
        // durable now, so that the subscription starts at once.
        entry->effects.Add([this, entry] {
          std::vector<TaskStoreOp> sync(1);
          sync[0].kind = TaskStoreOp::Kind::kSync;
          sync[0].task_id = entry->id;
          store_.Commit(std::move(sync),
                        [this, entry](absl::Status status) { OnCreated(entry, status); });
        });
      }
      CollectLocked(entry);
      return absl::OkStatus();
    }
  }
  return MakeA2aError(A2aError::kUnsupportedOperation,
                      absl::StrCat("task ", task_id, " is already ", StateName(state),
                                   "; there are no more events to subscribe to"));
}

void TaskManager::Unsubscribe(const std::string& task_id, const TaskSubscriber* subscriber) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return;
  }
  std::shared_ptr<TaskSubscriber> detached;  // released after the lock
  absl::MutexLock lock(&entry->mu);
  detached = entry->log.Detach(subscriber);
}

absl::StatusOr<Task> TaskManager::Get(const std::string& task_id) {
  A2AMESH_ASSIGN_OR_RETURN(TaskRecord record, GetRecord(task_id));
  return std::move(record.task);
}

absl::StatusOr<TaskRecord> TaskManager::GetRecord(const std::string& task_id) {
  EntryPtr entry = Find(task_id);
  if (entry != nullptr) {
    AwaitStored(entry, /*only_an_end=*/false);
    absl::MutexLock lock(&entry->mu);
    return TaskRecord{entry->task, entry->info};
  }
  return LoadEnded(task_id);
}

void TaskManager::AwaitStored(const EntryPtr& entry, bool only_an_end) {
  bool unstored;
  {
    absl::MutexLock lock(&entry->mu);
    unstored = (!only_an_end || IsTerminalState(entry->task.status().state())) &&
               entry->log.waiting_for_store();
  }
  if (unstored) {
    store_.Flush();
  }
}

absl::StatusOr<TaskList> TaskManager::List(TaskQuery query, const std::string& page_token) {
  if (!page_token.empty()) {
    A2AMESH_RETURN_IF_ERROR(DecodePageToken(page_token, &query));
  }
  // Every write issued so far, final states included, is in the store first.
  store_.Flush();
  A2AMESH_ASSIGN_OR_RETURN(TaskPage page, store_.List(query));
  TaskList list;
  list.total = page.total;
  for (const StoredTask& stored : page.tasks) {
    EntryPtr entry = Find(stored.snapshot.id());
    if (entry != nullptr) {
      absl::MutexLock lock(&entry->mu);
      list.tasks.push_back(TaskRecord{entry->task, entry->info});
      continue;
    }
    TaskRecord record;
    A2AMESH_ASSIGN_OR_RETURN(record.task, Materialize(stored));
    record.info = stored.info;
    list.tasks.push_back(std::move(record));
  }
  if (page.more && !list.tasks.empty()) {
    list.next_page_token = EncodePageToken(page.last_status_unix_ms, list.tasks.back().task.id());
  }
  return list;
}

void TaskManager::FailLocked(const EntryPtr& entry, const std::string& reason) {
  if (IsTerminalState(entry->task.status().state())) {
    return;
  }
  A2AMESH_LOG(Warning, "task failed")
      .With("task", entry->id)
      .With("agent", entry->info.agent_id())
      .With("reason", reason);
  if (entry->runner != nullptr) {
    entry->effects.Add(
        [runner = entry->runner, id = entry->id, reason] { runner->Cancel(id, reason); });
  }
  AppendLocked(entry, StatusEventLocked(*entry, lf::a2a::v1::TASK_STATE_FAILED, reason));
}

void TaskManager::FailHosted(const std::string& reason) {
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : active_) {
      if (entry->hosted()) {
        entries.push_back(entry);
      }
    }
  }
  for (const EntryPtr& entry : entries) {
    TaskEntry::Lock lock(entry.get());
    FailLocked(entry, reason);
  }
}

std::vector<TaskManager::EntryPtr> TaskManager::EntriesOf(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<EntryPtr> entries;
  auto it = by_agent_.find(agent_id);
  if (it != by_agent_.end()) {
    for (const std::string& id : it->second) {
      entries.push_back(active_.at(id));
    }
  }
  return entries;
}

void TaskManager::AgentConnected(const std::string& agent_id) {
  orphans_.Connected(agent_id);
  int resumed = 0;
  for (const EntryPtr& entry : EntriesOf(agent_id)) {
    TaskEntry::Lock lock(entry.get());
    if (!entry->orphaned) {
      continue;
    }
    absl::StatusOr<std::unique_ptr<TaskRunner>> runner = runners_.Rebind(agent_id);
    if (!runner.ok()) {
      continue;  // gone again; its next AgentDisconnected re-arms the grace timer
    }
    entry->runner = std::move(runner).value();
    entry->orphaned = false;
    const Message* message = LastUserMessage(entry->task);
    AssignLocked(entry, message != nullptr ? *message : Message(), /*resumed=*/true);
    ++resumed;
  }
  if (resumed > 0) {
    A2AMESH_LOG(Info, "tasks resumed").With("agent", agent_id).With("tasks", resumed);
  }
}

void TaskManager::AgentDisconnected(const std::string& agent_id, const std::string& reason) {
  orphans_.Disconnected(agent_id);
  std::vector<EntryPtr> entries = EntriesOf(agent_id);
  int orphaned = 0;
  for (const EntryPtr& entry : entries) {
    TaskEntry::Lock lock(entry.get());
    if (entry->runner == nullptr || IsTerminalState(entry->task.status().state())) {
      continue;  // waiting for its client, or done
    }
    ReleaseRunnerLocked(entry);
    entry->orphaned = true;
    ++orphaned;
  }
  if (orphaned == 0) {
    return;
  }
  orphans_.Arm(
      agent_id, options_.agent_grace,
      absl::StrCat("agent ", agent_id, " disconnected (", reason, ") and did not come back within ",
                   absl::FormatDuration(options_.agent_grace)));
  A2AMESH_LOG(Warning, "agent gone with tasks in flight")
      .With("agent", agent_id)
      .With("tasks", orphaned)
      .With("grace", options_.agent_grace)
      .With("reason", reason);
}

void TaskManager::FailOrphans(const std::string& agent_id, const std::string& reason) {
  for (const EntryPtr& entry : EntriesOf(agent_id)) {
    TaskEntry::Lock lock(entry.get());
    if (entry->orphaned) {
      entry->orphaned = false;
      FailLocked(entry, reason);
    }
  }
}

absl::Status TaskManager::Recover() {
  A2AMESH_ASSIGN_OR_RETURN(std::vector<RecoveredTask> recovered, LoadUnfinishedTasks(store_));
  absl::flat_hash_map<std::string, int> waiting;  // agent -> orphaned tasks
  int interrupted = 0;
  for (RecoveredTask& task : recovered) {
    if (task.waits_for_agent) {
      ++waiting[task.agent_id];
    } else {
      ++interrupted;
    }
    A2AMESH_RETURN_IF_ERROR(Insert(task.entry, task.agent_id, ""));
  }
  for (RecoveredTask& task : recovered) {
    absl::MutexLock lock(&task.entry->mu);
    if (AwaitsApprovalLocked(*task.entry)) {
      ArmApproval(task.entry->id,
                  absl::FromUnixMillis(task.entry->info.approval().deadline_unix_ms()));
    }
  }
  for (const auto& [agent_id, count] : waiting) {
    orphans_.Arm(
        agent_id, options_.recovery_grace,
        absl::StrCat("the node restarted and agent ", agent_id, " did not register again within ",
                     absl::FormatDuration(options_.recovery_grace)));
  }
  if (!recovered.empty()) {
    A2AMESH_LOG(Info, "tasks recovered")
        .With("tasks", recovered.size())
        .With("waiting_for_agents", recovered.size() - interrupted)
        .With("waiting_for_clients", interrupted)
        .With("grace", options_.recovery_grace);
  }
  return absl::OkStatus();
}

}  // namespace a2amesh::tasks
