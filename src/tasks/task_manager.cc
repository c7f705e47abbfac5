#include "tasks/task_manager.h"

#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "tasks/task_state.h"

namespace a2amesh::tasks {

using google::protobuf::util::TimeUtil;
using lf::a2a::v1::Message;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using lf::a2a::v1::TaskState;

namespace {

int64_t StatusUnixMs(const Task& task) {
  return TimeUtil::TimestampToMilliseconds(task.status().timestamp());
}

bool IsUserMessage(const StreamResponse& event) {
  return event.has_message() && event.message().role() == lf::a2a::v1::ROLE_USER;
}

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

// Page tokens are opaque to clients: base64url("<status ms>/<task id>").
std::string EncodePageToken(int64_t status_ms, const std::string& id) {
  std::string token;
  absl::WebSafeBase64Escape(absl::StrCat(status_ms, "/", id), &token);
  return token;
}

absl::Status DecodePageToken(const std::string& token, TaskQuery* query) {
  std::string raw;
  size_t slash;
  if (!absl::WebSafeBase64Unescape(token, &raw) || (slash = raw.find('/')) == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(raw).substr(0, slash), &query->cursor_status_unix_ms) ||
      slash + 1 == raw.size()) {
    return InvalidFieldError("page_token", "is not a page token this node issued");
  }
  query->has_cursor = true;
  query->cursor_id = raw.substr(slash + 1);
  return absl::OkStatus();
}

}  // namespace

TaskManager::TaskManager(TaskManagerOptions options, TaskStore& store, RunnerFactory& runners,
                         Timers& timers, Clock& clock)
    : options_(std::move(options)),
      store_(store),
      runners_(runners),
      timers_(timers),
      clock_(clock),
      weak_self_(this) {}

TaskManager::~TaskManager() {
  weak_self_.Reset();  // no timer callback runs from here on
  store_.Flush();      // every store callback that refers to us has run
  std::vector<std::shared_ptr<TaskSubscriber>> subscribers;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [id, entry] : active_) {
      absl::MutexLock entry_lock(&entry->mu);
      for (Subscription& s : entry->subscribers) {
        subscribers.push_back(std::move(s.subscriber));
      }
      entry->subscribers.clear();
      entry->runner.reset();
    }
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

