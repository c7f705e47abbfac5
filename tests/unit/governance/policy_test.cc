#include "governance/policy.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace a2amesh::governance {
namespace {

using ::testing::HasSubstr;

security::Principal Alice() { return {"alice", {"reader", "team-a"}, "token"}; }
security::Principal Bob() { return {"bob", {}, "token"}; }

std::shared_ptr<const Policy> MustParse(const std::string& json) {
  absl::StatusOr<std::shared_ptr<const Policy>> policy = Policy::Parse(json, "test.json");
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : nullptr;
}

Resource Skill(absl::string_view skill, absl::string_view agent = "echo") {
  Resource resource;
  resource.agent_id = agent;
  resource.node_id = "n1";
  resource.skill = skill;
  return resource;
}

TEST(GlobTest, MatchesLikeAShell) {
  EXPECT_TRUE(GlobMatches("*", ""));
  EXPECT_TRUE(GlobMatches("echo*", "echo-2"));
  EXPECT_TRUE(GlobMatches("spiffe://prod/*/sa/*", "spiffe://prod/ns/a/sa/b"));
  EXPECT_TRUE(GlobMatches("a?c", "abc"));
  EXPECT_FALSE(GlobMatches("a?c", "ac"));
  EXPECT_FALSE(GlobMatches("echo", "echo2"));
  EXPECT_FALSE(GlobMatches("*x", "abc"));
  EXPECT_TRUE(GlobMatches("*b*c", "abxbc"));
}

TEST(PolicyTest, NothingIsAllowedThatNoRuleAllows) {
  auto policy = MustParse(R"({"rules": [
    {"name": "readers", "effect": "allow", "subjects": ["role:reader"], "actions": ["get", "list"]}
  ]})");
  const security::Principal alice = Alice(), bob = Bob();
  Decision read = policy->Decide({&alice, ""}, Action::kGet, Skill("echo"));
  EXPECT_TRUE(read.allowed);
  EXPECT_EQ(read.rule, "readers");
  Decision send = policy->Decide({&alice, ""}, Action::kSend, Skill("echo"));
  EXPECT_FALSE(send.allowed);
  EXPECT_EQ(send.rule, "default-deny");
  EXPECT_FALSE(policy->Decide({&bob, ""}, Action::kGet, Skill("echo")).allowed);
}

TEST(PolicyTest, AnExplicitDenyWinsOverAnyAllow) {
  auto policy = MustParse(R"({"rules": [
    {"name": "everyone", "effect": "allow", "subjects": ["*"], "actions": ["*"]},
    {"name": "no-payments-for-bob", "effect": "deny", "subjects": ["principal:bob"],
     "actions": ["send", "stream"], "resources": ["skill:pay*"]}
  ]})");
  const security::Principal bob = Bob(), alice = Alice();
  Decision denied = policy->Decide({&bob, ""}, Action::kSend, Skill("payments"));
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.rule, "no-payments-for-bob");
  EXPECT_TRUE(policy->Decide({&bob, ""}, Action::kSend, Skill("echo")).allowed);
  EXPECT_TRUE(policy->Decide({&alice, ""}, Action::kSend, Skill("payments")).allowed);
}

TEST(PolicyTest, SubjectsByRoleGroupAndAgent) {
  auto policy = MustParse(R"({
    "groups": {"team-b": {"members": ["bob", "carol*"]}},
    "rules": [
      {"name": "team-b", "effect": "allow", "subjects": ["group:team-b"], "actions": ["send"],
       "resources": ["tag:team-b"]},
      {"name": "planner", "effect": "allow", "subjects": ["agent:planner"], "actions": ["send"],
       "resources": ["agent:search", "node:n2"]}
    ]})");
  const security::Principal bob = Bob();
  const security::Principal carol{"carol-2", {}, "jwt"};
  google::protobuf::RepeatedPtrField<std::string> tags;
  tags.Add("team-b");
  Resource tagged = Skill("x");
  tagged.tags = &tags;
  EXPECT_TRUE(policy->Decide({&bob, ""}, Action::kSend, tagged).allowed);
  EXPECT_TRUE(policy->Decide({&carol, ""}, Action::kSend, tagged).allowed);
  EXPECT_FALSE(policy->Decide({&bob, ""}, Action::kSend, Skill("x")).allowed);
  EXPECT_TRUE(policy->Decide({nullptr, "planner"}, Action::kSend, Skill("s", "search")).allowed);
  EXPECT_FALSE(policy->Decide({nullptr, "planner"}, Action::kSend, Skill("s", "other")).allowed);
  // An agent subject never matches a principal, nor a principal an agent.
  EXPECT_FALSE(policy->Decide({&bob, ""}, Action::kSend, Skill("s", "search")).allowed);
}

