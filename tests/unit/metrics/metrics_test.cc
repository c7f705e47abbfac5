#include "metrics/metrics.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/http_client.h"

namespace a2amesh::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of the sample line `series` (name with labels) in `text`, or -1.
double Value(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double value = -1;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(series.size() + 1), &value)) << line;
      return value;
    }
  }
  return -1;
}

TEST(MetricsTest, TelemetryFeedsCountersAndHistograms) {
  Metrics metrics([] { return NodeSample(); });
  metrics.TaskCreated("echo");
  metrics.TaskCreated("echo");
  metrics.TaskFirstEvent("echo", absl::Milliseconds(3), "");
  metrics.TaskEnded("echo", "completed", absl::Milliseconds(40), "");
  metrics.TaskEnded("echo", "failed", absl::Seconds(3), "");
  metrics.Routed("local");
  metrics.Routed("remote");
  metrics.Routed("remote");
  metrics.Handoff("n2", "accepted", absl::Microseconds(700), "");
  metrics.Handoff("n3", "refused", absl::ZeroDuration(), "");
  metrics.StoreCommitted(absl::Microseconds(300), true);
  metrics.StoreCommitted(absl::Milliseconds(2), false);
  metrics.PushAttempt("retried", absl::ZeroDuration(), "");
  metrics.PushAttempt("delivered", absl::Milliseconds(4), "");
  const std::string text = metrics.Scrape();
  EXPECT_EQ(Value(text, "a2amesh_tasks_created_total{skill=\"echo\"}"), 2);
  EXPECT_EQ(Value(text, "a2amesh_tasks_ended_total{skill=\"echo\",state=\"completed\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_tasks_ended_total{skill=\"echo\",state=\"failed\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_task_duration_seconds_count{skill=\"echo\"}"), 2);
  EXPECT_DOUBLE_EQ(Value(text, "a2amesh_task_duration_seconds_sum{skill=\"echo\"}"), 3.04);
  EXPECT_EQ(Value(text, "a2amesh_task_duration_seconds_bucket{skill=\"echo\",le=\"0.05\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_task_first_event_seconds_count{skill=\"echo\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_routing_decisions_total{decision=\"remote\"}"), 2);
  EXPECT_EQ(Value(text, "a2amesh_routing_decisions_total{decision=\"none\"}"), 0);  // present
  EXPECT_EQ(Value(text, "a2amesh_handoffs_total{peer=\"n2\",result=\"accepted\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_handoffs_total{peer=\"n3\",result=\"refused\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_handoff_latency_seconds_count{peer=\"n2\"}"), 1);
  EXPECT_THAT(text, Not(HasSubstr("a2amesh_handoff_latency_seconds_count{peer=\"n3\"}")));
  EXPECT_EQ(Value(text, "a2amesh_store_commit_seconds_count"), 2);
  EXPECT_EQ(Value(text, "a2amesh_store_commit_failures_total"), 1);
  EXPECT_EQ(Value(text, "a2amesh_push_notifications_total{outcome=\"retried\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_push_notifications_total{outcome=\"delivered\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_push_notifications_total{outcome=\"dropped\"}"), 0);  // present
  EXPECT_EQ(Value(text, "a2amesh_push_delivery_seconds_count"), 1);
}

// A line of `text` that starts with `prefix`, or "".
std::string Line(const std::string& text, const std::string& prefix) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, prefix)) return std::string(line);
  }
  return "";
}

