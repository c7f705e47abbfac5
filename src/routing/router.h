#ifndef A2AMESH_ROUTING_ROUTER_H_
#define A2AMESH_ROUTING_ROUTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "catalog/agent_catalog.h"
#include "routing/selector.h"
#include "tasks/task_manager.h"

namespace a2amesh::routing {

// Where a request goes: a runner holding a slot on the chosen agent.
struct Route {
  std::unique_ptr<tasks::TaskRunner> runner;
  std::string agent_id;
  // The matching skill of the chosen agent.
  std::string skill;
};

// Picks an agent for a selector (DESIGN §2): only agents that match every part
// of the selector and have a free slot; among them, the less loaded of two
// picked at random (power of two choices), which spreads load without herding.
//
// Errors say what was asked and what exists: UnsupportedOperation when no agent
// has the agent id, skill or tags; ContentTypeNotSupported when agents have the
// skill but not the media types; RESOURCE_EXHAUSTED when every match is busy.
// Thread-safe.
class Router {
 public:
  explicit Router(catalog::AgentCatalog& catalog);

  absl::StatusOr<Route> Pick(const Selector& selector);

 private:
  catalog::AgentCatalog& catalog_;
};

}  // namespace a2amesh::routing

#endif  // A2AMESH_ROUTING_ROUTER_H_
