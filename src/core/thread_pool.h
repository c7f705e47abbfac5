#ifndef A2AMESH_CORE_THREAD_POOL_H_
#define A2AMESH_CORE_THREAD_POOL_H_

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "a2amesh/executor.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh {

// A fixed set of threads running closures in FIFO order. The destructor runs every
// closure already scheduled, then joins. Thread-safe.
class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(absl::AnyInvocable<void()> fn) override;

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// Timers on one thread of their own. Callbacks run on that thread, one at a time.
// The destructor drops timers that have not fired. Thread-safe.
class TimerThread final : public Timers {
 public:
  TimerThread();
  ~TimerThread() override;
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  Id RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) override;
  bool Cancel(Id id) override;

 private:
  struct Entry;
  static bool Later(const Entry* a, const Entry* b);
  void Loop();

  absl::Mutex mu_;
  // Ordered by (deadline, id).
  std::vector<Entry*> heap_ ABSL_GUARDED_BY(mu_);
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace a2amesh

#endif  // A2AMESH_CORE_THREAD_POOL_H_
