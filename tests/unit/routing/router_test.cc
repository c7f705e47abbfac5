#include "routing/router.h"

#include <map>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cards.h"
#include "testing/proto_builders.h"
#include "testing/status_matchers.h"

namespace a2amesh::routing {
namespace {

using ::a2amesh::testing::Card;
using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::SendText;
using ::a2amesh::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class NullLink final : public catalog::AgentLink {
 public:
  void Send(v1::NodeToAgent) override {}
};

class RouterTest : public ::testing::Test {
 protected:
  std::shared_ptr<catalog::LocalAgent> Add(const std::string& id, lf::a2a::v1::AgentCard card,
                                           int max = 4) {
    auto agent = std::make_shared<catalog::LocalAgent>(id, std::move(card), max,
                                                       std::make_shared<NullLink>(), absl::Now());
    EXPECT_THAT(catalog_.Add({agent}), IsOk());
    return agent;
  }
  absl::StatusOr<Selector> FromMetadata(const std::string& key, google::protobuf::Value value) {
    lf::a2a::v1::SendMessageRequest request = SendText("hi");
    (*request.mutable_metadata()->mutable_fields())[key] = std::move(value);
    return SelectorFromRequest(request, "");
  }

  catalog::AgentCatalog catalog_{100};
  catalog::RemoteCatalog remote_;
  Router router_{RouterOptions{"n1"}, catalog_, remote_};
};

TEST_F(RouterTest, SelectorTakesTenantSkillTagsAndMediaTypes) {
  lf::a2a::v1::SendMessageRequest request = SendText("hi");
  request.set_tenant("echo");
  (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value("shout");
  (*request.mutable_metadata()->mutable_fields())["a2amesh/tags"].set_string_value("fast, loud");
  request.mutable_message()->add_parts()->mutable_data()->set_number_value(1);
  request.mutable_configuration()->add_accepted_output_modes("text/plain");
  absl::StatusOr<Selector> selector = SelectorFromRequest(request, "default");
  ASSERT_THAT(selector, IsOk());
  EXPECT_EQ(selector->agent_id, "echo");
  EXPECT_EQ(selector->skill, "shout");
  EXPECT_THAT(selector->tags, ElementsAre("fast", "loud"));
  EXPECT_THAT(selector->input_media_types, ElementsAre("text/plain", "application/json"));
  EXPECT_THAT(selector->accepted_output_modes, ElementsAre("text/plain"));
  EXPECT_FALSE(selector->default_skill);
}

TEST_F(RouterTest, DefaultSkillAppliesOnlyWithoutAnExplicitChoice) {
  absl::StatusOr<Selector> selector = SelectorFromRequest(SendText("hi"), "echo");
  ASSERT_THAT(selector, IsOk());
  EXPECT_EQ(selector->skill, "echo");
  EXPECT_TRUE(selector->default_skill);
  google::protobuf::Value skill;
  skill.set_string_value("shout");
  selector = FromMetadata("a2amesh/skill", skill);
  ASSERT_THAT(selector, IsOk());
  EXPECT_EQ(selector->skill, "shout");
}

TEST_F(RouterTest, BadMetadataNamesTheKey) {
  google::protobuf::Value number;
  number.set_number_value(3);
  EXPECT_THAT(FromMetadata("a2amesh/skill", number),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("metadata.a2amesh/skill")));
  EXPECT_THAT(FromMetadata("a2amesh/tags", number),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("metadata.a2amesh/tags")));
}

TEST_F(RouterTest, ModesCoverWildcardsAndParameters) {
  EXPECT_TRUE(ModeCovers("text/plain", "text/plain; charset=utf-8"));
  EXPECT_TRUE(ModeCovers("TEXT/Plain", "text/plain"));
  EXPECT_TRUE(ModeCovers("text/*", "text/markdown"));
  EXPECT_TRUE(ModeCovers("*/*", "image/png"));
  EXPECT_TRUE(ModeCovers("text", "text/csv"));
  EXPECT_FALSE(ModeCovers("text/plain", "application/json"));
  EXPECT_FALSE(ModeCovers("image/*", "text/plain"));
}

TEST_F(RouterTest, PicksAnAgentWithTheSkill) {
  Add("echo", Card("echo", {"echo"}));
  Add("shout", Card("shout", {"shout", "whisper"}));
  Selector selector;
  selector.skill = "whisper";
  absl::StatusOr<Route> route = router_.Pick(selector);
  ASSERT_THAT(route, IsOk());
  EXPECT_EQ(route->agent_id, "shout");
  EXPECT_EQ(route->skill, "whisper");
  EXPECT_EQ(route->runner->agent_id(), "shout");
}

TEST_F(RouterTest, ErrorsSayWhatWasAskedAndWhatExists) {
  Selector selector;
  selector.skill = "echo";
  EXPECT_THAT(router_.Pick(selector),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no agents are registered anywhere in the mesh")));
  Add("echo", Card("echo", {"echo"}, {"fast"}));
  Add("shout", Card("shout", {"shout"}));
  selector.skill = "translate";
  EXPECT_THAT(router_.Pick(selector),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("(skill 'translate'): no agent offers skill 'translate'; "
                                 "skills: echo, shout")));
  selector = Selector();
  selector.agent_id = "ghost";
  EXPECT_THAT(router_.Pick(selector), StatusIs(absl::StatusCode::kFailedPrecondition,
                                               HasSubstr("no agent 'ghost'; agents: echo, shout")));
  selector = Selector();
  selector.tags = {"fast", "cheap"};
  EXPECT_THAT(router_.Pick(selector),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no skill carries all of the tags [fast, cheap]")));
  selector = Selector();
  selector.skill = "echo";
  selector.input_media_types = {"image/png"};
  EXPECT_THAT(router_.Pick(selector),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no matching skill accepts input image/png")));
  selector.input_media_types = {"text/plain"};
  selector.accepted_output_modes = {"audio/mpeg"};
  EXPECT_THAT(router_.Pick(selector), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("produces any of audio/mpeg")));
}

TEST_F(RouterTest, RespectsMaxConcurrency) {
  Add("a", Card("a", {"echo"}), 1);
  Add("b", Card("b", {"echo"}), 1);
  Selector selector;
  selector.skill = "echo";
  absl::StatusOr<Route> first = router_.Pick(selector);
  absl::StatusOr<Route> second = router_.Pick(selector);
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_NE(first->agent_id, second->agent_id);
  EXPECT_THAT(router_.Pick(selector),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("all 2 agent(s) matching skill 'echo' are at their "
                                 "max_concurrency")));
  first->runner.reset();  // frees a slot
  EXPECT_THAT(router_.Pick(selector), IsOk());
}

TEST_F(RouterTest, TwoChoicesPreferTheLessLoadedAgent) {
  auto busy = Add("busy", Card("busy", {"echo"}), 100);
  Add("idle", Card("idle", {"echo"}), 100);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(busy->TryAcquire());
  Selector selector;
  selector.skill = "echo";
  std::map<std::string, int> picks;
  std::vector<Route> held;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<Route> route = router_.Pick(selector);
    ASSERT_THAT(route, IsOk());
    ++picks[route->agent_id];
    held.push_back(std::move(route).value());
  }
  // With two agents both are always compared, so the idle one wins until it
  // carries as much as the busy one.
  EXPECT_EQ(picks["idle"], 40);
}

