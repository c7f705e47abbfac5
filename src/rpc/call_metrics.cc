#include "rpc/call_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
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
  absl::string_view service;
  absl::string_view method;  // empty: not metered
  absl::Time start;
  std::atomic<int> code{grpc::StatusCode::UNKNOWN};
};

MeteredContext* Metered(grpc::CallbackServerContext* context) {
  return dynamic_cast<MeteredContext*>(context);
}

}  // namespace

bool InProcessPeer(absl::string_view peer) {
  return peer == "unknown" || absl::StartsWith(peer, "inproc");
}

void Meter(grpc::CallbackServerContext* context, absl::string_view service,
           absl::string_view method) {
  MeteredContext* metered = Metered(context);
  if (metered == nullptr || InProcessPeer(context->peer())) return;
  metered->service = service;
  metered->method = method;
  metered->start = absl::Now();
}

void NoteStatus(grpc::CallbackServerContext* context, grpc::StatusCode code) {
  if (MeteredContext* metered = Metered(context)) {
    metered->code.store(code, std::memory_order_relaxed);
  }
}

CallContexts::CallContexts(Report report) : report_(std::move(report)) {}

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
  auto* context = new MeteredContext;
#if defined(A2AMESH_TSAN)
  __tsan_ignore_thread_end();
#endif
  absl::MutexLock lock(&mu_);
  live_.insert(context);
  return context;
}

void CallContexts::Release(grpc::CallbackServerContext* context) {
  auto* metered = static_cast<MeteredContext*>(context);
  if (!metered->method.empty()) {
    report_(metered->service, metered->method,
            static_cast<grpc::StatusCode>(metered->code.load(std::memory_order_relaxed)),
            absl::Now() - metered->start);
  }
  {
    absl::MutexLock lock(&mu_);
    live_.erase(context);
  }
  delete context;
}

}  // namespace a2amesh::rpc
