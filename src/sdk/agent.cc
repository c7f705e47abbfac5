#include "a2amesh/sdk/agent.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "a2amesh/v1/agent_host.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "core/extensions.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "grpcpp/grpcpp.h"
#include "rpc/batching.h"
#include "rpc/grpc_status.h"
#include "rpc/write_queue.h"
#include "security/tls.h"

namespace a2amesh::sdk {

lf::a2a::v1::Part TextPart(absl::string_view text) {
  lf::a2a::v1::Part part;
  part.set_text(std::string(text));
  part.set_media_type("text/plain");
  return part;
}

lf::a2a::v1::Artifact TextArtifact(absl::string_view artifact_id, absl::string_view name,
                                   absl::string_view text) {
  lf::a2a::v1::Artifact artifact;
  artifact.set_artifact_id(std::string(artifact_id));
  artifact.set_name(std::string(name));
  *artifact.add_parts() = TextPart(text);
  return artifact;
}

Subtask TextSubtask(absl::string_view skill, absl::string_view text) {
  Subtask subtask;
  subtask.skill = std::string(skill);
  subtask.message.set_role(lf::a2a::v1::ROLE_USER);
  *subtask.message.add_parts() = TextPart(text);
  return subtask;
}

lf::a2a::v1::Message AgentMessage(absl::string_view text) {
  lf::a2a::v1::Message message;
  message.set_message_id(NewUuid());
  message.set_role(lf::a2a::v1::ROLE_AGENT);
  *message.add_parts() = TextPart(text);
  return message;
}

namespace {

using lf::a2a::v1::StreamResponse;

// Events kept while the stream is down, at most.
constexpr size_t kMaxPending = 100000;
// Messages queued for a stream that is up; past this the node is not reading
// and messages wait as if the stream were down.
constexpr size_t kMaxQueued = 100000;

bool IsPermanent(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument ||
         code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kPermissionDenied ||
         code == absl::StatusCode::kUnauthenticated || code == absl::StatusCode::kUnimplemented;
}

// One subtask being waited for.
struct Delegation {
  absl::Mutex mu;
  std::deque<lf::a2a::v1::StreamResponse> events ABSL_GUARDED_BY(mu);
  bool done ABSL_GUARDED_BY(mu) = false;
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  absl::Status error ABSL_GUARDED_BY(mu);
};

// The shared state of one running task.
struct TaskRun {
  absl::Mutex mu;
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool ended ABSL_GUARDED_BY(mu) = false;
  // The handler has sent an event (a direct reply must be the first).
  bool sent ABSL_GUARDED_BY(mu) = false;
  // Its subtasks being waited for.
  std::vector<std::shared_ptr<Delegation>> delegations ABSL_GUARDED_BY(mu);
  // The artifacts it emitted, whole, in the order they first appeared: sent
  // again to a node that resumes the task without them (see Resume).
  std::vector<lf::a2a::v1::Artifact> artifacts ABSL_GUARDED_BY(mu);
  // The event that ended it, once emitted.
  std::optional<lf::a2a::v1::StreamResponse> final_event ABSL_GUARDED_BY(mu);
};

// Keeps `update` in `artifacts` as the node applies it (task_state.cc).
void RecordArtifact(const lf::a2a::v1::TaskArtifactUpdateEvent& update,
                    std::vector<lf::a2a::v1::Artifact>* artifacts) {
  auto existing = std::find_if(artifacts->begin(), artifacts->end(), [&](const auto& artifact) {
    return artifact.artifact_id() == update.artifact().artifact_id();
  });
  if (existing == artifacts->end()) {
    artifacts->push_back(update.artifact());
  } else if (update.append()) {
    for (const auto& part : update.artifact().parts()) *existing->add_parts() = part;
  } else {
    *existing = update.artifact();
  }
}

// Applies one event of a subtask to the Task the delegating agent keeps of it.
void ApplySubtaskEvent(const lf::a2a::v1::StreamResponse& event, lf::a2a::v1::Task* task) {
  switch (event.payload_case()) {
    case lf::a2a::v1::StreamResponse::kTask:
      *task = event.task();
      break;
    case lf::a2a::v1::StreamResponse::kStatusUpdate:
      if (event.status_update().status().has_message()) {
        *task->add_history() = event.status_update().status().message();
      }
      *task->mutable_status() = event.status_update().status();
      break;
    case lf::a2a::v1::StreamResponse::kArtifactUpdate: {
      const auto& update = event.artifact_update();
      lf::a2a::v1::Artifact* existing = nullptr;
      for (auto& artifact : *task->mutable_artifacts()) {
        if (artifact.artifact_id() == update.artifact().artifact_id()) existing = &artifact;
      }
      if (existing == nullptr) {
        *task->add_artifacts() = update.artifact();
      } else if (update.append()) {
        for (const auto& part : update.artifact().parts()) *existing->add_parts() = part;
      } else {
        *existing = update.artifact();
      }
      break;
    }
    case lf::a2a::v1::StreamResponse::kMessage:
      *task->add_history() = event.message();
      break;
    default:
      break;
  }
}

bool EndsSubtask(const lf::a2a::v1::StreamResponse& event) {
  auto final_state = [](lf::a2a::v1::TaskState s) {
    return s == lf::a2a::v1::TASK_STATE_COMPLETED || s == lf::a2a::v1::TASK_STATE_FAILED ||
           s == lf::a2a::v1::TASK_STATE_CANCELED || s == lf::a2a::v1::TASK_STATE_REJECTED ||
           s == lf::a2a::v1::TASK_STATE_INPUT_REQUIRED ||
           s == lf::a2a::v1::TASK_STATE_AUTH_REQUIRED;
  };
  if (event.has_status_update()) return final_state(event.status_update().status().state());
  if (event.has_task()) {
    auto s = event.task().status().state();
    return s == lf::a2a::v1::TASK_STATE_COMPLETED || s == lf::a2a::v1::TASK_STATE_FAILED ||
           s == lf::a2a::v1::TASK_STATE_CANCELED || s == lf::a2a::v1::TASK_STATE_REJECTED;
  }
  return false;
}

class AgentImpl;

class TaskContextImpl final : public TaskContext {
 public:
  // `on_reactor`: the handler runs inline on a gRPC thread and must not wait.
  TaskContextImpl(AgentImpl& agent, std::string node_id, v1::TaskAssignment assignment,
                  std::shared_ptr<TaskRun> run, bool on_reactor)
      : agent_(agent),
        node_id_(std::move(node_id)),
        assignment_(std::move(assignment)),
        run_(std::move(run)),
        on_reactor_(on_reactor) {}

