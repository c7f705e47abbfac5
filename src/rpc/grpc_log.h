#ifndef A2AMESH_RPC_GRPC_LOG_H_
#define A2AMESH_RPC_GRPC_LOG_H_

namespace a2amesh::rpc {

// Sends gRPC's own log lines (those its GRPC_VERBOSITY lets through: errors
// by default) through the process's logger, as events "grpc" with the
// message and gRPC's source location, in the logger's format (JSON with
// --log-format json), instead of gRPC's raw lines on stderr.
void RouteGrpcLogs();

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_GRPC_LOG_H_
