#include "metrics/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/a2a_error.h"
#include "core/version.h"
#include "http/http_server.h"

namespace a2amesh::metrics {
namespace {

// Task durations: agents answer in milliseconds or work for minutes.
std::vector<double> TaskBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
}

// Latencies inside the mesh: a handoff's acceptance, a group commit, the first
// event of a task.
std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

// Request durations, from a probe's microseconds to a stream open for hours.
std::vector<double> RequestBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,    1,     2.5,    5,     10,   30,    60,   300, 3600};
}

std::string HttpStatusName(int status) { return absl::StrCat(status); }

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

void Gauge(TextWriter& writer, const std::string& name, const std::string& help, double value,
           const Labels& labels = {}) {
  writer.Family(name, help, "gauge");
  writer.Sample(name, labels, value);
}

void LabelledGauges(TextWriter& writer, const std::string& name, const std::string& help,
                    const std::string& label, const std::map<std::string, int64_t>& values) {
  writer.Family(name, help, "gauge");
  for (const auto& [value, count] : values) {
    writer.Sample(name, {{label, value}}, static_cast<double>(count));
  }
}

double BootTime() {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    double value = 0;
    if (line.rfind("btime ", 0) == 0 && absl::SimpleAtod(line.substr(6), &value)) {
      return value;
    }
  }
  return 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory's own descriptor
}

}  // namespace

void Metrics::WriteNode(TextWriter& writer) const {
  const NodeSample sample = sample_();
  LabelledGauges(writer, "a2amesh_peers", "Other nodes of the mesh, by state.", "state",
                 sample.peers);
  LabelledGauges(writer, "a2amesh_agents",
                 "Agents in the catalog: on this node (local) or on peers (remote).", "location",
                 sample.agents);
  Gauge(writer, "a2amesh_skills", "Distinct skills offered by the agents in the catalog.",
        static_cast<double>(sample.skills));
  LabelledGauges(writer, "a2amesh_open_streams", "Open long-lived streams, by kind.", "kind",
                 sample.open_streams);
  LabelledGauges(writer, "a2amesh_tasks",
                 "Tasks held in memory (not ended, or turns run for other nodes), by state.",
                 "state", sample.tasks);
  LabelledGauges(writer, "a2amesh_skill_capacity",
                 "Tasks this node's agents of a skill may run at once (sum of max_concurrency).",
                 "skill", sample.skill_capacity);
  LabelledGauges(writer, "a2amesh_skill_running",
                 "Tasks this node's agents of a skill are running.", "skill", sample.skill_running);
  LabelledGauges(writer, "a2amesh_skill_waiting",
                 "This node's tasks of a skill that no agent has started yet (submitted).", "skill",
                 sample.skill_waiting);
  LabelledGauges(writer, "a2amesh_remote_agent_up",
                 "A2A agents this node hosts by URL: 1 while in routing, 0 while out (its card "
                 "or its calls do not answer).",
                 "agent", sample.remote_agent_up);
  LabelledGauges(writer, "a2amesh_remote_agent_failed_calls",
                 "Calls in a row that did not reach an A2A agent hosted by URL (reset by one "
                 "that does; --remote-agent-max-failures of them take it out of routing).",
                 "agent", sample.remote_agent_failures);
  Gauge(writer, "a2amesh_push_queued", "Push notifications waiting to be delivered to webhooks.",
        static_cast<double>(sample.push_queued));
  Gauge(writer, "a2amesh_approvals_pending",
        "Tasks waiting for an approver (AUTH_REQUIRED by a policy rule).",
        static_cast<double>(sample.approvals_pending));
  writer.Family("a2amesh_http_connections_shed_total",
                "HTTP connections closed, while the server was full, to make room for a new one: "
                "those that had waited longest for a request (idle or slow clients).",
                "counter");
  writer.Sample("a2amesh_http_connections_shed_total", {},
                static_cast<double>(sample.http_connections_shed));
  if (sample.store_bytes >= 0) {
    Gauge(writer, "a2amesh_store_bytes",
          "Bytes of the task store's files on disk (the SQLite database and its WAL).",
          static_cast<double>(sample.store_bytes));
  }
  Gauge(writer, "a2amesh_draining", "1 while the node is draining (takes no new client work).",
        sample.draining ? 1 : 0);
  Gauge(writer, "a2amesh_build_info",
        "Always 1; meshd's version and the git revision it was built from are labels.", 1,
        {{"version", Version()}, {"revision", Revision()}});
}

