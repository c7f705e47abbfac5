#ifndef A2AMESH_AGENTHOST_REMOTE_AGENTS_H_
#define A2AMESH_AGENTHOST_REMOTE_AGENTS_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "a2amesh/executor.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "catalog/agent_catalog.h"
#include "core/telemetry.h"
#include "http/curl_loop.h"
#include "tasks/task_manager.h"

namespace a2amesh::agenthost {

// One agent that lives elsewhere and speaks A2A v1.0, hosted by this node.
struct RemoteAgentSpec {
  // Its card: https://host/.well-known/agent-card.json, or any URL that
  // serves it.
  std::string card_url;
  // Its id in the mesh; empty: derived from the card's name.
  std::string agent_id;
  // How the node proves itself to the agent, on the card's fetch and every
  // call: a bearer token (`token`, or read from `token_file` at each fetch of
  // the card, so a rotated token is used from the next one), and a client
  // certificate (`cert_file` and `key_file`, PEM) for mutual TLS.
  std::string token;
  std::string token_file;
  std::string cert_file;
  std::string key_file;
  // PEM roots its certificate must chain to (empty: the system's).
  std::string ca_file;
  // Tasks it runs at once (its calls in flight, each on a connection of its
  // own); 0: RemoteAgentsOptions::max_concurrency.
  int max_concurrency = 0;
};

// Checks a card URL (http:// or https://) and an id (may be empty);
// INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<RemoteAgentSpec> MakeRemoteAgentSpec(absl::string_view card_url,
                                                    absl::string_view agent_id);
// Parses "[ID=]URL [token-file=PATH] [ca-file=PATH] [cert-file=PATH
// key-file=PATH] [max-concurrency=N]" (--remote-agent); INVALID_ARGUMENT
// naming the flag and what is wrong.
absl::StatusOr<RemoteAgentSpec> ParseRemoteAgent(absl::string_view flag);

// How the node calls a remote agent: one interface of its card.
struct RemoteInterface {
  std::string binding;  // "JSONRPC", "GRPC" or "HTTP+JSON"
  // The JSON-RPC endpoint's URL, the HTTP+JSON base URL (no trailing '/'),
  // or the gRPC target ("host:port").
  std::string url;
  std::string tenant;
  // The A2A version it speaks there, as its card says ("1.0", "0.3.0").
  std::string version;
  // gRPC over TLS (its URL is grpcs:// or https://).
  bool tls = false;
  // A2A 0.3 (JSON-RPC only): calls and answers go through a2a/legacy_v03.h.
  bool legacy() const { return absl::StartsWith(version, "0."); }
};