TEST(MetricsTest, OpenMetricsCarriesTheLastSampledTraceOfEachBucketAsItsExemplar) {
  Metrics metrics([] { return NodeSample(); });
  const std::string slow = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string fast = "0af7651916cd43dd8448eb211c80319c";
  const std::string faster = "11111111111111111111111111111111";
  metrics.TaskEnded("echo", "completed", absl::Milliseconds(40), fast);
  metrics.TaskEnded("echo", "completed", absl::Milliseconds(45), faster);  // same bucket: replaces
  metrics.TaskEnded("echo", "completed", absl::Seconds(3), slow);
  metrics.TaskEnded("echo", "completed", absl::Milliseconds(7), "");  // unsampled: none
  metrics.GrpcHandled("lf.a2a.v1.A2AService", "SendMessage", 0, absl::Milliseconds(3), slow);
  metrics.PushAttempt("delivered", absl::Milliseconds(4), fast);

  const std::string om = metrics.Scrape(Format::kOpenMetrics);
  const std::string bucket = "a2amesh_task_duration_seconds_bucket{skill=\"echo\",le=";
  EXPECT_THAT(
      Line(om, bucket + "\"0.05\"}"),
      ::testing::MatchesRegex(".*\\} 3 # \\{trace_id=\"" + faster + "\"\\} 0\\.045 [0-9.]+$"));
  EXPECT_THAT(Line(om, bucket + "\"5\"}"),
              ::testing::MatchesRegex(".*\\} 4 # \\{trace_id=\"" + slow + "\"\\} 3 [0-9.]+$"));
  EXPECT_THAT(Line(om, bucket + "\"0.01\"}"), Not(HasSubstr("#"))) << "the untraced task's";
  EXPECT_THAT(Line(om,
                   "a2amesh_grpc_request_duration_seconds_bucket{service=\"lf.a2a.v1."
                   "A2AService\",method=\"SendMessage\",le=\"0.005\"}"),
              HasSubstr("# {trace_id=\"" + slow + "\"} 0.003 "));
  EXPECT_THAT(Line(om, "a2amesh_push_delivery_seconds_bucket{le=\"0.005\"}"),
              HasSubstr("# {trace_id=\"" + fast + "\"}"));
  // The exemplar's timestamp is now, in seconds.
  const std::string line = Line(om, bucket + "\"5\"}");
  double at = 0;
  ASSERT_TRUE(absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &at)) << line;
  EXPECT_NEAR(at, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()), 60);

  // OpenMetrics' framing: counters' families named without _total (their
  // samples keep it), an # EOF at the end.
  EXPECT_THAT(om, HasSubstr("# TYPE a2amesh_tasks_ended counter\n"));
  EXPECT_THAT(om, HasSubstr("\na2amesh_tasks_ended_total{skill=\"echo\",state=\"completed\"} 4\n"));
  EXPECT_THAT(om, HasSubstr("# TYPE process_cpu_seconds counter\n"));
  EXPECT_TRUE(absl::EndsWith(om, "\n# EOF\n"));

  // The text format has no exemplars, and keeps its own names.
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, Not(HasSubstr("trace_id")));
  EXPECT_THAT(text, HasSubstr("# TYPE a2amesh_tasks_ended_total counter\n"));
  EXPECT_THAT(text, Not(HasSubstr("# EOF")));
}

TEST(MetricsTest, TheScraperChoosesTheFormatByItsAcceptHeader) {
  EXPECT_EQ(NegotiateFormat(nullptr), Format::kText);
  const std::string prometheus =
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
      "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  EXPECT_EQ(NegotiateFormat(&prometheus), Format::kOpenMetrics);
  const std::string text_only = "text/plain;version=0.0.4";
  EXPECT_EQ(NegotiateFormat(&text_only), Format::kText);
  const std::string refused = "application/openmetrics-text; q=0, text/plain";
  EXPECT_EQ(NegotiateFormat(&refused), Format::kText);
  const std::string spaced = "text/plain; q=0.5, Application/OpenMetrics-Text ; version=1.0.0";
  EXPECT_EQ(NegotiateFormat(&spaced), Format::kOpenMetrics);

  Metrics metrics([] { return NodeSample(); });
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  absl::StatusOr<testing::HttpResult> om =
      testing::HttpGet(address, "/metrics", {{"Accept", prometheus}});
  ASSERT_TRUE(om.ok()) << om.status();
  EXPECT_THAT(om->headers, HasSubstr("application/openmetrics-text; version=1.0.0; charset=utf-8"));
  EXPECT_TRUE(absl::EndsWith(om->body, "# EOF\n"));
  absl::StatusOr<testing::HttpResult> text = testing::HttpGet(address, "/metrics");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(text->headers, HasSubstr("text/plain; version=0.0.4"));
}

TEST(MetricsTest, NumbersKeepEveryDigit) {
  Metrics metrics([] {
    NodeSample sample;
    sample.skills = 1234567891;  // more than six significant digits
    sample.push_queued = 7;
    return sample;
  });
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("\na2amesh_skills 1234567891\n"));
  EXPECT_THAT(text, HasSubstr("\na2amesh_push_queued 7\n"));
  EXPECT_THAT(text, HasSubstr("le=\"0.00025\"}"));
}

TEST(MetricsTest, GaugesAreReadFromTheNodeAtEachScrape) {
  int scrapes = 0;
  Metrics metrics([&] {
    ++scrapes;
    NodeSample sample;
    sample.peers = {{"up", 2}, {"down", 1}, {"draining", 0}};
    sample.agents = {{"local", 3}, {"remote", 5}};
    sample.skills = 4;
    sample.open_streams = {{"a2a", scrapes}};
    sample.tasks = {{"working", 7}};
    sample.draining = true;
    sample.push_queued = 9;
    return sample;
  });
  std::string text = metrics.Scrape();
  EXPECT_EQ(Value(text, "a2amesh_peers{state=\"up\"}"), 2);
  EXPECT_EQ(Value(text, "a2amesh_peers{state=\"down\"}"), 1);
  EXPECT_EQ(Value(text, "a2amesh_agents{location=\"remote\"}"), 5);
  EXPECT_EQ(Value(text, "a2amesh_skills"), 4);
  EXPECT_EQ(Value(text, "a2amesh_tasks{state=\"working\"}"), 7);
  EXPECT_EQ(Value(text, "a2amesh_draining"), 1);
  EXPECT_EQ(Value(text, "a2amesh_push_queued"), 9);
  EXPECT_EQ(Value(text, "a2amesh_open_streams{kind=\"a2a\"}"), 1);
  EXPECT_THAT(text, HasSubstr(absl::StrCat("a2amesh_build_info{version=\"", Version(),
                                           "\",revision=\"", Revision(), "\"} 1\n")));
  EXPECT_STRNE(Revision(), "");
  text = metrics.Scrape();
  EXPECT_EQ(Value(text, "a2amesh_open_streams{kind=\"a2a\"}"), 2);  // read again
}

