// Observability end to end: two meshd processes, a real Prometheus scraping
// them, and checks through Prometheus' HTTP API that the series hold what the
// test did. Also: promtool lints each node's /metrics, the alert rules load,
// every dashboard query parses, and a draining node's gRPC health turns
// NOT_SERVING while its task finishes.

#include <signal.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/http_client.h"
#include "testing/node_harness.h"
#include "testing/proto_builders.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::A2aContext;
using ::a2amesh::testing::E2eNode;
using ::a2amesh::testing::HttpGet;
using ::a2amesh::testing::ReadFileOrEmpty;
using ::a2amesh::testing::Subprocess;
using ::a2amesh::testing::WaitFor;
using ::testing::HasSubstr;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kPromtool[] = "/usr/bin/promtool";

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

class PrometheusE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"n1.log", "n2.log", "prometheus.log"}) {
        std::cerr << "--- " << log << " ---\n" << ReadFileOrEmpty(dir_.File(log));
      }
    }
  }

  // Tasks in memory only, unless `data_dir` is given.
  static std::vector<std::string> Flags(const std::string& peer, const std::string& data_dir = "") {
    std::vector<std::string> flags = {"--peer-heartbeat", "200ms", "--peer-timeout", "1s",
                                      "--drain-timeout",  "20s"};
    if (data_dir.empty()) {
      flags.push_back("--ephemeral");
    } else {
      flags.insert(flags.end(), {"--data-dir", data_dir});
    }
    if (!peer.empty()) flags.insert(flags.end(), {"--peers", peer});
    return flags;
  }

  // Starts Prometheus scraping `targets` every second, with the alert rules.
  bool StartPrometheus(const std::vector<std::string>& targets) {
    std::ofstream config(dir_.File("prometheus.yml"));
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           << "rule_files:\n  - " << testing::SourcePath("deploy/prometheus/alerts.yml") << "\n"
           << "scrape_configs:\n  - job_name: a2a-mesh\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i)
      config << (i ? ", " : "") << "'" << targets[i] << "'";
    config << "]\n";
    config.close();
    prometheus_address_ = absl::StrCat("127.0.0.1:", testing::PickFreePort());
    absl::StatusOr<Subprocess> process = Subprocess::Start(
        {kPrometheus, "--config.file=" + dir_.File("prometheus.yml"),
         "--storage.tsdb.path=" + dir_.File("tsdb"), "--web.listen-address=" + prometheus_address_,
         "--enable-feature=exemplar-storage"},
        dir_.File("prometheus.log"));
    if (!process.ok()) return false;
    prometheus_ = std::make_unique<Subprocess>(*std::move(process));
    return WaitFor([&] {
      absl::StatusOr<testing::HttpResult> ready = HttpGet(prometheus_address_, "/-/ready");
      return ready.ok() && ready->status == 200;
    });
  }

  // GET /api/v1/<what>, parsed; an empty Struct on failure.
  google::protobuf::Struct Api(const std::string& what) {
    google::protobuf::Struct body;
    absl::StatusOr<testing::HttpResult> result = HttpGet(prometheus_address_, "/api/v1/" + what);
    if (!result.ok()) return body;
    if (!google::protobuf::util::JsonStringToMessage(result->body, &body).ok()) body.Clear();
    return body;
  }

  // The instant vector for `query`: {instance -> value} (instance "" if the
  // series has none).
  std::map<std::string, double> Query(const std::string& query) {
    std::map<std::string, double> values;
    google::protobuf::Struct body = Api("query?query=" + UrlEncode(query));
    if (body.fields().count("data") == 0) return values;
    for (const auto& sample :
         body.fields().at("data").struct_value().fields().at("result").list_value().values()) {
      const auto& fields = sample.struct_value().fields();
      const auto& metric = fields.at("metric").struct_value().fields();
      std::string instance = metric.count("instance") ? metric.at("instance").string_value() : "";
      double value = 0;
      absl::SimpleAtod(fields.at("value").list_value().values(1).string_value(), &value);
      values[instance] = value;
    }
    return values;
  }

  // Waits until `query` gives `expected` (instance -> value); prints what it
  // gave last if it never does. Prometheus' first scrape takes ~5 s.
  bool Holds(const std::string& query, const std::map<std::string, double>& expected) {
    std::map<std::string, double> last;
    bool ok = WaitFor([&] { return (last = Query(query)) == expected; }, absl::Seconds(40));
    if (!ok) {
      std::cerr << "query " << query << " gave:";
      for (const auto& [instance, value] : last) std::cerr << " " << instance << "=" << value;
      std::cerr << "\n";
    }
    return ok;
  }

  // A sample's value in a node's /metrics as it stands (-1 if absent).
  static double ScrapedValue(E2eNode& node, const std::string& series) {
    absl::StatusOr<testing::HttpResult> metrics = HttpGet(node.metrics_address(), "/metrics");
    if (!metrics.ok()) return -1;
    for (absl::string_view line : absl::StrSplit(metrics->body, '\n')) {
      double value = 0;
      if (absl::StartsWith(line, series + " ") &&
          absl::SimpleAtod(line.substr(series.size() + 1), &value)) {
        return value;
      }
    }
    return -1;
  }

  static grpc::health::v1::HealthCheckResponse::ServingStatus Health(
      const std::string& address, const std::string& service = "") {
    auto stub = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    if (!stub->Check(&context, request, &response).ok()) {
      return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    }
    return response.status();
  }

  lf::a2a::v1::SendMessageRequest ForSkill(const std::string& skill, const std::string& text) {
    lf::a2a::v1::SendMessageRequest request = testing::SendText(text);
    (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(skill);
    return request;
  }

  testing::TempDir dir_;
  std::string prometheus_address_;
  std::unique_ptr<Subprocess> prometheus_;
};

