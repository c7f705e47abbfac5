#include "tasks/task_log.h"

#include <algorithm>
#include <utility>

#include "a2amesh/task_store.h"
#include "tasks/task_state.h"

namespace a2amesh::tasks {

using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;

void TaskLog::Delivery::Deliver(const std::string& task_id) const {
  const Task* whole = task != nullptr ? task.get() : event.has_task() ? &event.task() : nullptr;
  TaskEvent view{event, task_id, state, whole, seq, may_reply};
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
  pending.event = std::move(event);
  return pending.seq;
}

void TaskLog::HoldUntilCreated() {
  Pending& pending = pending_.emplace_back();
  pending.kind = Pending::Kind::kCreated;
  pending.ready = false;
}

void TaskLog::MarkStored(int64_t seq) {
  const Pending::Kind kind = seq == 0 ? Pending::Kind::kCreated : Pending::Kind::kEvent;
  for (size_t i = head_; i < pending_.size(); ++i) {
    Pending& pending = pending_[i];
    if (pending.kind == kind && pending.seq == seq) {
      pending.ready = true;
      return;
    }
  }
}

void TaskLog::Attach(std::shared_ptr<TaskSubscriber> subscriber, const Task& task,
                     bool until_terminal, int64_t resume_after, bool may_reply) {
  Pending& pending = pending_.emplace_back();
  const bool final_only = subscriber->final_only();
  const bool first_only = subscriber->first_only();
  pending.attach = Subscription{std::move(subscriber), until_terminal, final_only, first_only};
  if (final_only || (resume_after == next_seq_ - 1 && !first_only)) {
    pending.kind = Pending::Kind::kFollow;  // no first event
    return;
  }
  pending.kind = Pending::Kind::kSubscribe;
  pending.seq = next_seq_ - 1;
  pending.may_reply = may_reply;
  pending.state = task.status().state();
  *pending.event.mutable_task() = task;
}

void TaskLog::Follow(std::shared_ptr<TaskSubscriber> subscriber) {
  Pending& pending = pending_.emplace_back();
  pending.kind = Pending::Kind::kFollow;
  const bool final_only = subscriber->final_only();
  pending.attach = Subscription{std::move(subscriber), false, final_only};
}

std::shared_ptr<TaskSubscriber> TaskLog::Detach(const TaskSubscriber* subscriber) {
  std::shared_ptr<TaskSubscriber> found;
  auto it = std::find_if(subscribers_.begin(), subscribers_.end(),
                         [&](const Subscription& s) { return s.subscriber.get() == subscriber; });
  if (it != subscribers_.end()) {
    found = std::move(it->subscriber);
    subscribers_.erase(it);
  }
  // One that has not joined yet.
  for (size_t i = head_; i < pending_.size(); ++i) {
    Pending& pending = pending_[i];
    if (pending.attach.subscriber != nullptr && pending.attach.subscriber.get() == subscriber) {
      found = std::move(pending.attach.subscriber);
      pending.kind = Pending::Kind::kDropped;
    }
  }
  return found;
}

void TaskLog::Collect(Deliveries* out) {
  while (head_ < pending_.size() && pending_[head_].ready) {
    Pending pending = std::move(pending_[head_++]);
    if (head_ == pending_.size()) {
      pending_.clear();
      head_ = 0;
    }
    switch (pending.kind) {
      case Pending::Kind::kCreated:
      case Pending::Kind::kDropped:
        continue;
      case Pending::Kind::kFollow:
        subscribers_.push_back(std::move(pending.attach));
        continue;
      case Pending::Kind::kSubscribe: {
        Delivery& first = out->emplace_back();
        first.event = std::move(pending.event);
        first.state = pending.state;
        first.seq = pending.seq;
        first.may_reply = pending.may_reply;
        first.to.push_back(pending.attach.subscriber);
        if (!pending.attach.first_only) {
          subscribers_.push_back(std::move(pending.attach));
        }
        continue;
      }
      case Pending::Kind::kEvent:
        break;
    }
    const StreamResponse& event = pending.event;
    if (event.has_message() && event.message().role() == lf::a2a::v1::ROLE_USER) {
      continue;
    }
    const bool final = IsFinalEvent(event);
    const bool terminal = IsTerminalState(pending.state);
    Delivery delivery;
    for (const Subscription& s : subscribers_) {
      // A final_only subscriber hears only the event that ends it.
      if (!s.final_only || (final && (!s.until_terminal || terminal))) {
        delivery.to.push_back(s.subscriber);
      }
    }
    if (!delivery.to.empty()) {
      delivery.state = pending.state;
      delivery.seq = pending.seq;
      delivery.task = std::move(pending.task);
      delivery.event = std::move(pending.event);
      out->push_back(std::move(delivery));
    }
    if (final) {
      // Streams and waiters end on a final event; watchers on a terminal one.
      subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                        [terminal](const Subscription& s) {
                                          return !s.until_terminal || terminal;
                                        }),
                         subscribers_.end());
    }
  }
}

bool TaskLog::waiting_for_store() const {
  return std::any_of(pending_.begin() + static_cast<std::ptrdiff_t>(head_), pending_.end(),
                     [](const Pending& pending) { return !pending.ready; });
}

bool TaskLog::watched() const {
  return !subscribers_.empty() ||
         std::any_of(pending_.begin() + static_cast<std::ptrdiff_t>(head_), pending_.end(),
                     [](const Pending& pending) {
                       return pending.attach.subscriber != nullptr && !pending.attach.first_only;
                     });
}

std::vector<std::shared_ptr<TaskSubscriber>> TaskLog::TakeSubscribers() {
  std::vector<std::shared_ptr<TaskSubscriber>> all;
  for (Subscription& s : subscribers_) {
    all.push_back(std::move(s.subscriber));
  }
  subscribers_.clear();
  for (size_t i = head_; i < pending_.size(); ++i) {
    Pending& pending = pending_[i];
    if (pending.attach.subscriber != nullptr) {
      all.push_back(std::move(pending.attach.subscriber));
      pending.kind = Pending::Kind::kDropped;
    }
  }
  return all;
}

}  // namespace a2amesh::tasks
