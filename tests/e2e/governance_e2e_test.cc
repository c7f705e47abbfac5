// Governance end to end: a meshd process with bearer tokens, the policy
// docs/governance.md works through (examples/policy/team.json) and an audit
// file; the meshctl binary as each principal; SIGHUP with a broken policy.
// Every line the audit file holds must parse, one per decision.

#include <signal.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "testing/cards.h"
#include "testing/e2e_mesh.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::ReadFileOrEmpty;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using ::testing::HasSubstr;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class GovernanceE2eTest : public ::testing::Test {
 protected:
  GovernanceE2eTest() {
    // team.json: alice is team-a, bob team-b; carol approves; audrey audits;
    // agents register with the role agent.
    std::string tokens;
    for (const auto& [name, roles] :
         std::vector<std::pair<std::string, std::string>>{{"alice", ""},
                                                          {"bob", ""},
                                                          {"mallory", ""},
                                                          {"carol", "approver"},
                                                          {"audrey", "auditor"},
                                                          {"agents", "agent,agent:*,skill:*"}}) {
      absl::StrAppend(&tokens, Token(name), " ", name, " ", roles, "\n");
      testing::WriteFileAtomically(dir_.File(name + ".token"), Token(name) + "\n");
    }
    testing::WriteFileAtomically(dir_.File("tokens"), tokens);
    testing::WriteFileAtomically(dir_.File("policy.json"),
                                 ReadFileOrEmpty(testing::SourcePath("examples/policy/team.json")));
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "--- n1.log ---\n" << ReadFileOrEmpty(dir_.File("n1.log"));
  }

  static std::string Token(const std::string& name) {
    return absl::StrCat(name, "-0123456789abcdef");
  }

  Result Meshctl(const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinaryPath("meshctl"),
                                     "--config",
                                     dir_.File("none.json"),
                                     "--server",
                                     node_->address(),
                                     "--token-file",
                                     dir_.File(who + ".token")};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string out = dir_.File(absl::StrCat("meshctl-", ++calls_, ".out"));
    const std::string err = dir_.File(absl::StrCat("meshctl-", calls_, ".err"));
    Result result;
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv, out, err);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return result;
    absl::StatusOr<int> code = process->Wait(absl::Seconds(60));
    result.code = code.value_or(-1);
    result.out = ReadFileOrEmpty(out);
    result.err = ReadFileOrEmpty(err);
    return result;
  }

  std::vector<std::string> AuditLines() {
    return absl::StrSplit(ReadFileOrEmpty(dir_.File("audit.log")), '\n', absl::SkipEmpty());
  }

  testing::TempDir dir_;
  std::unique_ptr<E2eNode> node_;
  int calls_ = 0;
};

