#ifndef A2AMESH_RPC_UNARY_H_
#define A2AMESH_RPC_UNARY_H_

#include <memory>
#include <string>
#include <utility>

#include "a2amesh/executor.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "rpc/call_metrics.h"
#include "rpc/grpc_status.h"

// Ways to finish a unary call of the gRPC callback API without blocking a
// reactor, and to forward calls from one node to another.
namespace a2amesh::rpc {

// Marks a call one node forwarded to another; such calls are not forwarded
// again (no forwarding loops).
inline constexpr absl::string_view kForwardedKey = "a2amesh-forwarded-by";

inline bool WasForwarded(const grpc::CallbackServerContext& context) {
  return context.client_metadata().count(
             grpc::string_ref(kForwardedKey.data(), kForwardedKey.size())) > 0;
}

// A client context for forwarding `context`'s call, from node `node_id`: with
// its deadline and cancellation, marked as forwarded.
inline std::unique_ptr<grpc::ClientContext> ForwardingContext(
    const grpc::CallbackServerContext& context, const std::string& node_id) {
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromCallbackServerContext(context);
  forward->AddMetadata(std::string(kForwardedKey), node_id);
  return forward;
}

// Finishes `context`'s call with `status` through `reactor`, noting the
// status for the call's metrics (rpc/call_metrics.h).
inline void Finish(grpc::ServerUnaryReactor* reactor, grpc::CallbackServerContext* context,
                   grpc::Status status) {
  NoteStatus(context, status.error_code());
  reactor->Finish(std::move(status));
}

// Finishes the call now with `status`.
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                           const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Finish(reactor, context, ToGrpcStatus(status));
  return reactor;
}

// A bidirectional stream that ends at once with `status`, read nothing.
template <typename Request, typename Response>
grpc::ServerBidiReactor<Request, Response>* RefuseStream(const grpc::Status& status) {
  class Refused final : public grpc::ServerBidiReactor<Request, Response> {
   public:
    explicit Refused(const grpc::Status& status) { this->Finish(status); }
    void OnDone() override { delete this; }
  };
  return new Refused(status);
}

// A server-streaming call that ends at once with `status`, written nothing.
template <typename Response>
grpc::ServerWriteReactor<Response>* RefuseWrites(grpc::CallbackServerContext* context,
                                                 const grpc::Status& status) {
  class Refused final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Refused(const grpc::Status& status) { this->Finish(status); }
    void OnDone() override { delete this; }
  };
  NoteStatus(context, status.error_code());
  return new Refused(status);
}

// Runs `fn` (which returns an absl::Status and may block) on `executor`, then
// finishes the call with its status.
template <typename Fn>
grpc::ServerUnaryReactor* FinishOn(Executor& executor, grpc::CallbackServerContext* context,
                                   Fn fn) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  executor.Schedule([reactor, context, fn = std::move(fn)]() mutable {
    Finish(reactor, context, ToGrpcStatus(fn()));
  });
  return reactor;
}

// Makes the same call on another server through `stub` and finishes this one
// with its answer: `start(stub.async(), forward.get(), done)` starts the call,
// which fills the response this call returns. `forward` and `stub` live until
// the answer comes. Never blocks.
template <typename Stub, typename Start>
grpc::ServerUnaryReactor* Relay(grpc::CallbackServerContext* context,
                                std::unique_ptr<grpc::ClientContext> forward,
                                std::unique_ptr<Stub> stub, Start start) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto* async = stub->async();
  grpc::ClientContext* raw_context = forward.get();
  start(async, raw_context,
        [reactor, context, forward = std::shared_ptr<grpc::ClientContext>(std::move(forward)),
         stub = std::shared_ptr<Stub>(std::move(stub))](grpc::Status status) {
          Finish(reactor, context, std::move(status));
        });
  return reactor;
}

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_UNARY_H_
