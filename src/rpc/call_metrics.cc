#include "rpc/call_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#if defined(A2AMESH_TSAN)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace a2amesh::rpc {
namespace {

// A call's context, with what the call was and how it ended. `service`,
// `method` and `start` are written by the method's handler before the call
// can end; `code` by whatever finishes it, on any thread, hence atomic.
class MeteredContext final : public grpc::CallbackServerContext {
 public:
  explicit MeteredContext(trace::Tracer* tracer) : tracer(tracer) {}
  trace::Tracer* const tracer;
  absl::string_view service;
  absl::string_view method;  // empty: not metered
  absl::Time start;
  std::atomic<int> code{grpc::StatusCode::UNKNOWN};
  // The call's server span (or the caller's context, tracing off).
  trace::Span span;
};

// gRPC server span status (OpenTelemetry's rpc conventions): these codes
// are the server's failures; the others are the caller's and leave it unset.
bool ServerError(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
      return true;
    default:
      return false;
  }
}

absl::string_view Value(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                        absl::string_view key) {
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return "";
  return absl::string_view(it->second.data(), it->second.size());
}

MeteredContext* Metered(grpc::CallbackServerContext* context) {
  return dynamic_cast<MeteredContext*>(context);
}

}  // namespace

bool InProcessPeer(absl::string_view peer) {
  return peer == "unknown" || absl::StartsWith(peer, "inproc");
}

std::optional<trace::SpanContext> TraceFromMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  absl::string_view traceparent = Value(metadata, trace::kTraceparentKey);
  if (traceparent.empty()) return std::nullopt;
  return trace::ParseTraceContext(traceparent, Value(metadata, trace::kTracestateKey));
}

void Meter(grpc::CallbackServerContext* context, absl::string_view service,
           absl::string_view method) {
  MeteredContext* metered = Metered(context);
  if (metered == nullptr) return;
  const absl::Time now = absl::Now();
  std::optional<trace::SpanContext> caller = TraceFromMetadata(context->client_metadata());
  // The HTTP bindings' calls (in-process) have their server span already,
  // the HTTP request's (a2a/http_binding.cc): they carry its context on.
  const bool in_process = InProcessPeer(context->peer());
  trace::Tracer* tracer = in_process ? trace::Tracer::Disabled() : metered->tracer;
  // The name is made only when spans are recorded: with tracing off a call
  // allocates nothing for it.
  metered->span = tracer->StartSpan(
      tracer->enabled() ? absl::StrCat(service, "/", method) : std::string(),
      trace::SpanKind::kServer, caller ? &*caller : nullptr, /*remote=*/true, now);
  if (metered->span.recording()) {
    metered->span.SetAttribute("rpc.system", "grpc");
    metered->span.SetAttribute("rpc.service", service);
    metered->span.SetAttribute("rpc.method", method);
  }
  if (in_process) {
    // Counted as HTTP requests, not twice.
    return;
  }
  metered->service = service;
  metered->method = method;
  metered->start = now;
}

const trace::SpanContext& CallTrace(grpc::CallbackServerContext* context) {
  static const trace::SpanContext* const kNone = new trace::SpanContext();
  MeteredContext* metered = Metered(context);
  return metered != nullptr ? metered->span.context() : *kNone;
}

void NoteStatus(grpc::CallbackServerContext* context, grpc::StatusCode code) {
  if (MeteredContext* metered = Metered(context)) {
    metered->code.store(code, std::memory_order_relaxed);
  }
}

CallContexts::CallContexts(Report report, trace::Tracer* tracer)
    : report_(std::move(report)), tracer_(tracer) {}

CallContexts::~CallContexts() {
  absl::MutexLock lock(&mu_);
  for (grpc::CallbackServerContext* context : live_) delete context;
}

grpc::CallbackServerContext* CallContexts::NewCallbackServerContext() {
  // gRPC asks for a context ahead of the call and hands it to the thread that
  // runs the call inside its core, where ThreadSanitizer does not see the
  // hand-off. The contexts gRPC makes itself are made inside its
  // uninstrumented library, unseen; in the TSan build ours are made unseen
  // too, so that their setup is not taken for a race with the call's thread.
#if defined(A2AMESH_TSAN)
  __tsan_ignore_thread_begin();
#endif
  auto* context = new MeteredContext(tracer_);
#if defined(A2AMESH_TSAN)
  __tsan_ignore_thread_end();
#endif
  absl::MutexLock lock(&mu_);
  live_.insert(context);
  return context;
}

void CallContexts::Release(grpc::CallbackServerContext* context) {
  auto* metered = static_cast<MeteredContext*>(context);
  const auto code = static_cast<grpc::StatusCode>(metered->code.load(std::memory_order_relaxed));
  if (!metered->method.empty()) {
    const trace::SpanContext& trace = metered->span.context();
    report_(metered->service, metered->method, code, absl::Now() - metered->start,
            trace.sampled() && trace.valid() ? trace.TraceIdHex() : std::string());
  }
  if (metered->span.recording()) {
    metered->span.SetAttribute("rpc.grpc.status_code", static_cast<int64_t>(code));
    if (ServerError(code)) metered->span.SetError(absl::StrCat("gRPC status ", code));
    metered->span.End();
  }
  {
    absl::MutexLock lock(&mu_);
    live_.erase(context);
  }
  delete context;
}

}  // namespace a2amesh::rpc
