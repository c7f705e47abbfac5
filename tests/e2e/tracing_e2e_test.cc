// Tracing end to end: three meshd processes export their spans to a test
// collector built on the official OpenTelemetry JS packages
// (tests/e2e/otel/collector.mjs: their OTLP protobuf definitions decode what
// the nodes send, over OTLP/gRPC and OTLP/HTTP), the official A2A JS SDK
// client sends a task with a traceparent, and the planner agent on one node
// delegates to the echo agent on another.

#include <algorithm>
#include <csignal>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "testing/e2e_mesh.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using google::protobuf::Struct;

// One span as the collector printed it.
struct Printed {
  std::string trace_id, span_id, parent, name, kind, node, via, authorization, trace_state;
  std::map<std::string, std::string> attributes;
  int status_code = 0;
};

std::string Text(const google::protobuf::Value& value) {
  if (value.has_string_value()) return value.string_value();
  if (value.has_number_value()) return absl::StrCat(value.number_value());
  if (value.has_bool_value()) return value.bool_value() ? "true" : "false";
  return "";
}

class TracingE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string otel_dir = testing::SourcePath("tests/e2e/otel");
    ASSERT_FALSE(testing::ReadFileOrEmpty(
                     otel_dir + "/node_modules/@opentelemetry/otlp-transformer/package.json")
                     .empty())
        << "the OpenTelemetry JS packages are not installed: run `npm ci` in " << otel_dir
        << " (tools/test does)";
    absl::StatusOr<Subprocess> collector =
        Subprocess::Start({"/usr/bin/env", "node", otel_dir + "/collector.mjs"},
                          dir_.File("collector.out"), dir_.File("collector.err"));
    ASSERT_TRUE(collector.ok()) << collector.status();
    collector_ = std::make_unique<Subprocess>(*std::move(collector));
    ASSERT_TRUE(WaitFor([&] { return ReadPorts(); }, absl::Seconds(30)))
        << testing::ReadFileOrEmpty(dir_.File("collector.err"));
  }

  void TearDown() override {
    if (collector_ != nullptr) {
      collector_->Signal(SIGCONT);
      collector_->Signal(SIGTERM);
      (void)collector_->Wait(absl::Seconds(10));
    }
    if (HasFailure()) {
      for (const char* log : {"n1.log", "n2.log", "n3.log", "collector.err", "client.err"}) {
        std::cerr << "--- " << log << " ---\n" << testing::ReadFileOrEmpty(dir_.File(log));
      }
    }
  }

  bool ReadPorts() {
    std::string out = testing::ReadFileOrEmpty(dir_.File("collector.out"));
    std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
    if (lines.empty()) return false;
    Struct first;
    if (!google::protobuf::util::JsonStringToMessage(lines[0], &first).ok()) return false;
    const auto& listening = first.fields().at("listening").struct_value().fields();
    grpc_port_ = static_cast<int>(listening.at("grpc").number_value());
    http_port_ = static_cast<int>(listening.at("http").number_value());
    return grpc_port_ > 0 && http_port_ > 0;
  }

  // Every span the collector printed so far.
  std::vector<Printed> Spans() {
    std::vector<Printed> spans;
    std::string out = testing::ReadFileOrEmpty(dir_.File("collector.out"));
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      Struct row;
      if (!google::protobuf::util::JsonStringToMessage(std::string(line), &row).ok()) continue;
      auto span_it = row.fields().find("span");
      if (span_it == row.fields().end()) continue;
      const auto& span = span_it->second.struct_value().fields();
      Printed p;
      p.trace_id = span.at("traceId").string_value();
      p.span_id = span.at("spanId").string_value();
      p.parent = span.at("parentSpanId").string_value();
      p.name = span.at("name").string_value();
      p.kind = span.at("kind").string_value();
      p.trace_state = span.at("traceState").string_value();
      for (const auto& [key, value] : span.at("attributes").struct_value().fields()) {
        p.attributes[key] = Text(value);
      }
      p.status_code = span.at("status").struct_value().fields().count("code")
                          ? (span.at("status").struct_value().fields().at("code").string_value() ==
                                     "STATUS_CODE_ERROR"
                                 ? 2
                                 : 0)
                          : 0;
      p.node = Text(row.fields().at("resource").struct_value().fields().at("service.instance.id"));
      p.via = row.fields().at("via").string_value();
      const auto& headers = row.fields().at("headers").struct_value().fields();
      if (auto it = headers.find("authorization"); it != headers.end()) {
        p.authorization = it->second.string_value();
      }
      spans.push_back(std::move(p));
    }
    return spans;
  }

  std::vector<Printed> Trace(const std::string& trace_id) {
    std::vector<Printed> out;
    for (Printed& p : Spans()) {
      if (p.trace_id == trace_id) out.push_back(std::move(p));
    }
    return out;
  }

  std::vector<std::string> Flags(const std::string& peer, bool http) {
    std::vector<std::string> flags = {"--ephemeral",
                                      "--peer-heartbeat",
                                      "200ms",
                                      "--peer-timeout",
                                      "1s",
                                      "--otlp-header",
                                      "authorization=Bearer e2e",
                                      "--otlp-endpoint",
                                      http ? absl::StrCat("http://127.0.0.1:", http_port_)
                                           : absl::StrCat("http://127.0.0.1:", grpc_port_)};
    if (http) {
      flags.push_back("--otlp-protocol");
      flags.push_back("http/protobuf");
    }
    if (!peer.empty()) {
      flags.push_back("--peers");
      flags.push_back(peer);
    }
    return flags;
  }

  testing::TempDir dir_;
  std::unique_ptr<Subprocess> collector_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

