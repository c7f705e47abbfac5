#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "http/fetch.h"
#include "http/http_server.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "testing/trace_collector.h"
#include "trace/otlp_exporter.h"
#include "trace/span_context.h"
#include "trace/tracer.h"

namespace a2amesh::trace {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp = ::opentelemetry::proto::trace::v1;

constexpr absl::string_view kW3cExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceparentTest, ReadsTheSpecificationsExampleAndWritesItBack) {
  std::optional<SpanContext> context = ParseTraceparent(kW3cExample);
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(context->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(context->SpanIdHex(), "00f067aa0ba902b7");
  EXPECT_TRUE(context->sampled());
  EXPECT_EQ(FormatTraceparent(*context), kW3cExample);
  context = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(context.has_value());
  EXPECT_FALSE(context->sampled());
}

TEST(TraceparentTest, RefusesWhatTheSpecificationRefuses) {
  for (absl::string_view bad : {
           "",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // uppercase
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span id
           "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",    // misplaced dash
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 with more
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
       }) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << bad;
  }
}

TEST(TraceparentTest, ALaterVersionIsReadByItsFirstFourFields) {
  std::optional<SpanContext> context =
      ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-future-stuff");
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(context->TraceIdHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(context->flags, 0x01);  // flags it does not know are not passed on
  EXPECT_FALSE(ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09future")
                   .has_value());
}

TEST(TraceparentTest, KeepsAWellFormedTracestateOnly) {
  auto kept = ParseTraceContext(kW3cExample, "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->trace_state, "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
  std::string many;
  for (int i = 0; i < 33; ++i) absl::StrAppend(&many, i == 0 ? "" : ",", "k", i, "=v");
  for (const std::string& bad :
       {many, std::string("novalue"), std::string("a=b\x01"), std::string(600, 'a') + "=b"}) {
    auto dropped = ParseTraceContext(kW3cExample, bad);
    ASSERT_TRUE(dropped.has_value()) << "the traceparent stands without its tracestate";
    EXPECT_EQ(dropped->trace_state, "") << bad;
  }
}

TEST(DisabledTracerTest, PassesTheCallersContextOn) {
  Tracer* tracer = Tracer::Disabled();
  SpanContext parent = *ParseTraceContext(kW3cExample, "a=b");
  Span span = tracer->StartSpan("x", SpanKind::kServer, &parent, /*remote=*/true);
  EXPECT_FALSE(span.recording());
  EXPECT_EQ(span.context(), parent);
  Span root = tracer->StartSpan("x", SpanKind::kServer, nullptr);
  EXPECT_FALSE(root.context().valid());
}

class TracerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Tracer> MakeTracer(TracerOptions options) {
    OtlpOptions otlp;
    otlp.endpoint = collector_.endpoint();
    otlp.headers.emplace_back("Authorization", "Bearer collector-token");
    auto exporter = MakeOtlpExporter(otlp);
    EXPECT_TRUE(exporter.ok()) << exporter.status();
    options.resource = {{"service.name", "meshd"}, {"service.instance.id", "node-a"}};
    options.export_interval = absl::Milliseconds(20);
    return std::make_unique<Tracer>(std::move(options), *std::move(exporter));
  }

  testing::TraceCollector collector_{/*held=*/true};
};

TEST_F(TracerTest, SpansReachTheCollectorWithParentsKindsAttributesAndResource) {
  collector_.Release();
  std::unique_ptr<Tracer> tracer = MakeTracer(TracerOptions());
  SpanContext caller = *ParseTraceContext(kW3cExample, "congo=t61rcWkgMzE");
  Span server = tracer->StartSpan("lf.a2a.v1.A2AService/SendMessage", SpanKind::kServer, &caller,
                                  /*remote=*/true);
  ASSERT_TRUE(server.recording());
  EXPECT_EQ(server.context().TraceIdHex(), caller.TraceIdHex());
  EXPECT_NE(server.context().span_id, caller.span_id);
  server.SetAttribute("rpc.system", "grpc");
  Span child = tracer->StartSpan("route", SpanKind::kInternal, &server.context());
  child.SetAttribute("a2amesh.route.candidates", int64_t{3});
  child.AddEvent("state", "a2a.task.state", "WORKING");
  child.SetError("no agent");
  child.End();
  server.End();

  std::vector<testing::CollectedSpan> spans = collector_.WaitForSpans(2);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].instance, "node-a");
  const otlp::Span& route = spans[0].span;
  const otlp::Span& call = spans[1].span;
  EXPECT_EQ(call.name(), "lf.a2a.v1.A2AService/SendMessage");
  EXPECT_EQ(call.kind(), otlp::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(call.trace_id(), std::string(caller.trace_id.begin(), caller.trace_id.end()));
  EXPECT_EQ(call.parent_span_id(), std::string(caller.span_id.begin(), caller.span_id.end()));
  EXPECT_EQ(call.trace_state(), "congo=t61rcWkgMzE");
  EXPECT_EQ(call.flags(), 0x301u);  // sampled; the parent is remote
  EXPECT_GE(call.end_time_unix_nano(), call.start_time_unix_nano());
  ASSERT_EQ(call.attributes_size(), 1);
  EXPECT_EQ(call.attributes(0).key(), "rpc.system");
  EXPECT_EQ(call.attributes(0).value().string_value(), "grpc");
  EXPECT_EQ(route.kind(), otlp::Span::SPAN_KIND_INTERNAL);
  EXPECT_EQ(route.parent_span_id(), call.span_id());
  EXPECT_EQ(route.flags(), 0x101u);  // a local parent
  EXPECT_EQ(route.attributes(0).value().int_value(), 3);
  ASSERT_EQ(route.events_size(), 1);
  EXPECT_EQ(route.events(0).attributes(0).value().string_value(), "WORKING");
  EXPECT_EQ(route.status().code(), otlp::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(route.status().message(), "no agent");

  ASSERT_FALSE(collector_.requests().empty());
  collector::ExportTraceServiceRequest request = collector_.requests().front();
  ASSERT_EQ(request.resource_spans_size(), 1);
  const auto& resource = request.resource_spans(0).resource();
  ASSERT_EQ(resource.attributes_size(), 2);
  EXPECT_EQ(resource.attributes(1).key(), "service.instance.id");
  EXPECT_EQ(resource.attributes(1).value().string_value(), "node-a");
  EXPECT_EQ(request.resource_spans(0).scope_spans(0).scope().name(), "a2a-mesh");
  EXPECT_EQ(collector_.authorization(), "Bearer collector-token");
}

TEST_F(TracerTest, SamplingFollowsTheParentAndTheRatioDecidesRoots) {
  collector_.Release();
  TracerOptions options;
  options.sample_ratio = 0.0;
  std::unique_ptr<Tracer> tracer = MakeTracer(options);
  Span root = tracer->StartSpan("root", SpanKind::kServer, nullptr);
  EXPECT_FALSE(root.recording());
  EXPECT_TRUE(root.context().valid()) << "an unsampled span still has a context to pass on";
  EXPECT_FALSE(root.context().sampled());
  Span unsampled_child = tracer->StartSpan("child", SpanKind::kClient, &root.context());
  EXPECT_FALSE(unsampled_child.recording());
  SpanContext sampled = *ParseTraceparent(kW3cExample);
  Span child = tracer->StartSpan("child of a sampled caller", SpanKind::kServer, &sampled, true);
  EXPECT_TRUE(child.recording()) << "parent-based: the caller's decision stands";
  child.End();
  EXPECT_EQ(collector_.WaitForSpans(1).size(), 1u);

  TracerOptions always;
  always.sample_ratio = 1.0;
  std::unique_ptr<Tracer> on = MakeTracer(always);
  SpanContext not_sampled =
      *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  EXPECT_FALSE(on->StartSpan("x", SpanKind::kServer, &not_sampled, true).recording());
  EXPECT_TRUE(on->StartSpan("x", SpanKind::kServer, nullptr).recording());
}

TEST_F(TracerTest, ACollectorHeldStillCostsDroppedSpansNotWaits) {
  // The collector does not answer: the first batch is stuck in Export, the
  // queue fills, and ending more spans drops them without waiting.
  TracerOptions options;
  options.max_queue = 8;
  options.max_batch = 2;
  std::unique_ptr<Tracer> tracer = MakeTracer(options);
  constexpr int kSpans = 200;
  for (int i = 0; i < kSpans; ++i) {
    tracer->StartSpan("t", SpanKind::kInternal, nullptr).End();
  }
  EXPECT_GE(tracer->dropped(), static_cast<uint64_t>(kSpans - 8 - 2));
  collector_.Release();
  const uint64_t dropped = tracer->dropped();
  std::vector<testing::CollectedSpan> spans = collector_.WaitForSpans(kSpans - dropped);
  EXPECT_EQ(spans.size() + dropped, static_cast<uint64_t>(kSpans));
}

TEST(OtlpHttpTest, APostOfProtobufToV1TracesWithTheHeaders) {
  if (!http::CanFetch()) GTEST_SKIP() << "built without libcurl";
  absl::Mutex mu;
  std::vector<http::Request> seen;
  auto server =
      http::Server::Start("127.0.0.1:0", http::ServerOptions(), [&](const http::Request& request) {
        absl::MutexLock lock(&mu);
        seen.push_back(request);
        http::Response response;
        response.content_type = "application/x-protobuf";
        return response;
      });
  ASSERT_TRUE(server.ok()) << server.status();
  OtlpOptions otlp;
  otlp.protocol = OtlpOptions::Protocol::kHttpProtobuf;
  otlp.endpoint = absl::StrCat("http://127.0.0.1:", (*server)->port());
  otlp.headers.emplace_back("x-honeycomb-team", "key");
  auto exporter = MakeOtlpExporter(otlp);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  collector::ExportTraceServiceRequest request;
  request.add_resource_spans()->add_scope_spans()->add_spans()->set_name("posted");
  ASSERT_TRUE((*exporter)->Export(request).ok());
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/traces");
  ASSERT_NE(seen[0].Header("content-type"), nullptr);
  EXPECT_EQ(*seen[0].Header("content-type"), "application/x-protobuf");
  ASSERT_NE(seen[0].Header("x-honeycomb-team"), nullptr);
  collector::ExportTraceServiceRequest got;
  ASSERT_TRUE(got.ParseFromString(seen[0].body));
  EXPECT_EQ(got.resource_spans(0).scope_spans(0).spans(0).name(), "posted");
}

TEST(OtlpOptionsTest, BadOptionsAreRefusedNamingWhatIsWrong) {
  EXPECT_EQ(ParseOtlpProtocol("http/json").status().message(),
            "--otlp-protocol: \"http/json\" is not one of grpc, http/protobuf");
  OtlpOptions options;
  EXPECT_EQ(MakeOtlpExporter(options).status().message(), "--otlp-endpoint: is empty");
  options.endpoint = "collector:4317/v1/traces";
  EXPECT_EQ(MakeOtlpExporter(options).status().message(),
            "--otlp-endpoint collector:4317/v1/traces: OTLP/gRPC needs host:port (optionally "
            "after http:// or https://), without a path");
  options.endpoint = "collector:4318";
  options.protocol = OtlpOptions::Protocol::kHttpProtobuf;
  EXPECT_EQ(MakeOtlpExporter(options).status().message(),
            "--otlp-endpoint collector:4318: OTLP/HTTP needs a URL (http://host:4318 or "
            "https://...)");
  options.protocol = OtlpOptions::Protocol::kGrpc;
  options.headers.emplace_back("x api key", "x");
  EXPECT_EQ(MakeOtlpExporter(options).status().message(),
            "--otlp-header \"x api key\": a header needs a name without spaces or colons, and "
            "its value on one line");
}

}  // namespace
}  // namespace a2amesh::trace
