#include "a2a/a2a_service.h"

#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/status_macros.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/time_util.h"
#include "rpc/call_metrics.h"
#include "rpc/grpc_status.h"
#include "rpc/unary.h"
#include "rpc/write_queue.h"
#include "tasks/task_state.h"

namespace a2amesh::a2a {

using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;

// The task subscription behind a streaming call (SendStreamingMessage or
// SubscribeToTask): events go to the call's write queue in order; the call
// finishes after a final event, an error, or a client that falls too far behind.
class A2aService::StreamSink final : public tasks::TaskSubscriber {
 public:
  using Reactor = grpc::ServerWriteReactor<StreamResponse>;

  // `epoch`: the service's, for event ids if `event_ids`.
  StreamSink(Reactor* stream, grpc::CallbackServerContext* context, size_t max_queued,
             bool event_ids, const std::string& epoch)
      : writes_(max_queued), context_(context), event_ids_(event_ids), epoch_(epoch) {
    writes_.Attach(stream);
  }

  void OnEvent(const tasks::TaskEvent& e) override {
    std::optional<Held> held;
    {
      absl::MutexLock lock(&mu_);
      if (task_id_.empty()) {
        task_id_ = e.task_id;
      }
      if (e.may_reply && e.event.has_task()) {
        // The agent may answer with a direct reply: then the client gets that
        // Message alone, otherwise the Task first. The next event says which.
        held_ = Held{e.event, e.seq};
        return;
      }
      held.swap(held_);
    }
    if (tasks::IsDirectReply(e.event)) {
      StreamResponse reply;
      *reply.mutable_message() = tasks::DirectReplyMessage(e.event);
      if (Write(reply, e.seq)) writes_.Finish(grpc::Status::OK);
      return;
    }
    if (held.has_value() && !Write(held->event, held->seq)) return;
    // A final event ends the stream; so does a first Task that has already
    // ended (a follow-up that raced with a cancel).
    if (Write(e.event, e.seq) &&
        (tasks::IsFinalEvent(e.event) || (e.event.has_task() && IsTerminalState(e.state)))) {
      writes_.Finish(grpc::Status::OK);
    }
  }

  void OnError(const absl::Status& status) override { writes_.Finish(rpc::ToGrpcStatus(status)); }

  // An event from another node's stream (forwarding): written as it is; the
  // stream ends when that one does.
  void Relay(const StreamResponse& event) {
    if (writes_.Write(event) == Writes::Result::kFull) {
      writes_.Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "the client fell too many events behind; stream closed"),
                     /*drop_queued=*/true);
    }
  }

  void Finish(const grpc::Status& status) { writes_.Finish(status); }
  // Tells the client the subscription is in place before any event comes (a
  // resumed one may have none to send yet): initial metadata with
  // kSubscribedKey, unless an event or the end has gone already.
  void SendSubscribed() {
    writes_.SendInitialMetadata(
        [this] { context_->AddInitialMetadata(std::string(kSubscribedKey), "1"); });
  }
  void OnWriteDone(bool ok) {
    writes_.OnWriteDone(ok, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the client went away"));
  }
  void Detach() { writes_.Detach(); }
  bool finishing() const { return writes_.finishing(); }
  grpc::StatusCode finish_code() const { return writes_.finish_code(); }

  std::string task_id() const {
    absl::MutexLock lock(&mu_);
    return task_id_;
  }
  // The task it subscribes to, before the subscription's first event (which a
  // resumed one may not get): a call that ends unsubscribes from it.
  void set_task_id(const std::string& task_id) {
    absl::MutexLock lock(&mu_);
    task_id_ = task_id;
  }

 private:
  using Writes = rpc::WriteQueue<Reactor, StreamResponse>;
  // A first event held back for a possible direct reply.
  struct Held {
    StreamResponse event;
    int64_t seq;
  };

  // Queues `event` (with its id, if the caller asked for ids); false if the
  // stream is closed, or has just been closed because the client fell behind.
  bool Write(const StreamResponse& event, int64_t seq) {
    Writes::Result written;
    if (event_ids_) {
      StreamResponse numbered = event;
      numbered.GetReflection()->MutableUnknownFields(&numbered)->AddLengthDelimited(
          kEventIdField, absl::StrCat(seq, ".", epoch_));
      written = writes_.Write(std::move(numbered));
    } else {
      written = writes_.Write(event);
    }
    if (written == Writes::Result::kFull) {
      writes_.Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "the client fell too many events behind; stream closed"),
                     /*drop_queued=*/true);
    }
    return written == Writes::Result::kQueued;
  }

  Writes writes_;
  // The call's, used only under the queue's lock while the call lives.
  grpc::CallbackServerContext* const context_;
  const bool event_ids_;  // the caller asked for kEventIdField
  const std::string& epoch_;
  mutable absl::Mutex mu_;
  std::string task_id_ ABSL_GUARDED_BY(mu_);
  std::optional<Held> held_ ABSL_GUARDED_BY(mu_);
};

