#include "peer/handoff.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "catalog/remote_catalog.h"
#include "core/ids.h"
#include "core/log.h"
#include "governance/governor.h"
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
  // The accepted turn's stream broke, or an attempt to resume it failed with
  // `error` (`gone`: the node holds no such turn any more): dial again
  // within the grace, or fail the task.
  void LostTurn(const std::string& node, const std::string& error, bool gone);
  // Dials the node running the turn again and asks for the events after the
  // ones received (HandoffResume).
  void Resume();
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
  // Events of the accepted turn applied so far (a resume asks for the rest).
  int64_t received ABSL_GUARDED_BY(mu) = 0;
  // Since when the accepted turn's stream is lost (InfinitePast: it is not),
  // and the wait before the next resume attempt.
  absl::Time lost_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  absl::Duration resume_backoff ABSL_GUARDED_BY(mu) = absl::Milliseconds(100);
};

// One Peer.Handoff call, on the callback client API; alive until OnDone.
class HandoffCall final : public grpc::ClientBidiReactor<v1::HandoffRequest, v1::HandoffResponse>,
                          public CancellableCall,
                          public std::enable_shared_from_this<HandoffCall> {
 public:
  // `resume`: the call resumes an accepted turn (HandoffResume).
  HandoffCall(std::shared_ptr<HandoffState> state, std::string node_id, bool resume = false)
      : state_(std::move(state)), node_id_(std::move(node_id)), resume_(resume) {}

  const std::string& node_id() const { return node_id_; }
  bool resume() const { return resume_; }

  void Begin(const std::shared_ptr<grpc::Channel>& channel, v1::HandoffRequest first) {
    started_ = absl::Now();
    trace_id_ = trace::SampledTraceId(first.start().traceparent());
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
  const std::string& peer_node() const override { return node_id_; }

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
    if (!accepted_ && !resume_) {
      state_->peers.options().telemetry->Handoff(node_id_, "refused", absl::Now() - started_,
                                                 trace_id_);
    }
    // Before it is untracked: a node shutting down waits for its tracked
    // calls, so what OnCallDone does (a resume timer) is not left behind.
    state_->OnCallDone(this, status, accepted_);
    state_->peers.UntrackCall(this);
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
      if (!resume_) {
        state_->peers.options().telemetry->Handoff(node_id_, "accepted", absl::Now() - started_,
                                                   trace_id_);
      }
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
  const bool resume_;
  std::unique_ptr<v1::Peer::Stub> stub_;
  grpc::ClientContext context_;
  v1::HandoffResponse in_;
  std::atomic<bool> accepted_{false};
  bool impostor_ = false;  // the read path's
  absl::Time started_;
  std::string trace_id_;  // the turn's sampled trace, for the latency's exemplar
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
    peers.options().telemetry->Handoff(target->agent->node_id(), "refused", absl::ZeroDuration(),
                                       "");
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
  absl::Duration lost_for = absl::ZeroDuration();
  {
    absl::MutexLock lock(&mu);
    if (call.get() != accepted || runner == nullptr) {
      return;
    }
    if (accepted->resume()) {
      lost_for = absl::Now() - lost_at;
      lost_at = absl::InfinitePast();
      resume_backoff = absl::Milliseconds(100);
    } else if (current > 0) {
      moved = runner;
      id = task_id;
    }
  }
  if (accepted->resume()) {
    peers.options().telemetry->Handoff(accepted->node_id(), "resumed", lost_for, "");
    A2AMESH_LOG(Info, "handoff resumed")
        .With("node", accepted->node_id())
        .With("lost_for", lost_for);
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
    ++received;
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
  bool lost = false;
  {
    absl::MutexLock lock(&mu);
    if (call.get() != done) {
      return;
    }
    call.reset();
    if (accepted || done->resume()) {
      lost = true;
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
  if (lost) {
    // The turn ran there: lost after acceptance, or a resume attempt failed.
    LostTurn(done->node_id(), Describe(status),
             !accepted && status.error_code() == grpc::StatusCode::NOT_FOUND);
  } else if (retry) {
    StartCall();
  } else if (failed_runner != nullptr) {
    tasks.RunnerFailed(failed_runner, failed_task, reason);
  }
}

void HandoffState::LostTurn(const std::string& node, const std::string& error, bool gone) {
  const absl::Duration grace = peers.options().handoff_grace;
  const tasks::TaskRunner* failed_runner = nullptr;
  std::string failed_task;
  std::string reason;
  absl::Duration delay;
  bool first_loss = false;
  {
    absl::MutexLock lock(&mu);
    if (runner == nullptr || turn_over) {
      ReleaseSlotLocked();
      return;
    }
    const absl::Time now = absl::Now();
    if (lost_at == absl::InfinitePast()) {
      lost_at = now;
      first_loss = true;
    }
    const bool shutting_down = peers.shut_down();
    if (gone) {
      reason = absl::StrCat("node ", node, " no longer holds the task's turn (", error, ")");
    } else if (grace > absl::ZeroDuration() && !shutting_down && now - lost_at < grace) {
      delay = std::min(resume_backoff, lost_at + grace - now);
      resume_backoff = std::min(resume_backoff * 2, absl::Seconds(2));
    } else if (grace > absl::ZeroDuration() && !shutting_down) {
      reason = absl::StrCat("node ", node, " was unreachable for ", absl::FormatDuration(grace),
                            " while running the task (", error, ")");
    } else {
      reason = absl::StrCat("node ", node, " went away while running the task (", error, ")");
    }
    if (!reason.empty()) {
      ReleaseSlotLocked();
      failed_runner = runner;
      failed_task = task_id;
    } else if (first_loss) {
      failed_task = task_id;  // for the log
    }
  }
  if (failed_runner == nullptr) {
    if (first_loss) {
      A2AMESH_LOG(Warning, "handoff stream lost; resuming it")
          .With("task", failed_task)
          .With("node", node)
          .With("grace", grace)
          .With("error", error);
    }
    peers.timers().RunAfter(delay, [weak = weak_from_this()] {
      if (std::shared_ptr<HandoffState> state = weak.lock()) state->Resume();
    });
    return;
  }
  peers.options().telemetry->Handoff(node, "failed", absl::ZeroDuration(), "");
  tasks.RunnerFailed(failed_runner, failed_task, reason);
}

void HandoffState::Resume() {
  if (peers.shut_down()) {
    return;
  }
  v1::HandoffRequest request;
  std::string node;
  {
    absl::MutexLock lock(&mu);
    if (runner == nullptr || turn_over || call != nullptr) {
      return;
    }
    const routing::RemoteCandidate* target = candidate();
    node = target->agent->node_id();
    v1::HandoffResume* resume = request.mutable_resume();
    resume->set_task_id(task_id);
    resume->set_agent_id(target->agent->agent_id());
    resume->set_received(received);
    resume->set_from_node(peers.options().node_id);
  }
  std::shared_ptr<grpc::Channel> channel = peers.ChannelTo(node);
  if (channel == nullptr) {
    LostTurn(node, "not connected", /*gone=*/false);
    return;
  }
  auto next = std::make_shared<HandoffCall>(shared_from_this(), node, /*resume=*/true);
  {
    absl::MutexLock lock(&mu);
    if (runner == nullptr || turn_over || call != nullptr) {
      return;
    }
    call = next;
  }
  next->Begin(channel, std::move(request));
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
    start.set_principal(assignment.principal());
    *start.mutable_principal_roles() = std::move(*assignment.mutable_principal_roles());
    start.set_principal_method(assignment.principal_method());
    start.set_traceparent(std::move(*assignment.mutable_traceparent()));
    start.set_tracestate(std::move(*assignment.mutable_tracestate()));
    start.set_from_node(state_->peers.options().node_id);
    start.set_batches(true);
    state_->has_start = true;
    state_->task_id = start.task().id();
  }
  state_->StartCall();
}

void HandoffRunner::DescribeTurn(trace::Span& span) const {
  span.SetName("a2amesh.v1.Peer/Handoff");
  span.SetAttribute("rpc.system", "grpc");
  span.SetAttribute("rpc.service", "a2amesh.v1.Peer");
  span.SetAttribute("rpc.method", "Handoff");
  // a2amesh.agent ("agent@node") names the peer.
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

// Most events a hosted turn keeps for a resume; a longer turn is not
// resumable (a break cancels it, as with no grace).
constexpr size_t kMaxKeptEvents = 4096;
// Turns that ended kept resumable, in case their owner missed the end.
constexpr size_t kMaxEndedTurns = 1024;
// A parked turn waits longer than the owner's grace, by up to this much: the
// owner counts from when it saw the break, which may be after this node did.
constexpr absl::Duration kMaxParkSlack = absl::Seconds(5);

// Writes one handoff call's responses; the reactor is deleted in OnDone, the
// sink may outlive it.
class HandoffSink final {
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
  // The call is over; whether everything written reached gRPC without a
  // failed write.
  bool Detach() { return writes_.Detach().empty() && !writes_.failed(); }
  template <typename Op>
  bool WithOpenReactor(Op op) {
    return writes_.WithOpenReactor(std::move(op));
  }

 private:
  rpc::WriteQueue<HandoffReactor, v1::HandoffResponse> writes_{100000};
};

}  // namespace

// A hosted turn's subscription: hands its events to the call that carries the
// turn now, and keeps them, so that an owner whose stream broke can resume
// from the events it lacks.
class TurnRelay final : public tasks::TaskSubscriber {
 public:
  TurnRelay(std::string task_id, std::string owner, bool keep)
      : task_id_(std::move(task_id)), owner_(std::move(owner)), keep_(keep) {}

  const std::string& task_id() const { return task_id_; }
  const std::string& owner() const { return owner_; }

  // Makes `sink` the turn's stream: `first`, the events after the first
  // `from`, then each event as it comes, and the turn's end. A sink that
  // carried the turn before is finished. False (nothing written) if those
  // events are not kept.
  bool Connect(const std::shared_ptr<HandoffSink>& sink, int64_t from, v1::HandoffResponse first) {
    std::shared_ptr<HandoffSink> old;
    {
      absl::MutexLock lock(&mu_);
      if (from > count_ || (from < count_ && !keep_)) {
        return false;
      }
      sink->Write(std::move(first));
      for (int64_t i = from; i < count_; ++i) {
        sink->Write(events_[static_cast<size_t>(i)]);
      }
      if (end_.has_value()) {
        sink->Finish(*end_);
      }
      old = std::move(sink_);
      sink_ = sink;
    }
    if (old != nullptr) {
      old->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                               "the owner resumed the turn on another stream"));
    }
    return true;
  }

  // Whether `sink` carried the turn until now (then it no longer does).
  bool Disconnect(const HandoffSink* sink) {
    absl::MutexLock lock(&mu_);
    if (sink_.get() != sink) {
      return false;
    }
    sink_.reset();
    return true;
  }

  bool over() const {
    absl::MutexLock lock(&mu_);
    return end_.has_value();
  }
  bool resumable() const {
    absl::MutexLock lock(&mu_);
    return keep_;
  }

  void OnEvent(const tasks::TaskEvent& e) override {
    v1::HandoffResponse response;
    *response.mutable_event() = e.event;
    const bool last = tasks::IsFinalEvent(e.event);
    absl::MutexLock lock(&mu_);
    ++count_;
    if (keep_ && events_.size() >= kMaxKeptEvents) {
      keep_ = false;  // too long a turn to keep
      std::vector<v1::HandoffResponse>().swap(events_);
    }
    if (keep_) {
      events_.push_back(response);
    }
    if (last) {
      end_ = grpc::Status::OK;
    }
    // (WriteQueue calls are safe under a lock: rpc/write_queue.h.)
    if (sink_ != nullptr) {
      sink_->Write(std::move(response));
      if (last) sink_->Finish(grpc::Status::OK);
    }
  }
  void OnError(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    end_ = rpc::ToGrpcStatus(status);
    if (sink_ != nullptr) sink_->Finish(*end_);
  }

 private:
  const std::string task_id_;
  const std::string owner_;
  mutable absl::Mutex mu_;
  bool keep_ ABSL_GUARDED_BY(mu_);
  // Every event of the turn so far (while keep_), and how many there were.
  std::vector<v1::HandoffResponse> events_ ABSL_GUARDED_BY(mu_);
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  // How the turn's stream ends, once it has.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<HandoffSink> sink_ ABSL_GUARDED_BY(mu_);
};

// The turns this node hosts that an owner may resume, by task id: parked ones
// (their stream broke; canceled once the grace runs out) and carried ones
// (an owner may resume before this node notices the break).
class HostedTurns {
 public:
  HostedTurns(tasks::TaskManager& tasks, Timers& timers, absl::Duration grace)
      : tasks_(tasks), timers_(timers), grace_(grace) {}

  void Add(const std::shared_ptr<TurnRelay>& relay) {
    absl::MutexLock lock(&mu_);
    turns_[relay->task_id()] = Turn{relay, 0};
  }

  // The turn of `task_id` that `owner` runs, no longer parked; nullptr if
  // there is none.
  std::shared_ptr<TurnRelay> Take(const std::string& task_id, const std::string& owner) {
    absl::MutexLock lock(&mu_);
    auto it = turns_.find(task_id);
    if (it == turns_.end() || it->second.relay->owner() != owner) {
      return nullptr;
    }
    if (it->second.expiry != 0) {
      timers_.Cancel(it->second.expiry);
      it->second.expiry = 0;
    }
    return it->second.relay;
  }

  // The stream that carried `relay` broke: the turn waits for a resume for
  // the grace; then, if it has not ended, it is canceled.
  void Park(const std::shared_ptr<TurnRelay>& relay) {
    absl::MutexLock lock(&mu_);
    auto it = turns_.find(relay->task_id());
    if (it == turns_.end() || it->second.relay != relay) {
      return;
    }
    if (it->second.expiry != 0) timers_.Cancel(it->second.expiry);
    const uint64_t generation = ++generation_;
    it->second.expiry = timers_.RunAfter(
        grace_ + std::min(grace_, kMaxParkSlack),
        [this, task_id = relay->task_id(), generation] { Expire(task_id, generation); });
    it->second.generation = generation;
  }

  // The turn's stream carried its end. The owner may still have missed it
  // (a break just then, or a frozen node writing into a stream the owner has
  // given up): the turn stays resumable until kMaxEndedTurns newer ones have
  // ended.
  void Ended(const std::shared_ptr<TurnRelay>& relay) {
    absl::MutexLock lock(&mu_);
    auto it = turns_.find(relay->task_id());
    if (it == turns_.end() || it->second.relay != relay) {
      return;
    }
    ended_.push_back(relay);
    if (ended_.size() > kMaxEndedTurns) {
      std::shared_ptr<TurnRelay> oldest = std::move(ended_.front());
      ended_.pop_front();
      auto old = turns_.find(oldest->task_id());
      if (old != turns_.end() && old->second.relay == oldest && old->second.expiry == 0) {
        turns_.erase(old);
      }
    }
  }

  // The turn cannot be resumed: forget it.
  void Remove(const TurnRelay* relay) {
    absl::MutexLock lock(&mu_);
    auto it = turns_.find(relay->task_id());
    if (it != turns_.end() && it->second.relay.get() == relay) {
      if (it->second.expiry != 0) timers_.Cancel(it->second.expiry);
      turns_.erase(it);
    }
  }

 private:
  struct Turn {
    std::shared_ptr<TurnRelay> relay;
    Timers::Id expiry = 0;  // while parked
    uint64_t generation = 0;
  };

  void Expire(const std::string& task_id, uint64_t generation) {
    std::shared_ptr<TurnRelay> relay;
    {
      absl::MutexLock lock(&mu_);
      auto it = turns_.find(task_id);
      if (it == turns_.end() || it->second.expiry == 0 || it->second.generation != generation) {
        return;
      }
      relay = std::move(it->second.relay);
      turns_.erase(it);
    }
    if (!relay->over()) {
      tasks_.CancelActive(task_id, absl::StrCat("node ", relay->owner(),
                                                ", which owns the task, did not come back within ",
                                                absl::FormatDuration(grace_)));
    }
    tasks_.Unsubscribe(task_id, relay.get());
  }

  tasks::TaskManager& tasks_;
  Timers& timers_;
  const absl::Duration grace_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Turn> turns_ ABSL_GUARDED_BY(mu_);
  // Turns that ended, oldest first (see Ended).
  std::deque<std::shared_ptr<TurnRelay>> ended_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

class HandoffServerCall final : public HandoffReactor {
 public:
  HandoffServerCall(const HandoffServerOptions& options, PeerManager& peers,
                    catalog::AgentCatalog& catalog, tasks::TaskManager& tasks, HostedTurns& turns,
                    std::shared_ptr<const grpc::AuthContext> auth)
      : options_(options),
        peers_(peers),
        catalog_(catalog),
        tasks_(tasks),
        turns_(turns),
        auth_(std::move(auth)),
        sink_(std::make_shared<HandoffSink>()) {
    sink_->Attach(this);
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The owner is gone, or done with the call: OnDone decides what
      // becomes of a turn still running.
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
        // A cancel-only call: a turn parked here for the task ends too (and
        // stays parked, for a resume to hear its end, until it expires).
        if (std::shared_ptr<TurnRelay> parked = turns_.Take(task_id, OwnerOf(task_id))) {
          tasks_.CancelActive(task_id, reason);
          turns_.Park(parked);
        }
        sink_->Finish(grpc::Status::OK);
        return;
      }
    } else if (request_.has_start() && !started) {
      Start(request_.start());
    } else if (request_.has_resume() && !started) {
      Resume(request_.resume());
    }
    ReadNext();
  }
  void OnWriteDone(bool ok) override { sink_->OnWriteDone(ok); }
  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    sink_->Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    const bool delivered = sink_->Detach();
    std::shared_ptr<TurnRelay> relay;
    bool broken;
    {
      absl::MutexLock lock(&mu_);
      relay = std::move(relay_);
      broken = broken_;
    }
    if (relay != nullptr && relay->Disconnect(sink_.get())) {
      // This call carried the turn to its end, or its owner's stream broke.
      if (relay->over() && delivered && !broken) {
        turns_.Ended(relay);
        tasks_.Unsubscribe(relay->task_id(), relay.get());
      } else if (relay->resumable() && options_.grace > absl::ZeroDuration()) {
        turns_.Park(relay);
      } else {
        turns_.Remove(relay.get());
        if (!relay->over()) {
          tasks_.CancelActive(relay->task_id(), "the node that owns the task went away");
        }
        tasks_.Unsubscribe(relay->task_id(), relay.get());
      }
    }
    delete this;
  }

 private:
  void ReadNext() {
    sink_->WithOpenReactor([this](HandoffReactor* reactor) { reactor->StartRead(&request_); });
  }

  // Whether a turn was started (or resumed), and its task id.
  std::pair<bool, std::string> Turn() {
    absl::MutexLock lock(&mu_);
    return {started_, task_id_};
  }

  // The owner of a task: the node its id names.
  static std::string OwnerOf(const std::string& task_id) {
    return std::string(TaskIdOwner(task_id));
  }

  void Refuse(grpc::StatusCode code, const std::string& message) {
    A2AMESH_LOG(Debug, "handoff refused").With("reason", message);
    sink_->Finish(grpc::Status(code, message));
  }

  void Resume(const v1::HandoffResume& resume) {
    {
      absl::MutexLock lock(&mu_);
      started_ = true;
      task_id_ = resume.task_id();
    }
    if (!peers_.Proves(auth_, resume.from_node())) {
      Refuse(grpc::StatusCode::UNAUTHENTICATED,
             absl::StrCat("the caller's certificate does not name node ", resume.from_node()));
      return;
    }
    std::shared_ptr<TurnRelay> relay = turns_.Take(resume.task_id(), resume.from_node());
    const std::string missing =
        absl::StrCat("node ", options_.node_id, " holds no turn of task ", resume.task_id(),
                     " to resume (it ended, its grace ran out, or the node restarted)");
    if (relay == nullptr) {
      Refuse(grpc::StatusCode::NOT_FOUND, missing);
      return;
    }
    sink_->EnableBatches();
    v1::HandoffResponse accepted;
    accepted.mutable_accepted()->set_node_id(options_.node_id);
    accepted.mutable_accepted()->set_agent_id(resume.agent_id());
    {
      absl::MutexLock lock(&mu_);
      relay_ = relay;
    }
    if (!relay->Connect(sink_, resume.received(), std::move(accepted))) {
      {
        absl::MutexLock lock(&mu_);
        relay_.reset();
      }
      turns_.Park(relay);  // as it was
      Refuse(grpc::StatusCode::NOT_FOUND, absl::StrCat(missing, ": the events after the first ",
                                                       resume.received(), " are not kept"));
    }
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
    if (absl::Status allowed = Authorize(start, *agent); !allowed.ok()) {
      Refuse(grpc::StatusCode::PERMISSION_DENIED, std::string(allowed.message()));
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
    if (!start.principal().empty()) {
      hosted.info.set_principal(start.principal());
      *hosted.info.mutable_principal_roles() = start.principal_roles();
      hosted.info.set_principal_method(start.principal_method());
    }
    hosted.info.set_traceparent(start.traceparent());
    hosted.info.set_tracestate(start.tracestate());
    hosted.runner = std::make_unique<catalog::LocalTaskRunner>(agent);

    if (start.batches()) {
      sink_->EnableBatches();
    }
    v1::HandoffResponse accepted;
    accepted.mutable_accepted()->set_node_id(options_.node_id);
    accepted.mutable_accepted()->set_agent_id(agent->id());
    auto relay = std::make_shared<TurnRelay>(start.task().id(), start.from_node(),
                                             /*keep=*/options_.grace > absl::ZeroDuration());
    relay->Connect(sink_, 0, std::move(accepted));
    {
      absl::MutexLock lock(&mu_);
      relay_ = relay;
    }
    turns_.Add(relay);
    absl::Status hosted_ok = tasks_.Host(std::move(hosted), relay);
    if (!hosted_ok.ok()) {
      turns_.Remove(relay.get());
      relay->OnError(hosted_ok);
    }
  }

  // This node's policy on the handoff: the task's caller (and the agent that
  // delegates it, the last of its hops) must be allowed this agent and skill
  // here too. The owner already applied the rate limits and approvals.
  absl::Status Authorize(const v1::HandoffStart& start, const catalog::LocalAgent& agent) {
    governance::Governor* governor = options_.governor;
    if (governor == nullptr || !governor->governs()) return absl::OkStatus();
    governance::Caller caller;
    caller.principal.subject = start.principal().empty() ? "anonymous" : start.principal();
    caller.principal.roles.assign(start.principal_roles().begin(), start.principal_roles().end());
    caller.principal.method = start.principal().empty() ? "none" : start.principal_method();
    if (!start.hops().empty()) {
      absl::string_view last = start.hops(start.hops_size() - 1);
      caller.agent = std::string(last.substr(0, last.rfind('@')));
    }
    caller.peer = absl::StrCat("node:", start.from_node());
    caller.parent_task_id = start.parent_task_id();
    if (auto trace = trace::ParseTraceparent(start.traceparent())) {
      caller.trace_id = trace->TraceIdHex();
    }
    governance::Resource resource;
    resource.agent_id = agent.id();
    resource.node_id = options_.node_id;
    resource.skill = start.skill();
    for (const lf::a2a::v1::AgentSkill& skill : agent.card().skills()) {
      if (skill.id() == start.skill()) resource.tags = &skill.tags();
    }
    return governor->Authorize(caller, governance::Action::kSend, resource, start.task().id());
  }

  const HandoffServerOptions& options_;
  PeerManager& peers_;
  catalog::AgentCatalog& catalog_;
  tasks::TaskManager& tasks_;
  HostedTurns& turns_;
  const std::shared_ptr<const grpc::AuthContext> auth_;
  const std::shared_ptr<HandoffSink> sink_;
  v1::HandoffRequest request_;  // the read path's
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::string task_id_ ABSL_GUARDED_BY(mu_);
  // The turn this call carries (or carried).
  std::shared_ptr<TurnRelay> relay_ ABSL_GUARDED_BY(mu_);
  // The call was canceled or its connection failed.
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

HandoffHost::HandoffHost(HandoffServerOptions options, PeerManager& peers,
                         catalog::AgentCatalog& catalog, tasks::TaskManager& tasks)
    : options_(std::move(options)),
      peers_(peers),
      catalog_(catalog),
      tasks_(tasks),
      turns_(std::make_unique<HostedTurns>(tasks, peers.timers(), options_.grace)) {}

HandoffHost::~HandoffHost() = default;

grpc::ServerBidiReactor<v1::HandoffRequest, v1::HandoffResponse>* HandoffHost::Accept(
    std::shared_ptr<const grpc::AuthContext> auth) {
  return new HandoffServerCall(options_, peers_, catalog_, tasks_, *turns_, std::move(auth));
}

}  // namespace a2amesh::peer
