// A policy file (JSON, from the operator): parsed and checked; a policy that
// loads is asked for decisions and rate limits with subjects and resources
// taken from the input, and the glob matcher gets the input as pattern and
// text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "governance/policy.h"
#include "governance/rate_limiter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t half = size / 2;
  (void)a2amesh::governance::GlobMatches(input.substr(0, half), input.substr(half));

  absl::StatusOr<std::shared_ptr<const a2amesh::governance::Policy>> policy =
      a2amesh::governance::Policy::Parse(input, "fuzz.json");
  if (!policy.ok()) return 0;
  const a2amesh::security::Principal principal{
      std::string(input.substr(0, 16)), {"reader", std::string(input.substr(0, 8))}, "token"};
  google::protobuf::RepeatedPtrField<std::string> tags;
  tags.Add(std::string(input.substr(0, 4)));
  a2amesh::governance::Resource resource;
  resource.agent_id = input.substr(0, 12);
  resource.node_id = "n1";
  resource.skill = input.substr(0, 6);
  resource.tags = &tags;
  for (int i = 0; i < a2amesh::governance::kActionCount; ++i) {
    const auto action = static_cast<a2amesh::governance::Action>(i);
    (void)(*policy)->Decide({&principal, ""}, action, resource);
    (void)(*policy)->Decide({&principal, "planner"}, action, resource);
  }
  a2amesh::governance::RateLimiter limiter;
  for (int i = 0; i < 3; ++i) {
    (void)limiter.Take(**policy, {&principal, ""}, principal.subject, resource.skill);
    (void)limiter.Open(**policy, {&principal, ""}, principal.subject);
  }
  return 0;
}
