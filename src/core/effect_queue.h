#ifndef A2AMESH_CORE_EFFECT_QUEUE_H_
#define A2AMESH_CORE_EFFECT_QUEUE_H_

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh {

// Effects of state changes made under a lock (writes to subscribers, calls to
// agents, store writes, callbacks), run after the lock is released, in the
// order they were decided, one at a time.
//
// There is no thread of its own: the thread that made a change runs the
// effects itself once it has released the lock ("borrowed thread", as in
// gRPC's WorkSerializer), unless another thread is already running effects of
// the same queue, in which case that thread runs these too and the caller
// returns at once. So in the common case no effect crosses threads, and an
// effect may call back into the owner (take its lock again): what it changes
// queues behind it.
//
// Usage, with `mu` the lock that guards the owner's state and this queue:
//
//   bool run;
//   {
//     absl::MutexLock lock(&mu);
//     ...change state, effects.Add(...)...
//     run = effects.Claim();
//   }
//   if (run) effects.Run(mu);
//
// Not thread-safe on its own: Add and Claim need `mu` held, Run needs it not
// held.
class EffectQueue {
 public:
  using Effect = absl::AnyInvocable<void() &&>;

  void Add(Effect effect) { queue_.push_back(std::move(effect)); }

  // Under the lock, after adding effects: true if the caller must now Run
  // (nobody else is running this queue's effects and there are some).
  bool Claim() {
    if (running_ || queue_.empty()) {
      return false;
    }
    running_ = true;
    return true;
  }

  // With `mu` released, after Claim returned true: runs the queued effects, and
  // those queued meanwhile, until none are left.
  void Run(absl::Mutex& mu) ABSL_LOCKS_EXCLUDED(mu) {
    Batch batch;
    while (true) {
      {
        absl::MutexLock lock(&mu);
        if (queue_.empty()) {
          running_ = false;
          return;
        }
        batch.swap(queue_);
      }
      for (Effect& effect : batch) {
        std::move(effect)();
      }
      batch.clear();
    }
  }

 private:
  using Batch = absl::InlinedVector<Effect, 4>;
  Batch queue_;
  bool running_ = false;
};

// Holds `mu` for a scope; at the end of the scope releases it, then runs the
// effects queued under it (if no other thread is running them), as gRPC's
// ExecCtx runs the closures scheduled during its scope. So state changes are
// written inside the scope and their effects happen after it, outside the
// lock, with no extra call at each return. Never let one go out of scope while
// holding another lock: the effects would run under it.
class ABSL_SCOPED_LOCKABLE EffectLock {
 public:
  EffectLock(absl::Mutex* mu, EffectQueue* effects) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu), effects_(effects) {
    mu_->Lock();
  }
  ~EffectLock() ABSL_UNLOCK_FUNCTION() {
    const bool run = effects_->Claim();
    mu_->Unlock();
    if (run) {
      effects_->Run(*mu_);
    }
  }
  EffectLock(const EffectLock&) = delete;
  EffectLock& operator=(const EffectLock&) = delete;

 private:
  absl::Mutex* const mu_;
  EffectQueue* const effects_;
};

}  // namespace a2amesh

#endif  // A2AMESH_CORE_EFFECT_QUEUE_H_
