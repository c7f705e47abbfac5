#ifndef A2AMESH_TESTS_TESTING_STATUS_MATCHERS_H_
#define A2AMESH_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

// IsOk() and StatusIs(code[, message matcher]) with the meanings of the upstream
// Abseil matchers, which the installed version lacks. They accept absl::Status
// and absl::StatusOr<T>.
namespace a2amesh::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) {
    *result_listener << "which is " << status;
  }
  return status.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "which is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "which is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

// An OK StatusOr whose value matches `value_matcher`.
MATCHER_P(IsOkAndHolds, value_matcher,
          "is OK and holds " + ::testing::PrintToString(value_matcher)) {
  if (!arg.ok()) {
    *result_listener << "which is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace a2amesh::testing

#define A2AMESH_ASSERT_OK(expr) ASSERT_THAT(expr, ::a2amesh::testing::IsOk())
#define A2AMESH_EXPECT_OK(expr) EXPECT_THAT(expr, ::a2amesh::testing::IsOk())

#endif  // A2AMESH_TESTS_TESTING_STATUS_MATCHERS_H_