TEST_F(PrometheusE2eTest, PrometheusScrapesTwoNodesAndTheSeriesHoldWhatHappened) {
  ASSERT_FALSE(ReadFileOrEmpty(kPrometheus).empty())
      << kPrometheus << " is missing: install Debian's prometheus (tools/setup does)";
  E2eNode n1(dir_, "n1", Flags("", dir_.File("n1-data")));  // a SQLite store
  ASSERT_TRUE(n1.Start());
  E2eNode n2(dir_, "n2", Flags(n1.address()));
  ASSERT_TRUE(n2.Start());
  Subprocess echo = n2.StartAgent("echo-agent", {});
  Subprocess upper = n1.StartAgent("uppercase-agent", {"--chunk-delay", "1ms"});
  ASSERT_TRUE(n1.WaitForAgent("echo"));
  ASSERT_TRUE(n2.WaitForAgent("uppercase"));

  // 5 echo tasks enter at n1 and run on n2; 3 uppercase tasks enter at n2 and
  // run on n1; 2 requests at n1 for a skill nobody has.
  auto send = [](const std::string& address, const lf::a2a::v1::SendMessageRequest& request,
                 const std::string& traceparent = "") {
    auto stub = lf::a2a::v1::A2AService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    lf::a2a::v1::SendMessageResponse response;
    auto context = A2aContext();
    if (!traceparent.empty()) context->AddMetadata("traceparent", traceparent);
    return stub->SendMessage(context.get(), request, &response);
  };
  // One of the echo tasks is in a sampled trace (the nodes record no spans:
  // the caller's decision is what makes an exemplar).
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  // Waiting for the agents probed the routers: count from here.
  const double none1 = ScrapedValue(n1, "a2amesh_routing_decisions_total{decision=\"none\"}");
  const double none2 = ScrapedValue(n2, "a2amesh_routing_decisions_total{decision=\"none\"}");
  const std::string refused_sends =
      "a2amesh_grpc_requests_total{service=\"lf.a2a.v1.A2AService\",method=\"SendMessage\","
      "code=\"FAILED_PRECONDITION\"}";
  const double refused1 = std::max(0.0, ScrapedValue(n1, refused_sends));
  ASSERT_TRUE(send(n1.address(), ForSkill("echo", "hi"),
                   absl::StrCat("00-", trace_id, "-00f067aa0ba902b7-01"))
                  .ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(send(n1.address(), ForSkill("echo", "hi")).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send(n2.address(), ForSkill("uppercase", "hi")).ok());
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(send(n1.address(), ForSkill("translate", "hi")).ok());

  // promtool finds nothing to say about either node's exposition.
  for (E2eNode* node : {&n1, &n2}) {
    absl::StatusOr<testing::HttpResult> metrics = HttpGet(node->metrics_address(), "/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    EXPECT_EQ(metrics->status, 200);
    EXPECT_THAT(metrics->headers, HasSubstr("text/plain; version=0.0.4"));
    const std::string file = dir_.File("metrics.txt");
    std::ofstream(file) << metrics->body;
    const std::string out = dir_.File("promtool.out");
    absl::StatusOr<Subprocess> check = Subprocess::Start(
        {"/bin/sh", "-c", absl::StrCat(kPromtool, " check metrics < ", file)}, out);
    ASSERT_TRUE(check.ok());
    absl::StatusOr<int> code = check->Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << ReadFileOrEmpty(out);
    EXPECT_EQ(ReadFileOrEmpty(out), "") << "promtool check metrics on " << node->metrics_address();
  }

  // Asked for OpenMetrics, a node answers with it, exemplars included, and
  // the Python client's strict OpenMetrics parser reads it (promtool reads
  // only the text format: docs/metrics.md).
  for (E2eNode* node : {&n1, &n2}) {
    absl::StatusOr<testing::HttpResult> metrics =
        HttpGet(node->metrics_address(), "/metrics",
                {{"Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}});
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    EXPECT_THAT(metrics->headers, HasSubstr("application/openmetrics-text; version=1.0.0"));
    const std::string file = dir_.File("metrics.om");
    std::ofstream(file) << metrics->body;
    const std::string out = dir_.File("openmetrics.out");
    absl::StatusOr<Subprocess> check = Subprocess::Start(
        {"/usr/bin/python3", testing::SourcePath("tests/e2e/openmetrics_check.py"), file}, out);
    ASSERT_TRUE(check.ok());
    absl::StatusOr<int> code = check->Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 0) << ReadFileOrEmpty(out) << "\n" << metrics->body;
    if (node == &n1) {
      // The traced task's duration, time to first event, handoff and call.
      const std::string exemplars = ReadFileOrEmpty(out);
      for (const char* histogram :
           {"a2amesh_task_duration_seconds_bucket", "a2amesh_task_first_event_seconds_bucket",
            "a2amesh_handoff_latency_seconds_bucket",
            "a2amesh_grpc_request_duration_seconds_bucket"}) {
        EXPECT_THAT(exemplars,
                    ::testing::ContainsRegex(absl::StrCat(histogram, " [^ ]+ ", trace_id)))
            << exemplars;
      }
    }
  }

  const std::string i1 = n1.metrics_address();
  const std::string i2 = n2.metrics_address();
  ASSERT_TRUE(StartPrometheus({i1, i2}));
  EXPECT_TRUE(Holds("up", {{i1, 1}, {i2, 1}}));
  EXPECT_TRUE(Holds("a2amesh_tasks_created_total{skill=\"echo\"}", {{i1, 5}}));
  EXPECT_TRUE(Holds("a2amesh_tasks_ended_total{skill=\"echo\",state=\"completed\"}", {{i1, 5}}));
  EXPECT_TRUE(
      Holds("a2amesh_tasks_ended_total{skill=\"uppercase\",state=\"completed\"}", {{i2, 3}}));
  EXPECT_TRUE(Holds("a2amesh_task_duration_seconds_count{skill=\"echo\"}", {{i1, 5}}));
  EXPECT_TRUE(Holds("a2amesh_task_first_event_seconds_count{skill=\"uppercase\"}", {{i2, 3}}));
  EXPECT_TRUE(Holds("a2amesh_peers{state=\"up\"}", {{i1, 1}, {i2, 1}}));
  EXPECT_TRUE(Holds("a2amesh_agents{location=\"local\"}", {{i1, 1}, {i2, 1}}));
  EXPECT_TRUE(Holds("a2amesh_agents{location=\"remote\"}", {{i1, 1}, {i2, 1}}));
  EXPECT_TRUE(Holds("a2amesh_skills", {{i1, 2}, {i2, 2}}));
  EXPECT_TRUE(Holds("a2amesh_handoffs_total{peer=\"n2\",result=\"accepted\"}", {{i1, 5}}));
  EXPECT_TRUE(Holds("a2amesh_handoff_latency_seconds_count{peer=\"n1\"}", {{i2, 3}}));
  EXPECT_TRUE(Holds("a2amesh_routing_decisions_total{decision=\"remote\"}", {{i1, 5}, {i2, 3}}));
  EXPECT_TRUE(
      Holds("a2amesh_routing_decisions_total{decision=\"none\"}", {{i1, none1 + 2}, {i2, none2}}));
  EXPECT_TRUE(Holds("a2amesh_open_streams{kind=\"agent_host\"}", {{i1, 1}, {i2, 1}}));
  EXPECT_TRUE(Holds("a2amesh_open_streams{kind=\"peer\"}", {{i1, 1}, {i2, 1}}));
  // Only n1 has a SQLite store; n2 keeps tasks in memory.
  EXPECT_TRUE(Holds("a2amesh_store_commit_seconds_count > bool 0", {{i1, 1}, {i2, 0}}));
  EXPECT_TRUE(Holds("a2amesh_store_commit_failures_total", {{i1, 0}, {i2, 0}}));
  EXPECT_TRUE(Holds("a2amesh_store_bytes > bool 0", {{i1, 1}}));  // absent in memory
  EXPECT_TRUE(Holds("a2amesh_tasks_expired_total", {{i1, 0}, {i2, 0}}));
  EXPECT_TRUE(Holds("a2amesh_draining", {{i1, 0}, {i2, 0}}));
  EXPECT_TRUE(Holds("count(process_resident_memory_bytes > 1e6)", {{"", 2}}));
  EXPECT_TRUE(Holds("count(a2amesh_build_info)", {{"", 2}}));
  // Prometheus scraped OpenMetrics and kept the exemplar: the traced task's.
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string now = absl::StrCat(absl::ToUnixSeconds(absl::Now()));
        absl::StatusOr<testing::HttpResult> result =
            HttpGet(prometheus_address_,
                    absl::StrCat("/api/v1/query_exemplars?query=",
                                 UrlEncode("a2amesh_task_duration_seconds_bucket{skill=\"echo\"}"),
                                 "&start=", absl::ToUnixSeconds(absl::Now()) - 3600, "&end=", now));
        return result.ok() && absl::StrContains(result->body, trace_id);
      },
      absl::Seconds(40)));
  // Requests by method and code, and each skill's capacity where its agent is.
  EXPECT_TRUE(
      Holds("a2amesh_grpc_requests_total{service=\"lf.a2a.v1.A2AService\","
            "method=\"SendMessage\",code=\"OK\"}",
            {{i1, 5}, {i2, 3}}));
  // (n2's probes for its agent may have been refused too: n1's only.)
  std::string refused_sends_at_n1 = refused_sends;
  refused_sends_at_n1.insert(refused_sends_at_n1.size() - 1,
                             absl::StrCat(",instance=\"", i1, "\""));
  EXPECT_TRUE(Holds(refused_sends_at_n1, {{i1, refused1 + 2}}));
  EXPECT_TRUE(Holds("a2amesh_skill_capacity{skill=\"echo\"} > bool 0", {{i2, 1}}));
  EXPECT_TRUE(Holds("a2amesh_skill_running", {{i1, 0}, {i2, 0}}));
  // The KEDA example's query runs as written (for a skill of this mesh).
  const std::string keda = ReadFileOrEmpty(testing::SourcePath("deploy/keda/scaledobject.yaml"));
  const size_t query_at = keda.find("query: >-");
  ASSERT_NE(query_at, std::string::npos);
  const size_t threshold_at = keda.find("threshold:", query_at);
  ASSERT_NE(threshold_at, std::string::npos);
  std::string keda_query = keda.substr(query_at + 9, threshold_at - query_at - 9);
  absl::StrReplaceAll({{"\n", " "}, {"summarize", "echo"}}, &keda_query);
  EXPECT_TRUE(Holds(std::string(absl::StripAsciiWhitespace(keda_query)), {{"", 0}})) << keda_query;

  // The alert rules loaded and evaluate; none fires in a healthy mesh.
  google::protobuf::Struct rules = Api("rules");
  ASSERT_EQ(rules.fields().count("status"), 1u);
  ASSERT_EQ(rules.fields().at("status").string_value(), "success");
  const auto& groups =
      rules.fields().at("data").struct_value().fields().at("groups").list_value().values();
  ASSERT_EQ(groups.size(), 1);
  // As many as the file defines.
  const std::string alerts = ReadFileOrEmpty(testing::SourcePath("deploy/prometheus/alerts.yml"));
  int defined = 0;
  for (size_t at = alerts.find("- alert: "); at != std::string::npos;
       at = alerts.find("- alert: ", at + 1)) {
    ++defined;
  }
  EXPECT_EQ(defined, 12);
  EXPECT_EQ(groups[0].struct_value().fields().at("rules").list_value().values_size(), defined);
  EXPECT_TRUE(Holds("ALERTS{alertstate=\"firing\"}", {}));

  // Every query of the dashboard parses and runs, scoped by its $namespace and
  // $instance variables (as Grafana fills them in for "All").
  google::protobuf::Struct dashboard;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  ReadFileOrEmpty(testing::SourcePath("deploy/grafana/a2a-mesh.json")), &dashboard)
                  .ok());
  int queries = 0;
  for (const auto& panel : dashboard.fields().at("panels").list_value().values()) {
    for (const auto& target : panel.struct_value().fields().at("targets").list_value().values()) {
      const std::string& raw = target.struct_value().fields().at("expr").string_value();
      EXPECT_THAT(raw, HasSubstr("instance=~\"$instance\"")) << raw;
      const std::string expr = absl::StrReplaceAll(
          raw, {{"$__rate_interval", "1m"}, {"$namespace", ".*"}, {"$instance", ".*"}});
      google::protobuf::Struct result = Api("query?query=" + UrlEncode(expr));
      EXPECT_EQ(result.fields().count("status") ? result.fields().at("status").string_value() : "",
                "success")
          << expr;
      ++queries;
    }
  }
  EXPECT_GE(queries, 17);
}

