#include "common/example_agent.h"

#include <signal.h>

#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "core/log.h"

namespace a2amesh::examples {

void AddAgentFlags(CLI::App& app, AgentFlags* flags) {
  app.add_option("--node", flags->node, "The meshd node's gRPC address")->capture_default_str();
  app.add_option("--agent-id", flags->agent_id, "This agent's id on the node")
      ->capture_default_str();
  app.add_option("--max-concurrency", flags->max_concurrency, "Tasks run at once")
      ->capture_default_str();
  app.add_option("--token", flags->token,
                 "Bearer token for a node with auth on (env A2AMESH_TOKEN)")
      ->envname("A2AMESH_TOKEN");
  app.add_option("--tls-ca", flags->tls_ca, "Dial the node with TLS, trusting this PEM CA");
  app.add_option("--tls-cert", flags->tls_cert, "Client certificate (PEM) for mutual TLS");
  app.add_option("--tls-key", flags->tls_key, "Private key (PEM) of --tls-cert");
}

int ServeUntilSignal(const std::string& program, const AgentFlags& flags,
                     lf::a2a::v1::AgentCard card, sdk::TaskHandler handler, bool inline_handler,
                     bool direct_replies) {
  // Taken by sigwait below; blocked before the SDK starts its threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // As meshd does: no lock-order graph on every lock in a serving process.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sdk::AgentOptions options;
  options.node = flags.node;
  options.instance = program;
  options.token = flags.token;
  options.tls_ca_file = flags.tls_ca;
  options.tls_cert_file = flags.tls_cert;
  options.tls_key_file = flags.tls_key;
  options.agents.push_back({flags.agent_id, std::move(card), flags.max_concurrency,
                            std::move(handler), inline_handler, direct_replies});
  absl::StatusOr<std::unique_ptr<sdk::Agent>> agent = sdk::Agent::Start(std::move(options));
  if (!agent.ok()) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(),
                 std::string(agent.status().message()).c_str());
    return 2;
  }
  A2AMESH_LOG(Info, "agent started")
      .With("program", program)
      .With("node", flags.node)
      .With("agent", flags.agent_id);
  // Until a signal, or until the node refuses the agent for good (a bad card,
  // an id or skill its credential may not register): the SDK has logged the
  // node's message; say it once more and exit 2, as retrying cannot help.
  while (true) {
    timespec tick{0, 200 * 1000 * 1000};
    if (sigtimedwait(&signals, nullptr, &tick) > 0) return 0;
    absl::Status registered = (*agent)->WaitUntilRegistered(absl::ZeroDuration());
    if (!registered.ok() && registered.code() != absl::StatusCode::kDeadlineExceeded) {
      std::fprintf(stderr, "%s: the node refused the agent: %s\n", program.c_str(),
                   registered.ToString().c_str());
      return 2;
    }
  }
}

}  // namespace a2amesh::examples
