#ifndef A2AMESH_SDK_AGENT_H_
#define A2AMESH_SDK_AGENT_H_

// The a2a-mesh C++ agent SDK: serve A2A tasks from a process that registers
// with a meshd node.
//
//   a2amesh::sdk::AgentOptions options;
//   options.node = "127.0.0.1:7400";
//   options.agents.push_back({"echo", EchoCard(), /*max_concurrency=*/4,
//       [](a2amesh::sdk::TaskContext& task) { task.Complete("echo: " + task.text()); }});
//   std::unique_ptr<a2amesh::sdk::Agent> agent = a2amesh::sdk::Agent::Start(options);
//
// The SDK keeps one AgentHost stream to the node (gRPC's callback API: no
// write ever blocks), registers the cards, runs each assigned task's handler
// on a worker thread (or inline, for handlers that never block), streams the
// handler's events back (several tasks' events in one message under load),
// and reconnects with backoff when the stream breaks (events sent while
// disconnected are kept and sent after reconnecting).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::sdk {

// A subtask for TaskContext::Delegate: where it goes (every set field must
// match) and what it says.
struct Subtask {
  // An agent id, or "agent@node" for one on a given node.
  std::string agent_id;
  std::string skill;
  std::vector<std::string> tags;
  std::vector<std::string> accepted_output_modes;
  // At least one part; its ids and role are filled in.
  lf::a2a::v1::Message message;
  // The trace context the subtask's spans are children of: a span of the
  // agent's own. Empty: the turn's (TaskContext::traceparent).
  std::string traceparent;
  std::string tracestate;
};

// A subtask for `skill` that says `text`.
Subtask TextSubtask(absl::string_view skill, absl::string_view text);

// One task, as its handler sees it. Valid until the handler returns.
// Thread-safe: a handler may emit events from threads of its own.
class TaskContext {
 public:
  virtual ~TaskContext() = default;

  virtual const std::string& agent_id() const = 0;
  // The node the agent is registered with.
  virtual const std::string& node_id() const = 0;
  virtual const std::string& task_id() const = 0;
  virtual const std::string& context_id() const = 0;
  // The skill the node routed the task for ("" if the request named none).
  virtual const std::string& skill() const = 0;
  // The message to act on, and the task as the node holds it (its history
  // ends with that message).
  virtual const lf::a2a::v1::Message& message() const = 0;
  virtual const lf::a2a::v1::Task& task() const = 0;
  // The A2A request's metadata.
  virtual const google::protobuf::Struct& request_metadata() const = 0;
  // True when the node re-sent the task after a reconnect or a node restart.
  virtual bool resumed() const = 0;
  // The W3C trace context of this turn (the node's span for it; empty when
  // nobody traces): parent of the agent's own spans. Delegate sends it with
  // each subtask, so that the subtask's spans join the same trace.
  virtual const std::string& traceparent() const = 0;
  virtual const std::string& tracestate() const = 0;
  // The message's text parts, joined with newlines.
  virtual std::string text() const = 0;

  // A2A events. Each returns false, and sends nothing, once the task has ended
  // (a final status was sent, or it was cancelled) or the agent is stopping.
  virtual bool SetWorking(absl::string_view note = "") = 0;
  // An artifact, or one chunk of it: `append` adds the parts to the artifact
  // with the same id sent earlier; `last_chunk` marks the end.
  virtual bool SendArtifact(const lf::a2a::v1::Artifact& artifact, bool append = false,
                            bool last_chunk = true) = 0;
  // A message from the agent (added to the task's history).
  virtual bool SendMessage(const lf::a2a::v1::Message& message) = 0;
  // Final states. Complete and Fail end the task; RequireInput ends this turn:
  // the client's answer arrives as a new call of the handler.
  virtual bool Complete(absl::string_view text = "") = 0;
  virtual bool Fail(absl::string_view reason) = 0;
  virtual bool Reject(absl::string_view reason) = 0;
  virtual bool RequireInput(absl::string_view question) = 0;
  // Any status, with an optional message.
  virtual bool SetStatus(lf::a2a::v1::TaskState state, const lf::a2a::v1::Message* message) = 0;
  // Answers the task's message with this one Message instead of working on a
  // task (A2A's direct reply; see AgentSpec::direct_replies): the client that
  // waits gets the Message and the node keeps no task. Only as the first
  // thing the handler sends for a new task (not a follow-up): false, and
  // nothing sent, otherwise. Its role and id are filled in.
  virtual bool Reply(const lf::a2a::v1::Message& message) = 0;

