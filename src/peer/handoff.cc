#include "peer/handoff.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "catalog/remote_catalog.h"
#include "core/log.h"
#include "peer/peer_manager.h"
#include "rpc/batching.h"
#include "rpc/grpc_status.h"
#include "rpc/write_queue.h"
#include "tasks/task_state.h"

namespace a2amesh::peer {
namespace {

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), ": ", status.error_message());
}

}  // namespace

class HandoffCall;

// Shared by a HandoffRunner and its calls: it outlives the runner until the
// calls are over (a cancel must still reach the peer).
struct HandoffState : std::enable_shared_from_this<HandoffState> {
  HandoffState(PeerManager& p, tasks::TaskManager& t, std::vector<routing::RemoteCandidate> c)
      : peers(p), tasks(t), candidates(std::move(c)) {}

  void StartCall();
  void OnAccepted(HandoffCall* call);
  void OnEvent(HandoffCall* call, lf::a2a::v1::StreamResponse event);
  void OnCallDone(HandoffCall* call, const grpc::Status& status, bool accepted);
  void ReleaseSlotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (slot_held) {
      slot_held = false;
      candidates[current].agent->Release();
    }
  }
  const routing::RemoteCandidate* candidate() const { return &candidates[current]; }

  PeerManager& peers;
  tasks::TaskManager& tasks;
  const std::vector<routing::RemoteCandidate> candidates;
  std::atomic<size_t> current{0};

  absl::Mutex mu;
  // The runner, until it is destroyed: the task manager knows runners by this.
  const tasks::TaskRunner* runner ABSL_GUARDED_BY(mu) = nullptr;
  bool slot_held ABSL_GUARDED_BY(mu) = true;
  bool has_start ABSL_GUARDED_BY(mu) = false;
  v1::HandoffStart start ABSL_GUARDED_BY(mu);
  std::string task_id ABSL_GUARDED_BY(mu);
  std::shared_ptr<HandoffCall> call ABSL_GUARDED_BY(mu);
  bool turn_over ABSL_GUARDED_BY(mu) = false;
  std::vector<std::string> refusals ABSL_GUARDED_BY(mu);
};

// One Peer.Handoff call, on the callback client API; alive until OnDone.
class HandoffCall final : public grpc::ClientBidiReactor<v1::HandoffRequest, v1::HandoffResponse>,
                          public CancellableCall,
                          public std::enable_shared_from_this<HandoffCall> {
 public:
  HandoffCall(std::shared_ptr<HandoffState> state, std::string node_id)
      : state_(std::move(state)), node_id_(std::move(node_id)) {}

  const std::string& node_id() const { return node_id_; }

  void Begin(const std::shared_ptr<grpc::Channel>& channel, v1::HandoffRequest first) {
    started_ = absl::Now();
    self_ = shared_from_this();
    stub_ = v1::Peer::NewStub(channel);
    state_->peers.TrackCall(self_);
    stub_->async()->Handoff(&context_, this);
    writes_.Write(std::move(first));
    writes_.Attach(&writer_);
    StartRead(&in_);
    AddHold();  // Send writes from outside the reactions: see WriteQueue::Stop
    StartCall();
  }

  void Send(v1::HandoffRequest request) { writes_.Write(std::move(request)); }
  void CancelCall() override { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      writes_.Stop();
      RemoveHold();
      return;  // OnDone follows
    }
    if (in_.has_batch()) {
      for (v1::HandoffResponse& response : *in_.mutable_batch()->mutable_messages()) {
        Handle(response);
      }
    } else {
      Handle(in_);
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override { writes_.OnWriteDone(ok, grpc::Status::OK); }
  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<HandoffCall> self = std::move(self_);
    writes_.Detach();
    if (!accepted_) {
      state_->peers.options().telemetry->Handoff(node_id_, "refused", absl::Now() - started_);
    }
    state_->peers.UntrackCall(this);
    state_->OnCallDone(this, status, accepted_);
  }

 private:
  void Handle(v1::HandoffResponse& response) {
    if (impostor_) return;
    if (response.has_accepted()) {
      // (The auth context is built on demand: only when peers authenticate.)
      if (state_->peers.options().authenticate &&
          !state_->peers.Proves(context_.auth_context(), node_id_)) {
        // Not the node it was meant to be: nothing it says is used. OnDone
        // reports the call refused, and the next candidate is tried.
        impostor_ = true;
        context_.TryCancel();
        return;
      }
      accepted_ = true;
      state_->peers.options().telemetry->Handoff(node_id_, "accepted", absl::Now() - started_);
      state_->OnAccepted(this);
    } else if (response.has_event()) {
      state_->OnEvent(this, std::move(*response.mutable_event()));
    }
  }

  struct Writer {
    HandoffCall* self;
    void StartWrite(const v1::HandoffRequest* request) { self->StartWrite(request); }
    void Finish(const grpc::Status&) { self->StartWritesDone(); }
  };

  const std::shared_ptr<HandoffState> state_;
  const std::string node_id_;
  std::unique_ptr<v1::Peer::Stub> stub_;
  grpc::ClientContext context_;
  v1::HandoffResponse in_;
  std::atomic<bool> accepted_{false};
  bool impostor_ = false;  // the read path's
  absl::Time started_;
  Writer writer_{this};
  rpc::WriteQueue<Writer, v1::HandoffRequest> writes_{64};
  std::shared_ptr<HandoffCall> self_;
};

