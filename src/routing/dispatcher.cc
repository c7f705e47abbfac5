#include "routing/dispatcher.h"

#include <utility>

#include "core/status_macros.h"
#include "routing/selector.h"

namespace a2amesh::routing {

Dispatcher::Dispatcher(std::string default_skill, RequestLimits limits, Router& router,
                       tasks::TaskManager& tasks, trace::Tracer* tracer)
    : default_skill_(std::move(default_skill)),
      limits_(limits),
      router_(router),
      tasks_(tasks),
      tracer_(tracer) {}

absl::Status Dispatcher::Send(const lf::a2a::v1::SendMessageRequest& request,
                              const DispatchContext& context,
                              std::shared_ptr<tasks::TaskSubscriber> subscriber) {
  A2AMESH_RETURN_IF_ERROR(ValidateSendMessage(request, limits_));
  if (!request.message().task_id().empty()) {
    return tasks_.Continue(request, std::move(subscriber), context.trace);
  }
  // A draining node takes no new work from clients, but its running tasks may
  // still delegate: they must be able to finish.
  if (draining_.load() && context.parent_task_id.empty()) {
    return absl::UnavailableError("this node is draining and takes no new tasks; retry elsewhere");
  }
  A2AMESH_ASSIGN_OR_RETURN(Selector selector, SelectorFromRequest(request, default_skill_));
  trace::Span span = tracer_->StartSpan("route", trace::SpanKind::kInternal, &context.trace);
  std::string weighed;
  absl::StatusOr<Route> picked = router_.Pick(selector, context.hops, context.admission,
                                              span.recording() ? &weighed : nullptr);
  if (span.recording()) {
    if (!selector.skill.empty()) span.SetAttribute("a2amesh.skill", selector.skill);
    if (!selector.agent_id.empty()) span.SetAttribute("a2amesh.route.agent_id", selector.agent_id);
    span.SetAttribute("a2amesh.route.candidates", weighed);
    if (picked.ok()) {
      span.SetAttribute("a2amesh.agent", picked->agent_id);
      span.SetAttribute("a2amesh.node", picked->node_id);
    } else {
      span.SetError(picked.status().message());
    }
    span.End();
  }
  if (!picked.ok()) {
    if (context.admission != nullptr) context.admission->Refused(picked.status());
    return picked.status();
  }
  Route& route = *picked;
  tasks::NewTask task;
  task.request = request;
  task.runner = std::move(route.runner);
  task.skill = std::move(route.skill);
  task.parent_task_id = context.parent_task_id;
  task.hops = context.hops;
  task.principal = context.principal;
  task.principal_roles = context.principal_roles;
  task.principal_method = context.principal_method;
  task.deadline = context.deadline;
  task.await_create = context.await_create;
  task.trace = context.trace;
  // A reply reaches a client that waits for the task's answer (a blocking
  // call, a stream) as a Message; one that was given the task (return
  // immediately, a delegating agent) sees it complete.
  task.may_reply = route.direct_replies && context.parent_task_id.empty() &&
                   !request.configuration().return_immediately();
  if (context.admission != nullptr) {
    // The route's slot is released with `task` if it is refused.
    A2AMESH_RETURN_IF_ERROR(context.admission->Admit(
        RouteTarget{route.bare_agent_id, route.node_id, task.skill, &route.tags}, task));
  }
  return tasks_.Create(std::move(task), std::move(subscriber));
}

}  // namespace a2amesh::routing
