#ifndef A2AMESH_RPC_CALL_METRICS_H_
#define A2AMESH_RPC_CALL_METRICS_H_

#include <memory>

#include "core/telemetry.h"
#include "grpcpp/support/server_interceptor.h"

namespace a2amesh::rpc {

// A server interceptor factory (ServerBuilder::experimental()
// .SetInterceptorCreators) that tells `telemetry` of every unary and
// server-streaming call the server answers: its method, its status code and
// how long it ran (Telemetry::GrpcHandled). Bidi streams (an agent's or a
// peer's connection) are left alone: intercepting each of their messages costs
// too much. `telemetry` must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallMetricsInterceptor(
    Telemetry& telemetry);

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_CALL_METRICS_H_