void HandoffState::StartCall() {
  while (true) {
    v1::HandoffRequest request;
    const routing::RemoteCandidate* target;
    {
      absl::MutexLock lock(&mu);
      if (runner == nullptr || !has_start) {
        return;
      }
      target = candidate();
      *request.mutable_start() = start;
      request.mutable_start()->set_agent_id(target->agent->agent_id());
      if (!target->skill.empty()) {
        request.mutable_start()->set_skill(target->skill);
      }
    }
    std::shared_ptr<grpc::Channel> channel = peers.ChannelTo(target->agent->node_id());
    if (channel != nullptr) {
      auto next = std::make_shared<HandoffCall>(shared_from_this(), target->agent->node_id());
      {
        absl::MutexLock lock(&mu);
        call = next;
      }
      next->Begin(channel, std::move(request));
      return;
    }
    // Not reachable at all: the next candidate, if any.
    peers.options().telemetry->Handoff(target->agent->node_id(), "refused", absl::ZeroDuration());
    const tasks::TaskRunner* failed_runner;
    std::string failed_task;
    std::string reason;
    {
      absl::MutexLock lock(&mu);
      refusals.push_back(absl::StrCat(target->agent->node_id(), " (not connected)"));
      ReleaseSlotLocked();
      while (current + 1 < candidates.size()) {
        ++current;
        if (candidates[current].agent->TryAcquire()) {
          slot_held = true;
          break;
        }
        refusals.push_back(absl::StrCat(candidates[current].agent->node_id(), " (busy)"));
      }
      if (slot_held) {
        continue;
      }
      failed_runner = runner;
      failed_task = task_id;
      reason = absl::StrCat("no node accepted the task: ", absl::StrJoin(refusals, "; "));
    }
    tasks.RunnerFailed(failed_runner, failed_task, reason);
    return;
  }
}

void HandoffState::OnAccepted(HandoffCall* accepted) {
  const tasks::TaskRunner* moved = nullptr;
  std::string id;
  {
    absl::MutexLock lock(&mu);
    if (call.get() != accepted || runner == nullptr) {
      return;
    }
    if (current > 0) {
      moved = runner;
      id = task_id;
    }
  }
  if (moved != nullptr) {
    tasks.RunnerMoved(moved, id);
  }
}

void HandoffState::OnEvent(HandoffCall* from, lf::a2a::v1::StreamResponse event) {
  const tasks::TaskRunner* target;
  std::string id;
  {
    absl::MutexLock lock(&mu);
    if (call.get() != from || runner == nullptr) {
      return;
    }
    if (tasks::IsFinalEvent(event)) {
      turn_over = true;
    }
    target = runner;
    id = task_id;
  }
  absl::Status applied = tasks.ApplyRunnerEvent(target, id, std::move(event));
  if (!applied.ok()) {
    A2AMESH_LOG(Debug, "handoff event refused").With("task", id).With("error", applied);
  }
}

