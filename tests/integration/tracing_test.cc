// Traces across a mesh of three real nodes in one process, exported to a
// collector on loopback: the task's path (client -> a -> handoff -> b ->
// agent -> subtask -> handoff -> c -> agent) is one trace with the right
// parents and kinds.

#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"
#include "core/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "testing/http_client.h"
#include "testing/mesh_fixture.h"
#include "testing/temp_dir.h"
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

  // The spans of trace `trace_id` (hex), once `n` have come that are not
  // store commits (how many of those a task waits for depends on timing).
  std::vector<CollectedSpan> Trace(const std::string& trace_id, size_t n) {
    auto of_trace = [&](const std::vector<CollectedSpan>& spans) {
      std::vector<CollectedSpan> out;
      for (const auto& s : spans) {
        if (Hex(s.span.trace_id()) == trace_id) out.push_back(s);
      }
      return out;
    };
    return of_trace(collector_.WaitUntil([&](const std::vector<CollectedSpan>& spans) {
      size_t found = 0;
      for (const auto& s : of_trace(spans)) found += s.span.name() != "task store commit";
      return found >= n;
    }));
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
  EXPECT_EQ(Attribute(*route_a, "a2amesh.route.candidates"), "planner@b load=0");
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
    bool turn = false;
    bool call = false;
    for (const auto& s : spans) {
      turn = turn || (s.instance == "c" && s.span.name() == "agent turn");
      call = call || (s.instance == "a" && s.span.name() == "lf.a2a.v1.A2AService/SendMessage");
    }
    return turn && call;
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

// A webhook on loopback that keeps the traceparent of each POST.
class TraceparentReceiver {
 public:
  TraceparentReceiver() {
    auto server = http::Server::Start("127.0.0.1:0", http::ServerOptions(),
                                      [this](const http::Request& request) {
                                        absl::MutexLock lock(&mu_);
                                        const std::string* value = request.Header("traceparent");
                                        traceparents_.push_back(value ? *value : "");
                                        http::Response response;
                                        response.status = 204;
                                        return response;
                                      });
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_->port(), "/hook"); }
  std::vector<std::string> traceparents() const {
    absl::MutexLock lock(&mu_);
    return traceparents_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> traceparents_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<http::Server> server_;
};

TEST_F(TracingTest, AnHttpCallIsAnHttpServerSpanAndStoreCommitsAndPushesAreSpansToo) {
  NodeOptions options = Traced("d", {a_->address()}, collector_.endpoint());
  options.push_allow_private_targets = true;
  testing::TempDir dir;
  options.ephemeral = false;
  options.data_dir = dir.File("data");  // a real SQLite store: commits take time
  testing::NodeHarness d(options);
  auto echo = d.StartAgent({testing::Echo("echoer")});
  TraceparentReceiver webhook;
  const std::string address = absl::StrCat("127.0.0.1:", d.node().http_port());
  const std::string body = absl::StrCat(
      R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1",)",
      R"("role":"ROLE_USER","parts":[{"text":"hi"}]},"configuration":{)",
      R"("taskPushNotificationConfig":{"url":")", webhook.url(),
      R"("}},"metadata":{"a2amesh/skill":"echo"}}})");
  absl::StatusOr<std::string> raw = testing::HttpExchange(
      address, absl::StrCat("POST /a2a/jsonrpc HTTP/1.1\r\nHost: x\r\nA2A-Version: 1.0\r\n"
                            "Content-Type: application/json\r\ntraceparent: ",
                            kClientTraceparent, "\r\nContent-Length: ", body.size(),
                            "\r\nConnection: close\r\n\r\n", body));
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_THAT(*raw, ::testing::HasSubstr("TASK_STATE_COMPLETED"));

  // The call's span is the HTTP request's, with OpenTelemetry's HTTP server
  // attributes; the in-process gRPC call under it adds no second one.
  std::vector<CollectedSpan> spans = collector_.WaitUntil([](const auto& spans) {
    int needed = 0;
    for (const auto& s : spans) {
      needed += s.instance == "d" && (s.span.name() == "POST /a2a/jsonrpc" ||
                                      s.span.name() == "route" || s.span.name() == "agent turn");
    }
    return needed >= 3;
  });
  const Span* call = Find(spans, "d", "POST /a2a/jsonrpc", Span::SPAN_KIND_SERVER);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(Hex(call->trace_id()), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(Hex(call->parent_span_id()), "b7ad6b7169203331");
  EXPECT_EQ(Attribute(*call, "http.request.method"), "POST");
  EXPECT_EQ(Attribute(*call, "http.route"), "/a2a/jsonrpc");
  EXPECT_EQ(Attribute(*call, "url.path"), "/a2a/jsonrpc");
  EXPECT_EQ(Attribute(*call, "http.response.status_code"), "200");
  EXPECT_EQ(Attribute(*call, "a2a.method"), "SendMessage");
  for (const auto& s : spans) {
    EXPECT_NE(s.span.name(), "lf.a2a.v1.A2AService/SendMessage") << "on " << s.instance;
  }
  const Span* route = Find(spans, "d", "route", Span::SPAN_KIND_INTERNAL);
  const Span* turn = Find(spans, "d", "agent turn", Span::SPAN_KIND_CLIENT, "echoer");
  ASSERT_TRUE(route && turn);
  EXPECT_EQ(route->parent_span_id(), call->span_id());

  // The commits the task waited for (its create, its end), each in the
  // trace, and each POST to the webhook a CLIENT span whose context the
  // webhook got as its traceparent.
  // (`call` and `turn` point into `spans`: later ones go in `all`.)
  std::vector<CollectedSpan> all = collector_.WaitUntil([](const auto& spans) {
    int commits = 0;
    for (const auto& s : spans) commits += s.span.name() == "task store commit";
    return commits >= 2;
  });
  int commits = 0;
  for (const auto& s : all) {
    if (s.span.name() != "task store commit") continue;
    ++commits;
    EXPECT_EQ(s.instance, "d");
    EXPECT_EQ(s.span.trace_id(), call->trace_id());
    EXPECT_TRUE(s.span.parent_span_id() == call->span_id() ||
                s.span.parent_span_id() == turn->span_id())
        << "a commit is the call's (its create) or the turn's (its events)";
    EXPECT_EQ(s.span.status().code(), 0) << s.span.status().message();
  }
  EXPECT_GE(commits, 2);
  ASSERT_TRUE(testing::WaitFor([&] { return !webhook.traceparents().empty(); }));
  all = collector_.WaitUntil([&](const auto& spans) {
    size_t posts = 0;
    for (const auto& s : spans) posts += s.span.name() == "POST" && s.instance == "d";
    return posts >= webhook.traceparents().size();
  });
  for (const std::string& traceparent : webhook.traceparents()) {
    std::optional<trace::SpanContext> sent = trace::ParseTraceparent(traceparent);
    ASSERT_TRUE(sent.has_value()) << traceparent;
    EXPECT_EQ(sent->TraceIdHex(), "0af7651916cd43dd8448eb211c80319c");
    const Span* post = nullptr;
    for (const auto& s : all) {
      if (Hex(s.span.span_id()) == sent->SpanIdHex()) post = &s.span;
    }
    ASSERT_NE(post, nullptr) << "no span for the POST that sent " << traceparent;
    EXPECT_EQ(post->name(), "POST");
    EXPECT_EQ(post->kind(), Span::SPAN_KIND_CLIENT);
    EXPECT_EQ(post->parent_span_id(), call->span_id()) << "a POST is the task's";
    EXPECT_EQ(Attribute(*post, "url.full"), webhook.url());
    EXPECT_EQ(Attribute(*post, "http.response.status_code"), "204");
  }
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