TEST(PolicyTest, AnApprovalRuleSaysWhoApprovesAndHowLong) {
  auto policy = MustParse(R"({"rules": [
    {"name": "all", "effect": "allow", "subjects": ["*"], "actions": ["send"]},
    {"name": "payments", "effect": "allow", "subjects": ["*"], "actions": ["send"],
     "resources": ["skill:payments"],
     "approval": {"approvers": ["role:approver"], "timeout": "30m"}}
  ]})");
  const security::Principal bob = Bob();
  Decision decision = policy->Decide({&bob, ""}, Action::kSend, Skill("payments"));
  ASSERT_TRUE(decision.allowed);
  ASSERT_TRUE(decision.approval.has_value());
  EXPECT_EQ(decision.rule, "payments");
  EXPECT_EQ(decision.approval->timeout, absl::Minutes(30));
  EXPECT_FALSE(policy->Decide({&bob, ""}, Action::kSend, Skill("echo")).approval.has_value());
}

TEST(PolicyTest, ABadPolicyIsRefusedNamingWhatIsWrong) {
  struct Case {
    std::string json;
    const char* says;
  };
  for (const Case& c : {
           Case{R"({"rulez": []})", "rulez"},
           Case{R"({"rules": [{"name": "r", "effect": "permit", "subjects": ["*"],
                "actions": ["get"]}]})",
                "rule 'r', effect: 'permit' is neither"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": ["user:x"],
                "actions": ["get"]}]})",
                "'user:x' is not a subject"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": ["*"],
                "actions": ["fetch"]}]})",
                "'fetch' is not an action"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": ["*"],
                "actions": ["get"], "resources": ["team:x"]}]})",
                "'team:x' is not a resource"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": ["group:nope"],
                "actions": ["get"]}]})",
                "no group 'nope'"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": ["*"],
                "actions": ["get"]}, {"name": "r", "effect": "deny", "subjects": ["*"],
                "actions": ["get"]}]})",
                "same name"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": [],
                "actions": ["get"]}]})",
                "subjects: is empty"},
           Case{R"({"rules": [{"name": "r", "effect": "allow", "subjects": ["*"],
                "actions": ["send"], "approval": {"approvers": ["*"], "timeout": "soon"}}]})",
                "'soon' is not a positive duration"},
           Case{R"({"rateLimits": [{"name": "l", "rate": 0}]})", "rate limit 'l', rate"},
           Case{R"({"rateLimits": [{"name": "l", "rate": 1, "per": "team"}]})", "'team'"},
           Case{R"({"rateLimits": [{"name": "l", "rate": 1}, {"name": "l", "rate": 2}]})",
                "rate limit 'l': another rate limit has the same name"},
           Case{R"({"quotas": [{"name": "q"}]})", "quota 'q', maxOpenTasks"},
           Case{"{not json", "test.json"},
           Case{std::string(20000, '[') + std::string(20000, ']'),
                "nests arrays and objects deeper than 16"},
       }) {
    absl::StatusOr<std::shared_ptr<const Policy>> policy = Policy::Parse(c.json, "test.json");
    ASSERT_FALSE(policy.ok()) << c.json;
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(policy.status().message(), HasSubstr(c.says)) << c.json;
    EXPECT_THAT(policy.status().message(), HasSubstr("test.json"));
  }
}

TEST(PolicyTest, TheDocumentedExampleLoads) {
  // docs/governance.md's worked policy, as shipped in examples/.
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      Policy::Load(A2AMESH_SOURCE_DIR "/examples/policy/team.json");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_GT((*policy)->rule_count(), 3u);
  EXPECT_FALSE((*policy)->rate_limits().empty());
}

// The published schema names the same actions, effects and bucket kinds as
// the parser takes, and the documented example passes both.
TEST(PolicyTest, ThePublishedSchemaAgreesWithTheParser) {
  std::ifstream in(A2AMESH_SOURCE_DIR "/docs/policy.schema.json");
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::Struct schema;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &schema).ok());
  const auto& defs = schema.fields().at("$defs").struct_value().fields();
  auto enum_of = [](const google::protobuf::Value& value) {
    std::vector<std::string> names;
    for (const auto& v : value.struct_value().fields().at("enum").list_value().values()) {
      names.push_back(v.string_value());
    }
    return names;
  };
  const auto& rule = defs.at("rule").struct_value().fields().at("properties").struct_value();
  std::vector<std::string> actions =
      enum_of(rule.fields().at("actions").struct_value().fields().at("items"));
  std::vector<std::string> expected = {"*"};
  for (int i = 0; i < kActionCount; ++i) {
    expected.emplace_back(ActionName(static_cast<Action>(i)));
  }
  EXPECT_EQ(actions, expected);
  EXPECT_THAT(enum_of(rule.fields().at("effect")), ::testing::ElementsAre("allow", "deny"));
  const auto& limit = defs.at("rateLimit").struct_value().fields().at("properties").struct_value();
  EXPECT_THAT(enum_of(limit.fields().at("per")),
              ::testing::ElementsAre("principal", "skill", "principal-skill"));
  // Every action the schema names parses.
  for (const std::string& action : actions) {
    EXPECT_TRUE(Policy::Parse(absl::StrCat(R"({"rules": [{"effect": "allow", "subjects": ["*"],
                              "actions": [")",
                                           action, R"("]}]})"),
                              "")
                    .ok())
        << action;
  }
}

}  // namespace
}  // namespace a2amesh::governance
