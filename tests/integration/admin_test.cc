// The Admin service of real nodes in a three-node mesh, over real gRPC.

#include <memory>
#include <string>
#include <vector>

#include "a2amesh/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "testing/mesh_fixture.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::Card;
using ::a2amesh::testing::Echo;
using ::a2amesh::testing::ForSkill;
using ::a2amesh::testing::MeshFixture;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::Planner;
using ::a2amesh::testing::Upper;
using ::a2amesh::testing::WaitFor;
using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

class AdminTest : public MeshFixture {
 protected:
  static std::unique_ptr<v1::Admin::Stub> Admin(NodeHarness& node) {
    return v1::Admin::NewStub(
        grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  }

  static std::vector<std::string> AgentIds(NodeHarness& node, v1::ListAgentsRequest request) {
    v1::ListAgentsResponse response;
    grpc::Status status = Admin(node)->ListAgents(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> ids;
    for (const v1::AgentInfo& agent : response.agents()) ids.push_back(agent.id());
    return ids;
  }

  static v1::RouteCandidate Candidate(const v1::RouteExplanation& explanation,
                                      const std::string& agent_id) {
    for (const v1::RouteCandidate& candidate : explanation.candidates()) {
      if (candidate.agent_id() == agent_id) return candidate;
    }
    return {};
  }

  static std::string Serving(NodeHarness& node) {
    auto health = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status =
        health->Check(Context().get(), grpc::health::v1::HealthCheckRequest(), &response);
    if (!status.ok()) return status.error_message();
    return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  }
};

TEST_F(AdminTest, GetNodeDescribesTheNodeThatAnswers) {
  auto agent = b_->StartAgent({Echo("echo")});
  v1::NodeInfo info;
  grpc::Status status = Admin(*b_)->GetNode(Context().get(), v1::GetNodeRequest(), &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.node_id(), "b");
  EXPECT_FALSE(info.version().empty());
  EXPECT_EQ(info.incarnation(), b_->node().peers().incarnation());
  EXPECT_EQ(info.grpc_address(), b_->address());
  EXPECT_EQ(info.advertise_address(), b_->address());
  EXPECT_EQ(info.agents(), 1);
  EXPECT_EQ(info.peers_up(), 2);
  EXPECT_EQ(info.peers_known(), 2);
  EXPECT_EQ(info.store(), "memory");
  EXPECT_FALSE(info.draining());
  EXPECT_GE(info.uptime().seconds() * 1000 + info.uptime().nanos() / 1000000, 0);
  ASSERT_EQ(info.discovery_size(), 1);
  EXPECT_EQ(info.discovery(0).source(), "static");
  EXPECT_THAT(info.discovery(0).addresses(), ElementsAre(a_->address()));
}

TEST_F(AdminTest, ListNodesShowsItselfFirstThenPeersAndALostPeerAsNotUp) {
  v1::ListNodesResponse nodes;
  ASSERT_TRUE(Admin(*a_)->ListNodes(Context().get(), v1::ListNodesRequest(), &nodes).ok());
  ASSERT_EQ(nodes.nodes_size(), 3);
  EXPECT_EQ(nodes.nodes(0).node_id(), "a");
  EXPECT_TRUE(nodes.nodes(0).self());
  EXPECT_EQ(nodes.nodes(1).node_id(), "b");
  EXPECT_EQ(nodes.nodes(1).state(), v1::NODE_STATE_UP);
  EXPECT_EQ(nodes.nodes(1).address(), b_->address());
  EXPECT_EQ(nodes.nodes(1).incarnation(), b_->node().peers().incarnation());
  EXPECT_EQ(nodes.nodes(2).node_id(), "c");

  c_.reset();
  EXPECT_TRUE(WaitFor([&] {
    v1::ListNodesResponse now;
    if (!Admin(*a_)->ListNodes(Context().get(), v1::ListNodesRequest(), &now).ok()) return false;
    for (const v1::NodeSummary& node : now.nodes()) {
      if (node.node_id() == "c" && node.state() == v1::NODE_STATE_UP) return false;
    }
    return true;
  }));
}

TEST_F(AdminTest, ListAgentsCoversTheMeshAndFilters) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_b = b_->StartAgent({{"tagged", Card("tagged", {"summarize"}, {"fast", "en"}), 2,
                               [](sdk::TaskContext& task) { task.Complete(); }}});
  auto on_c = c_->StartAgent({Echo("echo")});
  ASSERT_TRUE(Sees(*a_, "tagged@b"));
  ASSERT_TRUE(Sees(*a_, "echo@c"));

  EXPECT_THAT(AgentIds(*a_, {}), ElementsAre("echo@c", "tagged@b", "upper@a"));
  v1::ListAgentsRequest by_skill;
  by_skill.set_skill("echo");
  EXPECT_THAT(AgentIds(*a_, by_skill), ElementsAre("echo@c"));
  v1::ListAgentsRequest by_tags;
  by_tags.add_tags("fast");
  by_tags.add_tags("en");
  EXPECT_THAT(AgentIds(*a_, by_tags), ElementsAre("tagged@b"));
  by_tags.add_tags("de");
  EXPECT_THAT(AgentIds(*a_, by_tags), ElementsAre());
  v1::ListAgentsRequest by_node;
  by_node.set_node_id("a");
  EXPECT_THAT(AgentIds(*a_, by_node), ElementsAre("upper@a"));

  v1::ListAgentsResponse all;
  ASSERT_TRUE(Admin(*a_)->ListAgents(Context().get(), {}, &all).ok());
  const v1::AgentInfo& tagged = all.agents(1);
  EXPECT_EQ(tagged.agent_id(), "tagged");
  EXPECT_EQ(tagged.node_id(), "b");
  EXPECT_FALSE(tagged.local());
  EXPECT_EQ(tagged.name(), "tagged");
  EXPECT_THAT(tagged.skills(), ElementsAre("summarize"));
  EXPECT_THAT(tagged.tags(), ElementsAre("en", "fast", "summarize"));
  EXPECT_EQ(tagged.max_concurrency(), 2);
  EXPECT_EQ(tagged.health(), v1::AGENT_HEALTH_READY);
  EXPECT_FALSE(tagged.has_card());  // only when asked for
  EXPECT_TRUE(all.agents(2).local());
  EXPECT_TRUE(all.agents(2).has_registered_at());
}

TEST_F(AdminTest, GetAgentResolvesBareAndQualifiedIds) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_c = c_->StartAgent({Upper("upper"), Echo("echo")});
  ASSERT_TRUE(Sees(*b_, "upper@a"));
  ASSERT_TRUE(Sees(*b_, "echo@c"));
  auto admin = Admin(*b_);
  v1::GetAgentRequest request;
  v1::AgentInfo agent;

