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
using catalog::RemoteAgent;
using lf::a2a::v1::AgentCard;
using lf::a2a::v1::AgentSkill;

// How far an agent got through the selector; higher is closer.
enum class Stage { kAgent, kSkill, kTags, kInput, kOutput, kCycle, kMatch };

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

// One agent anywhere in the mesh, as routing sees it.
struct Candidate {
  std::shared_ptr<LocalAgent> local;
  std::shared_ptr<RemoteAgent> remote;
  std::string skill;

  const std::string& agent_id() const { return local ? local->id() : remote->agent_id(); }
  const AgentCard& card() const { return local ? local->card() : remote->card(); }
  double load() const { return local ? local->load() : remote->load(); }
  bool full() const {
    return local ? local->outstanding() >= local->max_concurrency()
                 : remote->outstanding() >= remote->max_concurrency();
  }
  bool TryAcquire() const { return local ? local->TryAcquire() : remote->TryAcquire(); }
};

// The best stage the agent reaches (and its first matching skill).
Stage MatchAgent(const std::string& agent_id, const std::string& node_id, const AgentCard& card,
                 const Selector& selector, const std::vector<std::string>& hops,
                 std::string* skill) {
  if (!selector.agent_id.empty() && selector.agent_id != agent_id &&
      selector.agent_id != catalog::QualifiedAgentId(agent_id, node_id)) {
    return Stage::kAgent;
  }
  Stage best = Stage::kSkill;
  for (const AgentSkill& s : card.skills()) {
    Stage stage = MatchSkill(card, s, selector);
    if (stage == Stage::kMatch) {
      *skill = s.id();
      best = Stage::kMatch;
      break;
    }
    best = std::max(best, stage);
  }
  if (best == Stage::kMatch &&
      std::find(hops.begin(), hops.end(), catalog::QualifiedAgentId(agent_id, node_id)) !=
          hops.end()) {
    return Stage::kCycle;
  }
  return best;
}

absl::Status NoMatch(Stage best, const Selector& selector, const std::vector<std::string>& hops,
                     const std::vector<std::string>& agent_ids,
                     const absl::btree_set<std::string>& skills) {
  const std::string asked =
      absl::StrCat("nothing in the mesh can take this request (", selector.Describe(), "): ");
  if (agent_ids.empty()) {
    return MakeA2aError(A2aError::kUnsupportedOperation,
                        absl::StrCat(asked, "no agents are registered anywhere in the mesh"));
  }
  switch (best) {
    case Stage::kAgent:
      return MakeA2aError(A2aError::kUnsupportedOperation,
                          absl::StrCat(asked, "no agent '", selector.agent_id,
                                       "'; agents: ", absl::StrJoin(agent_ids, ", ")));
    case Stage::kSkill:
      return MakeA2aError(A2aError::kUnsupportedOperation,
                          absl::StrCat(asked, "no agent offers skill '", selector.skill,
                                       "'; skills: ", absl::StrJoin(skills, ", ")));
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
    case Stage::kCycle:
      return MakeA2aError(
          A2aError::kUnsupportedOperation,
          absl::StrCat("refused: every agent matching ", selector.Describe(),
                       " is already in this task's delegation chain (", absl::StrJoin(hops, " -> "),
                       "); routing there would form a cycle"));
    case Stage::kMatch:
      break;
  }
  return absl::InternalError("no match without a reason");
}

// Power of two choices: the less loaded of two random candidates.
size_t TwoChoices(const std::vector<Candidate>& candidates, absl::BitGen& gen) {
  size_t pick = absl::Uniform<size_t>(gen, 0, candidates.size());
  if (candidates.size() > 1) {
    size_t other = absl::Uniform<size_t>(gen, 0, candidates.size() - 1);
    if (other >= pick) ++other;
    if (candidates[other].load() < candidates[pick].load()) {
      pick = other;
    }
  }
  return pick;
}

}  // namespace

Router::Router(RouterOptions options, catalog::AgentCatalog& local, catalog::RemoteCatalog& remote)
    : options_(std::move(options)), local_(local), remote_(remote) {}

void Router::SetRemoteRunners(RemoteRunnerFactory* remote) {
  absl::MutexLock lock(&mu_);
  remote_runners_ = remote;
}

RemoteRunnerFactory* Router::remote_runners() const {
  absl::MutexLock lock(&mu_);
  return remote_runners_;
}

