#ifndef A2AMESH_ROUTING_DISPATCHER_H_
#define A2AMESH_ROUTING_DISPATCHER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "routing/admission.h"
#include "routing/request_validation.h"
#include "routing/router.h"
#include "tasks/task_manager.h"

namespace a2amesh::routing {

// Where a request sits in a delegation chain.
struct DispatchContext {
  // The agents ("agent@node") handling the task's ancestors, outermost first.
  std::vector<std::string> hops;
  std::string parent_task_id;
  absl::Time deadline = absl::InfiniteFuture();
  // See NewTask::await_create.
  bool await_create = true;
  // See NewTask::principal.
  std::string principal;
  std::vector<std::string> principal_roles;
  std::string principal_method;
  // Governs a new task (policy, rate limits, quotas); null: nothing does.
  // Must outlive the Send.
  Admission* admission = nullptr;
  // The trace context of the call (its server span's, or the delegating
  // agent's): the route decision and the task's turns are its children.
  trace::SpanContext trace;
};

// The one path from an A2A SendMessage (from a client, or from an agent
// delegating a subtask) to a task: validates the request, hands a follow-up to
// its task, routes a new one and creates it. Thread-safe.
class Dispatcher {
 public:
  Dispatcher(std::string default_skill, RequestLimits limits, Router& router,
             tasks::TaskManager& tasks, trace::Tracer* tracer = trace::Tracer::Disabled());

  // `subscriber` gets the task's events (the Task first). A follow-up (the
  // message names a task) may read the store: call it from an Executor.
  absl::Status Send(const lf::a2a::v1::SendMessageRequest& request, const DispatchContext& context,
                    std::shared_ptr<tasks::TaskSubscriber> subscriber);

  // New tasks from clients are refused with UNAVAILABLE from now on (the node
  // drains); subtasks its running tasks delegate are still taken.
  void SetDraining(bool draining = true) { draining_.store(draining); }

 private:
  const std::string default_skill_;
  const RequestLimits limits_;
  Router& router_;
  tasks::TaskManager& tasks_;
  trace::Tracer* const tracer_;
  std::atomic<bool> draining_{false};
};

}  // namespace a2amesh::routing

#endif  // A2AMESH_ROUTING_DISPATCHER_H_
