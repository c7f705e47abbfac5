#ifndef A2AMESH_METRICS_METRICS_H_
#define A2AMESH_METRICS_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/telemetry.h"
#include "metrics/exposition.h"

namespace a2amesh::http {
class Server;
class TlsContextSource;
}  // namespace a2amesh::http

namespace a2amesh::metrics {

// The node as it stands, read at each scrape.
struct NodeSample {
  // Other nodes by state: "up", "draining", "down".
  std::map<std::string, int64_t> peers;
  // Agents in the catalog: "local", "remote".
  std::map<std::string, int64_t> agents;
  // Distinct skills in the catalog.
  int64_t skills = 0;
  // Open streams by kind: "a2a", "agent_host", "peer", "admin_watch".
  std::map<std::string, int64_t> open_streams;
  // Tasks held in memory by state ("submitted", "working", "input-required",
  // ...): the node's tasks not yet ended, and the turns it runs for others.
  std::map<std::string, int64_t> tasks;
  // By skill, over this node's agents: the sum of their max_concurrency
  // (capacity), the tasks they run (running); and this node's tasks of the
  // skill that no agent has started yet (waiting). What an autoscaler (KEDA,
  // an HPA on external metrics) scales agent Deployments by.
  std::map<std::string, int64_t> skill_capacity;
  std::map<std::string, int64_t> skill_running;
  std::map<std::string, int64_t> skill_waiting;
  // Push notifications waiting to be delivered.
  int64_t push_queued = 0;
  // Tasks waiting for an approver (docs/governance.md).
  int64_t approvals_pending = 0;
  // HTTP connections closed to make room for new ones (a counter).
  uint64_t http_connections_shed = 0;
  // A2A agents hosted by URL, by id: 1 while in routing, else 0; and the
  // calls in a row that did not reach each.
  std::map<std::string, int64_t> remote_agent_up;
  std::map<std::string, int64_t> remote_agent_failures;
  // Bytes of the task store's files (the database and its WAL); -1 in memory.
  int64_t store_bytes = -1;
  bool draining = false;
};

// The node's Prometheus metrics (names: docs/metrics.md): counters and
// histograms fed by Telemetry as things happen, gauges read from a NodeSample
// at each scrape, build info, and the process_* metrics every Prometheus
// client exports, in the text format (metrics/exposition.h). Label values are bounded: skill ids,
// member node ids and fixed words. Thread-safe.
class Metrics final : public Telemetry {
 public:
  // `sample` is called at each scrape, on the scraping thread; it must not
  // block.
  explicit Metrics(std::function<NodeSample()> sample);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Every metric, as /metrics serves it: in the text exposition format
  // (0.0.4), or in OpenMetrics with the histograms' exemplars.
  std::string Scrape(Format format = Format::kText) const;

  // Telemetry
  void TaskCreated(const std::string& skill) override;
  void TaskFirstEvent(const std::string& skill, absl::Duration latency,
                      absl::string_view trace_id) override;
  void TaskEnded(const std::string& skill, const std::string& state, absl::Duration duration,
                 absl::string_view trace_id) override;
  void Routed(const std::string& decision) override;
  void Handoff(const std::string& peer, const std::string& result, absl::Duration latency,
               absl::string_view trace_id) override;
  void StoreCommitted(absl::Duration latency, bool ok) override;
  void PushAttempt(const std::string& outcome, absl::Duration latency,
                   absl::string_view trace_id) override;
  void TraceSpans(const std::string& outcome, uint64_t count) override;
  void RemoteAgentCall(const std::string& agent, const std::string& outcome,
                       absl::Duration duration, absl::string_view trace_id) override;
  void PeerRefused(const std::string& reason) override;
  void TasksExpired(int64_t count) override;
  void PolicyDecision(const std::string& action, const std::string& outcome) override;
  void RateLimited(const std::string& principal_class, const std::string& skill) override;
  void PolicyReloaded(bool ok) override;
  void AuditDropped() override;
  void ApprovalDecided(const std::string& outcome) override;
  void GrpcHandled(absl::string_view service, absl::string_view method, int code,
                   absl::Duration duration, absl::string_view trace_id) override;
  void HttpHandled(absl::string_view binding, absl::string_view method, int status,
                   absl::Duration duration, absl::string_view trace_id) override;

