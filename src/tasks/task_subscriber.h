#ifndef A2AMESH_TASKS_TASK_SUBSCRIBER_H_
#define A2AMESH_TASKS_TASK_SUBSCRIBER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::tasks {

// One event of a task, as a subscriber receives it.
struct TaskEvent {
  const lf::a2a::v1::StreamResponse& event;
  const std::string& task_id;
  // The task's state with this event applied.
  lf::a2a::v1::TaskState state;
  // The whole task with this event applied, where a subscriber may need it:
  // for the first event of a subscription (the Task itself) and for final
  // events (a terminal or interrupted state). nullptr for the others.
  const lf::a2a::v1::Task* task;
  // The event's place in the task's log: its sequence number, and for the
  // first event of a subscription (the Task) the number of the last event it
  // holds. Increases along a subscription, survives restarts; what SSE
  // streams send as `id:` and a re-subscription resumes after.
  int64_t seq = 0;
  // On the first event (the Task) of the subscription that created a task
  // whose agent may answer with a direct reply (tasks/task_state.h): the
  // client has not been given the task yet, and a subscriber that answers
  // with a Message when the reply comes (a stream) should hold the Task
  // until the next event says which it is.
  bool may_reply = false;
};

// Receives a task's events in order. The first event of every subscription is
// the Task as it stands; then status updates, artifact updates and agent
// messages.
//
// Events come one at a time, in sequence order, without any lock of the task
// manager held, on whichever thread applied or stored them. OnEvent must not
// block; it may call back into the TaskManager (what that changes is
// delivered after it returns).
class TaskSubscriber {
 public:
  virtual ~TaskSubscriber() = default;
  virtual void OnEvent(const TaskEvent& event) = 0;
  // Whether the subscriber wants only the event that ends its subscription (a
  // blocking SendMessage's caller waits for the final state): it then gets no
  // first event and no others, which spares copying the Task for it. Must not
  // change.
  virtual bool final_only() const { return false; }
  // Whether the subscriber wants only its first event, the Task as it stands
  // (a SendMessage with return_immediately answers with it): the
  // subscription ends with it, so that the task's later events, its end
  // included, need not be delivered to anyone. Must not change.
  virtual bool first_only() const { return false; }
  // The subscription ends without a final event: the task could not be stored,
  // or the node is shutting down.
  virtual void OnError(const absl::Status& status) = 0;
};

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_TASK_SUBSCRIBER_H_