  const std::string& agent_id() const override { return assignment_.agent_id(); }
  const std::string& node_id() const override { return node_id_; }
  const std::string& task_id() const override { return assignment_.task().id(); }
  const std::string& context_id() const override { return assignment_.task().context_id(); }
  const std::string& skill() const override { return assignment_.skill(); }
  const lf::a2a::v1::Message& message() const override { return assignment_.message(); }
  const lf::a2a::v1::Task& task() const override { return assignment_.task(); }
  const google::protobuf::Struct& request_metadata() const override {
    return assignment_.request_metadata();
  }
  bool resumed() const override { return assignment_.resumed(); }
  const std::string& traceparent() const override { return assignment_.traceparent(); }
  const std::string& tracestate() const override { return assignment_.tracestate(); }
  std::string text() const override {
    std::vector<std::string> texts;
    for (const auto& part : assignment_.message().parts()) {
      if (part.has_text()) texts.push_back(part.text());
    }
    return absl::StrJoin(texts, "\n");
  }

  bool SetWorking(absl::string_view note) override {
    return StatusWithText(lf::a2a::v1::TASK_STATE_WORKING, note);
  }
  bool SendArtifact(const lf::a2a::v1::Artifact& artifact, bool append, bool last_chunk) override {
    StreamResponse event;
    auto* update = event.mutable_artifact_update();
    *update->mutable_artifact() = artifact;
    update->set_append(append);
    update->set_last_chunk(last_chunk);
    return Emit(std::move(event), /*final=*/false);
  }
  bool SendMessage(const lf::a2a::v1::Message& message) override {
    StreamResponse event;
    *event.mutable_message() = message;
    event.mutable_message()->set_role(lf::a2a::v1::ROLE_AGENT);
    if (event.message().message_id().empty()) {
      event.mutable_message()->set_message_id(NewUuid());
    }
    return Emit(std::move(event), /*final=*/false);
  }
  bool Complete(absl::string_view text) override {
    return StatusWithText(lf::a2a::v1::TASK_STATE_COMPLETED, text);
  }
  bool Reply(const lf::a2a::v1::Message& message) override;
  bool Fail(absl::string_view reason) override {
    return StatusWithText(lf::a2a::v1::TASK_STATE_FAILED, reason);
  }
  bool Reject(absl::string_view reason) override {
    return StatusWithText(lf::a2a::v1::TASK_STATE_REJECTED, reason);
  }
  bool RequireInput(absl::string_view question) override {
    return StatusWithText(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED, question);
  }
  bool SetStatus(lf::a2a::v1::TaskState state, const lf::a2a::v1::Message* message) override {
    StreamResponse event;
    auto* status = event.mutable_status_update()->mutable_status();
    status->set_state(state);
    if (message != nullptr) {
      *status->mutable_message() = *message;
    }
    bool final =
        state == lf::a2a::v1::TASK_STATE_COMPLETED || state == lf::a2a::v1::TASK_STATE_FAILED ||
        state == lf::a2a::v1::TASK_STATE_CANCELED || state == lf::a2a::v1::TASK_STATE_REJECTED ||
        state == lf::a2a::v1::TASK_STATE_INPUT_REQUIRED ||
        state == lf::a2a::v1::TASK_STATE_AUTH_REQUIRED;
    return Emit(std::move(event), final);
  }