 private:
  // The requests one server answered: a counter by what they were (two
  // labels) and their code, a histogram of their durations by what they were.
  // Record finds both through one lookup of `key` (what the request was, in
  // one string), made only the first time.
  class Requests {
   public:
    Requests(std::string counter, std::string counter_help, std::string histogram,
             std::string histogram_help, std::pair<const char*, const char*> label_names);
    // `labels`: the two label values of `key`; `code_name(code)` is the code
    // label, asked for only the first time a kind ends with that code.
    void Record(absl::string_view key, std::pair<absl::string_view, absl::string_view> labels,
                int code, std::string (*code_name)(int), absl::Duration duration,
                absl::string_view trace_id);
    void Write(TextWriter& writer) const;

   private:
    struct Kind {
      Histogram* duration = nullptr;
      absl::flat_hash_map<int, Counter*> by_code;
    };
    const std::pair<const char*, const char*> label_names_;
    Family<Counter> counter_;
    Family<Histogram> histogram_;
    absl::Mutex mu_;
    absl::flat_hash_map<std::string, Kind> kinds_ ABSL_GUARDED_BY(mu_);
  };

  // The gauges read from the node, and the process_* metrics.
  void WriteNode(TextWriter& writer) const;
  static void WriteProcess(TextWriter& writer);

  const std::function<NodeSample()> sample_;
  Family<Counter> tasks_created_;
  Family<Counter> tasks_ended_;
  Family<Histogram> task_duration_;
  Family<Histogram> task_first_event_;
  Family<Counter> routing_decisions_;
  Family<Counter> handoffs_;
  Family<Histogram> handoff_latency_;
  Family<Histogram> store_commit_;
  Family<Counter> store_failures_;
  Family<Counter> trace_spans_;
  Family<Counter> push_attempts_;
  Family<Histogram> push_latency_;
  Family<Counter> remote_agent_calls_;
  Family<Histogram> remote_agent_call_duration_;
  Family<Counter> peer_refusals_;
  Family<Counter> tasks_expired_;
  Family<Counter> policy_decisions_;
  Family<Counter> rate_limited_;
  Family<Counter> policy_reloads_;
  Family<Counter> audit_dropped_;
  Family<Counter> approvals_;
  Requests grpc_requests_;
  Requests http_requests_;
  // The families above without labels have one metric each, kept at hand:
  // their updates (one per group commit, per push) skip the family's lookup.
  Histogram& store_commit_seconds_;
  Counter& store_failures_total_;
  Histogram& push_delivery_seconds_;
  Counter& tasks_expired_total_;
  Counter& audit_dropped_total_;
};

// Serves GET /metrics over HTTP (http::Server: one event-loop thread, stops at
// once), and the probes of an orchestrator that cannot speak TLS gRPC (the
// kubelet's gRPC probe): /livez (200 while the process serves) and /readyz
// (200 while `ready()`, else 503). Thread-safe.
class MetricsServer {
 public:
  // Listens on `address` (host:port; port 0 picks one), over TLS if `tls`.
  // UNAVAILABLE naming the address if it cannot. `ready` is called on the
  // server's thread; null: always ready.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, Metrics& metrics,
      std::shared_ptr<http::TlsContextSource> tls = nullptr, std::function<bool()> ready = nullptr);
  ~MetricsServer();

  // The port it bound.
  int port() const { return port_; }

 private:
  explicit MetricsServer(std::unique_ptr<http::Server> server);

  std::unique_ptr<http::Server> server_;
  const int port_;
};

}  // namespace a2amesh::metrics

#endif  // A2AMESH_METRICS_METRICS_H_
