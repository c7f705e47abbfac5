#ifndef A2AMESH_TESTS_TESTING_CARDS_H_
#define A2AMESH_TESTS_TESTING_CARDS_H_

#include <string>
#include <vector>

#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::testing {

// A valid card with one skill per id in `skills`, each tagged with its id and
// `tags`, taking and producing `modes`.
inline lf::a2a::v1::AgentCard Card(const std::string& name, std::vector<std::string> skills,
                                   std::vector<std::string> tags = {},
                                   std::vector<std::string> modes = {"text/plain"}) {
  lf::a2a::v1::AgentCard card;
  card.set_name(name);
  card.set_description("test agent " + name);
  card.set_version("1.0.0");
  card.mutable_capabilities()->set_streaming(true);
  for (const auto& mode : modes) {
    card.add_default_input_modes(mode);
    card.add_default_output_modes(mode);
  }
  for (const auto& id : skills) {
    auto* skill = card.add_skills();
    skill->set_id(id);
    skill->set_name(id);
    skill->set_description("does " + id);
    skill->add_tags(id);
    for (const auto& tag : tags) skill->add_tags(tag);
  }
  return card;
}

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_CARDS_H_