// A streaming call; owns nothing but its reactor state, the sink does the work.
class A2aService::EventStream final : public grpc::ServerWriteReactor<StreamResponse> {
 public:
  EventStream(A2aService& service, grpc::CallbackServerContext* context)
      : service_(service),
        context_(context),
        sink_(std::make_shared<StreamSink>(this, context, service.options_.max_queued_events,
                                           context->client_metadata().count(grpc::string_ref(
                                               kEventIdsKey.data(), kEventIdsKey.size())) > 0,
                                           service.epoch_)) {
    service_.open_streams_.fetch_add(1, std::memory_order_relaxed);
  }

  const std::shared_ptr<StreamSink>& sink() const { return sink_; }

  // Ends the call with `status` (before any event).
  void Fail(const absl::Status& status) { sink_->Finish(rpc::ToGrpcStatus(status)); }

  void OnWriteDone(bool ok) override { sink_->OnWriteDone(ok); }

  void OnCancel() override {
    std::string task_id = sink_->task_id();
    if (!task_id.empty()) {
      service_.tasks_.Unsubscribe(task_id, sink_.get());
    }
    sink_->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  void OnDone() override {
    rpc::NoteStatus(context_, sink_->finish_code());
    sink_->Detach();
    std::string task_id = sink_->task_id();
    if (!task_id.empty()) {
      service_.tasks_.Unsubscribe(task_id, sink_.get());
    }
    service_.open_streams_.fetch_sub(1, std::memory_order_release);  // see ~A2aService
    delete this;
  }

 private:
  A2aService& service_;
  grpc::CallbackServerContext* const context_;  // the call's, until OnDone
  const std::shared_ptr<StreamSink> sink_;
};

// A unary SendMessage: answers with the Task once it is stored
// (return_immediately) or once it reaches a final state.
class A2aService::SendCall final : public grpc::ServerUnaryReactor {
 public:
  class Waiter final : public tasks::TaskSubscriber {
   public:
    Waiter(SendCall* call, lf::a2a::v1::SendMessageResponse* response, bool immediate,
           std::optional<int> history_length)
        : call_(call),
          response_(response),
          immediate_(immediate),
          history_length_(history_length) {}

    void OnEvent(const tasks::TaskEvent& e) override {
      SendCall* call;
      {
        absl::MutexLock lock(&mu_);
        if (task_id_.empty()) {
          task_id_ = e.task_id;
        }
        bool answer = immediate_ || tasks::IsFinalEvent(e.event) ||
                      (e.event.has_task() && IsTerminalState(e.state));
        if (!answer || done_ || call_ == nullptr || e.task == nullptr) {
          return;
        }
        done_ = true;
        call = call_;
        if (tasks::IsDirectReply(e.event)) {
          *response_->mutable_message() = tasks::DirectReplyMessage(e.event);
        } else {
          Task* result = response_->mutable_task();
          *result = *e.task;
          tasks::TrimHistory(history_length_, result);
        }
      }
      call->Answer(grpc::Status::OK);
    }

    void OnError(const absl::Status& status) override { Finish(rpc::ToGrpcStatus(status)); }

    // A blocking call answers with the final state only; one that returns
    // immediately, with the task as it was stored.
    bool final_only() const override { return !immediate_; }
    bool first_only() const override { return immediate_; }

    // Finishes the call with `status` unless it is finished already. Decided
    // under the lock, done after it.
    void Finish(const grpc::Status& status) {
      SendCall* call;
      {
        absl::MutexLock lock(&mu_);
        if (done_ || call_ == nullptr) {
          return;
        }
        done_ = true;
        call = call_;
      }
      call->Answer(status);
    }

    // The call is over (OnDone): nothing touches it from now on.
    void Detach() {
      absl::MutexLock lock(&mu_);
      call_ = nullptr;
      done_ = true;
    }

    std::string task_id() {
      absl::MutexLock lock(&mu_);
      return task_id_;
    }

   private:
    absl::Mutex mu_;
    SendCall* call_ ABSL_GUARDED_BY(mu_);
    lf::a2a::v1::SendMessageResponse* const response_;
    const bool immediate_;
    const std::optional<int> history_length_;
    bool done_ ABSL_GUARDED_BY(mu_) = false;
    std::string task_id_ ABSL_GUARDED_BY(mu_);
  };

