#ifndef A2AMESH_ROUTING_ADMISSION_H_
#define A2AMESH_ROUTING_ADMISSION_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "tasks/task_manager.h"

namespace a2amesh::routing {

// An agent a new task may go to.
struct RouteTarget {
  absl::string_view agent_id;  // bare, as its node knows it
  absl::string_view node_id;
  // The matching skill and its tags.
  absl::string_view skill;
  const google::protobuf::RepeatedPtrField<std::string>* tags = nullptr;
};

// What governs one request's new task (governance/governor.h): whether its
// caller may have it run by each candidate routing weighs, and, for the one
// routing picks, the rate limits and quotas it draws on. Lives for one
// Dispatcher::Send; called on that thread, with no lock held.
class Admission {
 public:
  virtual ~Admission() = default;
  // OK, or PERMISSION_DENIED naming the rule that refuses. Never blocks.
  virtual absl::Status Check(const RouteTarget& target) = 0;
  // The task goes to `target`, which Check allowed: OK (after setting what
  // the task must carry, such as its quota lease), or why not
  // (RESOURCE_EXHAUSTED for a rate limit or quota). Records the decision.
  virtual absl::Status Admit(const RouteTarget& target, tasks::NewTask& task) = 0;
  // The request was refused before a target was admitted: records why.
  virtual void Refused(const absl::Status& status) = 0;
};

}  // namespace a2amesh::routing

#endif  // A2AMESH_ROUTING_ADMISSION_H_