  request.set_id("echo");  // only one in the mesh
  ASSERT_TRUE(admin->GetAgent(Context().get(), request, &agent).ok());
  EXPECT_EQ(agent.id(), "echo@c");
  EXPECT_EQ(agent.card().name(), "echo");
  EXPECT_EQ(agent.card().skills(0).id(), "echo");

  request.set_id("upper@c");
  ASSERT_TRUE(admin->GetAgent(Context().get(), request, &agent).ok());
  EXPECT_EQ(agent.node_id(), "c");

  request.set_id("upper");  // on two other nodes: ambiguous
  grpc::Status status = admin->GetAgent(Context().get(), request, &agent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("upper@a, upper@c"));

  request.set_id("upper");  // ...but a node's own agent comes first
  ASSERT_TRUE(Admin(*a_)->GetAgent(Context().get(), request, &agent).ok());
  EXPECT_EQ(agent.id(), "upper@a");

  request.set_id("nope");
  status = admin->GetAgent(Context().get(), request, &agent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no agent 'nope' in the mesh"));
  EXPECT_THAT(status.error_message(), HasSubstr("echo@c"));
}

TEST_F(AdminTest, ListSkillsGroupsTheAgentsOfEachSkill) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_c = c_->StartAgent({Upper("upper"), Echo("echo")});
  ASSERT_TRUE(Sees(*a_, "upper@c"));
  ASSERT_TRUE(Sees(*a_, "echo@c"));
  v1::ListSkillsResponse skills;
  ASSERT_TRUE(Admin(*a_)->ListSkills(Context().get(), {}, &skills).ok());
  ASSERT_EQ(skills.skills_size(), 2);
  EXPECT_EQ(skills.skills(0).id(), "echo");
  EXPECT_THAT(skills.skills(0).agents(), ElementsAre("echo@c"));
  EXPECT_EQ(skills.skills(1).id(), "upper");
  EXPECT_EQ(skills.skills(1).description(), "does upper");
  EXPECT_THAT(skills.skills(1).agents(), ElementsAre("upper@a", "upper@c"));
  EXPECT_EQ(skills.skills(1).ready(), 2);
  EXPECT_THAT(skills.skills(1).tags(), ElementsAre("upper"));
}