  SendCall(A2aService& service, grpc::CallbackServerContext* context,
           const lf::a2a::v1::SendMessageRequest& request,
           lf::a2a::v1::SendMessageResponse* response)
      : service_(service), context_(context) {
    const auto& config = request.configuration();
    std::optional<int> history;
    if (config.has_history_length()) {
      history = config.history_length();
    }
    waiter_ = std::make_shared<Waiter>(this, response, config.return_immediately(), history);
  }

  const std::shared_ptr<Waiter>& waiter() const { return waiter_; }

  // Finishes the call (once: the waiter decides).
  void Answer(grpc::Status status) { rpc::Finish(this, context_, std::move(status)); }

  void OnCancel() override {
    std::string task_id = waiter_->task_id();
    if (!task_id.empty()) {
      service_.tasks_.Unsubscribe(task_id, waiter_.get());
    }
    waiter_->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  void OnDone() override {
    waiter_->Detach();
    std::string task_id = waiter_->task_id();
    if (!task_id.empty()) {
      service_.tasks_.Unsubscribe(task_id, waiter_.get());
    }
    delete this;
  }

 private:
  A2aService& service_;
  grpc::CallbackServerContext* const context_;  // the call's, until OnDone
  std::shared_ptr<Waiter> waiter_;
};

// Relays a forwarded stream (the owner's events) into this node's stream.
class A2aService::ForwardedStream final : public grpc::ClientReadReactor<StreamResponse> {
 public:
  ForwardedStream(std::shared_ptr<StreamSink> sink, std::unique_ptr<grpc::ClientContext> context,
                  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub)
      : sink_(std::move(sink)), context_(std::move(context)), stub_(std::move(stub)) {}

  grpc::ClientContext* context() { return context_.get(); }
  lf::a2a::v1::A2AService::Stub& stub() { return *stub_; }

  void Begin() {
    StartRead(&event_);
    StartCall();
  }
  void OnReadInitialMetadataDone(bool ok) override {
    // The owner's resumed subscription is in place: so is this one.
    if (ok && context_->GetServerInitialMetadata().count(
                  grpc::string_ref(kSubscribedKey.data(), kSubscribedKey.size())) > 0) {
      sink_->SendSubscribed();
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      return;  // OnDone follows
    }
    sink_->Relay(event_);
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    sink_->Finish(status);
    delete this;
  }

