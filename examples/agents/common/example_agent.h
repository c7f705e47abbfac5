#ifndef A2AMESH_EXAMPLES_AGENTS_COMMON_EXAMPLE_AGENT_H_
#define A2AMESH_EXAMPLES_AGENTS_COMMON_EXAMPLE_AGENT_H_

#include <CLI/CLI.hpp>
#include <string>

#include "a2amesh/sdk/agent.h"

// What every example agent's main() does: the common flags, then serve until
// SIGTERM or SIGINT.
namespace a2amesh::examples {

struct AgentFlags {
  std::string node = "127.0.0.1:7400";
  std::string agent_id;
  int max_concurrency = 8;
  // For nodes with auth and TLS on (docs/security.md).
  std::string token;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

// Adds --node, --agent-id (default: `flags->agent_id`), --max-concurrency,
// --token and --tls-ca/--tls-cert/--tls-key.
void AddAgentFlags(CLI::App& app, AgentFlags* flags);

// Serves `card` with `handler` on the node until SIGTERM or SIGINT. Returns
// main's exit code: 0, or 2 if the agent cannot start or the node refuses it
// for good. `inline_handler`: the handler never blocks
// (AgentSpec::inline_handler); `direct_replies`: it may answer with
// TaskContext::Reply (AgentSpec::direct_replies).
int ServeUntilSignal(const std::string& program, const AgentFlags& flags,
                     lf::a2a::v1::AgentCard card, sdk::TaskHandler handler,
                     bool inline_handler = false, bool direct_replies = false);

}  // namespace a2amesh::examples

#endif  // A2AMESH_EXAMPLES_AGENTS_COMMON_EXAMPLE_AGENT_H_
