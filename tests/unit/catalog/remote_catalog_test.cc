#include "catalog/remote_catalog.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/cards.h"

namespace a2amesh::catalog {
namespace {

using ::a2amesh::testing::Card;

v1::AgentAdvert Advert(const std::string& id, int max, int outstanding) {
  v1::AgentAdvert advert;
  advert.set_agent_id(id);
  *advert.mutable_card() = Card(id, {id});
  advert.set_max_concurrency(max);
  advert.set_outstanding(outstanding);
  return advert;
}

TEST(RemoteCatalogTest, AdvertsDeltasLoadsAndRemoval) {
  RemoteCatalog catalog;
  v1::NodeAdvert advert;
  *advert.add_agents() = Advert("echo", 4, 1);
  *advert.add_agents() = Advert("upper", 2, 0);
  advert.add_members("127.0.0.1:1");
  catalog.ApplyAdvert("n2", 7, "127.0.0.1:2", advert);
  ASSERT_EQ(catalog.snapshot()->size(), 2u);
  EXPECT_EQ((*catalog.snapshot())[0]->qualified_id(), "echo@n2");
  EXPECT_EQ(catalog.Find("n2", "echo")->outstanding(), 1);
  EXPECT_EQ(catalog.node("n2")->address, "127.0.0.1:2");
  EXPECT_EQ(catalog.node("n2")->incarnation, 7u);

  v1::CatalogDelta delta;
  delta.set_generation(2);
  *delta.add_upserted() = Advert("count", 1, 0);
  delta.add_removed("upper");
  catalog.ApplyDelta("n2", delta);
  EXPECT_EQ(catalog.Find("n2", "upper"), nullptr);
  EXPECT_NE(catalog.Find("n2", "count"), nullptr);

  v1::PeerHeartbeat beat;
  auto* load = beat.add_loads();
  load->set_agent_id("echo");
  load->set_outstanding(3);
  catalog.ApplyLoads("n2", beat.loads());
  EXPECT_EQ(catalog.Find("n2", "echo")->outstanding(), 3);

  v1::CatalogDelta draining;
  draining.set_draining(true);
  catalog.ApplyDelta("n2", draining);
  EXPECT_TRUE(catalog.snapshot()->empty());  // a draining node's agents leave routing
  EXPECT_TRUE(catalog.node("n2")->draining);

  catalog.RemoveNode("n2");
  EXPECT_FALSE(catalog.node("n2").has_value());
  EXPECT_EQ(catalog.Find("n2", "echo"), nullptr);
}

TEST(RemoteCatalogTest, ANewAdvertReplacesEverything) {
  RemoteCatalog catalog;
  v1::NodeAdvert first;
  *first.add_agents() = Advert("old", 1, 0);
  catalog.ApplyAdvert("n2", 1, "a", first);
  v1::NodeAdvert second;
  *second.add_agents() = Advert("new", 1, 0);
  catalog.ApplyAdvert("n2", 2, "a", second);
  EXPECT_EQ(catalog.Find("n2", "old"), nullptr);
  EXPECT_NE(catalog.Find("n2", "new"), nullptr);
}

TEST(RemoteCatalogTest, LoadIsTheLargerOfAdvertisedAndInFlight) {
  RemoteAgent agent("n2", "echo", Card("echo", {"echo"}), 2);
  EXPECT_TRUE(agent.TryAcquire());
  EXPECT_TRUE(agent.TryAcquire());
  EXPECT_FALSE(agent.TryAcquire());
  EXPECT_EQ(agent.outstanding(), 2);
  agent.Release();
  agent.Release();
  agent.SetAdvertised(2);  // busy with other nodes' work
  EXPECT_FALSE(agent.TryAcquire());
  EXPECT_DOUBLE_EQ(agent.load(), 1.0);
}

TEST(RemoteCatalogTest, QualifiedIds) {
  EXPECT_EQ(QualifiedAgentId("echo", "n2"), "echo@n2");
  std::string agent, node;
  EXPECT_TRUE(SplitQualifiedAgentId("echo@n2", &agent, &node));
  EXPECT_EQ(agent, "echo");
  EXPECT_EQ(node, "n2");
  EXPECT_FALSE(SplitQualifiedAgentId("echo", &agent, &node));
  EXPECT_FALSE(SplitQualifiedAgentId("@n2", &agent, &node));
  EXPECT_FALSE(SplitQualifiedAgentId("echo@", &agent, &node));
}

}  // namespace
}  // namespace a2amesh::catalog