 private:
  const std::shared_ptr<StreamSink> sink_;
  const std::unique_ptr<grpc::ClientContext> context_;
  const std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub_;
  StreamResponse event_;
};

A2aService::A2aService(A2aServiceOptions options, tasks::TaskManager& tasks,
                       routing::Dispatcher& dispatcher, Executor& blocking, ChannelDirectory peers,
                       push::PushNotifier* push)
    : options_(std::move(options)),
      tasks_(tasks),
      dispatcher_(dispatcher),
      blocking_(blocking),
      peers_(std::move(peers)),
      push_(push),
      epoch_(NewUuid().substr(0, 8)) {}  // 32 random bits

int64_t A2aService::ResumePoint(absl::string_view event_id) const {
  const std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(event_id, absl::MaxSplits('.', 1));
  int64_t seq = -1;
  if (parts.second != epoch_ || !absl::SimpleAtoi(parts.first, &seq) || seq < 0) return -1;
  return seq;
}

A2aService::~A2aService() {
  // Every stream's OnDone ran before the server's shutdown returned, an order
  // kept inside gRPC: their release of the count, acquired here, states it.
  open_streams_.load(std::memory_order_acquire);
}

void A2aService::DropIfFinished(StreamSink& sink) {
  // The client may have left while the subscription was being made.
  if (sink.finishing()) {
    tasks_.Unsubscribe(sink.task_id(), &sink);
  }
}

absl::StatusOr<security::Principal> A2aService::Admit(grpc::CallbackServerContext* context) const {
  A2AMESH_ASSIGN_OR_RETURN(security::Principal caller, options_.auth->AuthenticateCall(*context));
  A2AMESH_RETURN_IF_ERROR(CheckVersion(context));
  return caller;
}

absl::Status A2aService::CheckVersion(grpc::CallbackServerContext* context) const {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("a2a-version");
  if (it == metadata.end()) {
    return routing::CheckProtocolVersion("", /*present=*/false);
  }
  return routing::CheckProtocolVersion(absl::string_view(it->second.data(), it->second.size()),
                                       /*present=*/true);
}

std::string A2aService::RemoteOwner(grpc::CallbackServerContext* context,
                                    const std::string& task_id) const {
  std::string owner(TaskIdOwner(task_id));
  if (owner.empty() || owner == options_.node_id || !peers_) {
    return "";
  }
  // A call forwarded once is served where it lands: no forwarding loops.
  if (rpc::WasForwarded(*context)) {
    return "";
  }
  return owner;
}

std::shared_ptr<grpc::Channel> A2aService::ChannelTo(const std::string& owner) const {
  return peers_ ? peers_(owner) : nullptr;
}

std::unique_ptr<grpc::ClientContext> A2aService::ForwardContext(
    grpc::CallbackServerContext* context, const security::Principal& caller,
    const std::string& owner, const std::string& task_id, absl::Status* error) const {
  if (ChannelTo(owner) == nullptr) {
    *error = UnreachableTaskError(task_id, owner, options_.node_id);
    return nullptr;
  }
  std::unique_ptr<grpc::ClientContext> forward = rpc::ForwardingContext(*context, options_.node_id);
  forward->AddMetadata("a2a-version", "1.0");
  for (absl::string_view key : {kEventIdsKey, kLastEventIdKey}) {
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find(grpc::string_ref(key.data(), key.size())); it != metadata.end()) {
      forward->AddMetadata(std::string(key), std::string(it->second.data(), it->second.size()));
    }
  }
  options_.auth->Forward(*context, caller, forward.get());
  return forward;
}

grpc::ServerWriteReactor<StreamResponse>* A2aService::ForwardStream(
    grpc::CallbackServerContext* context, const security::Principal& caller,
    const std::string& owner, const std::string& task_id,
    std::function<void(lf::a2a::v1::A2AService::Stub&, grpc::ClientContext*,
                       grpc::ClientReadReactor<StreamResponse>*)>
        start) {
  auto* stream = new EventStream(*this, context);
  absl::Status error;
  std::unique_ptr<grpc::ClientContext> forward =
      ForwardContext(context, caller, owner, task_id, &error);
  if (forward == nullptr) {
    stream->Fail(error);
    return stream;
  }
  auto* relay = new ForwardedStream(stream->sink(), std::move(forward),
                                    lf::a2a::v1::A2AService::NewStub(ChannelTo(owner)));
  start(relay->stub(), relay->context(), relay);
  relay->Begin();
  return stream;
}

absl::StatusOr<routing::DispatchContext> A2aService::MakeContext(
    grpc::CallbackServerContext* context, const lf::a2a::v1::SendMessageRequest& request,
    const security::Principal& caller) const {
  routing::DispatchContext dispatch;
  if (!caller.anonymous()) {
    dispatch.principal = caller.subject;
    dispatch.principal_roles = caller.roles;
    dispatch.principal_method = caller.method;
  }
  A2AMESH_ASSIGN_OR_RETURN(dispatch.hops, routing::HopsFromRequest(request));
  dispatch.trace = rpc::CallTrace(context);
  // A caller that waits (blocking or streaming) bounds the task by its deadline.
  if (!request.configuration().return_immediately() &&
      context->deadline() != std::chrono::system_clock::time_point::max()) {
    dispatch.deadline = absl::FromChrono(context->deadline());
  }
  return dispatch;
}

grpc::ServerUnaryReactor* A2aService::Fail(grpc::CallbackServerContext* context,
                                           const absl::Status& status) {
  return rpc::FinishNow(context, status);
}

template <typename Fn>
grpc::ServerUnaryReactor* A2aService::RunBlocking(grpc::CallbackServerContext* context, Fn fn) {
  return rpc::FinishOn(blocking_, context, std::move(fn));
}

template <typename Request, typename Response, typename Call>
grpc::ServerUnaryReactor* A2aService::ForwardUnary(grpc::CallbackServerContext* context,
                                                   const security::Principal& caller,
                                                   const std::string& owner,
                                                   const std::string& task_id,
                                                   const Request* request, Response* response,
                                                   Call call) {
  absl::Status error;
  std::unique_ptr<grpc::ClientContext> forward =
      ForwardContext(context, caller, owner, task_id, &error);
  if (forward == nullptr) {
    return Fail(context, error);
  }
  return rpc::Relay(context, std::move(forward), lf::a2a::v1::A2AService::NewStub(ChannelTo(owner)),
                    [&](auto* async, grpc::ClientContext* forwarded, auto done) {
                      call(async, forwarded, request, response, std::move(done));
                    });
}

grpc::ServerUnaryReactor* A2aService::SendMessage(grpc::CallbackServerContext* context,
                                                  const lf::a2a::v1::SendMessageRequest* request,
                                                  lf::a2a::v1::SendMessageResponse* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "SendMessage");
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (!caller.ok()) {
    return Fail(context, caller.status());
  }
  const std::string& task_id = request->message().task_id();
  if (std::string owner = RemoteOwner(context, task_id); !owner.empty()) {
    return ForwardUnary(context, *caller, owner, task_id, request, response,
                        [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
                          async->SendMessage(ctx, req, resp, std::move(done));
                        });
  }
  absl::StatusOr<routing::DispatchContext> dispatch = MakeContext(context, *request, *caller);
  if (!dispatch.ok()) {
    return Fail(context, dispatch.status());
  }
  // A blocking call's client learns the task's id only with the final answer:
  // the task's creation need not be durable on its own before then.
  dispatch->await_create = request->configuration().return_immediately();
  auto* call = new SendCall(*this, context, *request, response);
  std::shared_ptr<SendCall::Waiter> waiter = call->waiter();
  if (task_id.empty()) {
    // Routing and creating never block.
    std::optional<governance::Governor::TaskAdmission> admission;
    if (governance::Governor* governor = this->governor()) {
      dispatch->admission =
          &admission.emplace(*governor, CallerOf(context, *caller), governance::Action::kSend);
    }
    if (absl::Status status = dispatcher_.Send(*request, *dispatch, waiter); !status.ok()) {
      waiter->OnError(status);
    }
    return call;
  }
  // A follow-up may read the store. The call may end (client cancel) before
  // this runs, so it owns a copy of the request and holds only the waiter.
  blocking_.Schedule([this, request = *request, dispatch = *dispatch, waiter,
                      caller = CallerOf(context, *caller)] {
    absl::Status status = CheckAccess(caller, request.message().task_id(),
                                      security::TaskAccess::kWrite, governance::Action::kSend);
    if (status.ok()) status = dispatcher_.Send(request, dispatch, waiter);
    if (!status.ok()) waiter->OnError(status);
  });
  return call;
}