  absl::StatusOr<lf::a2a::v1::Task> Delegate(
      const Subtask& subtask,
      const std::function<void(const lf::a2a::v1::StreamResponse&)>& on_event) override;

  bool cancelled() const override {
    absl::MutexLock lock(&run_->mu);
    return run_->cancelled;
  }
  bool WaitForCancel(absl::Duration timeout) override {
    absl::MutexLock lock(&run_->mu);
    if (on_reactor_) {
      return run_->cancelled;  // an inline handler never waits
    }
    auto is_cancelled = [this]()
                            ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_->mu) { return run_->cancelled; };
    run_->mu.AwaitWithTimeout(absl::Condition(&is_cancelled), timeout);
    return run_->cancelled;
  }

  bool ended() const {
    absl::MutexLock lock(&run_->mu);
    return run_->ended;
  }

 private:
  // A status with an agent message holding `text`, or none if it is empty.
  bool StatusWithText(lf::a2a::v1::TaskState state, absl::string_view text) {
    if (text.empty()) {
      return SetStatus(state, nullptr);
    }
    lf::a2a::v1::Message message = AgentMessage(text);
    return SetStatus(state, &message);
  }
  bool Emit(StreamResponse event, bool final);

  AgentImpl& agent_;
  const std::string node_id_;
  const v1::TaskAssignment assignment_;
  const std::shared_ptr<TaskRun> run_;
  const bool on_reactor_;
};

// One AgentHost.Connect call on the gRPC callback API; deletes itself in
// OnDone. Writes go through a WriteQueue (never blocking), coalesced into
// batches once the node said it reads them.
class Connection final : public grpc::ClientBidiReactor<v1::AgentToNode, v1::NodeToAgent> {
 public:
  using Writes = rpc::WriteQueue<Connection, v1::AgentToNode>;

  explicit Connection(AgentImpl& agent) : agent_(agent), writes_(kMaxQueued) {}

  // Starts the call; `hello` (the registration) is its first message.
  void Begin(v1::AgentHost::Stub& stub, v1::AgentToNode hello);
  Writes& writes() { return writes_; }
  grpc::ClientContext& context() { return context_; }

