#ifndef A2AMESH_CLOCK_H_
#define A2AMESH_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace a2amesh {

// The source of wall-clock time. Injected wherever time matters so that tests can
// use a fake. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system clock. Thread-safe.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace a2amesh

#endif  // A2AMESH_CLOCK_H_