// The process_* metrics of the Prometheus client conventions, from /proc.
void Metrics::WriteProcess(TextWriter& writer) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: fields are counted after ')'.
  const size_t paren = stat.rfind(')');
  std::vector<std::string> fields;
  if (paren != std::string::npos) {
    fields = absl::StrSplit(stat.substr(paren + 2), ' ', absl::SkipEmpty());
  }
  // fields[0] is field 3 (state): field N is fields[N - 3].
  auto field = [&](int n) {
    double value = 0;
    if (n - 3 < static_cast<int>(fields.size())) {
      (void)absl::SimpleAtod(fields[n - 3], &value);
    }
    return value;
  };
  writer.Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                "counter");
  writer.Sample("process_cpu_seconds_total", {}, (field(14) + field(15)) / ticks);
  Gauge(writer, "process_resident_memory_bytes", "Resident memory size in bytes.",
        field(24) * static_cast<double>(sysconf(_SC_PAGESIZE)));
  Gauge(writer, "process_virtual_memory_bytes", "Virtual memory size in bytes.", field(23));
  Gauge(writer, "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.", BootTime() + field(22) / ticks);
  Gauge(writer, "process_open_fds", "Number of open file descriptors.", OpenFds());
  struct rlimit limit;
  Gauge(writer, "process_max_fds", "Maximum number of open file descriptors.",
        getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<double>(limit.rlim_cur) : 0);
}

