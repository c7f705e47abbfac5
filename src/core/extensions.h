#ifndef A2AMESH_CORE_EXTENSIONS_H_
#define A2AMESH_CORE_EXTENSIONS_H_

namespace a2amesh {

// The A2A extensions a2a-mesh defines, declared by agents in their cards
// (AgentCard.capabilities.extensions[].uri).

// The agent may answer a new task's first message with a single Message
// instead of working on a task (A2A: an agent "MAY return a direct Message";
// AgentHost TaskReply). The node then keeps a stream's Task until the agent's
// first answer, and a client that waits gets the Message alone.
inline constexpr char kDirectRepliesExtension[] = "urn:a2a-mesh:ext:direct-replies:v1";

}  // namespace a2amesh

#endif  // A2AMESH_CORE_EXTENSIONS_H_