  // What WriteQueue calls.
  void Finish(const grpc::Status&) { StartWritesDone(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { writes_.OnWriteDone(ok, grpc::Status::OK); }
  void OnDone(const grpc::Status& status) override;

 private:
  AgentImpl& agent_;
  grpc::ClientContext context_;
  v1::NodeToAgent in_;
  Writes writes_;
};

class AgentImpl final : public Agent {
 public:
  AgentImpl(AgentOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials);
  ~AgentImpl() override;

  void Begin();
  absl::Status WaitUntilRegistered(absl::Duration timeout) override;
  std::vector<std::string> agent_ids() const override {
    absl::MutexLock lock(&mu_);
    return agent_ids_;
  }
  bool connected() const override {
    absl::MutexLock lock(&mu_);
    return connected_;
  }
  int registrations() const override {
    absl::MutexLock lock(&mu_);
    return registrations_;
  }
  int64_t heartbeats_acknowledged() const override {
    return heartbeat_acks_.load(std::memory_order_relaxed);
  }

  // Queues `message` on the stream if it is up and registered, else keeps it
  // for after the reconnect. Never blocks.
  void Write(v1::AgentToNode message);

  // Subtasks being waited for, by request id.
  void AddDelegation(const std::string& request_id, std::shared_ptr<Delegation> delegation);
  void RemoveDelegation(const std::string& request_id);

  // From the connection's reactions (a gRPC thread).
  void OnMessage(Connection* connection, v1::NodeToAgent& message);
  // `connection` has been deleted: it is only compared with the current one.
  // Stops writes from reaching `connection`, which is about to be deleted.
  void ForgetConnection(const Connection* connection) {
    absl::MutexLock lock(&mu_);
    if (connection_ == connection) connection_ = nullptr;
  }
  void OnConnectionDone(const Connection* connection, const grpc::Status& status,
                        std::deque<v1::AgentToNode> unsent);

 private:
  // Connects, heartbeats while connected, reconnects with backoff.
  void ControlLoop();
  // Runs one stream until it ends. Returns false if the agent should stop
  // trying (it is stopping, or the node refused it for good).
  bool RunStream(absl::Duration* backoff);
  void OnRegistered(Connection* connection, const v1::Registered& registered);
  void Handle(Connection* connection, v1::NodeToAgent& message);
  void Dispatch(v1::TaskAssignment assignment);
  // A node resumed a task whose run goes on here: sends again what of the run
  // the node's task lacks (it may have received it and crashed before storing
  // it), ahead of the run's next event.
  void Resume(const v1::TaskAssignment& assignment, TaskRun& run);
  void RunHandler(const TaskHandler& handler, v1::TaskAssignment assignment,
                  std::shared_ptr<TaskRun> run, std::string node_id, bool on_reactor);
  void Cancel(const std::string& task_id);
  void DelegationEvent(const v1::DelegationEvent& event);

  const AgentOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentHost::Stub> stub_;
  std::unique_ptr<ThreadPool> workers_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool settled_ ABSL_GUARDED_BY(mu_) = false;  // registered once, or refused for good
  absl::Status registration_ ABSL_GUARDED_BY(mu_);
  int registrations_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> agent_ids_ ABSL_GUARDED_BY(mu_);
  std::string node_id_ ABSL_GUARDED_BY(mu_);
  // agent id -> index in options_.agents
  absl::flat_hash_map<std::string, size_t> spec_of_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_every_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  // The stream, from Start until OnDone; writes go to it once registered.
  Connection* connection_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_registered_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status stream_status_ ABSL_GUARDED_BY(mu_);
  // Messages kept while the stream is down, sent after the next registration.
  std::deque<v1::AgentToNode> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<TaskRun>> running_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Delegation>> delegations_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> heartbeat_acks_{0};

  std::thread control_thread_;
};

absl::StatusOr<lf::a2a::v1::Task> TaskContextImpl::Delegate(
    const Subtask& subtask, const std::function<void(const StreamResponse&)>& on_event) {
  if (on_reactor_) {
    return absl::FailedPreconditionError(
        "Delegate waits for the subtask: an inline_handler cannot call it (run the agent's "
        "handler on a worker thread)");
  }
  auto delegation = std::make_shared<Delegation>();
  {
    absl::MutexLock lock(&run_->mu);
    if (run_->cancelled) {
      return absl::CancelledError("the task was canceled");
    }
    run_->delegations.push_back(delegation);
  }
  const std::string request_id = NewUuid();
  agent_.AddDelegation(request_id, delegation);
  v1::AgentToNode message;
  auto* request = message.mutable_delegate();
  request->set_request_id(request_id);
  request->set_parent_task_id(task_id());
  request->set_traceparent(subtask.traceparent.empty() ? traceparent() : subtask.traceparent);
  request->set_tracestate(subtask.traceparent.empty() ? tracestate() : subtask.tracestate);
  auto* selector = request->mutable_selector();
  selector->set_agent_id(subtask.agent_id);
  selector->set_skill(subtask.skill);
  for (const auto& tag : subtask.tags) selector->add_tags(tag);
  for (const auto& mode : subtask.accepted_output_modes) selector->add_accepted_output_modes(mode);
  *request->mutable_message() = subtask.message;
  if (request->message().message_id().empty()) {
    request->mutable_message()->set_message_id(NewUuid());
  }
  request->mutable_message()->set_role(lf::a2a::v1::ROLE_USER);
  agent_.Write(std::move(message));

  lf::a2a::v1::Task result;
  absl::Status status;
  while (true) {
    std::deque<StreamResponse> events;
    bool done;
    bool cancelled;
    {
      absl::MutexLock lock(&delegation->mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(delegation->mu) {
        return !delegation->events.empty() || delegation->done || delegation->cancelled;
      };
      delegation->mu.Await(absl::Condition(&ready));
      events.swap(delegation->events);
      done = delegation->done;
      cancelled = delegation->cancelled;
      status = delegation->error;
    }
    bool ended = false;
    for (const StreamResponse& event : events) {
      ApplySubtaskEvent(event, &result);
      if (on_event) on_event(event);
      ended = ended || EndsSubtask(event);
    }
    if (cancelled && !ended) {
      v1::AgentToNode cancel;
      cancel.mutable_cancel_delegation()->set_request_id(request_id);
      agent_.Write(std::move(cancel));
      status = absl::CancelledError("the task was canceled; its subtask was canceled too");
      break;
    }
    if (ended || done) {
      break;
    }
  }
  agent_.RemoveDelegation(request_id);
  {
    absl::MutexLock lock(&run_->mu);
    auto& list = run_->delegations;
    list.erase(std::remove(list.begin(), list.end(), delegation), list.end());
  }
  if (!status.ok()) {
    return status;
  }
  return result;
}

bool TaskContextImpl::Reply(const lf::a2a::v1::Message& message) {
  if (task().history_size() != 1 || task().status().state() != lf::a2a::v1::TASK_STATE_SUBMITTED) {
    return false;  // not a new task: the node would refuse it
  }
  {
    absl::MutexLock lock(&run_->mu);
    if (run_->ended || run_->cancelled || run_->sent) {
      return false;
    }
    run_->ended = run_->sent = true;
  }
  v1::AgentToNode out;
  out.mutable_reply()->set_task_id(task_id());
  lf::a2a::v1::Message* reply = out.mutable_reply()->mutable_message();
  *reply = message;
  reply->set_role(lf::a2a::v1::ROLE_AGENT);
  if (reply->message_id().empty()) reply->set_message_id(NewUuid());
  agent_.Write(std::move(out));
  return true;
}

bool TaskContextImpl::Emit(StreamResponse event, bool final) {
  // Recorded and queued under the run's lock (queueing never blocks), so that
  // what Resume sends again cannot overtake or follow a concurrent event.
  absl::MutexLock lock(&run_->mu);
  if (run_->ended || run_->cancelled) {
    return false;
  }
  run_->sent = true;
  if (event.has_artifact_update()) {
    RecordArtifact(event.artifact_update(), &run_->artifacts);
  }
  if (final) {
    run_->ended = true;
    run_->final_event = event;
  }
  v1::AgentToNode message;
  message.mutable_update()->set_task_id(task_id());
  *message.mutable_update()->mutable_event() = std::move(event);
  agent_.Write(std::move(message));
  return true;
}

void Connection::Begin(v1::AgentHost::Stub& stub, v1::AgentToNode hello) {
  stub.async()->Connect(&context_, this);
  writes_.Attach(this);
  writes_.Write(std::move(hello));
  StartRead(&in_);
  AddHold();  // the agent writes from outside the reactions: see WriteQueue::Stop
  StartCall();
}

void Connection::OnReadDone(bool ok) {
  if (!ok) {
    writes_.Stop();
    RemoveHold();
    return;  // OnDone follows
  }
  // What the handlers of this message emit goes out together.
  writes_.Hold();
  agent_.OnMessage(this, in_);
  writes_.Release();
  StartRead(&in_);
}

void Connection::OnDone(const grpc::Status& status) {
  // The connection is gone (its context and channel reference with it) before
  // the agent hears of it: once it has, the agent may be destroyed.
  AgentImpl& agent = agent_;
  // First out of the agent's reach: a handler's Write (on another thread) must
  // not find this connection once it is being deleted.
  agent.ForgetConnection(this);
  std::deque<v1::AgentToNode> unsent = writes_.Detach();
  const Connection* const gone = this;
  delete this;
  agent.OnConnectionDone(gone, status, std::move(unsent));
}

AgentImpl::AgentImpl(AgentOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.min_backoff)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.min_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.max_backoff)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  channel_ = grpc::CreateCustomChannel(options_.node, std::move(credentials), args);
  stub_ = v1::AgentHost::NewStub(channel_);
  int threads = 0;
  for (const AgentSpec& spec : options_.agents) {
    if (!spec.inline_handler) {
      threads += std::max(1, spec.max_concurrency);
    }
  }
  if (threads > 0) {
    workers_ = std::make_unique<ThreadPool>(std::min(threads, 256));
  }
}

void AgentImpl::Begin() {
  control_thread_ = std::thread([this] { ControlLoop(); });
}

AgentImpl::~AgentImpl() {
  std::vector<std::shared_ptr<TaskRun>> runs;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (connection_ != nullptr) {
      connection_->context().TryCancel();
    }
    for (auto& [id, run] : running_) runs.push_back(run);
  }
  // A run's lock is never taken under mu_ (Emit queues under the run's lock).
  for (const auto& run : runs) {
    absl::MutexLock run_lock(&run->mu);
    run->cancelled = true;
  }
  control_thread_.join();  // returns once the stream is over
  workers_.reset();        // waits for handlers, which see their tasks cancelled
}

absl::Status AgentImpl::WaitUntilRegistered(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return settled_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&settled), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "not registered with ", options_.node, " within ", absl::FormatDuration(timeout),
        registration_.ok() ? "" : absl::StrCat(": ", registration_.message())));
  }
  return registration_;
}