Metrics::Metrics(std::function<NodeSample()> sample)
    : sample_(std::move(sample)),
      tasks_created_("a2amesh_tasks_created_total",
                     "Tasks this node created (owns), by the skill they were routed for."),
      tasks_ended_("a2amesh_tasks_ended_total",
                   "Tasks this node owns that ended, by skill and final state "
                   "(completed, failed, canceled, rejected; replied: the agent answered with a "
                   "direct Message and no task was kept)."),
      task_duration_("a2amesh_task_duration_seconds",
                     "Time from a task's creation to its end, by skill.", TaskBuckets()),
      task_first_event_("a2amesh_task_first_event_seconds",
                        "Time from a task's creation to the first event from its agent, by skill.",
                        LatencyBuckets()),
      routing_decisions_("a2amesh_routing_decisions_total",
                         "Routing decisions: local, remote, none (nothing matches), busy (every "
                         "match at max_concurrency), refused (a cycle or too deep)."),
      handoffs_("a2amesh_handoffs_total",
                "Handoffs of a task's turn to a peer, by peer and result: accepted, refused (the "
                "next candidate is tried), failed (lost after acceptance)."),
      handoff_latency_("a2amesh_handoff_latency_seconds",
                       "Time from starting a handoff to the peer's acceptance, by peer.",
                       LatencyBuckets()),
      store_commit_("a2amesh_store_commit_seconds",
                    "Time to write one group commit of the task store (with its fsync).",
                    LatencyBuckets()),
      store_failures_("a2amesh_store_commit_failures_total",
                      "Group commits of the task store that failed."),
      trace_spans_("a2amesh_trace_spans_total",
                   "Spans of the node's tracer, by outcome: exported, dropped (its queue was full: "
                   "the collector is slow or down) or failed (the collector refused them or could "
                   "not be reached); docs/tracing.md."),
      push_attempts_("a2amesh_push_notifications_total",
                     "Push notifications to webhooks, by outcome: delivered, retried (tried "
                     "again after a backoff), failed (given up), dropped (the queue was full), "
                     "refused (the target is not allowed)."),
      push_latency_("a2amesh_push_delivery_seconds",
                    "Time a webhook took to accept a push notification.", LatencyBuckets()),
      remote_agent_calls_("a2amesh_remote_agent_calls_total",
                          "Calls (task turns) to A2A agents this node hosts by URL, by agent and "
                          "outcome: ok, failed (the agent answered with an error, or ended its "
                          "stream early), unreachable (no answer), cancelled."),
      remote_agent_call_duration_("a2amesh_remote_agent_call_duration_seconds",
                                  "How long calls to A2A agents hosted by URL ran, by agent (a "
                                  "streamed turn: until its stream ended).",
                                  TaskBuckets()),
      peer_refusals_("a2amesh_peer_refusals_total",
                     "Peer calls refused by their certificate, by reason: no_certificate (none "
                     "of the mesh CA naming a node), identity (it names another node than the "
                     "one the caller claims to be)."),
      tasks_expired_("a2amesh_tasks_expired_total",
                     "Finished tasks removed by retention (--task-retention, "
                     "--max-finished-tasks)."),
      policy_decisions_("a2amesh_policy_decisions_total",
                        "Governance decisions (docs/governance.md), by action (send, get, "
                        "inspect, ...) and outcome: allow, deny, limited (a rate limit or quota)."),
      rate_limited_("a2amesh_rate_limited_total",
                    "New tasks refused by a rate limit or quota, by how the caller was proven "
                    "(principal_class: token, jwt, mtls, none) and skill."),
      policy_reloads_("a2amesh_policy_reloads_total",
                      "Policy file reloads, by result: ok, or error (the previous policy "
                      "stayed in force)."),
      audit_dropped_("a2amesh_audit_dropped_total",
                     "Audit entries dropped because the audit log's writer fell behind."),
      approvals_("a2amesh_approvals_total",
                 "Tasks that waited for an approval, by outcome: approved, denied, expired "
                 "(nobody decided before the rule's timeout)."),
      grpc_requests_("a2amesh_grpc_requests_total",
                     "Calls the gRPC server answered (A2A and Admin, unary and server-streaming; "
                     "not the HTTP bindings' calls, not the agents' and peers' bidi streams), by "
                     "service, method and status code.",
                     "a2amesh_grpc_request_duration_seconds",
                     "How long the gRPC server's calls ran, by service and method (for a "
                     "stream: how long it was open).",
                     {"service", "method"}),
      http_requests_("a2amesh_http_requests_total",
                     "Requests the A2A HTTP server answered, by binding (jsonrpc, rest, card, "
                     "probe, none: no such path, server: refused before any handler), A2A "
                     "method and HTTP status code.",
                     "a2amesh_http_request_duration_seconds",
                     "Time from reading an HTTP request to sending its response's head, by "
                     "binding and method.",
                     {"binding", "method"}),
      store_commit_seconds_(store_commit_.Add({})),
      store_failures_total_(store_failures_.Add({})),
      push_delivery_seconds_(push_latency_.Add({})),
      tasks_expired_total_(tasks_expired_.Add({})),
      audit_dropped_total_(audit_dropped_.Add({})) {
  for (const char* result : {"ok", "error"}) {
    policy_reloads_.Add({{"result", result}});
  }
  for (const char* outcome : {"approved", "denied", "expired"}) {
    approvals_.Add({{"outcome", outcome}});
  }
  for (const char* decision : {"local", "remote", "none", "busy", "refused"}) {
    routing_decisions_.Add({{"decision", decision}});  // every series from the start
  }
  for (const char* outcome : {"delivered", "retried", "failed", "dropped", "refused"}) {
    push_attempts_.Add({{"outcome", outcome}});
  }
  for (const char* reason : {"no_certificate", "identity"}) {
    peer_refusals_.Add({{"reason", reason}});
  }
  for (const char* outcome : {"exported", "dropped", "failed"}) {
    trace_spans_.Add({{"outcome", outcome}});
  }
}

Metrics::~Metrics() = default;

