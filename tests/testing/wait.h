#ifndef A2AMESH_TESTS_TESTING_WAIT_H_
#define A2AMESH_TESTS_TESTING_WAIT_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace a2amesh::testing {

// Polls `condition` until it holds or `timeout` passes; returns its last value.
// Tests wait on conditions, never on fixed sleeps.
inline bool WaitFor(const std::function<bool()>& condition,
                    absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) {
      return condition();
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_WAIT_H_
