// meshd: one a2a-mesh node.

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/allocator.h"
#include "core/log.h"
#include "meshd/flags.h"
#include "node/node.h"
#include "rpc/grpc_log.h"

namespace {

bool WriteReadyFile(const std::string& path, const a2amesh::Node& node) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\"node_id\":\"" << node.node_id() << "\",\"grpc_address\":\"" << node.grpc_address()
        << "\",\"http_address\":\"" << node.http_address() << "\",\"metrics_address\":\""
        << node.metrics_address() << "\"}\n";
    if (!out) {
      return false;
    }
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Every open stream (gRPC or HTTP) holds a descriptor; the usual soft limit
// of 1024 would cap a node far below --max-open-streams. Raise it to the hard
// limit, as servers meant to hold many connections do.
void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<a2amesh::meshd::MeshdConfig> config = a2amesh::meshd::ParseFlags(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "meshd: %s\nRun meshd --help for the flags.\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  if (!config->exit_message.empty()) {
    std::fputs(config->exit_message.c_str(), stdout);
    return config->exit_code;
  }
  RaiseFileLimit();
  a2amesh::ConfigureAllocator();
  // Debian builds Abseil with its Mutex deadlock detector on: a graph of every
  // lock order, kept on each lock (some 3 % of a loaded node's CPU). The tests
  // and the clang -Wthread-safety build check lock order; the node runs without.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  a2amesh::SetLogFormat(config->log_format);
  a2amesh::SetLogLevel(config->log_level);
  a2amesh::rpc::RouteGrpcLogs();

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<a2amesh::Node>> node = a2amesh::Node::Start(config->node);
  if (!node.ok()) {
    A2AMESH_LOG(Error, "meshd cannot start").With("error", node.status());
    return 1;
  }
  if (!config->ready_file.empty() && !WriteReadyFile(config->ready_file, **node)) {
    A2AMESH_LOG(Error, "cannot write --ready-file").With("path", config->ready_file);
    return 1;
  }
  int signal_number = 0;
  // SIGHUP re-reads the policy file (a file that does not load is logged, and
  // the policy in force stays); SIGTERM and SIGINT drain and stop.
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    A2AMESH_LOG(Info, "signal received").With("signal", "HUP");
    (*node)->ReloadPolicy().IgnoreError();  // Reload logs its outcome
  }
  A2AMESH_LOG(Info, "signal received").With("signal", signal_number == SIGTERM ? "TERM" : "INT");
  size_t unfinished = (*node)->Drain(config->node.drain_timeout);
  node->reset();
  return unfinished == 0 ? 0 : 1;
}
