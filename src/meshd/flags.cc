#include "meshd/flags.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/allocator.h"
#include "core/suggest.h"
#include "core/version.h"

namespace a2amesh::meshd {
namespace {

std::string Hostname() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "meshd";
  }
  return name;
}

// A CLI11 option that takes an absl duration ("10s", "250ms", "1m").
CLI::Option* AddDuration(CLI::App& app, const std::string& name, absl::Duration* out,
                         const std::string& help, const std::string& env) {
  return app
      .add_option_function<std::string>(
          name,
          [out, name](const std::string& text) {
            absl::Duration d;
            if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
              throw CLI::ValidationError(
                  name, "'" + text + "' is not a duration such as 500ms, 10s or 2m");
            }
            *out = d;
          },
          help)
      ->envname(env)
      ->default_str(absl::FormatDuration(*out));
}

// "--config FILE: unknown key 'http-adress' (did you mean 'http-address'?)"
// for the key CLI11 could not place (it names it at the end of its message).
std::string ConfigKeyError(const CLI::App& app, const std::string& file,
                           const CLI::ConfigError& error) {
  absl::string_view what = error.what();
  constexpr absl::string_view kUnplaced = "INI was not able to parse ";
  if (!absl::StartsWith(what, kUnplaced)) return absl::StrCat("--config ", file, ": ", what);
  const std::string key(what.substr(kUnplaced.size()));
  if (absl::EndsWith(key, ".++")) {  // a section opens
    return absl::StrCat("--config ", file, ": unknown section [", key.substr(0, key.size() - 3),
                        "] (meshd's keys are at the top level, without a section)");
  }
  std::vector<std::string> flags;
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) flags.push_back(name);
  }
  std::string message = absl::StrCat("--config ", file, ": unknown key '", key, "'");
  if (std::string near = ClosestMatch(key, flags); !near.empty()) {
    absl::StrAppend(&message, " (did you mean '", near, "'?)");
  }
  return message;
}

}  // namespace

