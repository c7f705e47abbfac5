#ifndef A2AMESH_TESTS_TESTING_FAKE_CLOCK_H_
#define A2AMESH_TESTS_TESTING_FAKE_CLOCK_H_

#include <utility>
#include <vector>

#include "a2amesh/clock.h"
#include "a2amesh/executor.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh::testing {

// A clock that moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// Timers that fire only when the test says so. Thread-safe.
class FakeTimers final : public Timers {
 public:
  Id RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) override {
    absl::MutexLock lock(&mu_);
    Id id = next_id_++;
    timers_.push_back({id, delay, std::move(fn)});
    return id;
  }
  bool Cancel(Id id) override {
    absl::MutexLock lock(&mu_);
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->id == id) {
        timers_.erase(it);
        return true;
      }
    }
    return false;
  }
  // Runs every pending timer (in the order armed); returns how many ran.
  int FireAll() {
    std::vector<Timer> due;
    {
      absl::MutexLock lock(&mu_);
      due.swap(timers_);
    }
    for (Timer& t : due) {
      t.fn();
    }
    return static_cast<int>(due.size());
  }
  size_t pending() const {
    absl::MutexLock lock(&mu_);
    return timers_.size();
  }
  absl::Duration last_delay() const {
    absl::MutexLock lock(&mu_);
    return timers_.empty() ? absl::ZeroDuration() : timers_.back().delay;
  }

 private:
  struct Timer {
    Id id;
    absl::Duration delay;
    absl::AnyInvocable<void()> fn;
  };
  mutable absl::Mutex mu_;
  std::vector<Timer> timers_ ABSL_GUARDED_BY(mu_);
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_FAKE_CLOCK_H_
