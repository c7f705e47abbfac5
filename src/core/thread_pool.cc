#include "core/thread_pool.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace a2amesh {

ThreadPool::ThreadPool(int threads) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) {
    t.join();
  }
}

void ThreadPool::Schedule(absl::AnyInvocable<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
}

void ThreadPool::Loop() {
  while (true) {
    absl::AnyInvocable<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) {
        return;  // stopping, and everything scheduled has run
      }
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

struct TimerThread::Entry {
  absl::Time deadline;
  Id id;
  absl::AnyInvocable<void()> fn;
};

TimerThread::TimerThread() : thread_([this] { Loop(); }) {}

TimerThread::~TimerThread() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  for (Entry* e : heap_) {
    delete e;
  }
}

// std::push_heap keeps the largest element first; ordering by "later" puts the
// earliest deadline (then the lowest id) at the front.
bool TimerThread::Later(const Entry* a, const Entry* b) {
  return a->deadline != b->deadline ? a->deadline > b->deadline : a->id > b->id;
}

Timers::Id TimerThread::RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) {
  absl::MutexLock lock(&mu_);
  Id id = next_id_++;
  heap_.push_back(new Entry{absl::Now() + delay, id, std::move(fn)});
  std::push_heap(heap_.begin(), heap_.end(), &TimerThread::Later);
  return id;
}

bool TimerThread::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  auto it = std::find_if(heap_.begin(), heap_.end(), [id](const Entry* e) { return e->id == id; });
  if (it == heap_.end()) {
    return false;
  }
  delete *it;
  heap_.erase(it);
  std::make_heap(heap_.begin(), heap_.end(), &TimerThread::Later);
  return true;
}

void TimerThread::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (heap_.empty()) {
      auto wake = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !heap_.empty(); };
      mu_.Await(absl::Condition(&wake));
      continue;
    }
    absl::Time deadline = heap_.front()->deadline;
    if (absl::Now() < deadline) {
      // Wakes early when a sooner timer is added or on stop; the loop re-checks.
      size_t size = heap_.size();
      Entry* first = heap_.front();
      auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || heap_.size() != size || heap_.empty() || heap_.front() != first;
      };
      mu_.AwaitWithDeadline(absl::Condition(&changed), deadline);
      continue;
    }
    std::pop_heap(heap_.begin(), heap_.end(), &TimerThread::Later);
    Entry* e = heap_.back();
    heap_.pop_back();
    mu_.Unlock();
    e->fn();
    delete e;
    mu_.Lock();
  }
}

}  // namespace a2amesh