grpc::ServerWriteReactor<StreamResponse>* A2aService::SendStreamingMessage(
    grpc::CallbackServerContext* context, const lf::a2a::v1::SendMessageRequest* request) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "SendStreamingMessage");
  const std::string& task_id = request->message().task_id();
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (caller.ok()) {
    if (std::string owner = RemoteOwner(context, task_id); !owner.empty()) {
      return ForwardStream(context, *caller, owner, task_id,
                           [request](auto& stub, auto* ctx, auto* reactor) {
                             stub.async()->SendStreamingMessage(ctx, request, reactor);
                           });
    }
  }
  auto* stream = new EventStream(*this, context);
  if (!caller.ok()) {
    stream->Fail(caller.status());
    return stream;
  }
  if (open_streams() > options_.max_open_streams) {
    stream->Fail(absl::ResourceExhaustedError(
        absl::StrCat("the node has ", options_.max_open_streams,
                     " streams open, its --max-open-streams limit; retry later")));
    return stream;
  }
  absl::StatusOr<routing::DispatchContext> dispatch = MakeContext(context, *request, *caller);
  if (!dispatch.ok()) {
    stream->Fail(dispatch.status());
    return stream;
  }
  std::shared_ptr<StreamSink> sink = stream->sink();
  if (task_id.empty()) {
    std::optional<governance::Governor::TaskAdmission> admission;
    if (governance::Governor* governor = this->governor()) {
      dispatch->admission =
          &admission.emplace(*governor, CallerOf(context, *caller), governance::Action::kStream);
    }
    if (absl::Status status = dispatcher_.Send(*request, *dispatch, sink); !status.ok()) {
      sink->OnError(status);
    }
    return stream;
  }
  blocking_.Schedule([this, request = *request, dispatch = *dispatch, sink,
                      caller = CallerOf(context, *caller)] {
    absl::Status status = CheckAccess(caller, request.message().task_id(),
                                      security::TaskAccess::kWrite, governance::Action::kStream);
    if (status.ok()) status = dispatcher_.Send(request, dispatch, sink);
    if (!status.ok()) {
      sink->OnError(status);
      return;
    }
    DropIfFinished(*sink);
  });
  return stream;
}

