#ifndef A2AMESH_CATALOG_CARD_VALIDATION_H_
#define A2AMESH_CATALOG_CARD_VALIDATION_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::catalog {

// Checks an agent card an agent registers with against the fields A2A v1.0 marks
// REQUIRED, and that skill ids are unique. `field` prefixes the field names in
// errors, e.g. "agents[0].card" gives "agents[0].card.skills[1].id: is required".
//
// supported_interfaces is not required here: agents behind a node are reached
// through the node, which writes their interfaces.
absl::Status ValidateAgentCard(const lf::a2a::v1::AgentCard& card, absl::string_view field);

// Whether the card declares the A2A extension `uri` (core/extensions.h).
bool DeclaresExtension(const lf::a2a::v1::AgentCard& card, absl::string_view uri);

}  // namespace a2amesh::catalog

#endif  // A2AMESH_CATALOG_CARD_VALIDATION_H_