void AgentImpl::Write(v1::AgentToNode message) {
  absl::MutexLock lock(&mu_);
  // Queueing never blocks, so it happens under the lock: a message cannot
  // overtake one kept for the next stream.
  if (connected_ && connection_ != nullptr &&
      connection_->writes().Offer(&message) == Connection::Writes::Result::kQueued) {
    return;
  }
  if (message.has_heartbeat()) {
    return;
  }
  if (pending_.size() >= kMaxPending) {
    pending_.pop_front();
  }
  pending_.push_back(std::move(message));
}

void AgentImpl::AddDelegation(const std::string& request_id,
                              std::shared_ptr<Delegation> delegation) {
  absl::MutexLock lock(&mu_);
  delegations_[request_id] = std::move(delegation);
}

void AgentImpl::RemoveDelegation(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  delegations_.erase(request_id);
}

void AgentImpl::ControlLoop() {
  absl::BitGen gen;
  absl::Duration backoff = options_.min_backoff;
  while (RunStream(&backoff)) {
    // Full jitter: wait a random time up to the current backoff.
    absl::Duration wait = absl::Milliseconds(
        absl::Uniform<int64_t>(gen, 0, std::max<int64_t>(1, absl::ToInt64Milliseconds(backoff))));
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), wait)) {
      return;
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool AgentImpl::RunStream(absl::Duration* backoff) {
  v1::AgentToNode hello;
  auto* reg = hello.mutable_register_();
  reg->set_token(options_.token);
  reg->set_instance(options_.instance);
  reg->set_batches(true);
  for (const AgentSpec& spec : options_.agents) {
    auto* agent = reg->add_agents();
    agent->set_agent_id(spec.agent_id);
    *agent->mutable_card() = spec.card;
    const auto& extensions = spec.card.capabilities().extensions();
    if (spec.direct_replies &&
        std::none_of(extensions.begin(), extensions.end(),
                     [](const auto& e) { return e.uri() == kDirectRepliesExtension; })) {
      agent->mutable_card()->mutable_capabilities()->add_extensions()->set_uri(
          kDirectRepliesExtension);
    }
    agent->set_max_concurrency(static_cast<uint32_t>(std::max(0, spec.max_concurrency)));
  }
  auto* connection = new Connection(*this);
  connection->context().set_wait_for_ready(true);
  if (!options_.token.empty()) {
    // Nodes with auth on prove the agent process like any caller.
    connection->context().AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      delete connection;
      return false;
    }
    connection_ = connection;
    stream_done_ = false;
    stream_registered_ = false;
  }
  connection->Begin(*stub_, std::move(hello));

  // Heartbeats while the stream lives; its end (OnDone) wakes this thread.
  absl::MutexLock lock(&mu_);
  int registrations = registrations_;
  // Also wakes at registration, to heartbeat at the period its lease sets.
  auto wake = [this, &registrations]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stream_done_ || registrations_ != registrations;
  };
  while (true) {
    if (mu_.AwaitWithTimeout(absl::Condition(&wake), heartbeat_every_)) {
      if (stream_done_) {
        break;
      }
      registrations = registrations_;
      continue;
    }
    if (connected_ && connection_ != nullptr) {
      v1::AgentToNode beat;
      beat.mutable_heartbeat()->set_unix_ms(absl::ToUnixMillis(absl::Now()));
      connection_->writes().Offer(&beat);
    }
  }
  if (stopping_) {
    return false;
  }
  const absl::Status status = rpc::FromGrpcStatus(stream_status_);
  if (stream_registered_) {
    *backoff = options_.min_backoff;
  } else if (!status.ok() && IsPermanent(status.code())) {
    A2AMESH_LOG(Error, "the node refused the registration")
        .With("node", options_.node)
        .With("error", status);
    registration_ = status;
    settled_ = true;
    return false;
  }
  if (!status.ok() || stream_registered_) {
    A2AMESH_LOG(Warning, "stream to the node ended; reconnecting")
        .With("node", options_.node)
        .With("error", status);
  }
  if (!settled_) {
    registration_ = status;
  }
  return true;
}