absl::StatusOr<TaskRecord> TaskManager::LoadEnded(const std::string& task_id) {
  absl::StatusOr<StoredTask> stored = store_.Get(task_id);
  if (absl::IsNotFound(stored.status())) {
    return MakeA2aError(A2aError::kTaskNotFound, absl::StrCat("task ", task_id, " not found"));
  }
  if (!stored.ok()) {
    return stored.status();
  }
  TaskRecord record;
  A2AMESH_ASSIGN_OR_RETURN(record.task, Materialize(*stored));
  record.info = std::move(stored->info);
  return record;
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

StreamResponse TaskManager::StatusEventLocked(const Entry& entry, TaskState state,
                                              const std::string& text) {
  StreamResponse event;
  auto* update = event.mutable_status_update();
  update->set_task_id(entry.task.id());
  update->set_context_id(entry.task.context_id());
  auto* status = update->mutable_status();
  status->set_state(state);
  *status->mutable_timestamp() = StatusTimestamp(clock_.Now());
  if (!text.empty()) {
    Message* message = status->mutable_message();
    message->set_message_id(NewUuid());
    message->set_role(lf::a2a::v1::ROLE_AGENT);
    message->set_task_id(entry.task.id());
    message->set_context_id(entry.task.context_id());
    message->add_parts()->set_text(text);
  }
  return event;
}

v1::TaskAssignment TaskManager::AssignmentLocked(const Entry& entry, const Message& message,
                                                 bool resumed) {
  v1::TaskAssignment assignment;
  assignment.set_agent_id(entry.info.agent_id());
  *assignment.mutable_task() = entry.task;
  *assignment.mutable_message() = message;
  if (entry.info.has_request_metadata()) {
    *assignment.mutable_request_metadata() = entry.info.request_metadata();
  }
  *assignment.mutable_accepted_output_modes() = entry.info.accepted_output_modes();
  assignment.set_skill(entry.info.skill());
  assignment.set_resumed(resumed);
  *assignment.mutable_hops() = entry.info.hops();
  assignment.set_deadline_unix_ms(entry.info.deadline_unix_ms());
  assignment.set_parent_task_id(entry.info.parent_task_id());
  return assignment;
}

void TaskManager::AttachLocked(Entry& entry, std::shared_ptr<TaskSubscriber> subscriber,
                               bool until_terminal) {
  StreamResponse first;
  *first.mutable_task() = entry.task;
  subscriber->OnEvent(first, entry.task);
  entry.subscribers.push_back(Subscription{std::move(subscriber), entry.next_seq, until_terminal});
}

void TaskManager::PublishReadyLocked(Entry& entry) {
  while (!entry.pending.empty() && entry.pending.front().ready) {
    PendingEvent& pending = entry.pending.front();
    if (!IsUserMessage(pending.event)) {
      bool final = IsFinalEvent(pending.event);
      for (const Subscription& s : entry.subscribers) {
        if (s.from_seq <= pending.seq) {
          s.subscriber->OnEvent(pending.event, entry.task);
        }
      }
      if (final) {
        // Streams and waiters end on a final event; watchers on a terminal one.
        const bool terminal = IsTerminalState(entry.task.status().state());
        std::vector<Subscription> later;
        for (Subscription& s : entry.subscribers) {
          if (s.from_seq > pending.seq || (s.until_terminal && !terminal)) {
            later.push_back(std::move(s));
          }
        }
        entry.subscribers.swap(later);
      }
    }
    entry.pending.pop_front();
  }
}

void TaskManager::AppendLocked(const EntryPtr& entry, StreamResponse event,
                               DurableCallback on_stored) {
  const int64_t seq = entry->next_seq++;
  absl::Status applied = ApplyEvent(event, &entry->task);
  // Events reach here validated; a failure is a bug in the caller.
  if (!applied.ok()) {
    A2AMESH_LOG(Error, "event not applied").With("task", entry->task.id()).With("error", applied);
  }
  const TaskState state = entry->task.status().state();
  const bool final = IsFinalEvent(event);
  const bool terminal = final && IsTerminalState(state);
  if (terminal && !entry->hosted) {
    options_.telemetry->TaskEnded(entry->info.skill(), std::string(StateName(state)),
                                  AgeLocked(*entry));
  }

  std::vector<TaskStoreOp> ops;
  if (entry->hosted) {
    // Not stored here (its owner stores it); the empty commit keeps the
    // completion callback in order with everything else.
    if (final) {
      entry->runner.reset();
    }
    entry->pending.push_back(PendingEvent{seq, std::move(event), /*ready=*/true});
    PublishReadyLocked(*entry);
    store_.Commit(std::move(ops), [this, entry, seq,
                                   on_stored = std::move(on_stored)](absl::Status status) mutable {
      OnStored(entry, seq, std::move(status), std::move(on_stored));
    });
    return;
  }
  ops.resize(1);
  ops[0].kind = TaskStoreOp::Kind::kEvent;
  ops[0].task_id = entry->task.id();
  ops[0].seq = seq;
  ops[0].state = state;
  ops[0].status_unix_ms = StatusUnixMs(entry->task);
  ops[0].payload = event.SerializeAsString();
  if (terminal) {
    TaskStoreOp snapshot = ops[0];
    snapshot.kind = TaskStoreOp::Kind::kSnapshot;
    snapshot.payload = entry->task.SerializeAsString();
    ops.push_back(std::move(snapshot));
  }
  if (final) {
    // The agent is done with the task, or waits for the client: free its slot.
    entry->runner.reset();
  }

  // What ends a stream or answers a client, and what a client sent, is stored
  // before it takes effect; everything else is published at once unless it
  // queues behind such an event.
  const bool durable_first = final || IsUserMessage(event);
  entry->pending.push_back(PendingEvent{seq, std::move(event), !durable_first});
  PublishReadyLocked(*entry);

  store_.Commit(std::move(ops),
                [this, entry, seq, on_stored = std::move(on_stored)](absl::Status status) mutable {
                  OnStored(entry, seq, std::move(status), std::move(on_stored));
                });
}

void TaskManager::NoteAgentEventLocked(Entry& entry) {
  if (entry.answered || entry.hosted) {
    return;
  }
  entry.answered = true;
  options_.telemetry->TaskFirstEvent(entry.info.skill(), AgeLocked(entry));
}

absl::Duration TaskManager::AgeLocked(const Entry& entry) const {
  return clock_.Now() - absl::FromUnixMillis(entry.info.created_unix_ms());
}

void TaskManager::OnStored(const EntryPtr& entry, int64_t seq, absl::Status status,
                           DurableCallback on_stored) {
  bool remove = false;
  bool cascade = false;
  std::string task_id;
  std::string agent_id;
  std::string parent_id;
  {
    absl::MutexLock lock(&entry->mu);
    task_id = entry->task.id();
    agent_id = entry->info.agent_id();
    parent_id = entry->info.parent_task_id();
    if (!status.ok()) {
      // Publishing anyway keeps clients going; the store error is logged once
      // per batch by the store and here per event.
      A2AMESH_LOG(Error, "task event not stored")
          .With("task", task_id)
          .With("seq", seq)
          .With("error", status);
    }
    for (PendingEvent& pending : entry->pending) {
      if (pending.seq == seq) {
        pending.ready = true;
      }
    }
    PublishReadyLocked(*entry);
    const TaskState state = entry->task.status().state();
    // A task leaves memory once its terminal state is stored; a hosted turn
    // once it reaches a final state.
    bool over = IsTerminalState(state) || (entry->hosted && IsInterruptedState(state));
    remove = over && entry->pending.empty() && seq == entry->next_seq - 1;
    cascade = remove && (state == lf::a2a::v1::TASK_STATE_CANCELED ||
                         state == lf::a2a::v1::TASK_STATE_FAILED ||
                         state == lf::a2a::v1::TASK_STATE_REJECTED);
    if (remove) {
      entry->subscribers.clear();
    }
  }
  if (remove) {
    Remove(task_id, agent_id, parent_id);
  }
  if (cascade) {
    CancelChildren(task_id, absl::StrCat("its parent task ", task_id, " ended"));
  }
  if (on_stored) {
    on_stored(std::move(status));
  }
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
  auto entry = std::make_shared<Entry>();
  Message message = in;
  std::string task_id = MakeTaskId(options_.node_id);
  std::string agent_id = request.runner->agent_id();
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
  TaskStoreOp op;
  {
    absl::MutexLock lock(&entry->mu);
    Task& task = entry->task;
    task.set_id(task_id);
    task.set_context_id(in.context_id().empty() ? NewUuid() : in.context_id());
    task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
    *task.mutable_status()->mutable_timestamp() = StatusTimestamp(clock_.Now());
    message.set_task_id(task.id());
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
    const absl::Time created = clock_.Now();
    info.set_created_unix_ms(absl::ToUnixMillis(created));
    info.set_created_unix_us(absl::ToUnixMicros(created));
    for (const std::string& hop : request.hops) {
      info.add_hops(hop);
    }
    if (request.deadline != absl::InfiniteFuture()) {
      info.set_deadline_unix_ms(absl::ToUnixMillis(request.deadline));
    }
    entry->runner = std::move(request.runner);

    op.kind = TaskStoreOp::Kind::kCreate;
    op.task_id = task.id();
    op.context_id = task.context_id();
    op.agent_id = agent_id;
    op.skill = info.skill();
    op.parent_id = info.parent_task_id();
    op.state = task.status().state();
    op.status_unix_ms = StatusUnixMs(task);
    op.payload = task.SerializeAsString();
    op.info = info.SerializeAsString();
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return absl::UnavailableError("the node is shutting down");
    }
    active_[task_id] = entry;
    by_agent_[agent_id].insert(task_id);
    if (!request.parent_task_id.empty()) {
      children_[request.parent_task_id].insert(task_id);
    }
  }
  if (request.deadline != absl::InfiniteFuture()) {
    ArmDeadline(task_id, request.deadline);
  }
  std::vector<TaskStoreOp> ops;
  ops.push_back(std::move(op));
  if (push.has_value()) {
    TaskStoreOp& put = ops.emplace_back();
    put.kind = TaskStoreOp::Kind::kPutPushConfig;
    put.task_id = task_id;
    put.config_id = push->id();
    put.payload = push->SerializeAsString();
  }
  store_.Commit(std::move(ops), [this, entry, subscriber = std::move(subscriber), task_id, agent_id,
                                 parent_id = request.parent_task_id, message = std::move(message),
                                 push = std::move(push)](absl::Status status) {
    if (!status.ok()) {
      A2AMESH_LOG(Error, "task not stored; refused").With("task", task_id).With("error", status);
      Remove(task_id, agent_id, parent_id);
      {
        absl::MutexLock lock(&entry->mu);
        entry->runner.reset();
      }
      if (subscriber != nullptr) {
        subscriber->OnError(absl::UnavailableError(
            absl::StrCat("the task could not be stored: ", status.message())));
      }
      return;
    }
    absl::MutexLock lock(&entry->mu);
    options_.telemetry->TaskCreated(entry->info.skill());
    if (push.has_value()) {
      AttachLocked(*entry, options_.push->Attach(*push), /*until_terminal=*/true);
    }
    if (subscriber != nullptr) {
      AttachLocked(*entry, subscriber);
    }
    if (entry->runner != nullptr) {
      entry->runner->Assign(AssignmentLocked(*entry, message, /*resumed=*/false));
    }
  });
  return absl::OkStatus();
}