TEST_F(GovernanceE2eTest, TheTeamPolicyGovernsEveryCallAndTheAuditFileHoldsEachDecision) {
  node_ = std::make_unique<E2eNode>(
      dir_, "n1",
      std::vector<std::string>{"--ephemeral", "--auth-token-file", dir_.File("tokens"),
                               "--policy-file", dir_.File("policy.json"), "--audit-log",
                               dir_.File("audit.log")});
  ASSERT_TRUE(node_->Start());
  node_->SetClient(grpc::InsecureChannelCredentials(), Token("alice"));
  Subprocess echo = node_->StartAgent("echo-agent", {"--token", Token("agents")});
  sdk::AgentOptions options;
  options.node = node_->address();
  options.token = Token("agents");
  options.agents = {{"payer", testing::Card("payer", {"payments"}), 4,
                     [](sdk::TaskContext& task) { task.Complete("paid " + task.text()); }}};
  absl::StatusOr<std::unique_ptr<sdk::Agent>> payer = sdk::Agent::Start(std::move(options));
  ASSERT_TRUE(payer.ok());
  ASSERT_TRUE((*payer)->WaitUntilRegistered(absl::Seconds(10)).ok());
  ASSERT_TRUE(node_->WaitForAgent("echo"));

  // A team member sends; a stranger is denied by default.
  Result sent = Meshctl("alice", {"send", "--skill", "echo", "hello"});
  EXPECT_EQ(sent.code, 0) << sent.err;
  EXPECT_THAT(sent.out, HasSubstr("hello"));
  Result stranger = Meshctl("mallory", {"send", "--skill", "echo", "hello"});
  EXPECT_EQ(stranger.code, 1);
  EXPECT_THAT(stranger.err, HasSubstr("denied by default"));

  // A payment waits for an approver; bob cannot approve his own.
  Result payment =
      Meshctl("bob", {"send", "--skill", "payments", "--no-wait", "100 EUR", "-o", "json"});
  ASSERT_EQ(payment.code, 0) << payment.err;
  google::protobuf::Struct response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(payment.out, &response).ok())
      << payment.out;
  ASSERT_TRUE(response.fields().contains("task")) << payment.out;
  const auto& task = response.fields().at("task").struct_value().fields();
  const std::string id = task.at("id").string_value();
  ASSERT_FALSE(id.empty()) << payment.out;
  Result self = Meshctl("bob", {"approve", id});
  EXPECT_EQ(self.code, 1);
  EXPECT_THAT(self.err, HasSubstr("names its approvers [role:approver]"));
  Result approved = Meshctl("carol", {"approve", id, "--reason", "budgeted"});
  EXPECT_EQ(approved.code, 0) << approved.err;
  EXPECT_THAT(approved.out, HasSubstr(absl::StrCat("task ", id, " approved")));
  int inspections = 0;  // each one a decision in the audit log
  EXPECT_TRUE(WaitFor([&] {
    ++inspections;
    return absl::StrContains(Meshctl("audrey", {"task", id}).out, "completed");
  }));

  // The auditor reads the log through meshctl; others may not.
  Result audit = Meshctl("audrey", {"audit", "--decision", "deny", "-o", "json"});
  ASSERT_EQ(audit.code, 0) << audit.err;
  std::vector<std::string> denials = absl::StrSplit(audit.out, '\n', absl::SkipEmpty());
  ASSERT_GE(denials.size(), 1u);
  EXPECT_THAT(denials[0], HasSubstr("\"principal\":\"mallory\""));
  Result table = Meshctl("audrey", {"audit", "--task", id});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("approval-required"));
  EXPECT_THAT(table.out, HasSubstr("approved"));
  EXPECT_EQ(Meshctl("alice", {"audit"}).code, 1);

  // A broken policy on SIGHUP is reported and the policy in force stays.
  testing::WriteFileAtomically(dir_.File("policy.json"), "{\"rules\": [{\"effect\": \"allow\"");
  node_->process().Signal(SIGHUP);
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(node_->log(), "policy file does not load"); }));
  EXPECT_EQ(Meshctl("alice", {"send", "--skill", "echo", "still"}).code, 0);
  EXPECT_EQ(Meshctl("mallory", {"send", "--skill", "echo", "still"}).code, 1);

  // One parseable line per decision: each registration, each meshctl call
  // above (a send, an approval, a GetTaskTree, a TailAudit) and the reload.
  ASSERT_TRUE(WaitFor([&] { return AuditLines().size() >= 13u + inspections; }))
      << ReadFileOrEmpty(dir_.File("audit.log"));
  std::vector<std::string> decisions;
  for (const std::string& line : AuditLines()) {
    google::protobuf::Struct entry;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &entry).ok()) << line;
    const auto& f = entry.fields();
    EXPECT_EQ(f.at("node").string_value(), "n1");
    decisions.push_back(
        absl::StrCat(f.contains("principal") ? f.at("principal").string_value() : "-", " ",
                     f.at("action").string_value(), " ", f.at("decision").string_value()));
  }
  std::vector<std::string> expected = {
      "agents register-agent allow", "agents register-agent allow", "alice send allow",
      "mallory send deny",           "bob send approval-required",  "bob approve deny",
      "carol approve approved"};
  expected.insert(expected.end(), inspections, "audrey inspect allow");
  expected.insert(expected.end(),
                  {"audrey audit allow", "audrey audit allow", "alice audit deny",
                   "- reload kept-previous", "alice send allow", "mallory send deny"});
  EXPECT_EQ(decisions, expected);
}

}  // namespace
}  // namespace a2amesh