void AgentImpl::OnRegistered(Connection* connection, const v1::Registered& registered) {
  absl::MutexLock lock(&mu_);
  agent_ids_.clear();
  spec_of_.clear();
  node_id_ = registered.node_id();
  for (int i = 0; i < registered.agents_size(); ++i) {
    agent_ids_.push_back(registered.agents(i).agent_id());
    spec_of_[agent_ids_.back()] = static_cast<size_t>(i);
  }
  if (registered.lease_ms() > 0) {
    heartbeat_every_ = absl::Milliseconds(registered.lease_ms()) / 3;
  }
  if (registered.batches()) {
    // Messages that wait for the stream go out together.
    connection->writes().SetCoalesce(
        [](std::deque<v1::AgentToNode>& queue, v1::AgentToNode* merged) {
          return rpc::CoalesceIntoBatch(queue, merged, [](const v1::AgentToNode& message) {
            return !message.has_register_() && !message.has_batch();
          });
        });
  }
  connected_ = true;
  stream_registered_ = true;
  settled_ = true;
  registration_ = absl::OkStatus();
  ++registrations_;
  // What was kept while the stream was down goes first.
  connection->writes().Hold();
  while (!pending_.empty() &&
         connection->writes().Offer(&pending_.front()) == Connection::Writes::Result::kQueued) {
    pending_.pop_front();
  }
  connection->writes().Release();
}

