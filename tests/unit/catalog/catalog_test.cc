#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "catalog/agent_catalog.h"
#include "catalog/card_validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cards.h"
#include "testing/status_matchers.h"

namespace a2amesh::catalog {
namespace {

using ::a2amesh::testing::Card;
using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::StatusIs;
using ::testing::HasSubstr;

class RecordingLink final : public AgentLink {
 public:
  void Send(v1::NodeToAgent message) override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(std::move(message));
  }
  std::vector<v1::NodeToAgent> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::NodeToAgent> sent_;
};

std::shared_ptr<LocalAgent> Agent(const std::string& id, int max = 2,
                                  std::shared_ptr<AgentLink> link = nullptr) {
  if (link == nullptr) link = std::make_shared<RecordingLink>();
  return std::make_shared<LocalAgent>(id, Card(id, {id}), max, link, absl::Now());
}

TEST(CardValidationTest, AcceptsAValidCard) {
  EXPECT_THAT(ValidateAgentCard(Card("echo", {"echo"}), "card"), IsOk());
}

TEST(CardValidationTest, NamesTheMissingField) {
  auto expect_field = [](lf::a2a::v1::AgentCard card, const std::string& field) {
    EXPECT_THAT(ValidateAgentCard(card, "agents[0].card"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(field)))
        << field;
  };
  lf::a2a::v1::AgentCard card = Card("echo", {"echo", "shout"});
  card.clear_name();
  expect_field(card, "agents[0].card.name: is required");
  card = Card("echo", {"echo"});
  card.clear_version();
  expect_field(card, "agents[0].card.version");
  card = Card("echo", {"echo"});
  card.clear_capabilities();
  expect_field(card, "agents[0].card.capabilities");
  card = Card("echo", {"echo"});
  card.clear_default_output_modes();
  expect_field(card, "agents[0].card.default_output_modes: needs at least one entry");
  card = Card("echo", {"echo"});
  card.clear_skills();
  expect_field(card, "agents[0].card.skills: needs at least one entry");
  card = Card("echo", {"echo", "shout"});
  card.mutable_skills(1)->clear_description();
  expect_field(card, "agents[0].card.skills[1].description");
  card = Card("echo", {"echo", "shout"});
  card.mutable_skills(1)->clear_tags();
  expect_field(card, "agents[0].card.skills[1].tags");
  card = Card("echo", {"echo", "echo"});
  expect_field(card, "agents[0].card.skills[1].id: 'echo' is used by an earlier skill");
  card = Card("echo", {"echo"});
  card.mutable_provider()->set_url("https://x");
  expect_field(card, "agents[0].card.provider.organization");
  card = Card("echo", {"echo"});
  (*card.mutable_security_schemes())["key"].mutable_api_key_security_scheme()->set_name("k");
  expect_field(card, "agents[0].card.security_schemes[key].apiKeySecurityScheme.location");
}

TEST(AgentCatalogTest, AddsFindsAndRemoves) {
  AgentCatalog catalog(10);
  auto echo = Agent("echo");
  ASSERT_THAT(catalog.Add({echo, Agent("shout")}), IsOk());
  EXPECT_EQ(catalog.size(), 2u);
  EXPECT_EQ(catalog.Find("echo"), echo);
  ASSERT_EQ(catalog.snapshot()->size(), 2u);
  EXPECT_EQ((*catalog.snapshot())[0]->id(), "echo");
  catalog.Remove(*echo);
  EXPECT_EQ(catalog.Find("echo"), nullptr);
}

TEST(AgentCatalogTest, RefusesTakenIdsAndTooManyAgents) {
  AgentCatalog catalog(2);
  ASSERT_THAT(catalog.Add({Agent("echo")}), IsOk());
  EXPECT_THAT(catalog.Add({Agent("other"), Agent("echo")}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'echo'")));
  EXPECT_EQ(catalog.Find("other"), nullptr);  // all or none
  EXPECT_THAT(catalog.Add({Agent("a"), Agent("b")}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-agents limit of 2")));
}

TEST(AgentCatalogTest, RemovingAnOldRegistrationKeepsTheNewOne) {
  AgentCatalog catalog(10);
  auto old_echo = Agent("echo");
  ASSERT_THAT(catalog.Add({old_echo}), IsOk());
  catalog.Remove(*old_echo);
  auto new_echo = Agent("echo");
  ASSERT_THAT(catalog.Add({new_echo}), IsOk());
  catalog.Remove(*old_echo);
  EXPECT_EQ(catalog.Find("echo"), new_echo);
}

TEST(AgentCatalogTest, RunnersHoldSlotsAndSendThroughTheLink) {
  auto link = std::make_shared<RecordingLink>();
  auto echo = Agent("echo", 1, link);
  EXPECT_TRUE(echo->TryAcquire());
  EXPECT_FALSE(echo->TryAcquire());
  {
    LocalTaskRunner runner(echo);
    v1::TaskAssignment assignment;
    assignment.mutable_task()->set_id("n~1");
    runner.Assign(assignment);
    runner.Cancel("n~1", "because");
    EXPECT_EQ(echo->outstanding(), 1);
  }
  EXPECT_EQ(echo->outstanding(), 0);
  std::vector<v1::NodeToAgent> sent = link->sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assignment().task().id(), "n~1");
  EXPECT_EQ(sent[1].cancel().reason(), "because");

  AgentCatalog catalog(10);
  ASSERT_THAT(catalog.Add({echo}), IsOk());
  EXPECT_TRUE(echo->TryAcquire());
  // Rebind ignores max_concurrency: the task is already the agent's.
  absl::StatusOr<std::unique_ptr<tasks::TaskRunner>> rebound = catalog.Rebind("echo");
  ASSERT_THAT(rebound, IsOk());
  EXPECT_EQ(echo->outstanding(), 2);
  EXPECT_THAT(catalog.Rebind("nobody"), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace a2amesh::catalog
