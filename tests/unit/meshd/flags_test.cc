#include "meshd/flags.h"

#include <stdlib.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace a2amesh::meshd {
namespace {

using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<MeshdConfig> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "meshd");
  return ParseFlags(static_cast<int>(args.size()), args.data());
}

TEST(FlagsTest, DefaultsRunAUsefulNode) {
  absl::StatusOr<MeshdConfig> config = Parse({});
  ASSERT_THAT(config, IsOk());
  EXPECT_FALSE(config->node.node_id.empty());
  EXPECT_EQ(config->node.grpc_address, "0.0.0.0:7400");
  EXPECT_EQ(config->node.data_dir, "meshd-data");
  EXPECT_FALSE(config->node.ephemeral);
  EXPECT_TRUE(config->node.store_fsync);
  EXPECT_EQ(config->node.drain_timeout, absl::Seconds(30));
  // Without auth, HTTP and metrics answer on loopback only...
  EXPECT_EQ(config->node.http_address, "127.0.0.1:7480");
  EXPECT_EQ(config->node.metrics_address, "127.0.0.1:9464");
}

TEST(FlagsTest, HttpAndMetricsListenEverywhereOnlyWithAuthOrWhenAsked) {
  // ...with auth on, on every address...
  absl::StatusOr<MeshdConfig> config = Parse({"--auth-token-file", "/t"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.http_address, "0.0.0.0:7480");
  EXPECT_EQ(config->node.metrics_address, "0.0.0.0:9464");
  // ...and where they are told to in any case.
  config = Parse({"--http-address", "0.0.0.0:8080", "--metrics-address", ""});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.http_address, "0.0.0.0:8080");
  EXPECT_EQ(config->node.metrics_address, "");
}