void AgentImpl::OnMessage(Connection* connection, v1::NodeToAgent& message) {
  switch (message.msg_case()) {
    case v1::NodeToAgent::kRegistered:
      OnRegistered(connection, message.registered());
      break;
    case v1::NodeToAgent::kBatch:
      for (v1::NodeToAgent& inner : *message.mutable_batch()->mutable_messages()) {
        if (!inner.has_batch() && !inner.has_registered()) {
          OnMessage(connection, inner);
        }
      }
      break;
    case v1::NodeToAgent::kAssignment:
      Dispatch(std::move(*message.mutable_assignment()));
      break;
    case v1::NodeToAgent::kCancel:
      Cancel(message.cancel().task_id());
      break;
    case v1::NodeToAgent::kHeartbeat:
      heartbeat_acks_.fetch_add(1, std::memory_order_relaxed);
      break;
    case v1::NodeToAgent::kDelegationEvent:
      DelegationEvent(message.delegation_event());
      break;
    case v1::NodeToAgent::kUpdateRejected:
      A2AMESH_LOG(Warning, "the node refused an update")
          .With("task", message.update_rejected().task_id())
          .With("reason", message.update_rejected().reason());
      break;
    default:
      break;
  }
}

void AgentImpl::DelegationEvent(const v1::DelegationEvent& event) {
  std::shared_ptr<Delegation> delegation;
  {
    absl::MutexLock lock(&mu_);
    auto it = delegations_.find(event.request_id());
    if (it != delegations_.end()) delegation = it->second;
  }
  if (delegation == nullptr) {
    return;
  }
  absl::MutexLock lock(&delegation->mu);
  if (event.has_error()) {
    delegation->error =
        absl::Status(static_cast<absl::StatusCode>(event.error().code()), event.error().message());
    delegation->done = true;
  } else {
    delegation->events.push_back(event.event());
  }
}

void AgentImpl::OnConnectionDone(const Connection* connection, const grpc::Status& status,
                                 std::deque<v1::AgentToNode> unsent) {
  std::vector<std::shared_ptr<Delegation>> broken;
  {
    absl::MutexLock lock(&mu_);
    if (connection_ == connection) {
      connection_ = nullptr;
    }
    // Messages the stream never took go back ahead of those kept since.
    if (connected_) {
      for (auto it = unsent.rbegin(); it != unsent.rend(); ++it) {
        if (!it->has_heartbeat() && !it->has_register_()) {
          pending_.push_front(std::move(*it));
        }
      }
      while (pending_.size() > kMaxPending) {
        pending_.pop_front();
      }
    }
    connected_ = false;
    stream_done_ = true;
    stream_status_ = status;
    // Subtasks' events would arrive on this stream: their waits end here.
    for (auto& [id, delegation] : delegations_) broken.push_back(delegation);
  }
  for (const auto& delegation : broken) {
    absl::MutexLock lock(&delegation->mu);
    if (!delegation->done) {
      delegation->error = absl::UnavailableError("the stream to the node broke during the subtask");
      delegation->done = true;
    }
  }
}

