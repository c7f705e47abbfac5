#ifndef A2AMESH_RPC_GRPC_STATUS_H_
#define A2AMESH_RPC_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

// The one place where absl::Status and grpc::Status meet.
namespace a2amesh::rpc {

// The gRPC status for `status`, same code and message. A2A errors carry a
// google.rpc.Status with an ErrorInfo{reason, domain "a2a-protocol.org"} in
// grpc-status-details-bin; invalid-field errors carry a google.rpc.BadRequest.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The absl::Status for a gRPC status, keeping the A2A error it carries, if any.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_GRPC_STATUS_H_