absl::StatusOr<Route> Router::Pick(const Selector& selector, const std::vector<std::string>& hops) {
  if (static_cast<int>(hops.size()) >= options_.max_hops) {
    return MakeA2aError(A2aError::kUnsupportedOperation,
                        absl::StrCat("refused: the delegation chain is already ", hops.size(),
                                     " deep (", absl::StrJoin(hops, " -> "),
                                     "), the --max-hops limit of ", options_.max_hops));
  }
  RemoteRunnerFactory* remote_runners = this->remote_runners();
  catalog::AgentCatalog::Snapshot local = local_.snapshot();
  catalog::RemoteCatalog::Snapshot remote = remote_.snapshot();

  std::vector<Candidate> locals;
  std::vector<Candidate> remotes;
  std::vector<std::string> agent_ids;
  absl::btree_set<std::string> skills;
  Stage best = Stage::kAgent;
  auto consider = [&](const std::string& agent_id, const std::string& node_id,
                      const AgentCard& card) -> std::optional<std::string> {
    std::string skill;
    Stage stage = MatchAgent(agent_id, node_id, card, selector, hops, &skill);
    best = std::max(best, stage);
    if (selector.agent_id.empty() || stage > Stage::kAgent) {
      for (const auto& s : card.skills()) skills.insert(s.id());
    }
    if (stage != Stage::kMatch) {
      return std::nullopt;
    }
    return skill;
  };
  for (const auto& agent : *local) {
    agent_ids.push_back(agent->id());
    if (std::optional<std::string> skill = consider(agent->id(), options_.node_id, agent->card())) {
      locals.push_back(Candidate{agent, nullptr, *skill});
    }
  }
  if (remote_runners != nullptr) {
    for (const auto& agent : *remote) {
      agent_ids.push_back(agent->qualified_id());
      if (std::optional<std::string> skill =
              consider(agent->agent_id(), agent->node_id(), agent->card())) {
        remotes.push_back(Candidate{nullptr, agent, *skill});
      }
    }
  }
  const size_t matches = locals.size() + remotes.size();
  if (matches == 0) {
    return NoMatch(best, selector, hops, agent_ids, skills);
  }

  thread_local absl::BitGen gen;
  auto drop_full = [](std::vector<Candidate>& candidates) {
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [](const Candidate& c) { return c.full(); }),
                     candidates.end());
  };
  while (true) {
    drop_full(locals);
    drop_full(remotes);
    if (locals.empty() && remotes.empty()) {
      break;
    }
    size_t local_pick = locals.empty() ? 0 : TwoChoices(locals, gen);
    size_t remote_pick = remotes.empty() ? 0 : TwoChoices(remotes, gen);
    bool take_local = !locals.empty() &&
                      (remotes.empty() || locals[local_pick].load() <=
                                              remotes[remote_pick].load() + options_.local_bias);
    std::vector<Candidate>& pool = take_local ? locals : remotes;
    size_t pick = take_local ? local_pick : remote_pick;
    if (!pool[pick].TryAcquire()) {
      // Filled up between the check and the acquire: drop it and pick again.
      pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(pick));
      continue;
    }
    Route route;
    route.skill = pool[pick].skill;
    if (take_local) {
      route.agent_id = pool[pick].local->id();
      route.node_id = options_.node_id;
      route.runner = std::make_unique<catalog::LocalTaskRunner>(pool[pick].local);
      return route;
    }
    std::vector<RemoteCandidate> handoff = {{pool[pick].remote, pool[pick].skill}};
    pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(pick));
    std::sort(pool.begin(), pool.end(),
              [](const Candidate& a, const Candidate& b) { return a.load() < b.load(); });
    for (size_t i = 0; i < pool.size() && static_cast<int>(i) < options_.max_alternates; ++i) {
      handoff.push_back({pool[i].remote, pool[i].skill});
    }
    route.agent_id = handoff[0].agent->qualified_id();
    route.node_id = handoff[0].agent->node_id();
    route.runner = remote_runners->HandoffRunner(std::move(handoff));
    return route;
  }
  return absl::ResourceExhaustedError(absl::StrCat("all ", matches, " agent(s) matching ",
                                                   selector.Describe(),
                                                   " are at their max_concurrency; retry later"));
}

absl::StatusOr<std::unique_ptr<tasks::TaskRunner>> Router::Rebind(const std::string& agent_id) {
  std::string agent;
  std::string node;
  if (!catalog::SplitQualifiedAgentId(agent_id, &agent, &node)) {
    return local_.Rebind(agent_id);
  }
  if (node == options_.node_id) {
    return local_.Rebind(agent);
  }
  RemoteRunnerFactory* remote_runners = this->remote_runners();
  std::shared_ptr<RemoteAgent> remote = remote_.Find(node, agent);
  if (remote == nullptr || remote_runners == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("agent ", agent, " on node ", node, " is not reachable"));
  }
  remote->Acquire();
  return remote_runners->RebindRunner(std::move(remote));
}

}  // namespace a2amesh::routing