void HandoffState::OnCallDone(HandoffCall* done, const grpc::Status& status, bool accepted) {
  const tasks::TaskRunner* failed_runner = nullptr;
  std::string failed_task;
  std::string reason;
  bool retry = false;
  {
    absl::MutexLock lock(&mu);
    if (call.get() != done) {
      return;
    }
    call.reset();
    if (accepted) {
      ReleaseSlotLocked();
      if (!turn_over && runner != nullptr) {
        peers.options().telemetry->Handoff(done->node_id(), "failed", absl::ZeroDuration());
        failed_runner = runner;
        failed_task = task_id;
        reason = absl::StrCat("node ", done->node_id(), " went away while running the task (",
                              Describe(status), ")");
      }
    } else {
      refusals.push_back(absl::StrCat(done->node_id(), " (", Describe(status), ")"));
      ReleaseSlotLocked();
      if (runner == nullptr) {
        return;
      }
      while (current + 1 < candidates.size()) {
        ++current;
        if (candidates[current].agent->TryAcquire()) {
          slot_held = true;
          retry = true;
          break;
        }
        refusals.push_back(absl::StrCat(candidates[current].agent->node_id(), " (busy)"));
      }
      if (!retry) {
        failed_runner = runner;
        failed_task = task_id;
        reason = absl::StrCat("no node accepted the task: ", absl::StrJoin(refusals, "; "));
      }
    }
  }
  if (retry) {
    StartCall();
  } else if (failed_runner != nullptr) {
    tasks.RunnerFailed(failed_runner, failed_task, reason);
  }
}

HandoffRunner::HandoffRunner(PeerManager& peers, tasks::TaskManager& tasks,
                             std::vector<routing::RemoteCandidate> candidates)
    : state_(std::make_shared<HandoffState>(peers, tasks, std::move(candidates))) {
  absl::MutexLock lock(&state_->mu);
  state_->runner = this;
}

HandoffRunner::~HandoffRunner() {
  absl::MutexLock lock(&state_->mu);
  state_->runner = nullptr;
  state_->ReleaseSlotLocked();
}

const std::string& HandoffRunner::agent_id() const {
  return state_->candidate()->agent->qualified_id();
}

void HandoffRunner::Assign(v1::TaskAssignment assignment) {
  {
    absl::MutexLock lock(&state_->mu);
    v1::HandoffStart& start = state_->start;
    *start.mutable_task() = std::move(*assignment.mutable_task());
    *start.mutable_message() = std::move(*assignment.mutable_message());
    if (assignment.has_request_metadata()) {
      *start.mutable_request_metadata() = std::move(*assignment.mutable_request_metadata());
    }
    *start.mutable_accepted_output_modes() = std::move(*assignment.mutable_accepted_output_modes());
    start.set_skill(assignment.skill());
    *start.mutable_hops() = std::move(*assignment.mutable_hops());
    start.set_deadline_unix_ms(assignment.deadline_unix_ms());
    start.set_parent_task_id(assignment.parent_task_id());
    start.set_from_node(state_->peers.options().node_id);
    start.set_batches(true);
    state_->has_start = true;
    state_->task_id = start.task().id();
  }
  state_->StartCall();
}

void HandoffRunner::Cancel(const std::string& task_id, const std::string& reason) {
  v1::HandoffRequest request;
  request.mutable_cancel()->set_reason(reason);
  request.mutable_cancel()->set_task_id(task_id);
  std::shared_ptr<HandoffCall> call;
  {
    absl::MutexLock lock(&state_->mu);
    call = state_->call;
  }
  if (call != nullptr) {
    call->Send(std::move(request));
    return;
  }
  // No turn running there: tell the node anyway, for the subtasks it runs for
  // this task. Nothing comes back.
  const std::string& node = state_->candidate()->agent->node_id();
  std::shared_ptr<grpc::Channel> channel = state_->peers.ChannelTo(node);
  if (channel == nullptr) {
    return;
  }
  auto cancel_only =
      std::make_shared<HandoffState>(state_->peers, state_->tasks, state_->candidates);
  {
    absl::MutexLock lock(&cancel_only->mu);
    cancel_only->slot_held = false;
  }
  std::make_shared<HandoffCall>(cancel_only, node)->Begin(channel, std::move(request));
}

