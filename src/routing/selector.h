#ifndef A2AMESH_ROUTING_SELECTOR_H_
#define A2AMESH_ROUTING_SELECTOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::routing {

// Request metadata keys that steer routing. Clients put them in the A2A
// request's metadata (or, failing that, the message's).
inline constexpr absl::string_view kSkillKey = "a2amesh/skill";
inline constexpr absl::string_view kTagsKey = "a2amesh/tags";
// The delegation chain a request belongs to ("agent@node" entries, outermost
// first), for callers that are themselves mesh agents reaching a node as A2A
// clients.
inline constexpr absl::string_view kHopsKey = "a2amesh/hops";

// What a request asks for. Every set field must match.
struct Selector {
  // An explicit agent (the A2A `tenant`).
  std::string agent_id;
  // A skill id.
  std::string skill;
  // Tags that one skill must all carry.
  std::vector<std::string> tags;
  // Media types of the message's parts; the skill must accept each.
  std::vector<std::string> input_media_types;
  // The client's accepted output modes; the skill must produce one of them.
  std::vector<std::string> accepted_output_modes;
  // True when `skill` came from the node's --default-skill.
  bool default_skill = false;

  // For people: "skill 'echo', tags [a, b], input text/plain".
  std::string Describe() const;
};

// The selector of a SendMessage request, in the order of precedence of DESIGN
// §2: tenant, metadata skill and tags, part media types and accepted output
// modes, then `default_skill` if the request names neither agent, skill nor
// tags. INVALID_ARGUMENT naming the metadata key if a value has the wrong type.
absl::StatusOr<Selector> SelectorFromRequest(const lf::a2a::v1::SendMessageRequest& request,
                                             absl::string_view default_skill);

// The request's `a2amesh/hops` metadata (empty if absent); INVALID_ARGUMENT
// naming the key if it is not a list of strings.
absl::StatusOr<std::vector<std::string>> HopsFromRequest(
    const lf::a2a::v1::SendMessageRequest& request);

// Whether a card or skill's declared mode `mode` covers media type `type`:
// equal ignoring case and parameters, "*/*", "type/*", or a bare "type".
bool ModeCovers(absl::string_view mode, absl::string_view type);

}  // namespace a2amesh::routing

#endif  // A2AMESH_ROUTING_SELECTOR_H_