// How the node proves itself to a remote agent (RemoteAgentSpec, with the
// token read).
struct RemoteCredentials {
  std::string token;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// The interface of `card` the node calls: the first in the card's order (its
// preference) it can call at A2A 1.0, else the first at 0.3 (JSON-RPC only:
// 0.3's gRPC and REST are other APIs), and of binding `wanted` if set.
// JSON-RPC and HTTP+JSON need libcurl (`can_http`). FAILED_PRECONDITION listing what the card
// offers otherwise.
absl::StatusOr<RemoteInterface> ChooseRemoteInterface(const lf::a2a::v1::AgentCard& card,
                                                      const std::string& wanted, bool can_http);

struct RemoteAgentsOptions {
  std::vector<RemoteAgentSpec> agents;
  // Tasks run at once on each that does not say (RemoteAgentSpec).
  int max_concurrency = 16;
  // How often each card is fetched again. An agent whose card does not answer
  // leaves routing (its running tasks fail, after the node's agent grace,
  // unless it answers again); it comes back when its card does.
  absl::Duration refresh = absl::Seconds(30);
  // Fetching a card.
  absl::Duration timeout = absl::Seconds(10);
  // Calls in a row that do not reach an agent (no connection, an HTTP error,
  // gRPC UNAVAILABLE) take it out of routing until its card answers again
  // (0: never).
  int max_failures = 3;
  // The binding to call them over: "JSONRPC", "GRPC" or "HTTP+JSON"; empty: the first
  // interface in a card's order (its preference) that this node speaks.
  std::string binding;
  // Hears every call's end (RemoteAgentCall).
  Telemetry* telemetry = &NoTelemetry();
  // Where the waits between polls of a non-streaming agent's task run (the
  // node's). Without: such an agent is called with a blocking SendMessage.
  Timers* timers = nullptr;
};

// Remote A2A agents by URL (--remote-agent): the node fetches each one's card,
// registers its skills in the catalog like a local agent's (declaring direct
// replies: any A2A agent may answer with a Message), and runs each task routed
// to it by calling it with an A2A client over the card's JSONRPC or HTTP+JSON
// interface (libcurl, one thread for all calls, streams read as Server-Sent
// Events) or its GRPC one (gRPC's callback API):
// SendStreamingMessage when the card says it streams (else SendMessage with
// returnImmediately, then GetTask, at growing intervals, until the task ends
// or waits for input), its events applied to the mesh's task as the agent's; the
// mesh's task id maps to the remote task's, so that a follow-up message (an
// input-required turn) and a cancel reach the remote task. A call that fails
// fails the task, naming the agent and why.
//
// Thread-safe. One thread fetches cards; HTTP calls run on the CurlLoop's
// thread, gRPC calls on gRPC's callback threads.
class RemoteAgents {
 public:
  RemoteAgents(RemoteAgentsOptions options, catalog::AgentCatalog& catalog,
               tasks::TaskManager& tasks);
  ~RemoteAgents();  // stops fetching and leaves the catalog
  RemoteAgents(const RemoteAgents&) = delete;
  RemoteAgents& operator=(const RemoteAgents&) = delete;

  // Starts fetching the cards (at once, then every `refresh`).
  void Start();
  // Stops fetching, takes every agent out of the catalog and ends their calls
  // (waiting for them). Add is refused from then on. Idempotent.
  void Shutdown();

  // Hosts one more agent (Admin AddRemoteAgent): fetches its card now, on the
  // caller's thread, and registers it. Refused, and not kept, if its card
  // does not answer or cannot be called (the error names why), or if its URL
  // or id is hosted already (ALREADY_EXISTS). Blocks up to `timeout`.
  absl::StatusOr<catalog::HostedRemoteAgent> Add(RemoteAgentSpec spec);
  // Stops hosting the agent of id or card URL `which`: it leaves routing, its
  // running tasks fail, its calls are cancelled and waited for. NOT_FOUND if
  // no agent hosted here has that id or URL. Blocks (an in-flight fetch of
  // its card, its calls' ends).
  absl::Status Remove(const std::string& which);

  // Every agent hosted, in the order they were added.
  std::vector<catalog::HostedRemoteAgent> Describe() const;

  struct Remote;

 private:
  void Loop();
  // Fetches one card; registers or removes its agent. Returns why it is out
  // of routing (OK: registered).
  absl::Status Refresh(Remote& remote);
  // The HTTP calls' loop, started on first use (nullptr in a build
  // without libcurl).
  http::CurlLoop* Http();
  // Stops `remote`'s calls and takes it out of the catalog, its tasks failed
  // with `why`.
  void Stop(Remote& remote, const std::string& why);
  // A call to `remote`'s agent `agent_id` (registered as `agent`, which may
  // be gone: only compared) ended with `status` (UNAVAILABLE: it did not
  // reach the agent), `duration` after it began, in `trace_id` (sampled; or "").
  void Called(Remote& remote, const std::string& agent_id, const catalog::LocalAgent* agent,
              const absl::Status& status, absl::Duration duration, absl::string_view trace_id);
  // Takes `agent` (just out of the catalog) out of routing.
  void Leave(const catalog::LocalAgent& agent, const std::string& why);

  const RemoteAgentsOptions options_;
  catalog::AgentCatalog& catalog_;
  tasks::TaskManager& tasks_;
  absl::Mutex http_mu_;
  std::unique_ptr<http::CurlLoop> http_ ABSL_GUARDED_BY(http_mu_);
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Remote>> remotes_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Add calls under way (Shutdown waits for them: one may be registering).
  int adding_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::agenthost

#endif  // A2AMESH_AGENTHOST_REMOTE_AGENTS_H_
