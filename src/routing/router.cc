#include "routing/router.h"

#include <algorithm>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/a2a_error.h"

namespace a2amesh::routing {
namespace {

using catalog::LocalAgent;
using lf::a2a::v1::AgentCard;
using lf::a2a::v1::AgentSkill;

// How far an agent got through the selector; higher is closer.
enum class Stage { kAgent, kSkill, kTags, kInput, kOutput, kMatch };

bool Covers(const google::protobuf::RepeatedPtrField<std::string>& modes, const std::string& type) {
  return std::any_of(modes.begin(), modes.end(),
                     [&](const std::string& mode) { return ModeCovers(mode, type); });
}

Stage MatchSkill(const AgentCard& card, const AgentSkill& skill, const Selector& selector) {
  if (!selector.skill.empty() && skill.id() != selector.skill) {
    return Stage::kSkill;
  }
  for (const std::string& tag : selector.tags) {
    if (std::find(skill.tags().begin(), skill.tags().end(), tag) == skill.tags().end()) {
      return Stage::kTags;
    }
  }
  const auto& inputs =
      skill.input_modes().empty() ? card.default_input_modes() : skill.input_modes();
  if (!inputs.empty()) {
    for (const std::string& type : selector.input_media_types) {
      if (!Covers(inputs, type)) {
        return Stage::kInput;
      }
    }
  }
  const auto& outputs =
      skill.output_modes().empty() ? card.default_output_modes() : skill.output_modes();
  if (!outputs.empty() && !selector.accepted_output_modes.empty()) {
    bool any = false;
    for (const std::string& accepted : selector.accepted_output_modes) {
      for (const std::string& produced : outputs) {
        any = any || ModeCovers(accepted, produced) || ModeCovers(produced, accepted);
      }
    }
    if (!any) {
      return Stage::kOutput;
    }
  }
  return Stage::kMatch;
}

// The best stage `agent` reaches, and the first matching skill.
Stage MatchAgent(const LocalAgent& agent, const Selector& selector, std::string* skill) {
  if (!selector.agent_id.empty() && agent.id() != selector.agent_id) {
    return Stage::kAgent;
  }
  Stage best = Stage::kSkill;
  for (const AgentSkill& s : agent.card().skills()) {
    Stage stage = MatchSkill(agent.card(), s, selector);
    if (stage == Stage::kMatch) {
      *skill = s.id();
      return stage;
    }
    best = std::max(best, stage);
  }
  return best;
}

absl::Status NoMatch(Stage best, const Selector& selector,
                     const std::vector<std::shared_ptr<LocalAgent>>& agents) {
  const std::string asked =
      absl::StrCat("nothing here can take this request (", selector.Describe(), "): ");
  if (agents.empty()) {
    return MakeA2aError(A2aError::kUnsupportedOperation,
                        absl::StrCat(asked, "no agents are registered on this node"));
  }
  switch (best) {
    case Stage::kAgent: {
      std::vector<std::string> ids;
      for (const auto& agent : agents) ids.push_back(agent->id());
      return MakeA2aError(A2aError::kUnsupportedOperation,
                          absl::StrCat(asked, "no agent '", selector.agent_id,
                                       "' on this node; agents: ", absl::StrJoin(ids, ", ")));
    }
    case Stage::kSkill: {
      absl::btree_set<std::string> skills;
      for (const auto& agent : agents) {
        if (selector.agent_id.empty() || agent->id() == selector.agent_id) {
          for (const auto& s : agent->card().skills()) skills.insert(s.id());
        }
      }
      return MakeA2aError(A2aError::kUnsupportedOperation,
                          absl::StrCat(asked, "no agent offers skill '", selector.skill,
                                       "'; skills: ", absl::StrJoin(skills, ", ")));
    }
    case Stage::kTags:
      return MakeA2aError(A2aError::kUnsupportedOperation,
                          absl::StrCat(asked, "no skill carries all of the tags [",
                                       absl::StrJoin(selector.tags, ", "), "]"));
    case Stage::kInput:
      return MakeA2aError(A2aError::kContentTypeNotSupported,
                          absl::StrCat(asked, "no matching skill accepts input ",
                                       absl::StrJoin(selector.input_media_types, ", ")));
    case Stage::kOutput:
      return MakeA2aError(A2aError::kContentTypeNotSupported,
                          absl::StrCat(asked, "no matching skill produces any of ",
                                       absl::StrJoin(selector.accepted_output_modes, ", ")));
    case Stage::kMatch:
      break;
  }
  return absl::InternalError("no match without a reason");
}

}  // namespace

Router::Router(catalog::AgentCatalog& catalog) : catalog_(catalog) {}

absl::StatusOr<Route> Router::Pick(const Selector& selector) {
  catalog::AgentCatalog::Snapshot agents = catalog_.snapshot();
  struct Candidate {
    std::shared_ptr<LocalAgent> agent;
    std::string skill;
  };
  std::vector<Candidate> matches;
  Stage best = Stage::kAgent;
  for (const auto& agent : *agents) {
    std::string skill;
    Stage stage = MatchAgent(*agent, selector, &skill);
    best = std::max(best, stage);
    if (stage == Stage::kMatch) {
      matches.push_back({agent, std::move(skill)});
    }
  }
  if (matches.empty()) {
    return NoMatch(best, selector, *agents);
  }
  thread_local absl::BitGen gen;
  std::vector<Candidate> free = matches;
  while (!free.empty()) {
    free.erase(std::remove_if(free.begin(), free.end(),
                              [](const Candidate& c) {
                                return c.agent->outstanding() >= c.agent->max_concurrency();
                              }),
               free.end());
    if (free.empty()) {
      break;
    }
    size_t pick = absl::Uniform<size_t>(gen, 0, free.size());
    if (free.size() > 1) {
      size_t other = absl::Uniform<size_t>(gen, 0, free.size() - 1);
      if (other >= pick) ++other;
      if (free[other].agent->load() < free[pick].agent->load()) {
        pick = other;
      }
    }
    if (free[pick].agent->TryAcquire()) {
      Route route;
      route.agent_id = free[pick].agent->id();
      route.skill = std::move(free[pick].skill);
      route.runner = std::make_unique<catalog::LocalTaskRunner>(std::move(free[pick].agent));
      return route;
    }
    // Filled up between the check and the acquire: drop it and pick again.
    free.erase(free.begin() + static_cast<std::ptrdiff_t>(pick));
  }
  return absl::ResourceExhaustedError(absl::StrCat("all ", matches.size(), " agent(s) matching ",
                                                   selector.Describe(),
                                                   " are at their max_concurrency; retry later"));
}

}  // namespace a2amesh::routing
