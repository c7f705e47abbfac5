#ifndef A2AMESH_EXECUTOR_H_
#define A2AMESH_EXECUTOR_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace a2amesh {

// Runs closures somewhere other than the caller's stack. Work that may block
// (disk reads, fsync) goes through an Executor so that gRPC reactors never block.
// Implementations are thread-safe.
class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `fn` later, on one of the executor's threads. Never runs it inline.
  virtual void Schedule(absl::AnyInvocable<void()> fn) = 0;
};

// Runs closures after a delay. Timer callbacks must be short and must not block;
// they run on the timer's own thread. Implementations are thread-safe.
class Timers {
 public:
  using Id = uint64_t;
  virtual ~Timers() = default;
  // Runs `fn` once, `delay` from now. Returns an id for Cancel.
  virtual Id RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) = 0;
  // Cancels a timer. Returns true if it had not started running; false if it ran,
  // is running or never existed.
  virtual bool Cancel(Id id) = 0;
};

}  // namespace a2amesh

#endif  // A2AMESH_EXECUTOR_H_