// Records the candidates handoffs are made for.
class RecordingRemoteRunners final : public RemoteRunnerFactory {
 public:
  std::unique_ptr<tasks::TaskRunner> HandoffRunner(
      std::vector<RemoteCandidate> candidates) override {
    handoffs.push_back(candidates);
    return std::make_unique<catalog::LocalTaskRunner>(nullptr_agent());
  }
  std::unique_ptr<tasks::TaskRunner> RebindRunner(
      std::shared_ptr<catalog::RemoteAgent> agent) override {
    rebound.push_back(agent->qualified_id());
    return std::make_unique<catalog::LocalTaskRunner>(nullptr_agent());
  }
  // A throwaway local agent for the runner objects (they only need to exist).
  std::shared_ptr<catalog::LocalAgent> nullptr_agent() {
    auto agent = std::make_shared<catalog::LocalAgent>("x", Card("x", {"x"}), 1000,
                                                       std::make_shared<NullLink>(), absl::Now());
    agent->Acquire();
    return agent;
  }
  std::vector<std::vector<RemoteCandidate>> handoffs;
  std::vector<std::string> rebound;
};

class MeshRouterTest : public RouterTest {
 protected:
  MeshRouterTest() { router_.SetRemoteRunners(&remote_runners_); }

  std::shared_ptr<catalog::RemoteAgent> Remote(const std::string& node, const std::string& id,
                                               const std::string& skill, int max = 4,
                                               int outstanding = 0) {
    v1::NodeAdvert advert;
    if (auto existing = remote_.node(node); existing.has_value()) {
      for (const auto& agent : *remote_.snapshot()) {
        if (agent->node_id() == node) {
          auto* a = advert.add_agents();
          a->set_agent_id(agent->agent_id());
          *a->mutable_card() = agent->card();
          a->set_max_concurrency(agent->max_concurrency());
        }
      }
    }
    auto* a = advert.add_agents();
    a->set_agent_id(id);
    *a->mutable_card() = Card(id, {skill});
    a->set_max_concurrency(max);
    a->set_outstanding(outstanding);
    remote_.ApplyAdvert(node, 1, node + ":7400", advert);
    return remote_.Find(node, id);
  }