absl::Status TaskManager::Host(HostedTask hosted, std::shared_ptr<TaskSubscriber> subscriber) {
  const std::string task_id = hosted.task.id();
  const std::string agent_id = hosted.info.agent_id();
  auto entry = std::make_shared<Entry>();
  {
    absl::MutexLock lock(&entry->mu);
    entry->task = std::move(hosted.task);
    entry->info = std::move(hosted.info);
    entry->runner = std::move(hosted.runner);
    entry->hosted = true;
    // Only new events: the owner already has the task.
    entry->subscribers.push_back(Subscription{std::move(subscriber), entry->next_seq});
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return absl::UnavailableError("the node is shutting down");
    }
    if (active_.contains(task_id)) {
      return absl::AlreadyExistsError(
          absl::StrCat("a turn of task ", task_id, " is already running on this node"));
    }
    active_[task_id] = entry;
    by_agent_[agent_id].insert(task_id);
  }
  absl::Time deadline = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&entry->mu);
    if (entry->info.deadline_unix_ms() > 0) {
      deadline = absl::FromUnixMillis(entry->info.deadline_unix_ms());
    }
    entry->runner->Assign(AssignmentLocked(*entry, hosted.message, /*resumed=*/false));
  }
  if (deadline != absl::InfiniteFuture()) {
    ArmDeadline(task_id, deadline);
  }
  return absl::OkStatus();
}

