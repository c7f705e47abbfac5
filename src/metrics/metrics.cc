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
#include "core/version.h"
#include "http/http_server.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace a2amesh::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Task durations: agents answer in milliseconds or work for minutes.
const prometheus::Histogram::BucketBoundaries& TaskBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
  return *buckets;
}

// Latencies inside the mesh: a handoff's acceptance, a group commit, the first
// event of a task.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *buckets;
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

MetricFamily GaugeFamily(std::string name, std::string help) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = MetricType::Gauge;
  return family;
}

void AddGauge(MetricFamily& family, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

MetricFamily LabelledGauges(std::string name, std::string help, const std::string& label,
                            const std::map<std::string, int64_t>& values) {
  MetricFamily family = GaugeFamily(std::move(name), std::move(help));
  for (const auto& [value, count] : values) {
    AddGauge(family, static_cast<double>(count), {{label, value}});
  }
  return family;
}

}  // namespace

// The gauges read from the node at each scrape.
class Metrics::NodeCollector final : public prometheus::Collectable {
 public:
  explicit NodeCollector(std::function<NodeSample()> sample) : sample_(std::move(sample)) {}

  std::vector<MetricFamily> Collect() const override {
    const NodeSample sample = sample_();
    std::vector<MetricFamily> families;
    families.push_back(LabelledGauges("a2amesh_peers", "Other nodes of the mesh, by state.",
                                      "state", sample.peers));
    families.push_back(LabelledGauges(
        "a2amesh_agents", "Agents in the catalog: on this node (local) or on peers (remote).",
        "location", sample.agents));
    MetricFamily skills =
        GaugeFamily("a2amesh_skills", "Distinct skills offered by the agents in the catalog.");
    AddGauge(skills, static_cast<double>(sample.skills));
    families.push_back(std::move(skills));
    families.push_back(LabelledGauges("a2amesh_open_streams", "Open long-lived streams, by kind.",
                                      "kind", sample.open_streams));
    families.push_back(
        LabelledGauges("a2amesh_tasks",
                       "Tasks held in memory (not ended, or turns run for other nodes), by state.",
                       "state", sample.tasks));
    MetricFamily push_queued = GaugeFamily(
        "a2amesh_push_queued", "Push notifications waiting to be delivered to webhooks.");
    AddGauge(push_queued, static_cast<double>(sample.push_queued));
    families.push_back(std::move(push_queued));
    MetricFamily draining =
        GaugeFamily("a2amesh_draining", "1 while the node is draining (takes no new client work).");
    AddGauge(draining, sample.draining ? 1 : 0);
    families.push_back(std::move(draining));
    MetricFamily build =
        GaugeFamily("a2amesh_build_info", "Always 1; the version of meshd is a label.");
    AddGauge(build, 1, {{"version", Version()}});
    families.push_back(std::move(build));
    return families;
  }

 private:
  const std::function<NodeSample()> sample_;
};

// The process_* metrics of the Prometheus client conventions, from /proc.
class Metrics::ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> families;
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
    MetricFamily cpu = GaugeFamily("process_cpu_seconds_total",
                                   "Total user and system CPU time spent in seconds.");
    cpu.type = MetricType::Counter;
    ClientMetric cpu_metric;
    cpu_metric.counter.value = (field(14) + field(15)) / ticks;
    cpu.metric.push_back(cpu_metric);
    families.push_back(std::move(cpu));

    MetricFamily resident =
        GaugeFamily("process_resident_memory_bytes", "Resident memory size in bytes.");
    AddGauge(resident, field(24) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    families.push_back(std::move(resident));
    MetricFamily virtual_memory =
        GaugeFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.");
    AddGauge(virtual_memory, field(23));
    families.push_back(std::move(virtual_memory));

    MetricFamily start = GaugeFamily("process_start_time_seconds",
                                     "Start time of the process since unix epoch in seconds.");
    AddGauge(start, BootTime() + field(22) / ticks);
    families.push_back(std::move(start));

    MetricFamily fds = GaugeFamily("process_open_fds", "Number of open file descriptors.");
    AddGauge(fds, OpenFds());
    families.push_back(std::move(fds));
    MetricFamily max_fds =
        GaugeFamily("process_max_fds", "Maximum number of open file descriptors.");
    struct rlimit limit;
    AddGauge(max_fds,
             getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<double>(limit.rlim_cur) : 0);
    families.push_back(std::move(max_fds));
    return families;
  }

 private:
  static double BootTime() {
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

  static double OpenFds() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return 0;
    double count = 0;
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    closedir(dir);
    return count - 1;  // the one opendir holds
  }
};

