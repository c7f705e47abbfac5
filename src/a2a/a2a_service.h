#ifndef A2AMESH_A2A_A2A_SERVICE_H_
#define A2AMESH_A2A_A2A_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "a2a/request_validation.h"
#include "a2amesh/executor.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "routing/router.h"
#include "tasks/task_manager.h"

namespace a2amesh::a2a {

struct A2aServiceOptions {
  // The skill for requests that name neither agent, skill nor tags.
  std::string default_skill;
  RequestLimits limits;
  // Streaming calls (SendStreamingMessage, SubscribeToTask) open at once.
  int64_t max_open_streams = 10000;
  // Events a stream may have queued for a slow client before it is cut off.
  size_t max_queued_events = 4096;
};

// lf.a2a.v1.A2AService over gRPC, on the callback API: reactions never block;
// calls that read the task store run on `blocking`. Every call checks the
// a2a-version metadata first. Errors carry google.rpc.ErrorInfo details
// (rpc/grpc_status.h). Thread-safe.
class A2aService final : public lf::a2a::v1::A2AService::CallbackService {
 public:
  A2aService(A2aServiceOptions options, tasks::TaskManager& tasks, routing::Router& router,
             Executor& blocking);

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

  // A draining node refuses new tasks with UNAVAILABLE (clients retry
  // elsewhere); follow-ups to its tasks, reads and cancels still work.
  void SetDraining() { draining_.store(true); }

 private:
  class StreamSink;
  class EventStream;
  class SendCall;

  // Routes a new task, or hands a follow-up to its task, for `subscriber`.
  // Continue may block: call it from `blocking_`.
  absl::Status Dispatch(const lf::a2a::v1::SendMessageRequest& request,
                        std::shared_ptr<tasks::TaskSubscriber> subscriber);
  absl::Status CheckVersion(grpc::CallbackServerContext* context) const;
  // Ends a subscription made for a stream whose client has already left.
  void DropIfFinished(StreamSink& sink);
  // Finishes `context`'s default reactor with `status` now.
  grpc::ServerUnaryReactor* Fail(grpc::CallbackServerContext* context, const absl::Status& status);
  // Runs `fn` on the blocking executor and finishes the call with its status.
  template <typename Fn>
  grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* context, Fn fn);
  grpc::ServerUnaryReactor* PushNotSupported(grpc::CallbackServerContext* context);

  const A2aServiceOptions options_;
  tasks::TaskManager& tasks_;
  routing::Router& router_;
  Executor& blocking_;
  std::atomic<int64_t> open_streams_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_A2A_SERVICE_H_