TEST_F(AdminTest, TheTaskTreeSpansNodesFromAnyNode) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_c = c_->StartAgent({Echo("echo")});
  auto on_b = b_->StartAgent({Planner({"upper", "echo"})});
  ASSERT_TRUE(Sees(*b_, "upper@a"));
  ASSERT_TRUE(Sees(*b_, "echo@c"));
  ASSERT_TRUE(Sees(*c_, "planner@b"));
  lf::a2a::v1::SendMessageResponse sent;
  ASSERT_TRUE(
      c_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("plan", "hi"), &sent).ok());
  const std::string root_id = sent.task().id();
  ASSERT_EQ(sent.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

  // Asked of A: forwarded to C (the owner), which finds the subtasks on B.
  v1::GetTaskTreeRequest request;
  request.set_task_id(root_id);
  v1::TaskTree tree;
  grpc::Status status = Admin(*a_)->GetTaskTree(Context().get(), request, &tree);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(tree.errors(), ElementsAre());
  EXPECT_EQ(tree.task().id(), root_id);
  EXPECT_EQ(tree.task().owner_node(), "c");
  EXPECT_EQ(tree.task().agent_id(), "planner@b");
  EXPECT_EQ(tree.task().agent_node(), "b");
  EXPECT_EQ(tree.task().skill(), "plan");
  EXPECT_EQ(tree.task().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(tree.task().task().artifacts_size(), 1);
  ASSERT_EQ(tree.subtasks_size(), 2);
  const v1::TaskSummary& first = tree.subtasks(0).task();
  const v1::TaskSummary& second = tree.subtasks(1).task();
  EXPECT_EQ(first.owner_node(), "b");
  EXPECT_EQ(first.parent_task_id(), root_id);
  EXPECT_EQ(first.skill(), "upper");  // delegated first
  EXPECT_EQ(first.agent_id(), "upper@a");
  EXPECT_THAT(first.hops(), ElementsAre("planner@b"));
  EXPECT_EQ(first.task().artifacts(0).parts_size(), 2);  // "H", "I"
  EXPECT_EQ(second.skill(), "echo");
  EXPECT_EQ(second.agent_id(), "echo@c");
  EXPECT_EQ(second.state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(tree.subtasks(0).subtasks_size(), 0);

  request.set_task_id("c~00000000-0000-4000-8000-000000000000");
  status = Admin(*a_)->GetTaskTree(Context().get(), request, &tree);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("not found"));
  request.set_task_id("");
  status = Admin(*a_)->GetTaskTree(Context().get(), request, &tree);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("task_id"));
}