absl::StatusOr<MeshdConfig> ParseFlags(int argc, const char* const* argv) {
  MeshdConfig config;
  NodeOptions& n = config.node;
  n.node_id = Hostname();
  CLI::App app{
      "meshd: an a2a-mesh node. Agents register with it over gRPC (AgentHost); "
      "clients send it A2A v1.0 tasks over gRPC, JSON-RPC or HTTP+JSON."};
  CLI::Option* config_file = app.set_config(
      "--config", "", "Read flags from this TOML or INI file (keys named like flags)");
  // A key that names no flag is a typo: refused, not ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.set_version_flag("--version", absl::StrCat("meshd ", Version(), " (revision ", Revision(),
                                                 ", ", AllocatorName(), ")"));
  app.get_formatter()->column_width(34);
  app.footer(
      "Every flag can also be set from the environment as MESHD_<FLAG> (e.g. MESHD_NODE_ID).\n"
      "Examples:\n"
      "  meshd --node-id n1 --grpc-address 127.0.0.1:7400 --data-dir /var/lib/meshd\n"
      "  meshd --node-id n2 --grpc-address 127.0.0.1:7401 --http-address 127.0.0.1:7481 \\\n"
      "        --metrics-address 127.0.0.1:9465 --data-dir /var/lib/meshd-n2 --peers "
      "127.0.0.1:7400\n"
      "  meshd --discovery-dns a2a-mesh-headless.default.svc.cluster.local\n"
      "  meshd --ephemeral --grpc-address 127.0.0.1:0 --http-address 127.0.0.1:0 \\\n"
      "        --metrics-address 127.0.0.1:0 --ready-file /tmp/n1.json");

  app.add_option("--node-id", n.node_id, "This node's id, unique in the mesh (default: hostname)")
      ->envname("MESHD_NODE_ID");
  app.add_option("--grpc-address", n.grpc_address,
                 "host:port for A2A gRPC and AgentHost; port 0 picks a free port")
      ->envname("MESHD_GRPC_ADDRESS")
      ->capture_default_str();
  // Without auth, HTTP and /metrics stay on loopback unless an address is
  // given: a node nobody configured must not answer the network unasked.
  CLI::Option* metrics_address =
      app.add_option("--metrics-address", n.metrics_address,
                     "host:port for Prometheus' /metrics; port 0 picks a free port; empty: none "
                     "(default: 0.0.0.0:9464 with auth on, 127.0.0.1:9464 without)")
          ->envname("MESHD_METRICS_ADDRESS");
  CLI::Option* http_address =
      app.add_option("--http-address", n.http_address,
                     "host:port for A2A over HTTP (JSON-RPC, HTTP+JSON, agent cards); port 0 "
                     "picks a free port; empty: none (default: 0.0.0.0:7480 with auth on, "
                     "127.0.0.1:7480 without)")
          ->envname("MESHD_HTTP_ADDRESS");
  app.add_option("--public-http-url", n.public_http_url,
                 "Base URL agent cards give for the HTTP bindings, e.g. behind an ingress "
                 "(default: http://<the request's Host>)")
      ->envname("MESHD_PUBLIC_HTTP_URL");
  app.add_option("--public-grpc-url", n.public_grpc_url,
                 "host:port agent cards give for gRPC (default: the Host's name and the gRPC port)")
      ->envname("MESHD_PUBLIC_GRPC_URL");
  app.add_option("--data-dir", n.data_dir,
                 "Directory of the SQLite task store (created if missing)")
      ->envname("MESHD_DATA_DIR")
      ->capture_default_str();
  app.add_flag("--ephemeral", n.ephemeral, "Keep tasks in memory only; nothing survives a restart")
      ->envname("MESHD_EPHEMERAL");
  app.add_option_function<std::string>(
         "--task-retention",
         [&n](const std::string& text) {
           absl::Duration d;
           if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
             throw CLI::ValidationError("--task-retention",
                                        "'" + text + "' is not a duration such as 168h or 10m");
           }
           n.task_retention = d;
         },
         "Finished tasks are removed once their status is older than this (0: kept by age "
         "forever); default 168h, 10m with --ephemeral")
      ->envname("MESHD_TASK_RETENTION");
  AddDuration(app, "--housekeeping-interval", &n.housekeeping_interval,
              "How often (at most) finished tasks are swept out and free memory is returned "
              "to the system",
              "MESHD_HOUSEKEEPING_INTERVAL")
      ->check([](const std::string& text) {
        absl::Duration d;
        return absl::ParseDuration(text, &d) && d > absl::ZeroDuration()
                   ? std::string()
                   : std::string("must be longer than 0");
      });
  app.add_option_function<int64_t>(
         "--max-finished-tasks", [&n](int64_t count) { n.max_finished_tasks = count; },
         "Keep at most this many finished tasks, removing the oldest (0: no cap); default 0, "
         "10000 with --ephemeral")
      ->envname("MESHD_MAX_FINISHED_TASKS")
      ->check(CLI::NonNegativeNumber);
  AddDuration(app, "--max-turn-duration", &n.max_turn,
              "An agent's turn of a task (until it finishes or asks for input) fails past this "
              "(0: no limit)",
              "MESHD_MAX_TURN_DURATION");
  app.add_option_function<std::vector<std::string>>(
         "--skill-max-turn-duration",
         [&n](const std::vector<std::string>& items) {
           for (const std::string& item : items) {
             const size_t eq = item.find('=');
             absl::Duration d;
             if (eq == std::string::npos || eq == 0 ||
                 !absl::ParseDuration(item.substr(eq + 1), &d) || d < absl::ZeroDuration()) {
               throw CLI::ValidationError("--skill-max-turn-duration",
                                          "'" + item + "' is not SKILL=DURATION, e.g. research=4h");
             }
             n.skill_max_turn[item.substr(0, eq)] = d;
           }
         },
         "--max-turn-duration for one skill, as SKILL=DURATION (repeatable)")
      ->envname("MESHD_SKILL_MAX_TURN_DURATION");
  AddDuration(app, "--agent-idle-timeout", &n.agent_idle_timeout,
              "An agent's turn fails when it has sent no event for this long (0: no limit)",
              "MESHD_AGENT_IDLE_TIMEOUT");
  AddDuration(app, "--interrupted-task-ttl", &n.interrupted_task_ttl,
              "A task waiting for its client's input or authorization fails after this (0: "
              "waits forever)",
              "MESHD_INTERRUPTED_TASK_TTL");
  std::string store_sync = n.store_fsync ? "full" : "normal";
  app.add_option("--store-sync", store_sync,
                 "full: fsync each group commit; normal: survive process crashes only")
      ->envname("MESHD_STORE_SYNC")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("--default-skill", n.default_skill,
                 "Skill for requests that name no agent, skill or tags")
      ->envname("MESHD_DEFAULT_SKILL");
  app.add_option("--advertise-address", n.advertise_address,
                 "host:port other nodes use to reach this one (default: the gRPC address)")
      ->envname("MESHD_ADVERTISE_ADDRESS");
  app.add_option("--peers", n.peers,
                 "Static peers, host:port,... (a node learns the rest from them)")
      ->envname("MESHD_PEERS")
      ->delimiter(',');
  app.add_option("--discovery-dns", n.discovery_dns,
                 "DNS name of the mesh's members (A/AAAA, or SRV _grpc._tcp.<name>)")
      ->envname("MESHD_DISCOVERY_DNS");
  app.add_option("--discovery-dns-port", n.discovery_dns_port,
                 "Port for A/AAAA members (default: this node's gRPC port)")
      ->envname("MESHD_DISCOVERY_DNS_PORT");
  app.add_option("--discovery-dns-server", n.discovery_dns_server,
                 "Ask this DNS server (host:port) instead of the system's resolvers")
      ->envname("MESHD_DISCOVERY_DNS_SERVER");
  AddDuration(app, "--discovery-interval", &n.discovery_interval, "How often DNS is resolved",
              "MESHD_DISCOVERY_INTERVAL");
  AddDuration(app, "--peer-heartbeat", &n.peer_heartbeat,
              "How often peers exchange heartbeats (with agent loads)", "MESHD_PEER_HEARTBEAT");
  AddDuration(app, "--peer-timeout", &n.peer_timeout,
              "A peer silent this long is down and its agents leave routing", "MESHD_PEER_TIMEOUT");
  AddDuration(app, "--forget-down-after", &n.forget_down_after,
              "A member that went down stays listed (down, since when) this long",
              "MESHD_FORGET_DOWN_AFTER");
  app.add_option("--max-hops", n.max_hops, "Longest delegation chain a task may have")
      ->envname("MESHD_MAX_HOPS")
      ->capture_default_str();
  AddDuration(app, "--drain-timeout", &n.drain_timeout,
              "On SIGTERM, how long running tasks may take to finish", "MESHD_DRAIN_TIMEOUT");
  AddDuration(app, "--agent-grace", &n.agent_grace,
              "How long a disconnected agent's tasks wait for it to reconnect",
              "MESHD_AGENT_GRACE");
  AddDuration(app, "--recovery-grace", &n.recovery_grace,
              "After a restart, how long unfinished tasks wait for their agent",
              "MESHD_RECOVERY_GRACE");
  AddDuration(app, "--agent-lease", &n.agent_lease,
              "An agent silent for longer than this is disconnected", "MESHD_AGENT_LEASE");
  app.add_option("--max-message-bytes", n.max_message_bytes, "Largest A2A request or agent event")
      ->envname("MESHD_MAX_MESSAGE_BYTES")
      ->capture_default_str();
  app.add_option("--max-parts", n.max_parts, "Most parts in one message")
      ->envname("MESHD_MAX_PARTS")
      ->capture_default_str();
  app.add_option("--max-json-depth", n.max_json_depth,
                 "JSON request bodies nesting arrays or objects deeper are refused before parsing")
      ->envname("MESHD_MAX_JSON_DEPTH")
      ->check(CLI::Range(8, 1000))
      ->capture_default_str();
  AddDuration(app, "--sse-keepalive", &n.sse_keep_alive,
              "An SSE stream quiet this long sends a ': keep-alive' comment, so that proxies "
              "that cut idle connections keep it open (0: never)",
              "MESHD_SSE_KEEPALIVE");
  app.add_option("--http-max-connections-per-address", n.http_max_connections_per_address,
                 "HTTP connections one client address may hold at once; past it the address's "
                 "own longest-idle connection is closed, or the new one refused (0: no cap)")
      ->envname("MESHD_HTTP_MAX_CONNECTIONS_PER_ADDRESS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-card-bytes", n.max_card_bytes, "Largest agent card")
      ->envname("MESHD_MAX_CARD_BYTES")
      ->capture_default_str();
  app.add_option("--max-agents", n.max_agents, "Most agents registered on this node")
      ->envname("MESHD_MAX_AGENTS")
      ->capture_default_str();
  app.add_option("--grpc-max-streams-per-connection", n.grpc_max_streams_per_connection,
                 "Concurrent streams on one gRPC connection (0: gRPC's default)")
      ->envname("MESHD_GRPC_MAX_STREAMS_PER_CONNECTION")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  AddDuration(app, "--handoff-grace", &n.handoff_grace,
              "A task handed to another node survives a broken link this long: it stays "
              "WORKING while the owner dials again to resume the turn, then fails (0: at once)",
              "MESHD_HANDOFF_GRACE");
  AddDuration(app, "--grpc-max-connection-age", &n.grpc_max_connection_age,
              "Close gRPC connections this old with a GOAWAY (clients reconnect, e.g. through "
              "a load balancer; 0: never)",
              "MESHD_GRPC_MAX_CONNECTION_AGE");
  AddDuration(app, "--grpc-max-connection-idle", &n.grpc_max_connection_idle,
              "Close gRPC connections with no call for this long (0: never)",
              "MESHD_GRPC_MAX_CONNECTION_IDLE");
  app.add_option("--max-agents-per-connection", n.max_agents_per_connection,
                 "Most agents one agent stream may register (0: no cap)")
      ->envname("MESHD_MAX_AGENTS_PER_CONNECTION")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--remote-agent", n.remote_agents,
                 "An A2A agent served elsewhere, hosted by this node: the URL of its card, or "
                 "ID=URL, then any of token-file=PATH ca-file=PATH cert-file=PATH key-file=PATH "
                 "max-concurrency=N "
                 "(space-separated; repeatable). Its skills join the mesh; its tasks are A2A "
                 "calls to it "
                 "(JSON-RPC, gRPC or HTTP+JSON at A2A 1.0, else JSON-RPC at 0.3: the first its "
                 "card lists, "
                 "unless --remote-agent-binding)")
      ->envname("MESHD_REMOTE_AGENT")
      ->delimiter(',');
  AddDuration(app, "--remote-agent-refresh", &n.remote_agent_refresh,
              "How often remote agents' cards are fetched again; one that does not answer leaves "
              "routing until it does",
              "MESHD_REMOTE_AGENT_REFRESH");
  app.add_option("--remote-agent-binding", n.remote_agent_binding,
                 "How remote agents are called: auto (the first binding their card lists that "
                 "this node speaks), JSONRPC, GRPC or HTTP+JSON")
      ->envname("MESHD_REMOTE_AGENT_BINDING")
      ->check(
          CLI::IsMember({"auto", "JSONRPC", "GRPC", "HTTP+JSON", "jsonrpc", "grpc", "http+json"}))
      ->capture_default_str();
  app.add_option("--remote-agent-max-failures", n.remote_agent_max_failures,
                 "Calls in a row that do not reach a remote agent (no connection, an HTTP error, "
                 "gRPC UNAVAILABLE) before it leaves routing until its card answers again (0: "
                 "never)")
      ->envname("MESHD_REMOTE_AGENT_MAX_FAILURES")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--remote-agent-max-concurrency", n.remote_agent_max_concurrency,
                 "Tasks each remote agent runs at once, unless its --remote-agent says "
                 "max-concurrency=N")
      ->envname("MESHD_REMOTE_AGENT_MAX_CONCURRENCY")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-agents-per-address", n.max_agents_per_address,
                 "Most agents the streams of one client address may register together (0: no cap)")
      ->envname("MESHD_MAX_AGENTS_PER_ADDRESS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-open-streams", n.max_open_streams, "Most streaming A2A calls open at once")
      ->envname("MESHD_MAX_OPEN_STREAMS")
      ->capture_default_str();
  app.add_option("--default-max-concurrency", n.default_max_concurrency,
                 "max_concurrency of agents that register without one")
      ->envname("MESHD_DEFAULT_MAX_CONCURRENCY")
      ->capture_default_str();
  app.add_option("--push-notifications", n.push_notifications,
                 "A2A push notifications to webhooks (true/false)")
      ->envname("MESHD_PUSH_NOTIFICATIONS")
      ->capture_default_str();
  app.add_flag("--push-allow-private-targets", n.push_allow_private_targets,
               "Let webhooks be loopback, private or link-local addresses (refused by default: "
               "a client picks the URL)")
      ->envname("MESHD_PUSH_ALLOW_PRIVATE_TARGETS");
  app.add_option("--push-max-queued", n.push_max_queued,
                 "Push notifications waiting for delivery, at most; more are dropped")
      ->envname("MESHD_PUSH_MAX_QUEUED")
      ->capture_default_str();
  app.add_option("--push-max-attempts", n.push_max_attempts,
                 "Tries of one push notification before it is given up")
      ->envname("MESHD_PUSH_MAX_ATTEMPTS")
      ->capture_default_str();
  AddDuration(app, "--push-initial-backoff", &n.push_initial_backoff,
              "First wait before a push is retried (doubles, up to 30s)",
              "MESHD_PUSH_INITIAL_BACKOFF");
  AddDuration(app, "--push-timeout", &n.push_timeout,
              "How long a webhook may take to answer one push", "MESHD_PUSH_TIMEOUT");
  app.add_option("--tls-cert", n.tls.cert_file,
                 "PEM certificate chain the gRPC and HTTP ports serve with TLS (and presented to "
                 "peers); reloaded when the file changes")
      ->envname("MESHD_TLS_CERT");
  app.add_option("--tls-key", n.tls.key_file, "PEM private key of --tls-cert")
      ->envname("MESHD_TLS_KEY");
  app.add_option("--tls-client-ca", n.tls.client_ca_file,
                 "PEM CA bundle of the mesh: peers' certificates (both ways) and clients' must "
                 "chain to it; needed to join a mesh with TLS")
      ->envname("MESHD_TLS_CLIENT_CA");
  app.add_option("--trust-domain", n.tls.trust_domain,
                 "A node's certificate names it as the URI spiffe://<trust-domain>/node/<node-id>")
      ->envname("MESHD_TRUST_DOMAIN")
      ->capture_default_str();
  app.add_flag("--metrics-tls", n.tls.metrics,
               "Serve /metrics over TLS too, with --tls-cert (scrapers must then use https)")
      ->envname("MESHD_METRICS_TLS");
  AddDuration(app, "--tls-reload-interval", &n.tls.reload_interval,
              "How often the TLS files are checked for changes", "MESHD_TLS_RELOAD_INTERVAL");
  app.add_option("--auth-token-file", n.auth.token_file,
                 "Callers must authenticate: bearer tokens, one \"TOKEN SUBJECT [ROLE,...]\" per "
                 "line (TOKEN or sha256:ITS-SHA256-HEX); re-read when it changes")
      ->envname("MESHD_AUTH_TOKEN_FILE");
  app.add_option(
         "--auth-jwks-file", n.auth.jwt.jwks_file,
         "Callers may send JWTs signed by a key of this JWKS file (re-read when it changes)")
      ->envname("MESHD_AUTH_JWKS_FILE");
  app.add_option("--auth-jwks-url", n.auth.jwt.jwks_url,
                 "...or of the JWKS at this https URL (fetched every 5m and on an unknown kid)")
      ->envname("MESHD_AUTH_JWKS_URL");
  app.add_option("--auth-jwks-ca", n.auth.jwt.jwks_ca_file,
                 "PEM CA to verify --auth-jwks-url's server with (default: the system's)")
      ->envname("MESHD_AUTH_JWKS_CA");
  app.add_option("--auth-jwt-issuer", n.auth.jwt.issuer, "A JWT's iss must be this")
      ->envname("MESHD_AUTH_JWT_ISSUER");
  app.add_option("--auth-jwt-audience", n.auth.jwt.audience,
                 "A JWT's aud must hold this (required with a JWKS)")
      ->envname("MESHD_AUTH_JWT_AUDIENCE");
  app.add_option("--auth-jwt-roles-claim", n.auth.jwt.roles_claim,
                 "The claim with the caller's roles (a list, or space-separated names)")
      ->envname("MESHD_AUTH_JWT_ROLES_CLAIM")
      ->capture_default_str();
  app.add_flag("--auth-client-certs", n.auth.client_certificates,
               "Callers must authenticate, and a client certificate of --tls-client-ca proves "
               "who they are (its spiffe:// URI or CN)")
      ->envname("MESHD_AUTH_CLIENT_CERTS");
  app.add_option("--policy-file", n.policy_file,
                 "Govern every call with this JSON policy (docs/governance.md): what no rule "
                 "allows is denied; re-read when it changes and on SIGHUP")
      ->envname("MESHD_POLICY_FILE");
  app.add_option("--audit-log", n.audit_log,
                 "Write one JSON line per governance decision to this file (- for standard "
                 "output); meshctl audit reads the newest")
      ->envname("MESHD_AUDIT_LOG");
  app.add_option("--audit-max-bytes", n.audit_max_bytes,
                 "Rotate the --audit-log file at this size (FILE.1, FILE.2, ...)")
      ->envname("MESHD_AUDIT_MAX_BYTES")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--audit-max-files", n.audit_max_files, "Rotated audit files kept")
      ->envname("MESHD_AUDIT_MAX_FILES")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--audit-max-queued", n.audit_max_queued,
                 "Audit entries waiting to be written; past it new ones are dropped (counted), "
                 "never waited for")
      ->envname("MESHD_AUDIT_MAX_QUEUED")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--otlp-endpoint", n.otlp.endpoint,
                 "Export spans of the task path to this OpenTelemetry collector (docs/tracing.md): "
                 "host:port or http(s)://host:port for grpc, http(s)://host:4318[/path] for "
                 "http/protobuf; unset: no spans (callers' trace context still passes on)")
      ->envname("MESHD_OTLP_ENDPOINT");
  std::string otlp_protocol = "grpc";
  app.add_option("--otlp-protocol", otlp_protocol, "grpc or http/protobuf")
      ->envname("MESHD_OTLP_PROTOCOL")
      ->check(CLI::IsMember({"grpc", "http/protobuf"}))
      ->capture_default_str();
  std::vector<std::string> otlp_headers;
  app.add_option("--otlp-header", otlp_headers,
                 "NAME=VALUE sent with every export (a collector's authentication); repeatable. "
                 "MESHD_OTLP_HEADERS (comma-separated) adds to them, e.g. from a Secret")
      ->delimiter(',');
  app.add_option("--otlp-ca-file", n.otlp.ca_file,
                 "PEM roots the collector's certificate must chain to (turns TLS on)")
      ->envname("MESHD_OTLP_CA_FILE")
      ->check(CLI::ExistingFile);
  std::vector<std::string> trace_resource;
  app.add_option("--otlp-resource-attribute", trace_resource,
                 "NAME=VALUE added to the spans' resource (e.g. k8s.pod.name=...); repeatable")
      ->envname("MESHD_OTLP_RESOURCE_ATTRIBUTES")
      ->delimiter(',');
  app.add_option("--trace-sample-ratio", n.trace_sample_ratio,
                 "Record this share of new traces (0 to 1); a call with a traceparent follows "
                 "its caller's decision")
      ->envname("MESHD_TRACE_SAMPLE_RATIO")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "text or json (one object per line)")
      ->envname("MESHD_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->envname("MESHD_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--ready-file", config.ready_file,
                 "Once serving, write {\"node_id\",\"grpc_address\"} JSON to this file")
      ->envname("MESHD_READY_FILE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    config.exit_message = app.help();
    return config;
  } catch (const CLI::CallForVersion&) {
    config.exit_message =
        absl::StrCat("meshd ", Version(), " (revision ", Revision(), ", ", AllocatorName(), ")\n");
    return config;
  } catch (const CLI::ConfigError& e) {
    return absl::InvalidArgumentError(ConfigKeyError(app, config_file->as<std::string>(), e));
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  n.store_fsync = store_sync == "full";
  if (const char* env = std::getenv("MESHD_OTLP_HEADERS"); env != nullptr && *env != '\0') {
    for (absl::string_view header : absl::StrSplit(env, ',', absl::SkipEmpty())) {
      otlp_headers.emplace_back(header);
    }
  }
  n.otlp.protocol = otlp_protocol == "grpc" ? trace::OtlpOptions::Protocol::kGrpc
                                            : trace::OtlpOptions::Protocol::kHttpProtobuf;
  for (const auto& [flag, values, out] :
       {std::tuple{"--otlp-header", &otlp_headers, &n.otlp.headers},
        std::tuple{"--otlp-resource-attribute", &trace_resource, &n.trace_resource}}) {
    for (const std::string& value : *values) {
      const size_t equals = value.find('=');
      if (equals == std::string::npos || equals == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, " \"", value, "\": expected NAME=VALUE"));
      }
      out->emplace_back(value.substr(0, equals), value.substr(equals + 1));
    }
  }
  const std::string any_host = n.auth.enabled() ? "0.0.0.0" : "127.0.0.1";
  if (http_address->count() == 0) n.http_address = any_host + ":7480";
  if (metrics_address->count() == 0) n.metrics_address = any_host + ":9464";
  config.log_format = log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  config.log_level = log_level == "debug"   ? LogLevel::kDebug
                     : log_level == "warn"  ? LogLevel::kWarning
                     : log_level == "error" ? LogLevel::kError
                                            : LogLevel::kInfo;
  return config;
}

}  // namespace a2amesh::meshd
