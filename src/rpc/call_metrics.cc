#include "rpc/call_metrics.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/interceptor.h"

namespace a2amesh::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

// One per call: notes when it began, and reports when its status is sent.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(Telemetry& telemetry, grpc::experimental::ServerRpcInfo* info)
      : telemetry_(telemetry), info_(info), began_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        info_->method() != nullptr && !InProcess(info_->server_context()->peer())) {
      telemetry_.GrpcHandled(info_->method(), methods->GetSendStatus().error_code(),
                             absl::Now() - began_);
    }
    methods->Proceed();
  }

 private:
  // The HTTP bindings' calls come over the in-process channel, whose peer
  // gRPC reports as "unknown" (or "inproc..."): they are counted as HTTP
  // requests, not twice.
  static bool InProcess(const std::string& peer) {
    return peer == "unknown" || absl::StartsWith(peer, "inproc");
  }

  Telemetry& telemetry_;
  grpc::experimental::ServerRpcInfo* const info_;  // gRPC's, as long as the call
  const absl::Time began_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(Telemetry& telemetry) : telemetry_(telemetry) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // Not the long-lived bidi streams (AgentHost.Connect, the Peer streams):
    // an interceptor sees every message of its call, and on the agent stream,
    // which carries each task's assignment and events, that cost 15% of a
    // task's CPU on the node (a2a-load, 32 in flight: 420 vs 350 us per task).
    // a2amesh_open_streams counts them.
    if (info->type() == grpc::experimental::ServerRpcInfo::Type::BIDI_STREAMING) return nullptr;
    return new CallInterceptor(telemetry_, info);
  }

 private:
  Telemetry& telemetry_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallMetricsInterceptor(
    Telemetry& telemetry) {
  return std::make_unique<Factory>(telemetry);
}

}  // namespace a2amesh::rpc
