#ifndef A2AMESH_CORE_TELEMETRY_H_
#define A2AMESH_CORE_TELEMETRY_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh {

// What components tell the node's metrics as things happen. The task manager,
// the router, the peer layer and the store each call the methods about them;
// src/metrics implements them with Prometheus. Every method has a no-op
// default, and NoTelemetry() is the sink to use when nothing listens (tests,
// tools). Label values are bounded: skill ids that exist in the mesh, node
// ids of members, and the fixed words below.
//
// `trace_id`, where a method takes one: the W3C trace id (32 lowercase hex
// digits) of the trace the measurement belongs to, if its context says
// sampled (as OpenTelemetry's trace-based exemplar filter decides), else
// empty. Histograms keep it as an exemplar (docs/metrics.md): the link from
// a latency bucket to a trace.
//
// Implementations are thread-safe; calls never block and may come with the
// caller's locks held.
class Telemetry {
 public:
  virtual ~Telemetry() = default;

  // A task this node owns was created, routed for `skill` ("" if it named
  // an agent only).
  virtual void TaskCreated(const std::string& skill) {}
  // Its first event from an agent arrived, `latency` after it was created.
  virtual void TaskFirstEvent(const std::string& skill, absl::Duration latency,
                              absl::string_view trace_id) {}
  // It ended in `state` ("completed", "failed", "canceled", "rejected"),
  // `duration` after it was created.
  virtual void TaskEnded(const std::string& skill, const std::string& state,
                         absl::Duration duration, absl::string_view trace_id) {}

  // A routing decision: "local", "remote", "none" (nothing matches), "busy"
  // (every match is at max_concurrency) or "refused" (a cycle, or too deep).
  virtual void Routed(const std::string& decision) {}

  // A handoff to `peer` ended its first step: "accepted" (`latency` after it
  // started), "refused" (the next candidate is tried) or "failed" (the
  // stream broke).
  virtual void Handoff(const std::string& peer, const std::string& result, absl::Duration latency,
                       absl::string_view trace_id) {}

  // A group commit of the task store took `latency`; `ok` unless it failed.
  virtual void StoreCommitted(absl::Duration latency, bool ok) {}

  // A push notification's POST to a webhook ended: "delivered" (2xx, after
  // `latency`), "retried" (it will be tried again), "failed" (given up after
  // the last attempt), "dropped" (the delivery queue was full) or "refused"
  // (the target's address is not allowed).
  virtual void PushAttempt(const std::string& outcome, absl::Duration latency,
                           absl::string_view trace_id) {}

  // A call on the Peer service (or a peer this node dialed) was refused:
  // "no_certificate" (the caller presented no certificate of the mesh CA
  // naming a node) or "identity" (its certificate names another node than
  // the one it claims to be). Certificates the mesh CA did not sign never get
  // this far: their TLS handshake fails.
  virtual void PeerRefused(const std::string& reason) {}

  // Spans of the tracer (trace/tracer.h): "exported", "dropped" (its queue
  // was full: the collector is slow or down) or "failed" (the collector
  // refused them or could not be reached), `count` at a time.
  virtual void TraceSpans(const std::string& outcome, uint64_t count) {}

  // A call to an A2A agent this node hosts by URL (a task's turn) ended,
  // `duration` after it began: "ok", "failed" (the agent answered with an
  // error, or ended its stream early), "unreachable" (no answer: no
  // connection, an HTTP error status, gRPC UNAVAILABLE) or "cancelled".
  virtual void RemoteAgentCall(const std::string& agent, const std::string& outcome,
                               absl::Duration duration, absl::string_view trace_id) {}

  // Retention removed `count` finished tasks from the store.
  virtual void TasksExpired(int64_t count) {}

  // Governance (docs/governance.md). A policy decision on `action` ("send",
  // "get", ...): "allow", "deny", or "limited" (a rate limit or quota).
  virtual void PolicyDecision(const std::string& action, const std::string& outcome) {}
  // A new task refused by a rate limit or quota; `principal_class` is how its
  // caller was proven ("token", "jwt", "mtls", "none"), `skill` its skill.
  virtual void RateLimited(const std::string& principal_class, const std::string& skill) {}
  // The policy file was reloaded (`ok`), or did not load and was kept.
  virtual void PolicyReloaded(bool ok) {}
  // An audit entry was dropped: the audit writer's queue was full.
  virtual void AuditDropped() {}
  // A task that waited for an approval was "approved", "denied" or
  // "expired" (its deadline passed).
  virtual void ApprovalDecided(const std::string& outcome) {}
  // The node's gRPC server answered a call of `service`'s `method`
  // ("lf.a2a.v1.A2AService", "SendMessage") with status `code` (a
  // grpc::StatusCode), `duration` after the call began; for a stream,
  // `duration` is how long it was open.
  virtual void GrpcHandled(absl::string_view service, absl::string_view method, int code,
                           absl::Duration duration, absl::string_view trace_id) {}
  // The A2A HTTP server answered a request with `status`, `duration` after it
  // was read (for a stream: when its head went out). `binding` and `method`
  // name what the request was, in words the server chose ("jsonrpc" and
  // "SendMessage", "rest" and "GetTask", "card", "probe", "none" for a path
  // that serves nothing, "server" for a request refused before any handler).
  virtual void HttpHandled(absl::string_view binding, absl::string_view method, int status,
                           absl::Duration duration, absl::string_view trace_id) {}
};

// A Telemetry that records nothing. Never destroyed.
Telemetry& NoTelemetry();

}  // namespace a2amesh

#endif  // A2AMESH_CORE_TELEMETRY_H_