void AgentImpl::Dispatch(v1::TaskAssignment assignment) {
  const std::string task_id = assignment.task().id();
  std::shared_ptr<TaskRun> run;
  const AgentSpec* spec = nullptr;
  bool fresh = false;
  std::string node_id;
  {
    absl::MutexLock lock(&mu_);
    node_id = node_id_;
    if (stopping_) {
      return;  // the node resumes it elsewhere or fails it after its grace
    }
    if (assignment.resumed()) {
      auto running = running_.find(task_id);
      if (running != running_.end()) run = running->second;
    }
    if (run == nullptr) {
      auto it = spec_of_.find(assignment.agent_id());
      if (it == spec_of_.end()) {
        return;
      }
      spec = &options_.agents[it->second];
      run = std::make_shared<TaskRun>();
      running_[task_id] = run;
      fresh = true;
    }
  }
  if (!fresh) {
    // Still running here: its events now go to the new stream.
    Resume(assignment, *run);
    return;
  }
  if (spec->inline_handler) {
    RunHandler(spec->handler, std::move(assignment), std::move(run), std::move(node_id),
               /*on_reactor=*/true);
    return;
  }
  workers_->Schedule([this, spec, assignment = std::move(assignment), run = std::move(run),
                      node_id = std::move(node_id)]() mutable {
    RunHandler(spec->handler, std::move(assignment), std::move(run), std::move(node_id),
               /*on_reactor=*/false);
  });
}

void AgentImpl::Resume(const v1::TaskAssignment& assignment, TaskRun& run) {
  const lf::a2a::v1::Task& stored = assignment.task();
  auto update = [&stored](StreamResponse event) {
    v1::AgentToNode message;
    message.mutable_update()->set_task_id(stored.id());
    *message.mutable_update()->mutable_event() = std::move(event);
    return message;
  };
  absl::MutexLock lock(&run.mu);
  for (const lf::a2a::v1::Artifact& artifact : run.artifacts) {
    auto kept = std::find_if(
        stored.artifacts().begin(), stored.artifacts().end(),
        [&](const auto& candidate) { return candidate.artifact_id() == artifact.artifact_id(); });
    if (kept != stored.artifacts().end() && kept->parts_size() == artifact.parts_size()) {
      continue;
    }
    StreamResponse event;
    *event.mutable_artifact_update()->mutable_artifact() = artifact;  // whole: append=false
    Write(update(std::move(event)));
  }
  if (run.final_event.has_value() &&
      stored.status().state() != run.final_event->status_update().status().state()) {
    Write(update(*run.final_event));
  }
}

void AgentImpl::RunHandler(const TaskHandler& handler, v1::TaskAssignment assignment,
                           std::shared_ptr<TaskRun> run, std::string node_id, bool on_reactor) {
  const std::string task_id = assignment.task().id();
  {
    TaskContextImpl context(*this, std::move(node_id), std::move(assignment), run, on_reactor);
    handler(context);
    if (!context.ended() && !context.cancelled()) {
      context.Complete("");
    }
  }
  absl::MutexLock lock(&mu_);
  auto it = running_.find(task_id);
  if (it != running_.end() && it->second == run) {
    running_.erase(it);
  }
}

void AgentImpl::Cancel(const std::string& task_id) {
  std::shared_ptr<TaskRun> run;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(task_id);
    if (it == running_.end()) {
      return;
    }
    run = it->second;
  }
  std::vector<std::shared_ptr<Delegation>> delegations;
  {
    absl::MutexLock run_lock(&run->mu);
    run->cancelled = true;
    delegations = run->delegations;
  }
  for (const auto& delegation : delegations) {
    absl::MutexLock delegation_lock(&delegation->mu);
    delegation->cancelled = true;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  if (options.agents.empty()) {
    return absl::InvalidArgumentError("AgentOptions.agents: needs at least one agent");
  }
  for (size_t i = 0; i < options.agents.size(); ++i) {
    if (!options.agents[i].handler) {
      return absl::InvalidArgumentError(
          absl::StrCat("AgentOptions.agents[", i, "].handler: is required"));
    }
  }
  security::ClientTlsOptions tls;
  tls.enabled = options.tls || !options.tls_ca_file.empty() || !options.tls_cert_file.empty();
  tls.ca_file = options.tls_ca_file;
  tls.cert_file = options.tls_cert_file;
  tls.key_file = options.tls_key_file;
  tls.ca_name = "AgentOptions.tls_ca_file";
  tls.cert_name = "AgentOptions.tls_cert_file";
  tls.key_name = "AgentOptions.tls_key_file";
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security::ClientCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  auto agent = std::make_unique<AgentImpl>(std::move(options), *std::move(credentials));
  agent->Begin();
  return std::unique_ptr<Agent>(std::move(agent));
}

}  // namespace a2amesh::sdk
