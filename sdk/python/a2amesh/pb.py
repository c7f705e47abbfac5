"""The protobuf and gRPC modules the SDK speaks, generated when the package is built.

    from a2amesh.pb import a2a            # lf.a2a.v1: Message, Part, Artifact, Task, ...
    from a2amesh.pb import agent_host     # a2amesh.v1: the node's AgentHost API
    from a2amesh.pb import a2a_grpc       # A2AServiceStub, for clients
"""

from a2amesh._proto.a2amesh.v1 import agent_host_pb2 as agent_host
from a2amesh._proto.a2amesh.v1 import agent_host_pb2_grpc as agent_host_grpc
from a2amesh._proto.lf.a2a.v1 import a2a_pb2 as a2a
from a2amesh._proto.lf.a2a.v1 import a2a_pb2_grpc as a2a_grpc

__all__ = ["a2a", "a2a_grpc", "agent_host", "agent_host_grpc"]
