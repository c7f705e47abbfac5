#include "tasks/task_log.h"

#include <algorithm>
#include <utility>

#include "a2amesh/task_store.h"
#include "tasks/task_state.h"

namespace a2amesh::tasks {

using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;

void TaskLog::Delivery::Deliver(const std::string& task_id) const {
  const Task* whole = task != nullptr ? task.get() : event->has_task() ? &event->task() : nullptr;
  TaskEvent view{*event, task_id, state, whole};
  for (const std::shared_ptr<TaskSubscriber>& subscriber : to) {
    subscriber->OnEvent(view);
  }
}

int64_t TaskLog::Append(StreamResponse event, const Task& task, bool durable_first) {
  Pending& pending = pending_.emplace_back();
  pending.seq = next_seq_++;
  pending.ready = !durable_first;
  pending.state = task.status().state();
  if (IsFinalEvent(event)) {
    pending.task = std::make_shared<const Task>(task);
  }
  pending.event = std::make_shared<const StreamResponse>(std::move(event));
  return pending.seq;
}

void TaskLog::MarkStored(int64_t seq) {
  for (Pending& pending : pending_) {
    if (pending.kind == Pending::Kind::kEvent && pending.seq == seq) {
      pending.ready = true;
      return;
    }
  }
}

void TaskLog::Attach(std::shared_ptr<TaskSubscriber> subscriber, const Task& task,
                     bool until_terminal) {
  Pending& pending = pending_.emplace_back();
  auto first = std::make_shared<StreamResponse>();
  *first->mutable_task() = task;
  pending.kind = Pending::Kind::kSubscribe;
  pending.state = task.status().state();
  pending.event = std::move(first);
  pending.attach = Subscription{std::move(subscriber), until_terminal};
}

void TaskLog::Follow(std::shared_ptr<TaskSubscriber> subscriber) {
  Pending& pending = pending_.emplace_back();
  pending.kind = Pending::Kind::kFollow;
  pending.attach = Subscription{std::move(subscriber), false};
}

std::shared_ptr<TaskSubscriber> TaskLog::Detach(const TaskSubscriber* subscriber) {
  std::shared_ptr<TaskSubscriber> found;
  auto it = std::find_if(subscribers_.begin(), subscribers_.end(), [&](const Subscription& s) {
    return s.subscriber.get() == subscriber;
  });
  if (it != subscribers_.end()) {
    found = std::move(it->subscriber);
    subscribers_.erase(it);
  }
  // One that has not joined yet.
  for (Pending& pending : pending_) {
    if (pending.attach.subscriber != nullptr && pending.attach.subscriber.get() == subscriber) {
      found = std::move(pending.attach.subscriber);
      pending.kind = Pending::Kind::kDropped;
      pending.event = nullptr;
    }
  }
  return found;
}

void TaskLog::Collect(Deliveries* out) {
  while (!pending_.empty() && pending_.front().ready) {
    Pending pending = std::move(pending_.front());
    pending_.pop_front();
    switch (pending.kind) {
      case Pending::Kind::kDropped:
        continue;
      case Pending::Kind::kFollow:
        subscribers_.push_back(std::move(pending.attach));
        continue;
      case Pending::Kind::kSubscribe: {
        Delivery& first = out->emplace_back();
        first.event = std::move(pending.event);
        first.state = pending.state;
        first.to.push_back(pending.attach.subscriber);
        subscribers_.push_back(std::move(pending.attach));
        continue;
      }
      case Pending::Kind::kEvent:
        break;
    }
    const StreamResponse& event = *pending.event;
    if (event.has_message() && event.message().role() == lf::a2a::v1::ROLE_USER) {
      continue;
    }
    const bool final = IsFinalEvent(event);
    if (!subscribers_.empty()) {
      Delivery& delivery = out->emplace_back();
      delivery.state = pending.state;
      delivery.task = std::move(pending.task);
      delivery.event = std::move(pending.event);
      for (const Subscription& s : subscribers_) {
        delivery.to.push_back(s.subscriber);
      }
    }
    if (final) {
      // Streams and waiters end on a final event; watchers on a terminal one.
      const bool terminal = IsTerminalState(pending.state);
      subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                        [terminal](const Subscription& s) {
                                          return !s.until_terminal || terminal;
                                        }),
                         subscribers_.end());
    }
  }
}

bool TaskLog::waiting_for_store() const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [](const Pending& pending) { return !pending.ready; });
}

std::vector<std::shared_ptr<TaskSubscriber>> TaskLog::TakeSubscribers() {
  std::vector<std::shared_ptr<TaskSubscriber>> all;
  for (Subscription& s : subscribers_) {
    all.push_back(std::move(s.subscriber));
  }
  subscribers_.clear();
  for (Pending& pending : pending_) {
    if (pending.attach.subscriber != nullptr) {
      all.push_back(std::move(pending.attach.subscriber));
      pending.kind = Pending::Kind::kDropped;
      pending.event = nullptr;
    }
  }
  return all;
}

}  // namespace a2amesh::tasks