absl::Status TaskManager::ApplyRunnerEvent(const TaskRunner* runner, const std::string& task_id,
                                           StreamResponse event) {
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " is not active on this node"));
  }
  absl::MutexLock lock(&entry->mu);
  if (entry->runner.get() != runner) {
    // `runner` may be gone: compare it, never use it.
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " is no longer run by that runner"));
  }
  A2AMESH_RETURN_IF_ERROR(NormalizeAgentEvent(entry->task, clock_.Now(), &event));
  NoteAgentEventLocked(*entry);
  AppendLocked(entry, std::move(event), nullptr);
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
  absl::MutexLock lock(&entry->mu);
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
  absl::MutexLock lock(&entry->mu);
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
  absl::MutexLock lock(&entry->mu);
  FailLocked(entry, reason);
}

absl::Status TaskManager::Continue(const lf::a2a::v1::SendMessageRequest& request,
                                   std::shared_ptr<TaskSubscriber> subscriber) {
  const std::string& task_id = request.message().task_id();
  EntryPtr entry = Find(task_id);
  if (entry == nullptr) {
    A2AMESH_ASSIGN_OR_RETURN(TaskRecord ended, LoadEnded(task_id));
    return MakeA2aError(
        A2aError::kUnsupportedOperation,
        absl::StrCat("task ", task_id, " is already ", StateName(ended.task.status().state()),
                     " and takes no more messages"));
  }
  absl::MutexLock lock(&entry->mu);
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
  if (entry->orphaned) {
    return absl::UnavailableError(absl::StrCat("agent ", entry->info.agent_id(),
                                               ", which runs task ", task_id,
                                               ", is reconnecting; retry shortly"));
  }
  if (entry->runner == nullptr) {
    absl::StatusOr<std::unique_ptr<TaskRunner>> runner = runners_.Rebind(entry->info.agent_id());
    if (!runner.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "agent ", entry->info.agent_id(), ", which owns task ", task_id, ", is not connected"));
    }
    entry->runner = std::move(runner).value();
  }
  StreamResponse event;
  Message* message = event.mutable_message();
  *message = request.message();
  message->set_context_id(entry->task.context_id());
  Message assigned = *message;
  AppendLocked(entry, std::move(event),
               [this, entry, subscriber = std::move(subscriber),
                assigned = std::move(assigned)](absl::Status status) {
                 if (!status.ok()) {
                   if (subscriber != nullptr) {
                     subscriber->OnError(absl::UnavailableError(
                         absl::StrCat("the message could not be stored: ", status.message())));
                   }
                   return;
                 }
                 absl::MutexLock lock(&entry->mu);
                 if (subscriber != nullptr) {
                   AttachLocked(*entry, subscriber);
                 }
                 if (entry->runner != nullptr && !IsTerminalState(entry->task.status().state())) {
                   entry->runner->Assign(AssignmentLocked(*entry, assigned, /*resumed=*/false));
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
  absl::MutexLock lock(&entry->mu);
  const std::string& agent_id = entry->info.agent_id();
  if (std::find(agent_ids.begin(), agent_ids.end(), agent_id) == agent_ids.end()) {
    return absl::PermissionDeniedError(absl::StrCat("task ", task_id, " belongs to agent ",
                                                    agent_id, ", not to ",
                                                    absl::StrJoin(agent_ids, ", ")));
  }
  A2AMESH_RETURN_IF_ERROR(NormalizeAgentEvent(entry->task, clock_.Now(), &event));
  if (event.has_status_update() &&
      event.status_update().status().state() == lf::a2a::v1::TASK_STATE_FAILED) {
    const Message& why = event.status_update().status().message();
    A2AMESH_LOG(Info, "task failed")
        .With("task", task_id)
        .With("agent", agent_id)
        .With("reason", why.parts_size() > 0 ? why.parts(0).text() : "");
  }
  NoteAgentEventLocked(*entry);
  AppendLocked(entry, std::move(event), nullptr);
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
  absl::MutexLock lock(&entry->mu);
  TaskState state = entry->task.status().state();
  if (IsTerminalState(state)) {
    done(MakeA2aError(A2aError::kTaskNotCancelable,
                      absl::StrCat("task ", task_id, " is already ", StateName(state),
                                   "; it cannot be canceled")));
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
  const std::string& task_id = entry->task.id();
  if (entry->runner != nullptr) {
    entry->runner->Cancel(task_id, reason);
  } else if (absl::StatusOr<std::unique_ptr<TaskRunner>> runner =
                 runners_.Rebind(entry->info.agent_id());
             runner.ok()) {
    // The agent holds no slot for it (waiting for input) but may keep state.
    (*runner)->Cancel(task_id, reason);
  }
  entry->orphaned = false;
  AppendLocked(entry, StatusEventLocked(*entry, lf::a2a::v1::TASK_STATE_CANCELED, reason),
               std::move(on_stored));
}

absl::Status TaskManager::Subscribe(const std::string& task_id,
                                    std::shared_ptr<TaskSubscriber> subscriber) {
  return Attach(task_id, std::move(subscriber), /*until_terminal=*/false);
}

absl::Status TaskManager::Watch(const std::string& task_id,
                                std::shared_ptr<TaskSubscriber> subscriber) {
  return Attach(task_id, std::move(subscriber), /*until_terminal=*/true);
}

absl::Status TaskManager::Attach(const std::string& task_id,
                                 std::shared_ptr<TaskSubscriber> subscriber, bool until_terminal) {
  EntryPtr entry = Find(task_id);
  TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
  if (entry == nullptr) {
    A2AMESH_ASSIGN_OR_RETURN(TaskRecord ended, LoadEnded(task_id));
    state = ended.task.status().state();
  } else {
    absl::MutexLock lock(&entry->mu);
    state = entry->task.status().state();
    if (!IsTerminalState(state)) {
      AttachLocked(*entry, std::move(subscriber), until_terminal);
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
  absl::MutexLock lock(&entry->mu);
  auto& subs = entry->subscribers;
  subs.erase(std::remove_if(
                 subs.begin(), subs.end(),
                 [subscriber](const Subscription& s) { return s.subscriber.get() == subscriber; }),
             subs.end());
}

bool TaskManager::HasUnstoredFinalEvent(const EntryPtr& entry) {
  absl::MutexLock lock(&entry->mu);
  for (const PendingEvent& pending : entry->pending) {
    if (!pending.ready) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<Task> TaskManager::Get(const std::string& task_id) {
  A2AMESH_ASSIGN_OR_RETURN(TaskRecord record, GetRecord(task_id));
  return std::move(record.task);
}

absl::StatusOr<TaskRecord> TaskManager::GetRecord(const std::string& task_id) {
  EntryPtr entry = Find(task_id);
  if (entry != nullptr) {
    // Never show a final state before it is stored (a crash could undo it).
    if (HasUnstoredFinalEvent(entry)) {
      store_.Flush();
    }
    absl::MutexLock lock(&entry->mu);
    return TaskRecord{entry->task, entry->info};
  }
  return LoadEnded(task_id);
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
      .With("task", entry->task.id())
      .With("agent", entry->info.agent_id())
      .With("reason", reason);
  if (entry->runner != nullptr) {
    entry->runner->Cancel(entry->task.id(), reason);
  }
  AppendLocked(entry, StatusEventLocked(*entry, lf::a2a::v1::TASK_STATE_FAILED, reason), nullptr);
}

void TaskManager::FailHosted(const std::string& reason) {
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : active_) {
      entries.push_back(entry);
    }
  }
  for (const EntryPtr& entry : entries) {
    absl::MutexLock lock(&entry->mu);
    if (entry->hosted) {
      FailLocked(entry, reason);
    }
  }
}

void TaskManager::AgentConnected(const std::string& agent_id) {
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    ++agent_generation_[agent_id];
    entries = EntriesOfLocked(agent_id);
  }
  int resumed = 0;
  for (const EntryPtr& entry : entries) {
    absl::MutexLock lock(&entry->mu);
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
    entry->runner->Assign(
        AssignmentLocked(*entry, message != nullptr ? *message : Message(), /*resumed=*/true));
    ++resumed;
  }
  if (resumed > 0) {
    A2AMESH_LOG(Info, "tasks resumed").With("agent", agent_id).With("tasks", resumed);
  }
}

void TaskManager::AgentDisconnected(const std::string& agent_id, const std::string& reason) {
  std::vector<EntryPtr> entries;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = ++agent_generation_[agent_id];
    entries = EntriesOfLocked(agent_id);
  }
  int orphaned = 0;
  for (const EntryPtr& entry : entries) {
    absl::MutexLock lock(&entry->mu);
    if (entry->runner == nullptr || IsTerminalState(entry->task.status().state())) {
      continue;  // waiting for its client, or done
    }
    entry->runner.reset();
    entry->orphaned = true;
    ++orphaned;
  }
  if (orphaned == 0) {
    return;
  }
  A2AMESH_LOG(Warning, "agent gone with tasks in flight")
      .With("agent", agent_id)
      .With("tasks", orphaned)
      .With("grace", options_.agent_grace)
      .With("reason", reason);
  ArmGrace(
      agent_id, generation, options_.agent_grace,
      absl::StrCat("agent ", agent_id, " disconnected (", reason, ") and did not come back within ",
                   absl::FormatDuration(options_.agent_grace)));
}

std::vector<TaskManager::EntryPtr> TaskManager::EntriesOfLocked(const std::string& agent_id) {
  std::vector<EntryPtr> entries;
  auto it = by_agent_.find(agent_id);
  if (it != by_agent_.end()) {
    for (const std::string& id : it->second) {
      entries.push_back(active_.at(id));
    }
  }
  return entries;
}

void TaskManager::ArmGrace(const std::string& agent_id, uint64_t generation, absl::Duration grace,
                           std::string reason) {
  timers_.RunAfter(
      grace, weak_self_.Bind([agent_id, generation, reason = std::move(reason)](TaskManager& self) {
        self.FailOrphans(agent_id, generation, reason);
      }));
}

void TaskManager::FailOrphans(const std::string& agent_id, uint64_t generation,
                              const std::string& reason) {
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    if (agent_generation_[agent_id] != generation) {
      return;  // the agent came back (and maybe left again) since
    }
    entries = EntriesOfLocked(agent_id);
  }
  for (const EntryPtr& entry : entries) {
    absl::MutexLock lock(&entry->mu);
    if (entry->orphaned) {
      entry->orphaned = false;
      FailLocked(entry, reason);
    }
  }
}

absl::Status TaskManager::Recover() {
  A2AMESH_ASSIGN_OR_RETURN(std::vector<StoredTask> stored, store_.LoadUnfinished());
  absl::flat_hash_map<std::string, int> waiting;  // agent -> orphaned tasks
  int interrupted = 0;
  for (StoredTask& s : stored) {
    auto entry = std::make_shared<Entry>();
    std::string task_id = s.snapshot.id();
    std::string agent_id = s.info.agent_id();
    {
      absl::MutexLock lock(&entry->mu);
      A2AMESH_ASSIGN_OR_RETURN(entry->task, Materialize(s));
      entry->info = std::move(s.info);
      entry->next_seq = s.last_seq + 1;
      if (IsInterruptedState(entry->task.status().state())) {
        ++interrupted;
      } else {
        entry->orphaned = true;
        ++waiting[agent_id];
      }
    }
    absl::MutexLock lock(&mu_);
    active_[task_id] = entry;
    by_agent_[agent_id].insert(task_id);
  }
  for (const auto& [agent_id, count] : waiting) {
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = agent_generation_[agent_id];
    }
    ArmGrace(
        agent_id, generation, options_.recovery_grace,
        absl::StrCat("the node restarted and agent ", agent_id, " did not register again within ",
                     absl::FormatDuration(options_.recovery_grace)));
  }
  if (!stored.empty()) {
    A2AMESH_LOG(Info, "tasks recovered")
        .With("tasks", stored.size())
        .With("waiting_for_agents", stored.size() - interrupted)
        .With("waiting_for_clients", interrupted)
        .With("grace", options_.recovery_grace);
  }
  return absl::OkStatus();
}

}  // namespace a2amesh::tasks