  RecordingRemoteRunners remote_runners_;
};

TEST_F(MeshRouterTest, ASkillOnlyAnotherNodeHasIsHandedOffWithFallbacks) {
  Remote("n2", "up2", "upper", 4, 2);
  Remote("n3", "up3", "upper", 4, 0);
  Remote("n4", "up4", "upper", 4, 1);
  Selector selector;
  selector.skill = "upper";
  absl::StatusOr<Route> route = router_.Pick(selector);
  ASSERT_THAT(route, IsOk());
  ASSERT_EQ(remote_runners_.handoffs.size(), 1u);
  const auto& candidates = remote_runners_.handoffs[0];
  ASSERT_EQ(candidates.size(), 3u);
  EXPECT_EQ(route->agent_id, candidates[0].agent->qualified_id());
  EXPECT_EQ(route->node_id, candidates[0].agent->node_id());
  // The fallbacks follow, least loaded first.
  EXPECT_LE(candidates[1].agent->load(), candidates[2].agent->load());
}

TEST_F(MeshRouterTest, LocalAgentsWinUnlessMuchBusier) {
  auto local = Add("echo", Card("echo", {"echo"}), 10);
  Remote("n2", "echo", "echo", 10, 0);
  Selector selector;
  selector.skill = "echo";
  std::vector<Route> held;  // each held route keeps its slot
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<Route> route = router_.Pick(selector);
    ASSERT_THAT(route, IsOk());
    EXPECT_EQ(route->node_id, "n1") << i;  // loads 0.0 .. 0.5 are within the bias of 0.5
    held.push_back(std::move(route).value());
  }
  // At 0.6 the local agent is more than 0.5 above the idle remote one.
  absl::StatusOr<Route> route = router_.Pick(selector);
  ASSERT_THAT(route, IsOk());
  EXPECT_EQ(route->node_id, "n2");
  EXPECT_EQ(route->agent_id, "echo@n2");
  EXPECT_EQ(local->outstanding(), 6);
}

