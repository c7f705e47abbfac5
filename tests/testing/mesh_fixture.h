#ifndef A2AMESH_TESTS_TESTING_MESH_FIXTURE_H_
#define A2AMESH_TESTS_TESTING_MESH_FIXTURE_H_

#include <atomic>
#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "a2amesh/sdk/agent.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "catalog/remote_catalog.h"
#include "gtest/gtest.h"
#include "peer/peer_manager.h"
#include "testing/cards.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/wait.h"

// A mesh of three real nodes in one process, and agents to put on it.
namespace a2amesh::testing {

// A SendMessage for `skill` (a2amesh/skill metadata).
inline lf::a2a::v1::SendMessageRequest ForSkill(const std::string& skill, const std::string& text) {
  lf::a2a::v1::SendMessageRequest request = SendText(text);
  (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(skill);
  return request;
}

// Skill "upper": streams its input upper-cased, one character per artifact
// chunk, and completes with "done on <agent>@<node>".
inline sdk::AgentSpec Upper(const std::string& id) {
  return {id, Card(id, {"upper"}), 8, [](sdk::TaskContext& task) {
            task.SetWorking();
            std::string text = task.text();
            for (size_t i = 0; i < text.size(); ++i) {
              task.SendArtifact(
                  sdk::TextArtifact("out", "out", std::string(1, std::toupper(text[i]))), i > 0,
                  i + 1 == text.size());
            }
            task.Complete("done on " + task.agent_id() + "@" + task.node_id());
          }};
}

// Skill "echo": answers "echo <input>".
inline sdk::AgentSpec Echo(const std::string& id) {
  return {id, Card(id, {"echo"}), 8, [](sdk::TaskContext& task) {
            task.SendArtifact(sdk::TextArtifact("echo", "echo", "echo " + task.text()));
            task.Complete("echoed by " + task.agent_id());
          }};
}

// Skill "plan": runs its input through `steps` one after the other, as
// subtasks, and composes the results ("[skill] result (subtask id)" lines).
// Counts the subtasks that came back CANCELLED in `cancels`.
inline sdk::AgentSpec Planner(std::vector<std::string> steps, std::atomic<int>* cancels = nullptr) {
  return {"planner", Card("planner", {"plan"}), 4, [steps, cancels](sdk::TaskContext& task) {
            std::vector<std::string> lines;
            for (const std::string& skill : steps) {
              absl::StatusOr<lf::a2a::v1::Task> result =
                  task.Delegate(sdk::TextSubtask(skill, task.text()));
              if (!result.ok()) {
                if (absl::IsCancelled(result.status()) && cancels != nullptr) ++*cancels;
                task.Fail(std::string(result.status().message()));
                return;
              }
              std::string text;
              for (const auto& part : result->artifacts(0).parts()) text += part.text();
              lines.push_back(absl::StrCat("[", skill, "] ", text, " (", result->id(), ")"));
            }
            task.SendArtifact(sdk::TextArtifact("plan", "plan", absl::StrJoin(lines, "\n")));
            task.Complete();
          }};
}

// Nodes a, b and c: b and c are seeded with a only and learn of each other
// through it. Heartbeats every 100ms; a peer silent for 600ms is down.
class MeshFixture : public ::testing::Test {
 protected:
  static NodeOptions Options(const std::string& id, std::vector<std::string> peers) {
    NodeOptions options = NodeHarness::TestOptions(id);
    options.peers = std::move(peers);
    options.peer_heartbeat = absl::Milliseconds(100);
    options.peer_timeout = absl::Milliseconds(600);
    return options;
  }

  void SetUp() override {
    a_ = std::make_unique<NodeHarness>(Options("a", {}));
    b_ = std::make_unique<NodeHarness>(Options("b", {a_->address()}));
    c_ = std::make_unique<NodeHarness>(Options("c", {a_->address()}));
    ASSERT_TRUE(WaitFor([&] { return FullMesh({a_.get(), b_.get(), c_.get()}); }));
  }

  static bool FullMesh(const std::vector<NodeHarness*>& nodes) {
    for (NodeHarness* node : nodes) {
      if (node->node().peers().peers_up() != static_cast<int>(nodes.size()) - 1) return false;
    }
    return true;
  }

  // Waits until `node` routes to `qualified` ("agent@node").
  static bool Sees(NodeHarness& node, const std::string& qualified) {
    return WaitFor([&] {
      std::string agent, owner;
      catalog::SplitQualifiedAgentId(qualified, &agent, &owner);
      return node.node().remote_catalog().Find(owner, agent) != nullptr;
    });
  }

  std::unique_ptr<NodeHarness> a_, b_, c_;
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_MESH_FIXTURE_H_