std::string Metrics::Scrape(Format format) const {
  TextWriter writer(format);
  tasks_created_.Write(writer);
  tasks_ended_.Write(writer);
  task_duration_.Write(writer);
  task_first_event_.Write(writer);
  routing_decisions_.Write(writer);
  handoffs_.Write(writer);
  handoff_latency_.Write(writer);
  store_commit_.Write(writer);
  store_failures_.Write(writer);
  push_attempts_.Write(writer);
  trace_spans_.Write(writer);
  push_latency_.Write(writer);
  remote_agent_calls_.Write(writer);
  remote_agent_call_duration_.Write(writer);
  peer_refusals_.Write(writer);
  tasks_expired_.Write(writer);
  policy_decisions_.Write(writer);
  rate_limited_.Write(writer);
  policy_reloads_.Write(writer);
  audit_dropped_.Write(writer);
  approvals_.Write(writer);
  grpc_requests_.Write(writer);
  http_requests_.Write(writer);
  WriteNode(writer);
  WriteProcess(writer);
  return writer.Take();
}

Metrics::Requests::Requests(std::string counter, std::string counter_help, std::string histogram,
                            std::string histogram_help,
                            std::pair<const char*, const char*> label_names)
    : label_names_(label_names),
      counter_(std::move(counter), std::move(counter_help)),
      histogram_(std::move(histogram), std::move(histogram_help), RequestBuckets()) {}

void Metrics::Requests::Record(absl::string_view key,
                               std::pair<absl::string_view, absl::string_view> labels, int code,
                               std::string (*code_name)(int), absl::Duration duration,
                               absl::string_view trace_id) {
  Counter* counter;
  Histogram* histogram;
  {
    absl::MutexLock lock(&mu_);
    auto it = kinds_.find(key);
    if (it == kinds_.end()) {
      it = kinds_.emplace(std::string(key), Kind()).first;
      it->second.duration = &histogram_.Add({{label_names_.first, std::string(labels.first)},
                                             {label_names_.second, std::string(labels.second)}});
    }
    Counter*& by_code = it->second.by_code[code];
    if (by_code == nullptr) {
      by_code = &counter_.Add({{label_names_.first, std::string(labels.first)},
                               {label_names_.second, std::string(labels.second)},
                               {"code", code_name(code)}});
    }
    counter = by_code;
    histogram = it->second.duration;
  }
  counter->Increment();
  histogram->Observe(Seconds(duration), trace_id);
}

void Metrics::Requests::Write(TextWriter& writer) const {
  counter_.Write(writer);
  histogram_.Write(writer);
}

void Metrics::GrpcHandled(absl::string_view service, absl::string_view method, int code,
                          absl::Duration duration, absl::string_view trace_id) {
  grpc_requests_.Record(absl::StrCat(service, "/", method), {service, method}, code, StatusCodeName,
                        duration, trace_id);
}

void Metrics::HttpHandled(absl::string_view binding, absl::string_view method, int status,
                          absl::Duration duration, absl::string_view trace_id) {
  http_requests_.Record(absl::StrCat(binding, "/", method), {binding, method}, status,
                        HttpStatusName, duration, trace_id);
}

void Metrics::TaskCreated(const std::string& skill) {
  tasks_created_.Add({{"skill", skill}}).Increment();
}

void Metrics::TaskFirstEvent(const std::string& skill, absl::Duration latency,
                             absl::string_view trace_id) {
  task_first_event_.Add({{"skill", skill}}).Observe(Seconds(latency), trace_id);
}

void Metrics::TaskEnded(const std::string& skill, const std::string& state, absl::Duration duration,
                        absl::string_view trace_id) {
  tasks_ended_.Add({{"skill", skill}, {"state", state}}).Increment();
  task_duration_.Add({{"skill", skill}}).Observe(Seconds(duration), trace_id);
}

void Metrics::PeerRefused(const std::string& reason) {
  peer_refusals_.Add({{"reason", reason}}).Increment();
}

void Metrics::TasksExpired(int64_t count) {
  tasks_expired_total_.Add(static_cast<uint64_t>(count));
}

void Metrics::PolicyDecision(const std::string& action, const std::string& outcome) {
  policy_decisions_.Add({{"action", action}, {"outcome", outcome}}).Increment();
}