  // Runs a subtask of this task on an agent anywhere in the mesh, and waits
  // until it ends (or asks for input). `on_event` sees each of its events, on
  // this thread, as they arrive. Returns the subtask's Task as it ended.
  // Errors: what the node answered (no agent offers the skill, a cycle in the
  // delegation chain, ...), UNAVAILABLE if the stream to the node broke, and
  // CANCELLED if this task was cancelled meanwhile (the node cancels the
  // subtask too). Subtasks may run in parallel from several threads.
  virtual absl::StatusOr<lf::a2a::v1::Task> Delegate(
      const Subtask& subtask,
      const std::function<void(const lf::a2a::v1::StreamResponse&)>& on_event = nullptr) = 0;

  // Whether the task was cancelled (by the client, or by the node).
  virtual bool cancelled() const = 0;
  // Waits up to `timeout` for a cancel; returns cancelled().
  virtual bool WaitForCancel(absl::Duration timeout) = 0;
};

// Runs one task (or one turn of an input-required task). If it returns
// without a final status, the SDK completes the task.
using TaskHandler = std::function<void(TaskContext& task)>;

// One agent served by the process.
struct AgentSpec {
  // The agent's id on the node; empty: derived from card.name.
  std::string agent_id;
  lf::a2a::v1::AgentCard card;
  int max_concurrency = 4;
  TaskHandler handler;
  // Run the handler on the gRPC thread that received the task, with no hop to
  // a worker thread, and send what it emits as one message when it returns.
  // Only for handlers that never block: in one, Delegate fails
  // (FAILED_PRECONDITION) and WaitForCancel returns at once. Default: a worker
  // thread, where a handler may block (call a model, delegate, wait).
  bool inline_handler = false;
  // The handler may answer with TaskContext::Reply: the card is registered
  // declaring the extension urn:a2a-mesh:ext:direct-replies:v1, which tells
  // the node (and clients) that this agent may answer with a Message, and
  // the node holds a stream's first event (the Task) until it knows.
  bool direct_replies = false;
};

struct AgentOptions {
  // The node's gRPC address.
  std::string node = "127.0.0.1:7400";
  std::vector<AgentSpec> agents;
  // Bearer token, for nodes with auth on: sent as the stream's authorization
  // metadata (and in the registration).
  std::string token;
  // TLS to the node (its gRPC port serves TLS): the roots its certificate
  // chains to (empty: the system's), and a client certificate and key for
  // nodes that authenticate agents by certificate. Any file set turns TLS on.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Shown in the node's logs, e.g. "wordcount-agent pid 42".
  std::string instance;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

// The process's connection to its node, serving the agents of AgentOptions.
// Thread-safe.
class Agent {
 public:
  // Starts connecting in the background. INVALID_ARGUMENT if the options are
  // unusable (no agents, an agent without a handler).
  static absl::StatusOr<std::unique_ptr<Agent>> Start(AgentOptions options);

  // Stops: cancels running tasks' contexts, waits for their handlers, closes
  // the stream.
  virtual ~Agent() = default;

  // Blocks until the node accepted the registration (OK), refused it for good
  // (its error: a bad card, a taken id), or `timeout` passed (DEADLINE_EXCEEDED).
  virtual absl::Status WaitUntilRegistered(absl::Duration timeout) = 0;
  // The agent ids the node registered, once registered.
  virtual std::vector<std::string> agent_ids() const = 0;
  // Whether the stream is up and registered right now.
  virtual bool connected() const = 0;
  // Times the SDK registered (1 + reconnects).
  virtual int registrations() const = 0;
  // Heartbeats the node has answered since the agent started: proof that the
  // node still hears this process.
  virtual int64_t heartbeats_acknowledged() const = 0;
};

// Builders for common parts.
lf::a2a::v1::Part TextPart(absl::string_view text);
lf::a2a::v1::Artifact TextArtifact(absl::string_view artifact_id, absl::string_view name,
                                   absl::string_view text);
lf::a2a::v1::Message AgentMessage(absl::string_view text);

}  // namespace a2amesh::sdk

#endif  // A2AMESH_SDK_AGENT_H_
