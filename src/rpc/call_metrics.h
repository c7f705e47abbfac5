#ifndef A2AMESH_RPC_CALL_METRICS_H_
#define A2AMESH_RPC_CALL_METRICS_H_

#include <atomic>
#include <functional>
#include <map>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "trace/tracer.h"

// Counting the calls a gRPC server answers, by method and status code, in our
// own code rather than in a gRPC interceptor. An interceptor sees every
// message of every call: on the agent's bidi stream, which carries each task's
// assignment and events, that cost 15% of a task's CPU on the node, and its
// hand-offs inside gRPC's uninstrumented core cannot be checked by the
// ThreadSanitizer build.
//
// Instead the server allocates its call contexts (CallContexts, a gRPC
// ContextAllocator); a service method names its call as it starts (Meter),
// the code that finishes the call notes its status (NoteStatus, or the
// Finish* helpers in rpc/unary.h), and the call is reported when gRPC
// releases its context, after the call's OnDone. Calls nobody named (the
// long-lived bidi streams, gRPC's own health service) are not reported.
namespace a2amesh::rpc {

// Whether a call's peer (ServerContext::peer) is the server's in-process
// channel, the HTTP bindings' way in: gRPC reports its peer as "unknown"
// ("inproc..." in some versions), a peer no network client can have (theirs
// are "ipv4:", "ipv6:", "unix:").
bool InProcessPeer(absl::string_view peer);

// Marks `context`'s call as `service`/`method`, starting now. Both must be
// string constants. Does nothing if the server did not allocate the context
// (a server built without CallContexts), or if the call came over the
// server's in-process channel (the HTTP bindings' calls: counted as HTTP
// requests, not twice).
//
// Meter also starts the call's server span ("service/method"), child of the
// caller's traceparent/tracestate metadata. An in-process call gets none: it
// carries the caller's context on, the HTTP request's server span (the HTTP
// bindings start one and send its context as metadata). It ends as the call
// is released, with its code.
void Meter(grpc::CallbackServerContext* context, absl::string_view service,
           absl::string_view method);

// The trace context of `context`'s call: its server span's (the caller's,
// passed through, when tracing is off); invalid when there is none.
const trace::SpanContext& CallTrace(grpc::CallbackServerContext* context);

// The caller's trace context in `metadata` (traceparent, tracestate).
std::optional<trace::SpanContext> TraceFromMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// The status `context`'s call ends with (the last noted counts). Call it
// before the call's Finish. Does nothing for a call that is not metered.
void NoteStatus(grpc::CallbackServerContext* context, grpc::StatusCode code);

// A gRPC ContextAllocator (ServerBuilder::SetContextAllocator) whose contexts
// remember what Meter and NoteStatus told them; `report` runs for each
// metered call as gRPC releases its context, on the thread that ran the
// call's OnDone. `report` must be thread-safe and must not block.
class CallContexts final : public grpc::ContextAllocator {
 public:
  // `trace_id`: the call's trace, if sampled (else "").
  using Report =
      std::function<void(absl::string_view service, absl::string_view method, grpc::StatusCode code,
                         absl::Duration duration, absl::string_view trace_id)>;

  // `tracer` (which must outlive this) records the calls' server spans.
  CallContexts(Report report, trace::Tracer* tracer = trace::Tracer::Disabled());
  // Frees the contexts gRPC allocated and never released (the calls it had
  // waiting when the server shut down).
  ~CallContexts() override;

  grpc::CallbackServerContext* NewCallbackServerContext() override;
  void Release(grpc::CallbackServerContext* context) override;

 private:
  const Report report_;
  trace::Tracer* const tracer_;
  absl::Mutex mu_;
  absl::flat_hash_set<grpc::CallbackServerContext*> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_CALL_METRICS_H_
