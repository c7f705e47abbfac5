// Traces across a mesh of three real nodes in one process, exported to a
// collector on loopback: the task's path (client -> a -> handoff -> b ->
// agent -> subtask -> handoff -> c -> agent) is one trace with the right
// parents and kinds.

#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "core/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/mesh_fixture.h"
#include "testing/trace_collector.h"
#include "trace/span_context.h"

namespace a2amesh {
namespace {

using opentelemetry::proto::trace::v1::Span;
using testing::CollectedSpan;

constexpr char kClientTraceparent[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

std::string Attribute(const Span& span, const std::string& key) {
  for (const auto& attribute : span.attributes()) {
    if (attribute.key() == key) {
      return attribute.value().has_string_value() ? attribute.value().string_value()
                                                  : std::to_string(attribute.value().int_value());
    }
  }
  return "";
}

class TracingTest : public testing::MeshFixture {
 protected:
  static NodeOptions Traced(const std::string& id, std::vector<std::string> peers,
                            const std::string& endpoint, double ratio = 1.0) {
    NodeOptions options = Options(id, std::move(peers));
    options.otlp.endpoint = endpoint;
    options.otlp.headers.emplace_back("authorization", "Bearer collector");
    options.trace_sample_ratio = ratio;
    return options;
  }

  void SetUp() override {
    a_ = std::make_unique<testing::NodeHarness>(Traced("a", {}, collector_.endpoint()));
    b_ =
        std::make_unique<testing::NodeHarness>(Traced("b", {a_->address()}, collector_.endpoint()));
    c_ =
        std::make_unique<testing::NodeHarness>(Traced("c", {a_->address()}, collector_.endpoint()));
    ASSERT_TRUE(testing::WaitFor([&] { return FullMesh({a_.get(), b_.get(), c_.get()}); }));
  }

  // The spans of trace `trace_id` (hex), once `n` have come.
  std::vector<CollectedSpan> Trace(const std::string& trace_id, size_t n) {
    auto of_trace = [&](const std::vector<CollectedSpan>& spans) {
      std::vector<CollectedSpan> out;
      for (const auto& s : spans) {
        if (Hex(s.span.trace_id()) == trace_id) out.push_back(s);
      }
      return out;
    };
    return of_trace(collector_.WaitUntil(
        [&](const std::vector<CollectedSpan>& spans) { return of_trace(spans).size() >= n; }));
  }

  testing::TraceCollector collector_;
};

// Finds the one span named `name` of `kind` on `node` (fails the test if
// there is not exactly one).
const Span* Find(const std::vector<CollectedSpan>& spans, const std::string& node,
                 const std::string& name, Span::SpanKind kind, const std::string& agent = "") {
  const Span* found = nullptr;
  int count = 0;
  for (const auto& s : spans) {
    if (s.instance == node && s.span.name() == name && s.span.kind() == kind &&
        (agent.empty() || Attribute(s.span, "a2amesh.agent") == agent)) {
      found = &s.span;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << name << " on " << node << " " << agent;
  return count == 1 ? found : nullptr;
}

TEST_F(TracingTest, ADelegatedTaskAcrossThreeNodesIsOneTraceWithItsParents) {
  auto planner = b_->StartAgent({testing::Planner({"echo"})});
  auto echo = c_->StartAgent({testing::Echo("echoer")});
  ASSERT_TRUE(Sees(*a_, "planner@b"));
  ASSERT_TRUE(Sees(*b_, "echoer@c"));

  auto stub = a_->NewA2aStub();
  auto context = testing::A2aContext();
  context->AddMetadata("traceparent", kClientTraceparent);
  context->AddMetadata("tracestate", "vendor=opaque");
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status =
      stub->SendMessage(context.get(), testing::ForSkill("plan", "hello"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

  // a: the call, its route, its handoff; b: the handoff served, the agent's
  // turn, the subtask's route and handoff; c: the handoff served, the turn.
  std::vector<CollectedSpan> spans = Trace("0af7651916cd43dd8448eb211c80319c", 9);
  ASSERT_GE(spans.size(), 9u);
  const Span* call = Find(spans, "a", "lf.a2a.v1.A2AService/SendMessage", Span::SPAN_KIND_SERVER);
  const Span* route_a = Find(spans, "a", "route", Span::SPAN_KIND_INTERNAL);
  const Span* handoff_a = Find(spans, "a", "a2amesh.v1.Peer/Handoff", Span::SPAN_KIND_CLIENT);
  const Span* served_b = Find(spans, "b", "a2amesh.v1.Peer/Handoff", Span::SPAN_KIND_SERVER);
  const Span* turn_b = Find(spans, "b", "agent turn", Span::SPAN_KIND_CLIENT, "planner");
  const Span* route_b = Find(spans, "b", "route", Span::SPAN_KIND_INTERNAL);
  const Span* handoff_b = Find(spans, "b", "a2amesh.v1.Peer/Handoff", Span::SPAN_KIND_CLIENT);
  const Span* served_c = Find(spans, "c", "a2amesh.v1.Peer/Handoff", Span::SPAN_KIND_SERVER);
  const Span* turn_c = Find(spans, "c", "agent turn", Span::SPAN_KIND_CLIENT, "echoer");
  ASSERT_TRUE(call && route_a && handoff_a && served_b && turn_b && route_b && handoff_b &&
              served_c && turn_c);

  EXPECT_EQ(Hex(call->parent_span_id()), "b7ad6b7169203331");  // the client's span
  EXPECT_EQ(call->trace_state(), "vendor=opaque");
  EXPECT_EQ(Attribute(*call, "rpc.method"), "SendMessage");
  EXPECT_EQ(route_a->parent_span_id(), call->span_id());
  EXPECT_EQ(Attribute(*route_a, "a2amesh.skill"), "plan");
  EXPECT_EQ(Attribute(*route_a, "a2amesh.agent"), "planner@b");
  EXPECT_EQ(handoff_a->parent_span_id(), call->span_id());
  EXPECT_EQ(Attribute(*handoff_a, "a2amesh.agent"), "planner@b");
  EXPECT_EQ(Attribute(*handoff_a, "a2a.task_id"), response.task().id());
  EXPECT_EQ(Attribute(*handoff_a, "a2a.task.state"), "completed");
  EXPECT_EQ(served_b->parent_span_id(), handoff_a->span_id());
  EXPECT_EQ(turn_b->parent_span_id(), served_b->span_id());
  EXPECT_EQ(Attribute(*turn_b, "a2amesh.skill"), "plan");
  EXPECT_EQ(route_b->parent_span_id(), turn_b->span_id()) << "the SDK sends its turn's context";
  EXPECT_EQ(Attribute(*route_b, "a2amesh.skill"), "echo");
  EXPECT_EQ(handoff_b->parent_span_id(), turn_b->span_id());
  EXPECT_EQ(Attribute(*handoff_b, "a2amesh.parent_task_id"), response.task().id());
  EXPECT_EQ(served_c->parent_span_id(), handoff_b->span_id());
  EXPECT_EQ(turn_c->parent_span_id(), served_c->span_id());
  // The turn's state changes are its events; every span sits in its parent.
  bool completed = false;
  for (const auto& event : turn_c->events()) {
    completed = completed || event.attributes(0).value().string_value() == "completed";
  }
  EXPECT_TRUE(completed);
  EXPECT_LE(call->start_time_unix_nano(), handoff_a->start_time_unix_nano());
  EXPECT_LE(turn_c->end_time_unix_nano(), call->end_time_unix_nano());
  EXPECT_EQ(collector_.authorization(), "Bearer collector");
}

TEST_F(TracingTest, ATaskWithoutTraceparentStartsATraceAndAFailureIsAnError) {
  auto echo = c_->StartAgent({testing::Echo("echoer")});
  ASSERT_TRUE(Sees(*a_, "echoer@c"));
  auto stub = a_->NewA2aStub();
  lf::a2a::v1::SendMessageResponse response;
  grpc::Status status =
      stub->SendMessage(testing::A2aContext().get(), testing::ForSkill("echo", "x"), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<CollectedSpan> spans = collector_.WaitUntil([](const auto& spans) {
    for (const auto& s : spans) {
      if (s.instance == "c" && s.span.name() == "agent turn") return true;
    }
    return false;
  });
  const Span* call = Find(spans, "a", "lf.a2a.v1.A2AService/SendMessage", Span::SPAN_KIND_SERVER);
  ASSERT_NE(call, nullptr);
  EXPECT_TRUE(call->parent_span_id().empty()) << "a new trace: the call's span is its root";
  const Span* turn = Find(spans, "c", "agent turn", Span::SPAN_KIND_CLIENT, "echoer");
  ASSERT_NE(turn, nullptr);
  EXPECT_EQ(turn->trace_id(), call->trace_id());

  // No agent has the skill: the route span says why.
  status =
      stub->SendMessage(testing::A2aContext().get(), testing::ForSkill("nobody", "x"), &response);
  ASSERT_FALSE(status.ok());
  spans = collector_.WaitUntil([](const auto& spans) {
    for (const auto& s : spans) {
      if (s.span.name() == "route" && s.span.status().code() == 2) return true;
    }
    return false;
  });
  bool named = false;
  for (const auto& s : spans) {
    if (s.span.name() == "route" && s.span.status().code() == 2) {
      named = s.span.status().message().find("nobody") != std::string::npos;
    }
  }
  EXPECT_TRUE(named);
}

TEST_F(TracingTest, JsonLogLinesAboutATaskCarryItsTraceId) {
  std::vector<std::string> lines;
  absl::Mutex mu;
  SetLogFormat(LogFormat::kJson);
  SetLogSinkForTesting([&](LogLevel, absl::string_view line) {
    absl::MutexLock lock(&mu);
    lines.emplace_back(line);
  });
  auto failing = b_->StartAgent({{"failing", testing::Card("failing", {"fail"}), 1,
                                  [](sdk::TaskContext& task) { task.Fail("no can do"); }}});
  ASSERT_TRUE(Sees(*a_, "failing@b"));
  auto context = testing::A2aContext();
  context->AddMetadata("traceparent", kClientTraceparent);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(
      a_->NewA2aStub()->SendMessage(context.get(), testing::ForSkill("fail", "x"), &response).ok());
  EXPECT_EQ(response.task().status().state(), lf::a2a::v1::TASK_STATE_FAILED);
  SetLogSinkForTesting(nullptr);
  SetLogFormat(LogFormat::kText);
  absl::MutexLock lock(&mu);
  int failed = 0;
  for (const std::string& line : lines) {
    if (line.find("\"msg\":\"task failed\"") == std::string::npos) continue;
    ++failed;
    EXPECT_NE(line.find("\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\""), std::string::npos)
        << line;
  }
  EXPECT_GE(failed, 1) << "b logs the agent's failure";
}

TEST_F(TracingTest, WithSamplingOffNothingIsExportedButACallersDecisionStands) {
  // A fourth node, sampling no new trace, to the same collector.
  testing::NodeHarness d(Traced("d", {a_->address()}, collector_.endpoint(), /*ratio=*/0.0));
  auto echo = d.StartAgent({testing::Echo("echoer")});
  auto stub = d.NewA2aStub();
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(testing::A2aContext().get(), testing::ForSkill("echo", "unsampled"),
                                &response)
                  .ok());
  // A caller that sampled its trace is followed: its spans come, and the
  // tracer sends in order, so the unsampled task's would have come first.
  auto context = testing::A2aContext();
  context->AddMetadata("traceparent", kClientTraceparent);
  ASSERT_TRUE(
      stub->SendMessage(context.get(), testing::ForSkill("echo", "sampled"), &response).ok());
  std::vector<CollectedSpan> spans = collector_.WaitUntil([](const auto& spans) {
    for (const auto& s : spans) {
      if (s.instance == "d" && s.span.name() == "agent turn") return true;
    }
    return false;
  });
  int from_d = 0;
  for (const auto& s : spans) {
    if (s.instance != "d") continue;
    ++from_d;
    EXPECT_EQ(Hex(s.span.trace_id()), "0af7651916cd43dd8448eb211c80319c") << s.span.name();
  }
  EXPECT_GE(from_d, 3);  // the call, its route, the turn
}

}  // namespace
}  // namespace a2amesh