void Metrics::RateLimited(const std::string& principal_class, const std::string& skill) {
  rate_limited_.Add({{"principal_class", principal_class}, {"skill", skill}}).Increment();
}

void Metrics::PolicyReloaded(bool ok) {
  policy_reloads_.Add({{"result", ok ? "ok" : "error"}}).Increment();
}

void Metrics::AuditDropped() { audit_dropped_total_.Increment(); }

void Metrics::ApprovalDecided(const std::string& outcome) {
  approvals_.Add({{"outcome", outcome}}).Increment();
}

void Metrics::Routed(const std::string& decision) {
  routing_decisions_.Add({{"decision", decision}}).Increment();
}

void Metrics::Handoff(const std::string& peer, const std::string& result, absl::Duration latency,
                      absl::string_view trace_id) {
  handoffs_.Add({{"peer", peer}, {"result", result}}).Increment();
  if (result == "accepted") {
    handoff_latency_.Add({{"peer", peer}}).Observe(Seconds(latency), trace_id);
  }
}

void Metrics::TraceSpans(const std::string& outcome, uint64_t count) {
  trace_spans_.Add({{"outcome", outcome}}).Add(count);
}

void Metrics::PushAttempt(const std::string& outcome, absl::Duration latency,
                          absl::string_view trace_id) {
  push_attempts_.Add({{"outcome", outcome}}).Increment();
  if (outcome == "delivered") {
    push_delivery_seconds_.Observe(Seconds(latency), trace_id);
  }
}

void Metrics::RemoteAgentCall(const std::string& agent, const std::string& outcome,
                              absl::Duration duration, absl::string_view trace_id) {
  remote_agent_calls_.Add({{"agent", agent}, {"outcome", outcome}}).Increment();
  remote_agent_call_duration_.Add({{"agent", agent}}).Observe(Seconds(duration), trace_id);
}

void Metrics::StoreCommitted(absl::Duration latency, bool ok) {
  store_commit_seconds_.Observe(Seconds(latency));
  if (!ok) store_failures_total_.Increment();
}

MetricsServer::MetricsServer(std::unique_ptr<http::Server> server)
    : server_(std::move(server)), port_(server_->port()) {}

MetricsServer::~MetricsServer() = default;

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, Metrics& metrics, std::shared_ptr<http::TlsContextSource> tls,
    std::function<bool()> ready) {
  auto handler = [&metrics, ready = std::move(ready)](const http::Request& request) {
    http::Response response;
    const bool probe = request.path == "/livez" || request.path == "/readyz";
    if (request.path != "/metrics" && request.path != "/" && !probe) {
      response.status = 404;
      response.body = "not found: metrics are at /metrics, probes at /livez and /readyz\n";
      return response;
    }
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.headers.emplace_back("Allow", "GET, HEAD");
      response.body = absl::StrCat(request.method, " is not allowed: GET ", request.path, "\n");
      return response;
    }
    if (request.path == "/") {
      response.body = "a2a-mesh node: metrics are at /metrics\n";
      return response;
    }
    if (request.path == "/livez") {
      response.body = "ok\n";
      return response;
    }
    if (request.path == "/readyz") {
      const bool is_ready = ready == nullptr || ready();
      response.status = is_ready ? 200 : 503;
      response.body = is_ready ? "ok\n" : "draining\n";
      return response;
    }
    // Prometheus asks for OpenMetrics first: it carries the exemplars.
    const Format format = NegotiateFormat(request.Header("accept"));
    response.content_type = ContentType(format);
    response.body = metrics.Scrape(format);
    return response;
  };
  http::ServerOptions options;
  options.tls = std::move(tls);
  absl::StatusOr<std::unique_ptr<http::Server>> server =
      http::Server::Start(address, std::move(options), std::move(handler));
  if (!server.ok()) {
    return absl::UnavailableError(absl::StrCat("--metrics-address: ", server.status().message()));
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(*std::move(server)));
}

}  // namespace a2amesh::metrics