grpc::ServerWriteReactor<StreamResponse>* A2aService::SubscribeToTask(
    grpc::CallbackServerContext* context, const lf::a2a::v1::SubscribeToTaskRequest* request) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "SubscribeToTask");
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (caller.ok() && !request->id().empty()) {
    if (std::string owner = RemoteOwner(context, request->id()); !owner.empty()) {
      return ForwardStream(context, *caller, owner, request->id(),
                           [request](auto& stub, auto* ctx, auto* reactor) {
                             stub.async()->SubscribeToTask(ctx, request, reactor);
                           });
    }
  }
  auto* stream = new EventStream(*this, context);
  absl::Status status = caller.status();
  if (status.ok()) {
    status = routing::ValidateTaskId(request->id(), "id");
  }
  if (status.ok() && open_streams() > options_.max_open_streams) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("the node has ", options_.max_open_streams,
                     " streams open, its --max-open-streams limit; retry later"));
  }
  if (!status.ok()) {
    stream->Fail(status);
    return stream;
  }
  // A returning SSE client resumes after the last event it saw.
  // An id this process did not give (another node's, from before a restart)
  // resumes nothing: the stream starts with the Task.
  int64_t resume_after = -1;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find(grpc::string_ref(kLastEventIdKey.data(), kLastEventIdKey.size()));
      it != metadata.end()) {
    resume_after = ResumePoint(absl::string_view(it->second.data(), it->second.size()));
  }
  blocking_.Schedule([this, id = request->id(), sink = stream->sink(),
                      caller = CallerOf(context, *caller), resume_after] {
    absl::Status status =
        CheckAccess(caller, id, security::TaskAccess::kRead, governance::Action::kSubscribe);
    if (status.ok()) {
      sink->set_task_id(id);
      status = tasks_.Subscribe(id, sink, resume_after);
      // A resumed subscription may have no first event: say it is in place.
      if (status.ok() && resume_after >= 0) sink->SendSubscribed();
    }
    if (!status.ok()) {
      sink->OnError(status);
      return;
    }
    DropIfFinished(*sink);
  });
  return stream;
}