namespace {

using HandoffReactor = grpc::ServerBidiReactor<v1::HandoffRequest, v1::HandoffResponse>;

// The receiving side of one handoff; the reactor is deleted in OnDone, the
// sink (the hosted turn's subscriber) may outlive it.
class HandoffSink final : public tasks::TaskSubscriber {
 public:
  void Attach(HandoffReactor* reactor) { writes_.Attach(reactor); }
  // The owner reads batches: responses that wait for the stream go together.
  void EnableBatches() {
    writes_.SetCoalesce([](std::deque<v1::HandoffResponse>& queue, v1::HandoffResponse* merged) {
      return rpc::CoalesceIntoBatch(
          queue, merged, [](const v1::HandoffResponse& response) { return !response.has_batch(); });
    });
  }
  void Write(v1::HandoffResponse response) { writes_.Write(std::move(response)); }
  void Finish(const grpc::Status& status) { writes_.Finish(status); }
  void OnWriteDone(bool ok) {
    writes_.OnWriteDone(ok, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the owner went away"));
  }
  void Detach() { writes_.Detach(); }
  bool finishing() const { return writes_.finishing(); }
  template <typename Op>
  bool WithOpenReactor(Op op) {
    return writes_.WithOpenReactor(std::move(op));
  }

  void OnEvent(const tasks::TaskEvent& e) override {
    v1::HandoffResponse response;
    *response.mutable_event() = e.event;
    writes_.Write(std::move(response));
    if (tasks::IsFinalEvent(e.event)) {
      writes_.Finish(grpc::Status::OK);
    }
  }
  void OnError(const absl::Status& status) override { writes_.Finish(rpc::ToGrpcStatus(status)); }

 private:
  rpc::WriteQueue<HandoffReactor, v1::HandoffResponse> writes_{100000};
};

class HandoffServerCall final : public HandoffReactor {
 public:
  HandoffServerCall(const HandoffServerOptions& options, PeerManager& peers,
                    catalog::AgentCatalog& catalog, tasks::TaskManager& tasks,
                    std::shared_ptr<const grpc::AuthContext> auth)
      : options_(options),
        peers_(peers),
        catalog_(catalog),
        tasks_(tasks),
        auth_(std::move(auth)),
        sink_(std::make_shared<HandoffSink>()) {
    sink_->Attach(this);
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The sender is gone: nobody is left to report to.
      CancelTurn("the node that owns the task went away");
      sink_->Finish(grpc::Status::OK);
      return;
    }
    auto [started, task_id] = Turn();
    if (request_.has_cancel()) {
      if (task_id.empty()) {
        task_id = request_.cancel().task_id();
      }
      std::string reason =
          request_.cancel().reason().empty() ? "canceled by its owner" : request_.cancel().reason();
      tasks_.CancelChildren(task_id,
                            absl::StrCat("its parent task ", task_id, " ended (", reason, ")"));
      if (started) {
        tasks_.CancelActive(task_id, reason);
      } else {
        sink_->Finish(grpc::Status::OK);  // a cancel-only call
        return;
      }
    } else if (request_.has_start() && !started) {
      Start(request_.start());
    }
    ReadNext();
  }
  void OnWriteDone(bool ok) override { sink_->OnWriteDone(ok); }
  void OnCancel() override {
    CancelTurn("the node that owns the task went away");
    sink_->Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    sink_->Detach();
    tasks_.Unsubscribe(Turn().second, sink_.get());
    delete this;
  }

 private:
  void ReadNext() {
    sink_->WithOpenReactor([this](HandoffReactor* reactor) { reactor->StartRead(&request_); });
  }

  // Whether a turn was started, and its task id. Read by OnCancel too.
  std::pair<bool, std::string> Turn() {
    absl::MutexLock lock(&mu_);
    return {started_, task_id_};
  }

  void CancelTurn(const std::string& reason) {
    auto [started, task_id] = Turn();
    if (started && !sink_->finishing()) {
      tasks_.CancelActive(task_id, reason);
    }
  }

  void Refuse(grpc::StatusCode code, const std::string& message) {
    A2AMESH_LOG(Debug, "handoff refused").With("reason", message);
    sink_->Finish(grpc::Status(code, message));
  }

