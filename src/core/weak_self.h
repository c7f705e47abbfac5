#ifndef A2AMESH_CORE_WEAK_SELF_H_
#define A2AMESH_CORE_WEAK_SELF_H_

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh {

// For callbacks that may run after their owner is gone (timers): Bind wraps a
// callback so that it runs only while the owner exists, and the owner's
// destructor calls Reset() first, which waits for a running callback and keeps
// later ones from running. Thread-safe.
template <typename T>
class WeakSelf {
 public:
  explicit WeakSelf(T* self) : state_(std::make_shared<State>(self)) {}
  ~WeakSelf() { Reset(); }
  WeakSelf(const WeakSelf&) = delete;
  WeakSelf& operator=(const WeakSelf&) = delete;

  // After this returns, no bound callback runs again.
  void Reset() {
    absl::MutexLock lock(&state_->mu);
    state_->self = nullptr;
  }

  // `fn(T&)`, run only if the owner still exists; bound callbacks run one at a
  // time.
  template <typename Fn>
  absl::AnyInvocable<void()> Bind(Fn fn) const {
    return [state = state_, fn = std::move(fn)]() mutable {
      absl::MutexLock lock(&state->mu);
      if (state->self != nullptr) {
        fn(*state->self);
      }
    };
  }

 private:
  struct State {
    explicit State(T* s) : self(s) {}
    absl::Mutex mu;
    T* self ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<State> state_;
};

}  // namespace a2amesh

#endif  // A2AMESH_CORE_WEAK_SELF_H_