grpc::ServerUnaryReactor* A2aService::GetTask(grpc::CallbackServerContext* context,
                                              const lf::a2a::v1::GetTaskRequest* request,
                                              Task* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "GetTask");
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (!caller.ok()) {
    return Fail(context, caller.status());
  }
  if (std::string owner = RemoteOwner(context, request->id()); !owner.empty()) {
    return ForwardUnary(context, *caller, owner, request->id(), request, response,
                        [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
                          async->GetTask(ctx, req, resp, std::move(done));
                        });
  }
  return RunBlocking(
      context, [this, request, response, caller = CallerOf(context, *caller)]() -> absl::Status {
        A2AMESH_RETURN_IF_ERROR(routing::ValidateTaskId(request->id(), "id"));
        A2AMESH_RETURN_IF_ERROR(routing::ValidateHistoryLength(
            request->has_history_length(), request->history_length(), "history_length"));
        A2AMESH_ASSIGN_OR_RETURN(tasks::TaskRecord record, tasks_.GetRecord(request->id()));
        if (!security::MayAccessTask(caller.principal, record.info.principal(),
                                     security::TaskAccess::kRead)) {
          return TaskNotFoundError(request->id());
        }
        A2AMESH_RETURN_IF_ERROR(
            Govern(caller, governance::Action::kGet, record.info, request->id()));
        *response = std::move(record.task);
        std::optional<int> history;
        if (request->has_history_length()) {
          history = request->history_length();
        }
        tasks::TrimHistory(history, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* A2aService::ListTasks(grpc::CallbackServerContext* context,
                                                const lf::a2a::v1::ListTasksRequest* request,
                                                lf::a2a::v1::ListTasksResponse* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "ListTasks");
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (!caller.ok()) {
    return Fail(context, caller.status());
  }
  if (governance::Governor* governor = this->governor()) {
    governance::Resource resource;
    resource.agent_id = request->tenant();
    resource.node_id = options_.node_id;
    if (absl::Status status =
            governor->Authorize(CallerOf(context, *caller), governance::Action::kList, resource);
        !status.ok()) {
      return Fail(context, status);
    }
  }
  return RunBlocking(context, [this, request, response, caller = *caller]() -> absl::Status {
    int page_size = request->has_page_size() ? request->page_size() : 50;
    if (page_size < 1 || page_size > 100) {
      return InvalidFieldError("page_size", "must be between 1 and 100");
    }
    A2AMESH_RETURN_IF_ERROR(routing::ValidateHistoryLength(
        request->has_history_length(), request->history_length(), "history_length"));
    if (!lf::a2a::v1::TaskState_IsValid(request->status())) {
      return InvalidFieldError("status", "is not a task state");
    }
    TaskQuery query;
    query.context_id = request->context_id();
    query.agent_id = request->tenant();
    query.state = request->status();
    query.page_size = page_size;
    if (!security::SeesEveryTask(caller)) {
      query.principal = caller.subject;  // its own tasks only
    }
    if (request->has_status_timestamp_after()) {
      query.status_after =
          absl::FromUnixMillis(google::protobuf::util::TimeUtil::TimestampToMilliseconds(
              request->status_timestamp_after()));
    }
    A2AMESH_ASSIGN_OR_RETURN(tasks::TaskList list, tasks_.List(query, request->page_token()));
    std::optional<int> history;
    if (request->has_history_length()) {
      history = request->history_length();
    }
    for (tasks::TaskRecord& record : list.tasks) {
      Task& task = record.task;
      tasks::TrimHistory(history, &task);
      if (!request->include_artifacts()) {
        task.clear_artifacts();
      }
      *response->add_tasks() = std::move(task);
    }
    response->set_next_page_token(list.next_page_token);
    response->set_page_size(page_size);
    response->set_total_size(static_cast<int32_t>(list.total));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* A2aService::CancelTask(grpc::CallbackServerContext* context,
                                                 const lf::a2a::v1::CancelTaskRequest* request,
                                                 Task* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "CancelTask");
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (!caller.ok()) {
    return Fail(context, caller.status());
  }
  if (absl::Status id = routing::ValidateTaskId(request->id(), "id"); !id.ok()) {
    return Fail(context, id);
  }
  if (std::string owner = RemoteOwner(context, request->id()); !owner.empty()) {
    return ForwardUnary(context, *caller, owner, request->id(), request, response,
                        [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
                          async->CancelTask(ctx, req, resp, std::move(done));
                        });
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  blocking_.Schedule(
      [this, context, request, response, reactor, caller = CallerOf(context, *caller)] {
        if (absl::Status access = CheckAccess(caller, request->id(), security::TaskAccess::kWrite,
                                              governance::Action::kCancel);
            !access.ok()) {
          rpc::Finish(reactor, context, rpc::ToGrpcStatus(access));
          return;
        }
        tasks_.Cancel(request->id(), "canceled by the client",
                      [context, response, reactor](absl::StatusOr<Task> task) {
                        if (task.ok()) {
                          *response = std::move(task).value();
                        }
                        rpc::Finish(reactor, context, rpc::ToGrpcStatus(task.status()));
                      });
      });
  return reactor;
}

grpc::ServerUnaryReactor* A2aService::PushNotSupported(grpc::CallbackServerContext* context) {
  if (absl::StatusOr<security::Principal> caller = Admit(context); !caller.ok()) {
    return Fail(context, caller.status());
  }
  return Fail(context, MakeA2aError(A2aError::kPushNotificationNotSupported,
                                    "push notifications are not supported by this node "
                                    "(capabilities.pushNotifications is false)"));
}

template <typename Request, typename Response, typename Forward, typename Fn>
grpc::ServerUnaryReactor* A2aService::PushCall(grpc::CallbackServerContext* context,
                                               const std::string& task_id,
                                               security::TaskAccess access, const Request* request,
                                               Response* response, Forward forward, Fn fn) {
  if (push_ == nullptr) {
    return PushNotSupported(context);
  }
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (!caller.ok()) {
    return Fail(context, caller.status());
  }
  if (std::string owner = RemoteOwner(context, task_id); !owner.empty()) {
    return ForwardUnary(context, *caller, owner, task_id, request, response, forward);
  }
  return RunBlocking(context,
                     [this, task_id, access, caller = CallerOf(context, *caller),
                      fn = std::move(fn)]() mutable -> absl::Status {
                       if (!routing::ValidateTaskId(task_id, "task_id").ok()) {
                         return fn();  // its own error names the field
                       }
                       A2AMESH_RETURN_IF_ERROR(
                           CheckAccess(caller, task_id, access, governance::Action::kPushConfig));
                       return fn();
                     });
}

absl::Status A2aService::CheckAccess(const governance::Caller& caller, const std::string& task_id,
                                     security::TaskAccess access, governance::Action action) {
  if (security::MayAccessTask(caller.principal, "", access) && governor() == nullptr) {
    return absl::OkStatus();  // auth off, or an admin, and no policy: no lookup
  }
  A2AMESH_ASSIGN_OR_RETURN(tasks::TaskRecord record, tasks_.GetRecord(task_id));
  if (!security::MayAccessTask(caller.principal, record.info.principal(), access)) {
    return TaskNotFoundError(task_id);
  }
  return Govern(caller, action, record.info, task_id);
}

absl::Status A2aService::Govern(const governance::Caller& caller, governance::Action action,
                                const v1::TaskInfo& info, const std::string& task_id) {
  governance::Governor* governor = this->governor();
  if (governor == nullptr) return absl::OkStatus();
  // A task handed to another node runs on "agent@node".
  absl::string_view agent = info.agent_id();
  absl::string_view node = options_.node_id;
  if (size_t at = agent.rfind('@'); at != absl::string_view::npos) {
    node = agent.substr(at + 1);
    agent = agent.substr(0, at);
  }
  governance::Resource resource;
  resource.agent_id = agent;
  resource.node_id = node;
  resource.skill = info.skill();
  return governor->Authorize(caller, action, resource, task_id);
}

governance::Caller A2aService::CallerOf(grpc::CallbackServerContext* context,
                                        security::Principal principal) {
  governance::Caller caller;
  caller.principal = std::move(principal);
  caller.peer = context->peer();
  // A call from the HTTP bindings arrives on the in-process channel: the
  // address the bindings carry is then the client's.
  if (rpc::InProcessPeer(caller.peer)) {
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find(std::string(kClientAddressKey)); it != metadata.end()) {
      caller.peer = absl::StrCat("http:", absl::string_view(it->second.data(), it->second.size()));
    }
  }
  // Audit lines name the call's trace (docs/tracing.md).
  if (const trace::SpanContext& trace = rpc::CallTrace(context); trace.valid()) {
    caller.trace_id = trace.TraceIdHex();
  }
  return caller;
}

grpc::ServerUnaryReactor* A2aService::CreateTaskPushNotificationConfig(
    grpc::CallbackServerContext* context, const lf::a2a::v1::TaskPushNotificationConfig* request,
    lf::a2a::v1::TaskPushNotificationConfig* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(),
             "CreateTaskPushNotificationConfig");
  return PushCall(
      context, request->task_id(), security::TaskAccess::kWrite, request, response,
      [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
        async->CreateTaskPushNotificationConfig(ctx, req, resp, std::move(done));
      },
      [this, request, response]() -> absl::Status {
        A2AMESH_ASSIGN_OR_RETURN(*response, push_->Create(*request));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* A2aService::GetTaskPushNotificationConfig(
    grpc::CallbackServerContext* context,
    const lf::a2a::v1::GetTaskPushNotificationConfigRequest* request,
    lf::a2a::v1::TaskPushNotificationConfig* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(),
             "GetTaskPushNotificationConfig");
  return PushCall(
      context, request->task_id(), security::TaskAccess::kRead, request, response,
      [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
        async->GetTaskPushNotificationConfig(ctx, req, resp, std::move(done));
      },
      [this, request, response]() -> absl::Status {
        A2AMESH_ASSIGN_OR_RETURN(*response, push_->Get(request->task_id(), request->id()));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* A2aService::ListTaskPushNotificationConfigs(
    grpc::CallbackServerContext* context,
    const lf::a2a::v1::ListTaskPushNotificationConfigsRequest* request,
    lf::a2a::v1::ListTaskPushNotificationConfigsResponse* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(),
             "ListTaskPushNotificationConfigs");
  return PushCall(
      context, request->task_id(), security::TaskAccess::kRead, request, response,
      [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
        async->ListTaskPushNotificationConfigs(ctx, req, resp, std::move(done));
      },
      [this, request, response]() -> absl::Status {
        A2AMESH_ASSIGN_OR_RETURN(*response, push_->List(*request));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* A2aService::DeleteTaskPushNotificationConfig(
    grpc::CallbackServerContext* context,
    const lf::a2a::v1::DeleteTaskPushNotificationConfigRequest* request,
    google::protobuf::Empty* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(),
             "DeleteTaskPushNotificationConfig");
  return PushCall(
      context, request->task_id(), security::TaskAccess::kWrite, request, response,
      [](auto* async, auto* ctx, auto* req, auto* resp, auto done) {
        async->DeleteTaskPushNotificationConfig(ctx, req, resp, std::move(done));
      },
      [this, request]() -> absl::Status {
        return push_->Delete(request->task_id(), request->id());
      });
}

grpc::ServerUnaryReactor* A2aService::GetExtendedAgentCard(
    grpc::CallbackServerContext* context, const lf::a2a::v1::GetExtendedAgentCardRequest* request,
    lf::a2a::v1::AgentCard* response) {
  rpc::Meter(context, lf::a2a::v1::A2AService::service_full_name(), "GetExtendedAgentCard");
  absl::StatusOr<security::Principal> caller = Admit(context);
  if (!caller.ok()) {
    return Fail(context, caller.status());
  }
  if (governance::Governor* governor = this->governor()) {
    governance::Resource resource;
    resource.agent_id = request->tenant();
    resource.node_id = options_.node_id;
    if (absl::Status status = governor->Authorize(CallerOf(context, *std::move(caller)),
                                                  governance::Action::kCard, resource);
        !status.ok()) {
      return Fail(context, status);
    }
  }
  if (!options_.auth->enabled() || !options_.extended_card) {
    return Fail(context, MakeA2aError(A2aError::kUnsupportedOperation,
                                      "this node declares no extended agent card "
                                      "(capabilities.extendedAgentCard is false)"));
  }
  // Only authenticated callers get here: the card may say more than the public one.
  absl::StatusOr<lf::a2a::v1::AgentCard> card = options_.extended_card(request->tenant());
  if (card.ok()) *response = *std::move(card);
  return Fail(context, card.status());
}

}  // namespace a2amesh::a2a