TEST_F(AdminTest, ListTasksFiltersAndMergesTheWholeMesh) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_c = c_->StartAgent({Echo("echo")});
  auto on_b = b_->StartAgent({Planner({"upper", "echo"})});
  ASSERT_TRUE(Sees(*c_, "planner@b"));
  ASSERT_TRUE(Sees(*b_, "upper@a"));
  ASSERT_TRUE(Sees(*b_, "echo@c"));
  lf::a2a::v1::SendMessageResponse sent;
  ASSERT_TRUE(
      c_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("plan", "hi"), &sent).ok());
  ASSERT_TRUE(
      a_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("upper", "solo"), &sent).ok());

  auto ids = [&](const v1::ListTasksAdminRequest& request) {
    v1::ListTasksAdminResponse response;
    grpc::Status status = Admin(*a_)->ListTasks(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(response.errors(), ElementsAre());
    std::vector<std::string> result;
    for (const auto& task : response.tasks()) {
      result.push_back(absl::StrCat(task.owner_node(), ":", task.skill()));
    }
    return result;
  };
  v1::ListTasksAdminRequest own;
  EXPECT_THAT(ids(own), ElementsAre("a:upper"));
  v1::ListTasksAdminRequest all;
  all.set_all_nodes(true);
  EXPECT_THAT(ids(all), UnorderedElementsAre("a:upper", "c:plan", "b:echo", "b:upper"));
  v1::ListTasksAdminResponse merged;
  ASSERT_TRUE(Admin(*b_)->ListTasks(Context().get(), all, &merged).ok());
  for (int i = 1; i < merged.tasks_size(); ++i) {  // newest status first
    EXPECT_GE(TimeUtil::TimestampToMilliseconds(merged.tasks(i - 1).updated_at()),
              TimeUtil::TimestampToMilliseconds(merged.tasks(i).updated_at()));
  }
  all.set_skill("upper");
  EXPECT_THAT(ids(all), UnorderedElementsAre("a:upper", "b:upper"));
  all.set_skill("");
  all.set_limit(2);
  EXPECT_EQ(ids(all).size(), 2u);
  all.set_limit(0);
  all.set_state(lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(ids(all), ElementsAre());

  v1::ListTasksAdminRequest bad;
  bad.set_limit(5000);
  v1::ListTasksAdminResponse response;
  grpc::Status status = Admin(*a_)->ListTasks(Context().get(), bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("limit"));
}

TEST_F(AdminTest, ExplainRouteNamesThePickAndWhyOthersAreOut) {
  auto on_a = a_->StartAgent({Upper("upper")});
  auto on_b = b_->StartAgent({Echo("echo")});
  auto on_c = c_->StartAgent({Upper("upper")});
  ASSERT_TRUE(Sees(*a_, "upper@c"));
  ASSERT_TRUE(Sees(*a_, "echo@b"));
  v1::ExplainRouteRequest request;
  request.set_skill("upper");
  v1::RouteExplanation explanation;
  ASSERT_TRUE(Admin(*a_)->ExplainRoute(Context().get(), request, &explanation).ok());
  EXPECT_EQ(explanation.pick_agent_id(), "upper@a");  // local, as idle as upper@c
  EXPECT_EQ(explanation.pick_node_id(), "a");
  EXPECT_EQ(explanation.tied(), 1);
  EXPECT_TRUE(explanation.error().empty());
  ASSERT_EQ(explanation.candidates_size(), 3);
  EXPECT_EQ(explanation.candidates(0).agent_id(), "upper@a");
  EXPECT_DOUBLE_EQ(explanation.candidates(0).score(), -0.5);
  EXPECT_EQ(explanation.candidates(1).agent_id(), "upper@c");
  EXPECT_DOUBLE_EQ(explanation.candidates(1).score(), 0.0);
  EXPECT_EQ(explanation.candidates(2).agent_id(), "echo@b");
  EXPECT_EQ(explanation.candidates(2).excluded(), "no skill 'upper'");
  // ...and the router agrees.
  lf::a2a::v1::SendMessageResponse sent;
  ASSERT_TRUE(
      a_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("upper", "x"), &sent).ok());
  EXPECT_EQ(sent.task().status().message().parts(0).text(), "done on upper@a");

  // In a cycle, or for a skill nobody has: the error a request would get.
  request.add_hops("upper@a");
  ASSERT_TRUE(Admin(*a_)->ExplainRoute(Context().get(), request, &explanation).ok());
  EXPECT_EQ(explanation.pick_agent_id(), "upper@c");
  EXPECT_EQ(Candidate(explanation, "upper@a").excluded(),
            "already in the task's delegation chain: a cycle");
  request.clear_hops();
  request.set_skill("translate");
  ASSERT_TRUE(Admin(*a_)->ExplainRoute(Context().get(), request, &explanation).ok());
  EXPECT_TRUE(explanation.pick_agent_id().empty());
  EXPECT_THAT(explanation.error(), HasSubstr("no agent offers skill 'translate'"));

  // A draining node's agents are out.
  v1::DrainRequest drain;
  drain.set_node_id("c");
  v1::DrainResponse drained;
  ASSERT_TRUE(Admin(*a_)->Drain(Context().get(), drain, &drained).ok());
  request.set_skill("upper");
  ASSERT_TRUE(WaitFor([&] {
    Admin(*a_)->ExplainRoute(Context().get(), request, &explanation);
    return Candidate(explanation, "upper@c").excluded() == "node c is draining";
  }));
}

