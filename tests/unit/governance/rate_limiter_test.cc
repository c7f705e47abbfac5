#include "governance/rate_limiter.h"

#include "core/a2a_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh::governance {
namespace {

using ::testing::HasSubstr;

class RateLimiterTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Policy> Parse(const std::string& json) {
    absl::StatusOr<std::shared_ptr<const Policy>> policy = Policy::Parse(json, "");
    EXPECT_TRUE(policy.ok()) << policy.status();
    return *policy;
  }
  absl::Status Take(const Policy& policy, const security::Principal& who, absl::string_view skill) {
    return limiter_.Take(policy, Subject{&who, ""}, who.subject, skill);
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  RateLimiter limiter_{[this] { return now_; }};
  security::Principal alice_{"alice", {"team-a"}, "token"};
  security::Principal bob_{"bob", {}, "token"};
};

TEST_F(RateLimiterTest, ABucketRefusesPastItsBurstAndSaysWhenToComeBack) {
  auto policy = Parse(R"({"rateLimits": [
    {"name": "per-caller", "subjects": ["*"], "per": "principal", "rate": 2, "burst": 3}]})");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Take(*policy, alice_, "echo").ok()) << i;
  absl::Status refused = Take(*policy, alice_, "echo");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("rate limit 'per-caller'"));
  EXPECT_THAT(refused.message(), HasSubstr("alice"));
  ASSERT_TRUE(GetRetryAfter(refused).has_value());
  EXPECT_EQ(*GetRetryAfter(refused), absl::Milliseconds(500));
  // Another principal has its own bucket.
  EXPECT_TRUE(Take(*policy, bob_, "echo").ok());
  // Half a second later one token is back.
  now_ += absl::Milliseconds(500);
  EXPECT_TRUE(Take(*policy, alice_, "echo").ok());
  EXPECT_FALSE(Take(*policy, alice_, "echo").ok());
}

TEST_F(RateLimiterTest, PerSkillBucketsAreSharedAndOnlyForTheirSkills) {
  auto policy = Parse(R"({"rateLimits": [
    {"name": "payments", "skills": ["pay*"], "per": "skill", "rate": 1, "burst": 1}]})");
  EXPECT_TRUE(Take(*policy, alice_, "payments").ok());
  EXPECT_FALSE(Take(*policy, bob_, "payments").ok());  // shared by every principal
  EXPECT_TRUE(Take(*policy, bob_, "echo").ok());       // not limited
  EXPECT_TRUE(Take(*policy, bob_, "echo").ok());
}

TEST_F(RateLimiterTest, EveryApplyingBucketMustHaveATokenAndNoneIsTakenOtherwise) {
  auto policy = Parse(R"({"rateLimits": [
    {"name": "wide", "per": "principal", "rate": 1, "burst": 5},
    {"name": "narrow", "subjects": ["role:team-a"], "per": "principal-skill", "rate": 1,
     "burst": 1}]})");
  EXPECT_TRUE(Take(*policy, alice_, "echo").ok());
  absl::Status refused = Take(*policy, alice_, "echo");
  EXPECT_THAT(refused.message(), HasSubstr("'narrow'"));
  // The wide bucket's token was not taken by the refused request: 4 more fit.
  EXPECT_TRUE(Take(*policy, alice_, "other").ok());
  EXPECT_TRUE(Take(*policy, alice_, "third").ok());
  EXPECT_TRUE(Take(*policy, alice_, "fourth").ok());
  EXPECT_TRUE(Take(*policy, alice_, "fifth").ok());
  EXPECT_THAT(Take(*policy, alice_, "sixth").message(), HasSubstr("'wide'"));
}

TEST_F(RateLimiterTest, AQuotaCountsOpenTasksUntilTheyAreReleased) {
  auto policy = Parse(R"({"quotas": [{"name": "two", "subjects": ["*"], "maxOpenTasks": 2}]})");
  const Subject alice{&alice_, ""};
  EXPECT_EQ(limiter_.Open(*policy, alice, "alice").value(), true);
  EXPECT_EQ(limiter_.Open(*policy, alice, "alice").value(), true);
  absl::StatusOr<bool> third = limiter_.Open(*policy, alice, "alice");
  ASSERT_FALSE(third.ok());
  EXPECT_THAT(third.status().message(), HasSubstr("quota 'two': alice has 2 open task(s)"));
  limiter_.Release("alice");
  EXPECT_EQ(limiter_.open("alice"), 1);
  EXPECT_TRUE(limiter_.Open(*policy, alice, "alice").ok());
  // Without quotas nothing is counted.
  auto none = Parse("{}");
  EXPECT_EQ(limiter_.Open(*none, alice, "alice").value(), false);
}

}  // namespace
}  // namespace a2amesh::governance
