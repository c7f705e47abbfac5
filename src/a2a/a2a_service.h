#ifndef A2AMESH_A2A_A2A_SERVICE_H_
#define A2AMESH_A2A_A2A_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "a2amesh/executor.h"
#include "governance/governor.h"
#include "grpcpp/grpcpp.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "push/push_notifier.h"
#include "routing/dispatcher.h"
#include "security/auth.h"
#include "tasks/task_manager.h"

namespace a2amesh::a2a {

// The HTTP bindings' client address, carried on their in-process call to the
// service (metadata).
inline constexpr absl::string_view kClientAddressKey = "a2amesh-http-client";

// Metadata by which a streaming call's caller (the HTTP bindings, for SSE's
// `id:` lines) asks for each event's id: "SEQ.EPOCH", the event's sequence
// number in its task's log (tasks::TaskEvent::seq) and the epoch of the
// owner's process (A2aService::epoch). It comes inside the event, as the
// string field kEventIdField: a field the A2A proto does not have, which
// every protobuf parser keeps or ignores as unknown, so a forwarded stream
// carries it through unchanged.
inline constexpr absl::string_view kEventIdsKey = "a2amesh-event-ids";
inline constexpr int kEventIdField = 50001;
// Metadata on SubscribeToTask: the id of the last event the caller saw
// (SSE's Last-Event-ID); the stream resumes after it (TaskManager::Subscribe).
inline constexpr absl::string_view kLastEventIdKey = "last-event-id";
// Initial metadata of a resumed SubscribeToTask once its subscription is in
// place (it may have no event to send yet).
inline constexpr absl::string_view kSubscribedKey = "a2amesh-subscribed";

// A channel to another node of the mesh (nullptr if it is not known), for
// calls about tasks that node owns.
using ChannelDirectory = std::function<std::shared_ptr<grpc::Channel>(const std::string& node_id)>;

struct A2aServiceOptions {
  std::string node_id;
  // Streaming calls (SendStreamingMessage, SubscribeToTask) open at once.
  int64_t max_open_streams = 10000;
  // Events a stream may have queued for a slow client before it is cut off.
  size_t max_queued_events = 4096;
  // Proves who calls (security/auth.h); never null.
  std::shared_ptr<security::Authenticator> auth = security::Authenticator::Off();
  // The card GetExtendedAgentCard gives an authenticated caller, for a tenant
  // ("": the node's); unset: none (auth off).
  std::function<absl::StatusOr<lf::a2a::v1::AgentCard>(const std::string& tenant)> extended_card;
  // Decides and audits every call (policy, rate limits, quotas); null: none.
  governance::Governor* governor = nullptr;
};

// lf.a2a.v1.A2AService over gRPC, on the callback API: reactions never block;
// calls that read the task store run on `blocking`. Every call is
// authenticated first (UNAUTHENTICATED), then checks the a2a-version
// metadata; a task records who created it. Errors carry google.rpc.ErrorInfo details
// (rpc/grpc_status.h).
//
// Tasks are location-transparent: GetTask, CancelTask, SubscribeToTask and
// follow-up messages for a task another node owns (the node in its id) are
// forwarded to that node, with the caller's deadline and cancellation. Blocking
// and streaming sends give the task the caller's deadline. Thread-safe.
class A2aService final : public lf::a2a::v1::A2AService::CallbackService {
 public:
  // `push` (may be null: push notifications are not supported) serves the
  // push-notification config RPCs.
  A2aService(A2aServiceOptions options, tasks::TaskManager& tasks, routing::Dispatcher& dispatcher,
             Executor& blocking, ChannelDirectory peers, push::PushNotifier* push = nullptr);
  // After the gRPC server has shut down (every stream's OnDone has run).
  ~A2aService() override;

  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const lf::a2a::v1::SendMessageRequest* request,
                                        lf::a2a::v1::SendMessageResponse* response) override;
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* SendStreamingMessage(
      grpc::CallbackServerContext* context,
      const lf::a2a::v1::SendMessageRequest* request) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* context,
                                    const lf::a2a::v1::GetTaskRequest* request,
                                    lf::a2a::v1::Task* response) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* context,
                                      const lf::a2a::v1::ListTasksRequest* request,
                                      lf::a2a::v1::ListTasksResponse* response) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* context,
                                       const lf::a2a::v1::CancelTaskRequest* request,
                                       lf::a2a::v1::Task* response) override;
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* SubscribeToTask(
      grpc::CallbackServerContext* context,
      const lf::a2a::v1::SubscribeToTaskRequest* request) override;
  grpc::ServerUnaryReactor* CreateTaskPushNotificationConfig(
      grpc::CallbackServerContext* context, const lf::a2a::v1::TaskPushNotificationConfig* request,
      lf::a2a::v1::TaskPushNotificationConfig* response) override;
  grpc::ServerUnaryReactor* GetTaskPushNotificationConfig(
      grpc::CallbackServerContext* context,
      const lf::a2a::v1::GetTaskPushNotificationConfigRequest* request,
      lf::a2a::v1::TaskPushNotificationConfig* response) override;
  grpc::ServerUnaryReactor* ListTaskPushNotificationConfigs(
      grpc::CallbackServerContext* context,
      const lf::a2a::v1::ListTaskPushNotificationConfigsRequest* request,
      lf::a2a::v1::ListTaskPushNotificationConfigsResponse* response) override;
  grpc::ServerUnaryReactor* GetExtendedAgentCard(
      grpc::CallbackServerContext* context, const lf::a2a::v1::GetExtendedAgentCardRequest* request,
      lf::a2a::v1::AgentCard* response) override;
  grpc::ServerUnaryReactor* DeleteTaskPushNotificationConfig(
      grpc::CallbackServerContext* context,
      const lf::a2a::v1::DeleteTaskPushNotificationConfigRequest* request,
      google::protobuf::Empty* response) override;

  int64_t open_streams() const { return open_streams_.load(std::memory_order_relaxed); }

  // This process's epoch in event ids (kEventIdField): random, new at each
  // start. Sequence numbers survive a restart, but an event delivered before
  // it was stored may be lost in a crash and its number given to another: an
  // id from another epoch resumes nothing.
  const std::string& epoch() const { return epoch_; }
  // The sequence number in `event_id` if this process gave it, else -1.
  int64_t ResumePoint(absl::string_view event_id) const;

 private:
  class StreamSink;
  class EventStream;
  class SendCall;
  class ForwardedStream;

  // The request's place in a delegation chain and, for a caller that waits,
  // its deadline.
  absl::StatusOr<routing::DispatchContext> MakeContext(
      grpc::CallbackServerContext* context, const lf::a2a::v1::SendMessageRequest& request,
      const security::Principal& caller) const;
  // The forwarding helpers carry `caller`, the principal this node proved.
  template <typename Request, typename Response, typename Call>
  grpc::ServerUnaryReactor* ForwardUnary(grpc::CallbackServerContext* context,
                                         const security::Principal& caller,
                                         const std::string& owner, const std::string& task_id,
                                         const Request* request, Response* response, Call call);
  // Authenticates the call, then checks its A2A version.
  absl::StatusOr<security::Principal> Admit(grpc::CallbackServerContext* context) const;
  absl::Status CheckVersion(grpc::CallbackServerContext* context) const;
  // The node that owns `task_id`, when it is another node and this call may be
  // forwarded there; "" to serve it here.
  std::string RemoteOwner(grpc::CallbackServerContext* context, const std::string& task_id) const;
  // A client context for forwarding `context`'s call to `owner`, with its
  // deadline, cancellation and the A2A version; nullptr (and `error`) if the
  // owner is not reachable.
  std::unique_ptr<grpc::ClientContext> ForwardContext(grpc::CallbackServerContext* context,
                                                      const security::Principal& caller,
                                                      const std::string& owner,
                                                      const std::string& task_id,
                                                      absl::Status* error) const;
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& owner) const;
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* ForwardStream(
      grpc::CallbackServerContext* context, const security::Principal& caller,
      const std::string& owner, const std::string& task_id,
      std::function<void(lf::a2a::v1::A2AService::Stub&, grpc::ClientContext*,
                         grpc::ClientReadReactor<lf::a2a::v1::StreamResponse>*)>
          start);
  // Ends a subscription made for a stream whose client has already left.
  void DropIfFinished(StreamSink& sink);
  // Finishes `context`'s default reactor with `status` now.
  grpc::ServerUnaryReactor* Fail(grpc::CallbackServerContext* context, const absl::Status& status);
  // Runs `fn` on the blocking executor and finishes the call with its status
  // (the caller was admitted first).
  template <typename Fn>
  grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* context, Fn fn);
  grpc::ServerUnaryReactor* PushNotSupported(grpc::CallbackServerContext* context);
  // Runs a push-config RPC for task `task_id`: forwarded to its owner, refused
  // if push is off, else `fn` on the blocking executor if the caller has
  // `access` to the task.
  template <typename Request, typename Response, typename Forward, typename Fn>
  grpc::ServerUnaryReactor* PushCall(grpc::CallbackServerContext* context,
                                     const std::string& task_id, security::TaskAccess access,
                                     const Request* request, Response* response, Forward forward,
                                     Fn fn);
  // On the task's owner: TaskNotFound (as for a task that does not exist)
  // unless `caller` may access it (security::MayAccessTask); then the
  // governor's decision on `action` for the task's agent and skill. May block.
  absl::Status CheckAccess(const governance::Caller& caller, const std::string& task_id,
                           security::TaskAccess access, governance::Action action);
  // The governor's decision on `action` for a task's agent and skill (OK
  // when nothing governs).
  absl::Status Govern(const governance::Caller& caller, governance::Action action,
                      const v1::TaskInfo& info, const std::string& task_id);
  // Who calls, for the governor.
  static governance::Caller CallerOf(grpc::CallbackServerContext* context,
                                     security::Principal principal);
  // The governor when it has anything to do, else null.
  governance::Governor* governor() const {
    return options_.governor != nullptr && options_.governor->active() ? options_.governor
                                                                       : nullptr;
  }

  const A2aServiceOptions options_;
  tasks::TaskManager& tasks_;
  routing::Dispatcher& dispatcher_;
  Executor& blocking_;
  const ChannelDirectory peers_;
  push::PushNotifier* const push_;
  std::atomic<int64_t> open_streams_{0};
  const std::string epoch_;
};

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_A2A_SERVICE_H_