TEST(FlagsTest, ParsesFlags) {
  absl::StatusOr<MeshdConfig> config =
      Parse({"--node-id", "n7", "--grpc-address", "127.0.0.1:0", "--ephemeral", "--drain-timeout",
             "2s", "--agent-grace", "500ms", "--max-parts", "9", "--store-sync", "normal",
             "--log-format", "json", "--default-skill", "echo"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.node_id, "n7");
  EXPECT_EQ(config->node.grpc_address, "127.0.0.1:0");
  EXPECT_TRUE(config->node.ephemeral);
  EXPECT_EQ(config->node.drain_timeout, absl::Seconds(2));
  EXPECT_EQ(config->node.agent_grace, absl::Milliseconds(500));
  EXPECT_EQ(config->node.max_parts, 9);
  EXPECT_FALSE(config->node.store_fsync);
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(config->node.default_skill, "echo");
  // Unset: the store decides.
  EXPECT_FALSE(config->node.task_retention.has_value());
  EXPECT_FALSE(config->node.max_finished_tasks.has_value());
}

TEST(FlagsTest, ParsesTurnLimits) {
  absl::StatusOr<MeshdConfig> config =
      Parse({"--max-turn-duration", "2h", "--skill-max-turn-duration", "research=8h",
             "--skill-max-turn-duration", "chat=30s", "--agent-idle-timeout", "0"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.max_turn, absl::Hours(2));
  EXPECT_EQ(config->node.skill_max_turn.at("research"), absl::Hours(8));
  EXPECT_EQ(config->node.skill_max_turn.at("chat"), absl::Seconds(30));
  EXPECT_EQ(config->node.agent_idle_timeout, absl::ZeroDuration());
  EXPECT_THAT(Parse({"--skill-max-turn-duration", "research"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SKILL=DURATION")));
  EXPECT_THAT(Parse({"--skill-max-turn-duration", "research=long"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--skill-max-turn-duration")));
}

TEST(FlagsTest, ParsesGrpcConnectionLimits) {
  absl::StatusOr<MeshdConfig> config =
      Parse({"--grpc-max-streams-per-connection", "100", "--grpc-max-connection-age", "30m",
             "--grpc-max-connection-idle", "5m"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.grpc_max_streams_per_connection, 100);
  EXPECT_EQ(config->node.grpc_max_connection_age, absl::Minutes(30));
  EXPECT_EQ(config->node.grpc_max_connection_idle, absl::Minutes(5));
  EXPECT_THAT(
      Parse({"--grpc-max-streams-per-connection", "-1"}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--grpc-max-streams-per-connection")));
}

TEST(FlagsTest, ParsesRetention) {
  absl::StatusOr<MeshdConfig> config =
      Parse({"--task-retention", "36h", "--max-finished-tasks", "5000"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.task_retention, absl::Hours(36));
  EXPECT_EQ(config->node.max_finished_tasks, 5000);
  EXPECT_THAT(Parse({"--task-retention", "a while"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--task-retention")));
  EXPECT_THAT(Parse({"--housekeeping-interval", "0s"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--housekeeping-interval")));
  EXPECT_THAT(Parse({"--max-finished-tasks", "-1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-finished-tasks")));
}

TEST(FlagsTest, ParsesTlsFlags) {
  absl::StatusOr<MeshdConfig> config =
      Parse({"--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--tls-client-ca", "/ca.pem",
             "--trust-domain", "prod", "--tls-reload-interval", "30s"});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.tls.cert_file, "/c.pem");
  EXPECT_EQ(config->node.tls.key_file, "/k.pem");
  EXPECT_EQ(config->node.tls.client_ca_file, "/ca.pem");
  EXPECT_EQ(config->node.tls.trust_domain, "prod");
  EXPECT_EQ(config->node.tls.reload_interval, absl::Seconds(30));
  EXPECT_TRUE(config->node.tls.mutual());
  ASSERT_THAT(Parse({}), IsOk());
  EXPECT_FALSE(Parse({})->node.tls.enabled());
}

TEST(FlagsTest, ReadsTheEnvironmentAndAConfigFile) {
  setenv("MESHD_NODE_ID", "from-env", 1);
  setenv("MESHD_AGENT_LEASE", "7s", 1);
  absl::StatusOr<MeshdConfig> config = Parse({});
  unsetenv("MESHD_NODE_ID");
  unsetenv("MESHD_AGENT_LEASE");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.node_id, "from-env");
  EXPECT_EQ(config->node.agent_lease, absl::Seconds(7));

  testing::TempDir dir;
  std::string file = dir.File("meshd.toml");
  std::ofstream(file) << "node-id = \"from-file\"\nmax-agents = 12\n";
  config = Parse({"--config", file.c_str()});
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->node.node_id, "from-file");
  EXPECT_EQ(config->node.max_agents, 12);
}

TEST(FlagsTest, AConfigFileKeyThatNamesNoFlagIsRefusedWithTheNearestFlag) {
  testing::TempDir dir;
  std::string file = dir.File("meshd.ini");
  std::ofstream(file) << "node-id = n1\nhttp-adress = 127.0.0.1:7481\n";
  EXPECT_THAT(Parse({"--config", file.c_str()}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("--config ", file,
                                              ": unknown key 'http-adress' (did you mean "
                                              "'http-address'?)"))));
  std::ofstream(file) << "frobnicate = 1\n";
  absl::StatusOr<MeshdConfig> far = Parse({"--config", file.c_str()});
  EXPECT_THAT(far,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown key 'frobnicate'")));
  EXPECT_THAT(far.status().message(), Not(HasSubstr("did you mean")));
  std::ofstream(file) << "[meshd]\nnode-id = n1\n";  // would be ignored: refused
  EXPECT_THAT(Parse({"--config", file.c_str()}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown section [meshd]")));
}

TEST(FlagsTest, ParsesTracingFlags) {
  absl::StatusOr<MeshdConfig> config =
      Parse({"--otlp-endpoint", "http://collector:4318", "--otlp-protocol", "http/protobuf",
             "--otlp-header", "x-honeycomb-team=k=1", "--otlp-header", "authorization=Bearer t",
             "--otlp-resource-attribute", "k8s.pod.name=meshd-0,k8s.namespace.name=mesh",
             "--trace-sample-ratio", "0.25"});
  ASSERT_THAT(config, IsOk());
  const NodeOptions& node = config->node;
  EXPECT_EQ(node.otlp.endpoint, "http://collector:4318");
  EXPECT_EQ(node.otlp.protocol, trace::OtlpOptions::Protocol::kHttpProtobuf);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(node.otlp.headers, (Pairs{{"x-honeycomb-team", "k=1"}, {"authorization", "Bearer t"}}));
  EXPECT_EQ(node.trace_resource,
            (Pairs{{"k8s.pod.name", "meshd-0"}, {"k8s.namespace.name", "mesh"}}));
  EXPECT_EQ(node.trace_sample_ratio, 0.25);
  EXPECT_TRUE(Parse({})->node.otlp.endpoint.empty()) << "tracing is off unless asked for";
  // Headers from the environment (a Secret) add to those of the command line.
  setenv("MESHD_OTLP_HEADERS", "x-api-key=secret,x-team=a", 1);
  absl::StatusOr<MeshdConfig> both = Parse({"--otlp-header", "x-scope-orgid=agents"});
  unsetenv("MESHD_OTLP_HEADERS");
  ASSERT_THAT(both, IsOk());
  EXPECT_EQ(both->node.otlp.headers,
            (Pairs{{"x-scope-orgid", "agents"}, {"x-api-key", "secret"}, {"x-team", "a"}}));
  EXPECT_THAT(Parse({"--otlp-header", "novalue"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--otlp-header \"novalue\": expected NAME=VALUE")));
  EXPECT_THAT(Parse({"--trace-sample-ratio", "2"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--trace-sample-ratio")));
  EXPECT_THAT(Parse({"--otlp-protocol", "http/json"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--otlp-protocol")));
}

TEST(FlagsTest, BadValuesNameTheFlag) {
  EXPECT_THAT(Parse({"--drain-timeout", "soon"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--drain-timeout")));
  EXPECT_THAT(Parse({"--store-sync", "sometimes"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--store-sync")));
  EXPECT_THAT(Parse({"--max-parts", "many"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-parts")));
  EXPECT_THAT(Parse({"--max-json-depth", "2"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-json-depth")));
  EXPECT_THAT(Parse({"--no-such-flag"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--no-such-flag")));
}

TEST(FlagsTest, HelpAndVersionExit) {
  absl::StatusOr<MeshdConfig> help = Parse({"--help"});
  ASSERT_THAT(help, IsOk());
  EXPECT_THAT(help->exit_message, HasSubstr("--grpc-address"));
  EXPECT_THAT(help->exit_message, HasSubstr("MESHD_"));
  absl::StatusOr<MeshdConfig> version = Parse({"--version"});
  ASSERT_THAT(version, IsOk());
  EXPECT_THAT(version->exit_message, HasSubstr("meshd "));
}

TEST(NodeOptionsTest, BadSettingsStopStartUpNamingTheSetting) {
  NodeOptions options;
  options.node_id = "bad~id";
  options.ephemeral = true;
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--node-id")));
  options.node_id = "ok";
  options.grpc_address = "nonsense";
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--grpc-address")));
  options.grpc_address = "127.0.0.1:0";
  options.max_parts = 0;
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--max-parts")));
  options.max_parts = 10;
  options.tls.cert_file = "/nonexistent/node.crt";
  options.tls.key_file = "/nonexistent/node.key";
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-cert: cannot read")));
  options.peers = {"127.0.0.1:1"};
  EXPECT_THAT(Node::Start(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("--peers with TLS needs --tls-client-ca")));
  options.peers.clear();
  options.tls = {};
  options.otlp.endpoint = "collector:4317/v1/traces";
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--otlp-endpoint collector:4317/v1/traces: OTLP/gRPC needs")));
  options.otlp.endpoint.clear();
  options.ephemeral = false;
  options.data_dir = "/proc/no-such-place/x";
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("--data-dir")));
}

TEST(NodeOptionsTest, ABusyPortIsAnError) {
  NodeOptions options;
  options.node_id = "first";
  options.ephemeral = true;
  options.grpc_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<Node>> first = Node::Start(options);
  ASSERT_THAT(first, IsOk());
  options.node_id = "second";
  options.grpc_address = (*first)->grpc_address();
  EXPECT_THAT(Node::Start(options),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen on")));
}

}  // namespace
}  // namespace a2amesh::meshd