TEST_F(PrometheusE2eTest, HealthIsServingThenNotServingWhileDraining) {
  E2eNode n1(dir_, "n1", Flags(""));
  ASSERT_TRUE(n1.Start());
  Subprocess slow = n1.StartAgent("echo-agent", {"--agent-id", "slow", "--delay", "3s"});
  ASSERT_TRUE(n1.WaitForAgent("slow"));
  EXPECT_EQ(Health(n1.address()), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(n1.address(), "liveness"), grpc::health::v1::HealthCheckResponse::SERVING);

  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(n1.address(), grpc::InsecureChannelCredentials()));
  lf::a2a::v1::SendMessageRequest request = testing::SendText("in flight");
  request.set_tenant("slow");
  request.mutable_configuration()->set_return_immediately(true);
  lf::a2a::v1::SendMessageResponse response;
  ASSERT_TRUE(stub->SendMessage(A2aContext().get(), request, &response).ok());

  n1.process().Signal(SIGTERM);  // drains: the task still runs for ~3 s
  EXPECT_TRUE(WaitFor(
      [&] { return Health(n1.address()) == grpc::health::v1::HealthCheckResponse::NOT_SERVING; }));
  EXPECT_TRUE(n1.process().running());
  // Liveness stays SERVING: a draining node is not a dead one.
  EXPECT_EQ(Health(n1.address(), "liveness"), grpc::health::v1::HealthCheckResponse::SERVING);
  absl::StatusOr<testing::HttpResult> metrics = HttpGet(n1.metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, HasSubstr("a2amesh_draining 1"));
  absl::StatusOr<int> code = n1.process().Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace a2amesh