// The one span named `name` of `kind` printed for `node`; nullptr (and a
// failure) unless there is exactly one.
const Printed* Find(const std::vector<Printed>& spans, const std::string& node,
                    const std::string& name, const std::string& kind) {
  const Printed* found = nullptr;
  int count = 0;
  for (const Printed& p : spans) {
    if (p.node == node && p.name == name && p.kind == kind) {
      found = &p;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << name << " " << kind << " on " << node;
  return count == 1 ? found : nullptr;
}

TEST_F(TracingE2eTest, AJsSdkClientsTraceCoversEveryHopOnEveryBinding) {
  const std::string js_dir = testing::SourcePath("tests/e2e/js");
  E2eNode n1(dir_, "n1", Flags("", /*http=*/false));
  ASSERT_TRUE(n1.Start());
  E2eNode n2(dir_, "n2", Flags(n1.address(), /*http=*/false));
  E2eNode n3(dir_, "n3", Flags(n1.address(), /*http=*/true));  // OTLP/HTTP
  ASSERT_TRUE(n2.Start());
  ASSERT_TRUE(n3.Start());
  Subprocess planner = n2.StartAgent("planner-agent", {"--steps", "echo"});
  Subprocess echo = n3.StartAgent("echo-agent", {});
  ASSERT_TRUE(n1.WaitForAgent("planner"));
  ASSERT_TRUE(n1.WaitForAgent("echo"));

  int trace = 0;
  for (const char* binding : {"JSONRPC", "HTTP+JSON", "GRPC"}) {
    SCOPED_TRACE(binding);
    const std::string trace_id = absl::StrCat("4bf92f3577b34da6a3ce929d0e0e473", ++trace);
    const std::string client_span = "00f067aa0ba902b7";
    const std::string out = dir_.File(absl::StrCat("client", trace, ".out"));
    absl::StatusOr<Subprocess> client = Subprocess::Start(
        {"/usr/bin/env", "node", js_dir + "/traced-client.mjs",
         absl::StrCat("http://", n1.http_address()), binding, "plan", "trace me",
         absl::StrCat("00-", trace_id, "-", client_span, "-01"), "congo=t61rcWkgMzE"},
        out, dir_.File("client.err"));
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<int> code = client->Wait(absl::Seconds(60));
    ASSERT_TRUE(code.ok() && *code == 0) << testing::ReadFileOrEmpty(dir_.File("client.err"));
    ASSERT_NE(testing::ReadFileOrEmpty(out).find("TASK_STATE_COMPLETED"), std::string::npos)
        << testing::ReadFileOrEmpty(out);

    // n1: the call, its route, its handoff; n2: the handoff served, the
    // planner's turn, the subtask's route and handoff; n3: the handoff
    // served and the echo agent's turn.
    std::vector<Printed> spans;
    ASSERT_TRUE(WaitFor(
        [&] {
          spans = Trace(trace_id);
          // (Not counting the store commits the tasks waited for.)
          return std::count_if(spans.begin(), spans.end(),
                               [](const Printed& p) { return p.name != "task store commit"; }) >= 9;
        },
        absl::Seconds(30)))
        << "spans of trace " << trace_id << ": " << spans.size();
    // The call's server span: over HTTP, the HTTP request's (named by its
    // route, as OpenTelemetry's HTTP conventions name it).
    const std::string grpc = "GRPC";
    const std::string call_name = binding == grpc ? "lf.a2a.v1.A2AService/SendMessage"
                                  : binding == std::string("JSONRPC")
                                      ? "POST /a2a/jsonrpc"
                                      : "POST /a2a/rest/message:send";
    const Printed* call = Find(spans, "n1", call_name, "SPAN_KIND_SERVER");
    const Printed* route1 = Find(spans, "n1", "route", "SPAN_KIND_INTERNAL");
    const Printed* handoff1 = Find(spans, "n1", "a2amesh.v1.Peer/Handoff", "SPAN_KIND_CLIENT");
    const Printed* served2 = Find(spans, "n2", "a2amesh.v1.Peer/Handoff", "SPAN_KIND_SERVER");
    const Printed* turn2 = Find(spans, "n2", "agent turn", "SPAN_KIND_CLIENT");
    const Printed* route2 = Find(spans, "n2", "route", "SPAN_KIND_INTERNAL");
    const Printed* handoff2 = Find(spans, "n2", "a2amesh.v1.Peer/Handoff", "SPAN_KIND_CLIENT");
    const Printed* served3 = Find(spans, "n3", "a2amesh.v1.Peer/Handoff", "SPAN_KIND_SERVER");
    const Printed* turn3 = Find(spans, "n3", "agent turn", "SPAN_KIND_CLIENT");
    ASSERT_TRUE(call && route1 && handoff1 && served2 && turn2 && route2 && handoff2 && served3 &&
                turn3);
    EXPECT_EQ(call->parent, client_span);
    EXPECT_EQ(call->trace_state, "congo=t61rcWkgMzE");
    EXPECT_EQ(call->attributes.at(binding == grpc ? "rpc.method" : "a2a.method"), "SendMessage");
    if (binding != grpc) {
      EXPECT_EQ(call->attributes.at("http.request.method"), "POST");
      EXPECT_EQ(call->attributes.at("http.response.status_code"), "200");
    }
    EXPECT_EQ(route1->parent, call->span_id);
    EXPECT_EQ(route1->attributes.at("a2amesh.agent"), "planner@n2");
    EXPECT_EQ(handoff1->parent, call->span_id);
    EXPECT_EQ(served2->parent, handoff1->span_id);
    EXPECT_EQ(turn2->parent, served2->span_id);
    EXPECT_EQ(turn2->attributes.at("a2amesh.agent"), "planner");
    EXPECT_EQ(turn2->attributes.at("a2a.task.state"), "completed");
    EXPECT_EQ(route2->parent, turn2->span_id) << "the planner's subtask hangs off its turn";
    EXPECT_EQ(route2->attributes.at("a2amesh.skill"), "echo");
    EXPECT_EQ(handoff2->parent, turn2->span_id);
    EXPECT_EQ(served3->parent, handoff2->span_id);
    EXPECT_EQ(turn3->parent, served3->span_id);
    EXPECT_EQ(turn3->attributes.at("a2amesh.agent"), "echo");
    EXPECT_EQ(turn3->via, "http") << "n3 exports over OTLP/HTTP";
    EXPECT_EQ(call->via, "grpc");
    EXPECT_EQ(turn3->authorization, "Bearer e2e");
    EXPECT_EQ(call->authorization, "Bearer e2e");
  }
}

TEST_F(TracingE2eTest, WithoutATraceparentATraceStartsAndWithSamplingOffNothingIsSent) {
  std::vector<std::string> flags = Flags("", false);
  E2eNode traced(dir_, "n1", flags);
  ASSERT_TRUE(traced.Start());
  flags.push_back("--trace-sample-ratio");
  flags.push_back("0");
  flags.push_back("--peers");
  flags.push_back(traced.address());
  E2eNode unsampled(dir_, "n2", flags);
  ASSERT_TRUE(unsampled.Start());
  Subprocess echo1 = traced.StartAgent("echo-agent", {"--agent-id", "e1"});
  Subprocess echo2 = unsampled.StartAgent("echo-agent", {"--agent-id", "e2"});
  ASSERT_TRUE(traced.WaitForAgent("e1"));
  ASSERT_TRUE(unsampled.WaitForAgent("e2"));

  auto send = [](E2eNode& node, const std::string& agent) {
    auto stub = lf::a2a::v1::A2AService::NewStub(
        grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
    lf::a2a::v1::SendMessageRequest request = testing::SendText("hi");
    request.set_tenant(agent);
    lf::a2a::v1::SendMessageResponse response;
    return stub->SendMessage(testing::A2aContext().get(), request, &response).ok();
  };
  ASSERT_TRUE(send(unsampled, "e2"));
  ASSERT_TRUE(send(traced, "e1"));
  std::vector<Printed> spans;
  ASSERT_TRUE(WaitFor([&] {
    spans = Spans();
    for (const Printed& p : spans) {
      if (p.node == "n1" && p.name == "agent turn") return true;
    }
    return false;
  }));
  // The agent's turn is a child of the call that created the task, and that
  // call, which came without a traceparent, is the root of a new trace.
  const Printed* turn = Find(spans, "n1", "agent turn", "SPAN_KIND_CLIENT");
  ASSERT_NE(turn, nullptr);
  const Printed* call = nullptr;
  for (const Printed& p : spans) {
    if (p.span_id == turn->parent) call = &p;
  }
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->name, "lf.a2a.v1.A2AService/SendMessage");
  EXPECT_EQ(call->parent, "") << "a new trace: the call's span is its root";
  EXPECT_EQ(call->trace_id, turn->trace_id);
  // Sampling off: n2 exported nothing, and says so in its metrics.
  for (const Printed& p : spans) EXPECT_NE(p.node, "n2") << p.name;
  EXPECT_EQ(testing::ScrapeSample(unsampled.metrics_address(),
                                  "a2amesh_trace_spans_total{outcome=\"exported\"}"),
            0);
}

TEST_F(TracingE2eTest, ACollectorHeldStillDropsSpansAndDoesNotSlowTasks) {
  E2eNode node(dir_, "n1", Flags("", false));
  ASSERT_TRUE(node.Start());
  Subprocess echo = node.StartAgent("echo-agent", {"--max-concurrency", "8"});
  ASSERT_TRUE(node.WaitForAgent("echo"));
  // The collector stops answering: an export waits for it (up to its 10 s
  // deadline), and spans pile up behind it.
  collector_->Signal(SIGSTOP);
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
  // Three spans a task (call, route, turn): 1,000 tasks overflow the
  // tracer's queue of 2,048 spans.
  absl::Duration slowest;
  for (int i = 0; i < 1000; ++i) {
    lf::a2a::v1::SendMessageRequest request = testing::SendText("hi");
    request.set_tenant("echo");
    lf::a2a::v1::SendMessageResponse response;
    const absl::Time start = absl::Now();
    ASSERT_TRUE(stub->SendMessage(testing::A2aContext().get(), request, &response).ok());
    slowest = std::max(slowest, absl::Now() - start);
  }
  const std::optional<double> dropped = testing::ScrapeSample(
      node.metrics_address(), "a2amesh_trace_spans_total{outcome=\"dropped\"}");
  ASSERT_TRUE(dropped.has_value());
  EXPECT_GT(*dropped, 0) << "the queue is bounded: past it spans are dropped";
  // No task waited for the collector: one that had would have taken the
  // export's deadline (10 s); the bound leaves room for a loaded machine.
  EXPECT_LT(slowest, absl::Seconds(5)) << "the slowest task took " << slowest;
  collector_->Signal(SIGCONT);
  EXPECT_TRUE(WaitFor(
      [&] {
        return testing::ScrapeSample(node.metrics_address(),
                                     "a2amesh_trace_spans_total{outcome=\"exported\"}")
                   .value_or(0) > 0;
      },
      absl::Seconds(30)))
      << "the collector back, spans go out again";
}

}  // namespace
}  // namespace a2amesh