TEST_F(MeshRouterTest, AgentAtNodeNamesOneAgentAndRebindGoesThroughThePeerLayer) {
  Remote("n2", "echo", "echo");
  Remote("n3", "echo", "echo");
  Selector selector;
  selector.agent_id = "echo@n3";
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Route> route = router_.Pick(selector);
    ASSERT_THAT(route, IsOk());
    EXPECT_EQ(route->agent_id, "echo@n3");
  }
  ASSERT_THAT(router_.Rebind("echo@n2"), IsOk());
  EXPECT_THAT(remote_runners_.rebound, ElementsAre("echo@n2"));
  EXPECT_THAT(router_.Rebind("echo@n9"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(MeshRouterTest, CyclesAreNeverPickedAndDeepChainsAreRefused) {
  Remote("n2", "planner", "plan");
  Remote("n3", "planner", "plan");
  Selector selector;
  selector.skill = "plan";
  absl::StatusOr<Route> route = router_.Pick(selector, {"planner@n2"});
  ASSERT_THAT(route, IsOk());
  EXPECT_EQ(route->agent_id, "planner@n3");
  EXPECT_THAT(router_.Pick(selector, {"planner@n2", "planner@n3"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("(planner@n2 -> planner@n3); routing there would form a cycle")));
  std::vector<std::string> deep(8, "x@n9");
  EXPECT_THAT(router_.Pick(selector, deep),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already 8 deep")));
}

TEST_F(MeshRouterTest, ExplainNamesWhatPickTakesAsLoadsShift) {
  auto local = Add("echo", Card("echo", {"echo"}), 10);
  auto remote = Remote("n2", "echo", "echo", 10, 0);
  Selector selector;
  selector.skill = "echo";
  std::vector<Route> held;
  for (int i = 0; i < 8; ++i) {
    v1::RouteExplanation explanation = router_.Explain(selector);
    absl::StatusOr<Route> route = router_.Pick(selector);
    ASSERT_THAT(route, IsOk());
    const std::string picked = route->node_id == "n1" ? route->agent_id + "@n1" : route->agent_id;
    EXPECT_EQ(explanation.pick_agent_id(), picked) << i;
    EXPECT_EQ(explanation.pick_node_id(), route->node_id) << i;
    held.push_back(std::move(route).value());
  }
  // Local until it is 0.6 busy, then the remote one once (0.6 > 0 + 0.5), then
  // local again (0.6 <= 0.1 + 0.5): the explanation followed every switch.
  EXPECT_EQ(local->outstanding(), 7);
  EXPECT_EQ(remote->outstanding(), 1);
}

TEST_F(MeshRouterTest, ExplainExcludesBusyAgentsAndSaysWhyNothingCanTakeIt) {
  auto full = Add("one", Card("one", {"echo"}), 1);
  ASSERT_TRUE(full->TryAcquire());
  Add("other", Card("other", {"upper"}));
  Selector selector;
  selector.skill = "echo";
  v1::RouteExplanation explanation = router_.Explain(selector);
  ASSERT_EQ(explanation.candidates_size(), 2);
  EXPECT_EQ(explanation.candidates(0).agent_id(), "one@n1");
  EXPECT_EQ(explanation.candidates(0).excluded(), "busy: all 1 of its slots are taken");
  EXPECT_EQ(explanation.candidates(0).outstanding(), 1);
  EXPECT_EQ(explanation.candidates(1).excluded(), "no skill 'echo'");
  EXPECT_TRUE(explanation.pick_agent_id().empty());
  EXPECT_THAT(explanation.error(), HasSubstr("are at their max_concurrency"));
  EXPECT_EQ(full->outstanding(), 1);  // explaining takes no slot

  selector.skill = "upper";
  EXPECT_THAT(router_.Explain(selector, std::vector<std::string>(8, "x@n9")).error(),
              HasSubstr("already 8 deep"));
  selector.tags = {"fast"};
  explanation = router_.Explain(selector);
  EXPECT_EQ(explanation.candidates(1).excluded(),
            "no matching skill carries all of the tags [fast]");
  EXPECT_THAT(explanation.error(), HasSubstr("no skill carries all of the tags [fast]"));
}

}  // namespace
}  // namespace a2amesh::routing