TEST_F(AdminTest, DrainStopsANodeTakingClientWorkAndTurnsItsHealthNotServing) {
  auto on_b = b_->StartAgent({Upper("upper")});
  ASSERT_TRUE(Sees(*a_, "upper@b"));
  EXPECT_EQ(Serving(*b_), "SERVING");
  v1::DrainRequest request;
  request.set_node_id("b");
  v1::DrainResponse response;
  grpc::Status status = Admin(*a_)->Drain(Context().get(), request, &response);  // via A
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.node_id(), "b");
  EXPECT_EQ(response.running_tasks(), 0);
  EXPECT_EQ(Serving(*b_), "NOT_SERVING");
  EXPECT_EQ(Serving(*a_), "SERVING");
  EXPECT_TRUE(WaitFor([&] {
    v1::ListAgentsResponse agents;
    Admin(*a_)->ListAgents(Context().get(), {}, &agents);
    return agents.agents_size() == 1 && agents.agents(0).health() == v1::AGENT_HEALTH_DRAINING;
  }));
  lf::a2a::v1::SendMessageResponse sent;
  status = b_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("upper", "x"), &sent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);

  // Undone: B takes client work again, is SERVING, and A routes to it.
  request.set_undo(true);
  status = Admin(*a_)->Drain(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.draining());
  EXPECT_EQ(Serving(*b_), "SERVING");
  EXPECT_TRUE(WaitFor([&] {
    v1::ListAgentsResponse agents;
    Admin(*a_)->ListAgents(Context().get(), {}, &agents);
    return agents.agents_size() == 1 && agents.agents(0).health() == v1::AGENT_HEALTH_READY;
  }));
  status = b_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("upper", "x"), &sent);
  EXPECT_TRUE(status.ok()) << status.error_message();
  status = a_->NewA2aStub()->SendMessage(A2aContext().get(), ForSkill("upper", "y"), &sent);
  EXPECT_TRUE(status.ok()) << status.error_message();
  request.set_undo(false);

  request.set_node_id("nowhere");
  status = Admin(*a_)->Drain(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("node nowhere is not a reachable member"));
}

TEST_F(AdminTest, WatchCatalogSendsTheStateThenEveryChange) {
  auto on_b = b_->StartAgent({Echo("echo")});
  ASSERT_TRUE(Sees(*a_, "echo@b"));
  auto context = Context();
  auto reader = Admin(*a_)->WatchCatalog(context.get(), v1::WatchCatalogRequest());
  auto next = [&] {
    v1::CatalogEvent event;
    EXPECT_TRUE(reader->Read(&event));
    return absl::StrCat(v1::CatalogEvent::Kind_Name(event.kind()), " ", event.node_id(), " ",
                        event.agent_id(), " ", absl::StrJoin(event.skills(), ","));
  };
  EXPECT_EQ(next(), "NODE_UP a  ");
  EXPECT_EQ(next(), "NODE_UP b  ");
  EXPECT_EQ(next(), "NODE_UP c  ");
  EXPECT_EQ(next(), "AGENT_ADDED b echo@b echo");
  EXPECT_EQ(next(), "SYNCED a  ");

  auto on_c = c_->StartAgent({Upper("upper")});
  EXPECT_EQ(next(), "AGENT_ADDED c upper@c upper");
  on_c.reset();
  EXPECT_EQ(next(), "AGENT_REMOVED c upper@c ");
  v1::DrainRequest drain;
  v1::DrainResponse drained;
  ASSERT_TRUE(Admin(*b_)->Drain(Context().get(), drain, &drained).ok());
  EXPECT_EQ(next(), "NODE_DRAINING b  ");
  on_b.reset();
  b_.reset();
  EXPECT_EQ(next(), "AGENT_REMOVED b echo@b ");
  EXPECT_EQ(next(), "NODE_DOWN b  ");
  context->TryCancel();
  v1::CatalogEvent event;
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace a2amesh