Metrics::Metrics(std::function<NodeSample()> sample)
    : registry_(std::make_shared<prometheus::Registry>()),
      node_(std::make_shared<NodeCollector>(std::move(sample))),
      process_(std::make_shared<ProcessCollector>()),
      tasks_created_(prometheus::BuildCounter()
                         .Name("a2amesh_tasks_created_total")
                         .Help("Tasks this node created (owns), by the skill they were routed for.")
                         .Register(*registry_)),
      tasks_ended_(prometheus::BuildCounter()
                       .Name("a2amesh_tasks_ended_total")
                       .Help("Tasks this node owns that ended, by skill and final state "
                             "(completed, failed, canceled, rejected).")
                       .Register(*registry_)),
      task_duration_(prometheus::BuildHistogram()
                         .Name("a2amesh_task_duration_seconds")
                         .Help("Time from a task's creation to its end, by skill.")
                         .Register(*registry_)),
      task_first_event_(prometheus::BuildHistogram()
                            .Name("a2amesh_task_first_event_seconds")
                            .Help("Time from a task's creation to the first event from its "
                                  "agent, by skill.")
                            .Register(*registry_)),
      routing_decisions_(prometheus::BuildCounter()
                             .Name("a2amesh_routing_decisions_total")
                             .Help("Routing decisions: local, remote, none (nothing matches), "
                                   "busy (every match at max_concurrency), refused (a cycle "
                                   "or too deep).")
                             .Register(*registry_)),
      handoffs_(prometheus::BuildCounter()
                    .Name("a2amesh_handoffs_total")
                    .Help("Handoffs of a task's turn to a peer, by peer and result: accepted, "
                          "refused (the next candidate is tried), failed (lost after "
                          "acceptance).")
                    .Register(*registry_)),
      handoff_latency_(prometheus::BuildHistogram()
                           .Name("a2amesh_handoff_latency_seconds")
                           .Help("Time from starting a handoff to the peer's acceptance, by "
                                 "peer.")
                           .Register(*registry_)),
      store_commit_(prometheus::BuildHistogram()
                        .Name("a2amesh_store_commit_seconds")
                        .Help("Time to write one group commit of the task store (with its "
                              "fsync).")
                        .Register(*registry_)
                        .Add({}, LatencyBuckets())),
      store_failures_(prometheus::BuildCounter()
                          .Name("a2amesh_store_commit_failures_total")
                          .Help("Group commits of the task store that failed.")
                          .Register(*registry_)
                          .Add({})),
      push_attempts_(prometheus::BuildCounter()
                         .Name("a2amesh_push_notifications_total")
                         .Help("Push notifications to webhooks, by outcome: delivered, retried "
                               "(tried again after a backoff), failed (given up), dropped (the "
                               "queue was full), refused (the target is not allowed).")
                         .Register(*registry_)),
      push_latency_(prometheus::BuildHistogram()
                        .Name("a2amesh_push_delivery_seconds")
                        .Help("Time a webhook took to accept a push notification.")
                        .Register(*registry_)
                        .Add({}, LatencyBuckets())) {
  for (const char* decision : {"local", "remote", "none", "busy", "refused"}) {
    routing_decisions_.Add({{"decision", decision}});  // every series from the start
  }
  for (const char* outcome : {"delivered", "retried", "failed", "dropped", "refused"}) {
    push_attempts_.Add({{"outcome", outcome}});
  }
}

Metrics::~Metrics() = default;

std::string Metrics::Scrape() const {
  std::vector<MetricFamily> families = registry_->Collect();
  for (const auto* collector : {static_cast<const prometheus::Collectable*>(node_.get()),
                                static_cast<const prometheus::Collectable*>(process_.get())}) {
    std::vector<MetricFamily> more = collector->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::TaskCreated(const std::string& skill) {
  tasks_created_.Add({{"skill", skill}}).Increment();
}

void Metrics::TaskFirstEvent(const std::string& skill, absl::Duration latency) {
  task_first_event_.Add({{"skill", skill}}, LatencyBuckets()).Observe(Seconds(latency));
}

void Metrics::TaskEnded(const std::string& skill, const std::string& state,
                        absl::Duration duration) {
  tasks_ended_.Add({{"skill", skill}, {"state", state}}).Increment();
  task_duration_.Add({{"skill", skill}}, TaskBuckets()).Observe(Seconds(duration));
}

void Metrics::Routed(const std::string& decision) {
  routing_decisions_.Add({{"decision", decision}}).Increment();
}

void Metrics::Handoff(const std::string& peer, const std::string& result, absl::Duration latency) {
  handoffs_.Add({{"peer", peer}, {"result", result}}).Increment();
  if (result == "accepted") {
    handoff_latency_.Add({{"peer", peer}}, LatencyBuckets()).Observe(Seconds(latency));
  }
}

void Metrics::PushAttempt(const std::string& outcome, absl::Duration latency) {
  push_attempts_.Add({{"outcome", outcome}}).Increment();
  if (outcome == "delivered") {
    push_latency_.Observe(Seconds(latency));
  }
}

void Metrics::StoreCommitted(absl::Duration latency, bool ok) {
  store_commit_.Observe(Seconds(latency));
  if (!ok) store_failures_.Increment();
}

MetricsServer::MetricsServer(std::unique_ptr<http::Server> server)
    : server_(std::move(server)), port_(server_->port()) {}

MetricsServer::~MetricsServer() = default;

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address,
                                                                    Metrics& metrics) {
  auto handler = [&metrics](const http::Request& request) {
    http::Response response;
    if (request.path != "/metrics" && request.path != "/") {
      response.status = 404;
      response.body = "not found: metrics are at /metrics\n";
      return response;
    }
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.headers.emplace_back("Allow", "GET, HEAD");
      response.body = absl::StrCat(request.method, " is not allowed: GET /metrics\n");
      return response;
    }
    if (request.path == "/") {
      response.body = "a2a-mesh node: metrics are at /metrics\n";
      return response;
    }
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = metrics.Scrape();
    return response;
  };
  absl::StatusOr<std::unique_ptr<http::Server>> server =
      http::Server::Start(address, http::ServerOptions(), std::move(handler));
  if (!server.ok()) {
    return absl::UnavailableError(absl::StrCat("--metrics-address: ", server.status().message()));
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(*std::move(server)));
}

}  // namespace a2amesh::metrics
