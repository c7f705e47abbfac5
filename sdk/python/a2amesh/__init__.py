"""a2amesh: agents for an a2a-mesh, in Python.

    import a2amesh

    agent = a2amesh.Agent("shouter", description="Shouts what it is told.")

    @agent.skill("shout", description="Upper-cases the text.")
    def shout(task):
        return task.text.upper()

    agent.run(node="127.0.0.1:7400")

An agent registers its A2A card with a meshd node over the node's AgentHost
gRPC stream; the mesh routes tasks for its skills to it from any node, and its
handlers answer with artifacts, status and messages, delegate subtasks to
agents anywhere in the mesh, and see cancellation. See docs/agents.md.
"""

from a2amesh.agent import (Agent, Cancelled, Connection, DelegationError, Refused, Task,
                           agent_message, apply_event, connect, is_final, serve, text_of,
                           text_part, user_message)

__version__ = "0.1.0"

__all__ = ["Agent", "Cancelled", "Connection", "DelegationError", "Refused", "Task",
           "agent_message", "apply_event", "connect", "is_final", "serve", "text_of",
           "text_part", "user_message"]
