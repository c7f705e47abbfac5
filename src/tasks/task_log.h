#ifndef A2AMESH_TASKS_TASK_LOG_H_
#define A2AMESH_TASKS_TASK_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "tasks/task_subscriber.h"

namespace a2amesh::tasks {

// The ordered event log of one task as its subscribers see it: sequence
// numbers, the events that must be stored before anyone sees them, and the
// subscriptions.
//
// The log only decides: who gets which event, in which order, and when.
// Collect hands out Deliveries, which the task manager runs after releasing
// the task's lock. An event that must be durable first holds back everything
// logged after it (events and new subscriptions alike) until MarkStored, so
// every subscriber sees the same events in the same order, and nobody sees
// what a crash could still undo.
//
// Not thread-safe: guarded by its task's lock.
class TaskLog {
 public:
  // One event for some subscribers.
  struct Delivery {
    lf::a2a::v1::StreamResponse event;
    lf::a2a::v1::TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
    // The task after a final event (a first event carries the Task itself).
    std::shared_ptr<const lf::a2a::v1::Task> task;
    int64_t seq = 0;         // TaskEvent::seq
    bool may_reply = false;  // TaskEvent::may_reply
    absl::InlinedVector<std::shared_ptr<TaskSubscriber>, 2> to;

    // Calls each subscriber's OnEvent. Run it without locks held.
    void Deliver(const std::string& task_id) const;
  };
  using Deliveries = absl::InlinedVector<Delivery, 2>;

  // A log whose next event gets `next_seq` (1 for a new task; after the last
  // stored event for a recovered one).
  explicit TaskLog(int64_t next_seq = 1) : next_seq_(next_seq) {}

  int64_t next_seq() const { return next_seq_; }

  // Logs `event` as the next event and returns its sequence number. `task`
  // is the task with the event applied. A `durable_first` event is delivered
  // only after MarkStored(seq). Messages from the client (ROLE_USER) are
  // logged but never delivered: subscribers see them in the Task.
  int64_t Append(lf::a2a::v1::StreamResponse event, const lf::a2a::v1::Task& task,
                 bool durable_first);

  // Holds back everything logged after this point until MarkStored(0): for a
  // new task, whose creation must be stored before anyone hears of it.
  void HoldUntilCreated();

  // Event `seq` (0: the task's creation) is stored: it, and what waited
  // behind it, may be delivered.
  void MarkStored(int64_t seq);

  // Subscribes. The subscriber's first event is `task` (the task as it stands
  // now), delivered after everything logged before it. A subscription ends
  // with the next final event (a terminal or interrupted state), or with the
  // next terminal one if `until_terminal`. A final_only() subscriber gets
  // neither the first event nor the others, only the one that ends it; a
  // first_only() one gets the first event, which ends it.
  // `resume_after` (>= 0) is the last event a returning subscriber saw (its
  // TaskEvent::seq): if nothing was logged since, it gets no first event,
  // only what comes next; else the Task, which holds what it missed.
  // `may_reply` marks the first event (TaskEvent::may_reply).
  void Attach(std::shared_ptr<TaskSubscriber> subscriber, const lf::a2a::v1::Task& task,
              bool until_terminal, int64_t resume_after = -1, bool may_reply = false);
  // Subscribes from the next event on, with no first event (for a hosted
  // turn's handoff stream: the owner already has the task).
  void Follow(std::shared_ptr<TaskSubscriber> subscriber);
  // Ends a subscription; returns the subscriber (to release outside the lock),
  // or nullptr if it was not subscribed. A delivery already collected may
  // still reach it.
  std::shared_ptr<TaskSubscriber> Detach(const TaskSubscriber* subscriber);

  // Moves what may be delivered now, in order, to `out`.
  void Collect(Deliveries* out);

  // Whether an event waits for the store before it can be delivered.
  bool waiting_for_store() const;
  // Whether anyone is subscribed, or joining, for more than its first event.
  bool watched() const;
  // Whether nothing is left to deliver.
  bool quiet() const { return head_ == pending_.size(); }

  // Ends every subscription (the node stops); returns the subscribers.
  std::vector<std::shared_ptr<TaskSubscriber>> TakeSubscribers();

 private:
  struct Subscription {
    std::shared_ptr<TaskSubscriber> subscriber;
    bool until_terminal = false;
    bool final_only = false;
    bool first_only = false;
  };
  // An event, or a new subscription, in log order.
  struct Pending {
    enum class Kind {
      kEvent,
      kCreated,    // the task's creation (seq 0): nothing to deliver
      kSubscribe,  // `attach` joins; `event` is its first event
      kFollow,     // `attach` joins, with no first event
      kDropped,    // a subscription ended before it joined
    };
    Kind kind = Kind::kEvent;
    int64_t seq = 0;  // kEvent; kSubscribe: the last event logged before it
    bool ready = true;
    bool may_reply = false;  // kSubscribe
    lf::a2a::v1::StreamResponse event;
    lf::a2a::v1::TaskState state = lf::a2a::v1::TASK_STATE_UNSPECIFIED;
    std::shared_ptr<const lf::a2a::v1::Task> task;  // after a final event
    Subscription attach;
  };

  int64_t next_seq_;
  // What waits to be delivered: pending_[head_..]. A vector rather than a
  // deque: empty, it costs nothing (a deque allocates half a kilobyte up
  // front, for each task held).
  std::vector<Pending> pending_;
  size_t head_ = 0;
  std::vector<Subscription> subscribers_;
};

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_TASK_LOG_H_