TEST(MetricsTest, RequestsAreCountedByWhatTheyWereAndHowTheyEnded) {
  Metrics metrics([] { return NodeSample(); });
  metrics.GrpcHandled("lf.a2a.v1.A2AService", "SendMessage", 0, absl::Milliseconds(3), "");
  metrics.GrpcHandled("lf.a2a.v1.A2AService", "SendMessage", 0, absl::Milliseconds(4), "");
  metrics.GrpcHandled("lf.a2a.v1.A2AService", "SendMessage", 8, absl::Milliseconds(1), "");
  metrics.GrpcHandled("a2amesh.v1.Admin", "Drain", 99, absl::Seconds(1), "");  // not a gRPC code
  metrics.HttpHandled("jsonrpc", "GetTask", 200, absl::Milliseconds(2), "");
  metrics.HttpHandled("jsonrpc", "GetTask", 200, absl::Milliseconds(3), "");
  metrics.HttpHandled("jsonrpc", "GetTask", 404, absl::Milliseconds(1), "");
  metrics.HttpHandled("server", "", 413, absl::ZeroDuration(), "");
  const std::string text = metrics.Scrape();
  const std::string send = "service=\"lf.a2a.v1.A2AService\",method=\"SendMessage\"";
  EXPECT_EQ(Value(text, absl::StrCat("a2amesh_grpc_requests_total{", send, ",code=\"OK\"}")), 2);
  EXPECT_EQ(Value(text, absl::StrCat("a2amesh_grpc_requests_total{", send,
                                     ",code=\"RESOURCE_EXHAUSTED\"}")),
            1);
  EXPECT_EQ(Value(text, absl::StrCat("a2amesh_grpc_request_duration_seconds_count{", send, "}")),
            3);
  EXPECT_EQ(Value(text,
                  "a2amesh_grpc_requests_total{service=\"a2amesh.v1.Admin\","
                  "method=\"Drain\",code=\"UNKNOWN\"}"),
            1);
  EXPECT_EQ(Value(text,
                  "a2amesh_http_requests_total{binding=\"jsonrpc\",method=\"GetTask\","
                  "code=\"200\"}"),
            2);
  EXPECT_EQ(Value(text,
                  "a2amesh_http_requests_total{binding=\"jsonrpc\",method=\"GetTask\","
                  "code=\"404\"}"),
            1);
  EXPECT_EQ(Value(text,
                  "a2amesh_http_requests_total{binding=\"server\",method=\"\","
                  "code=\"413\"}"),
            1);
  EXPECT_EQ(Value(text,
                  "a2amesh_http_request_duration_seconds_bucket{binding=\"jsonrpc\","
                  "method=\"GetTask\",le=\"0.0025\"}"),
            2);
}

TEST(MetricsTest, ProcessMetricsDescribeThisProcess) {
  Metrics metrics([] { return NodeSample(); });
  const std::string text = metrics.Scrape();
  EXPECT_GT(Value(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Value(text, "process_virtual_memory_bytes"),
            Value(text, "process_resident_memory_bytes"));
  EXPECT_GE(Value(text, "process_cpu_seconds_total"), 0);
  EXPECT_GE(Value(text, "process_open_fds"), 3);  // stdin, stdout, stderr at least
  EXPECT_GT(Value(text, "process_max_fds"), 0);
  const double start = Value(text, "process_start_time_seconds");
  const double now = static_cast<double>(absl::ToUnixSeconds(absl::Now()));
  EXPECT_GT(start, now - 3600);  // started within the hour, not in the future
  EXPECT_LE(start, now + 1);
}

TEST(MetricsTest, TheServerServesTheScrapeOverHttpAndNamesABusyAddress) {
  Metrics metrics([] { return NodeSample(); });
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  absl::StatusOr<std::unique_ptr<MetricsServer>> again =
      MetricsServer::Start(absl::StrCat("127.0.0.1:", (*server)->port()), metrics);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("--metrics-address"));
}

TEST(MetricsTest, TheServerAnswersProbesWithTheNodesReadiness) {
  Metrics metrics([] { return NodeSample(); });
  std::atomic<bool> ready{true};
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", metrics, nullptr, [&ready] { return ready.load(); });
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  auto status = [&](const std::string& path) {
    absl::StatusOr<testing::HttpResult> result = testing::HttpGet(address, path);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->status : 0;
  };
  EXPECT_EQ(status("/livez"), 200);
  EXPECT_EQ(status("/readyz"), 200);
  ready = false;  // draining: out of the Service, still alive
  EXPECT_EQ(status("/readyz"), 503);
  EXPECT_EQ(status("/livez"), 200);
  EXPECT_EQ(status("/healthz"), 404);
}

}  // namespace
}  // namespace a2amesh::metrics