  void Start(const v1::HandoffStart& start) {
    {
      absl::MutexLock lock(&mu_);
      started_ = true;
      task_id_ = start.task().id();
    }
    if (!peers_.Proves(auth_, start.from_node())) {
      Refuse(grpc::StatusCode::UNAUTHENTICATED,
             absl::StrCat("the caller's certificate does not name node ", start.from_node()));
      return;
    }
    std::shared_ptr<catalog::LocalAgent> agent = catalog_.Find(start.agent_id());
    if (agent == nullptr) {
      Refuse(grpc::StatusCode::UNAVAILABLE,
             absl::StrCat("agent ", start.agent_id(), " is not on node ", options_.node_id));
      return;
    }
    if (peers_.draining()) {
      Refuse(grpc::StatusCode::UNAVAILABLE,
             absl::StrCat("node ", options_.node_id, " is draining"));
      return;
    }
    std::string here = catalog::QualifiedAgentId(agent->id(), options_.node_id);
    if (std::find(start.hops().begin(), start.hops().end(), here) != start.hops().end()) {
      Refuse(grpc::StatusCode::FAILED_PRECONDITION,
             absl::StrCat("refused: ", here, " is already in the task's delegation chain (",
                          absl::StrJoin(start.hops(), " -> "), ")"));
      return;
    }
    if (start.hops_size() >= options_.max_hops) {
      Refuse(grpc::StatusCode::FAILED_PRECONDITION,
             absl::StrCat("refused: the delegation chain is ", start.hops_size(),
                          " deep, the --max-hops limit of ", options_.max_hops));
      return;
    }
    if (start.deadline_unix_ms() > 0 &&
        absl::Now() >= absl::FromUnixMillis(start.deadline_unix_ms())) {
      Refuse(grpc::StatusCode::DEADLINE_EXCEEDED, "the task's deadline has passed");
      return;
    }
    if (!agent->TryAcquire()) {
      Refuse(grpc::StatusCode::RESOURCE_EXHAUSTED,
             absl::StrCat("agent ", agent->id(), " on ", options_.node_id,
                          " is at its max_concurrency"));
      return;
    }
    tasks::HostedTask hosted;
    hosted.task = start.task();
    hosted.message = start.message();
    hosted.info.set_agent_id(agent->id());
    hosted.info.set_skill(start.skill());
    *hosted.info.mutable_accepted_output_modes() = start.accepted_output_modes();
    if (start.has_request_metadata()) {
      *hosted.info.mutable_request_metadata() = start.request_metadata();
    }
    hosted.info.set_parent_task_id(start.parent_task_id());
    *hosted.info.mutable_hops() = start.hops();
    hosted.info.set_deadline_unix_ms(start.deadline_unix_ms());
    hosted.runner = std::make_unique<catalog::LocalTaskRunner>(agent);

    if (start.batches()) {
      sink_->EnableBatches();
    }
    v1::HandoffResponse accepted;
    accepted.mutable_accepted()->set_node_id(options_.node_id);
    accepted.mutable_accepted()->set_agent_id(agent->id());
    sink_->Write(std::move(accepted));
    absl::Status hosted_ok = tasks_.Host(std::move(hosted), sink_);
    if (!hosted_ok.ok()) {
      sink_->Finish(rpc::ToGrpcStatus(hosted_ok));
    }
  }

  const HandoffServerOptions options_;
  PeerManager& peers_;
  catalog::AgentCatalog& catalog_;
  tasks::TaskManager& tasks_;
  const std::shared_ptr<const grpc::AuthContext> auth_;
  const std::shared_ptr<HandoffSink> sink_;
  v1::HandoffRequest request_;  // the read path's
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::string task_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<v1::HandoffRequest, v1::HandoffResponse>* AcceptHandoff(
    const HandoffServerOptions& options, PeerManager& peers, catalog::AgentCatalog& catalog,
    tasks::TaskManager& tasks, std::shared_ptr<const grpc::AuthContext> auth) {
  return new HandoffServerCall(options, peers, catalog, tasks, std::move(auth));
}

}  // namespace a2amesh::peer
