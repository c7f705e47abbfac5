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
  EXPECT_THAT(router_.Pick(selector), StatusIs(absl::StatusCode::kFailedPrecondition,
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
  EXPECT_THAT(router_.Pick(selector),
              StatusIs(absl::StatusCode::kFailedPrecondition,
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

}  // namespace
}  // namespace a2amesh::routing
