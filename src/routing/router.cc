#include "routing/router.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "catalog/card_validation.h"
#include "core/a2a_error.h"
#include "core/extensions.h"
#include "core/status_macros.h"

namespace a2amesh::routing {
namespace {

using catalog::LocalAgent;
using catalog::RemoteAgent;
using lf::a2a::v1::AgentCard;
using lf::a2a::v1::AgentSkill;

// How far an agent got through the selector; higher is closer.
enum class Stage { kAgent, kSkill, kTags, kInput, kOutput, kCycle, kDenied, kMatch };

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
  int outstanding() const { return local ? local->outstanding() : remote->outstanding(); }
  int max_concurrency() const {
    return local ? local->max_concurrency() : remote->max_concurrency();
  }
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
                 const Selector& selector, const std::vector<std::string>& hops, std::string* skill,
                 Admission* admission, absl::Status* denial) {
  if (!selector.agent_id.empty() && selector.agent_id != agent_id &&
      selector.agent_id != catalog::QualifiedAgentId(agent_id, node_id)) {
    return Stage::kAgent;
  }
  Stage best = Stage::kSkill;
  for (const AgentSkill& s : card.skills()) {
    Stage stage = MatchSkill(card, s, selector);
    if (stage == Stage::kMatch && admission != nullptr) {
      absl::Status allowed = admission->Check(RouteTarget{agent_id, node_id, s.id(), &s.tags()});
      if (!allowed.ok()) {
        if (denial->ok()) *denial = std::move(allowed);
        stage = Stage::kDenied;
      }
    }
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
    case Stage::kDenied:
      break;  // the admission's own refusal
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

std::string StageReason(Stage stage, const Selector& selector) {
  switch (stage) {
    case Stage::kAgent:
      return absl::StrCat("not agent '", selector.agent_id, "'");
    case Stage::kSkill:
      return absl::StrCat("no skill '", selector.skill, "'");
    case Stage::kTags:
      return absl::StrCat("no matching skill carries all of the tags [",
                          absl::StrJoin(selector.tags, ", "), "]");
    case Stage::kInput:
      return absl::StrCat("no matching skill accepts input ",
                          absl::StrJoin(selector.input_media_types, ", "));
    case Stage::kOutput:
      return absl::StrCat("no matching skill produces any of ",
                          absl::StrJoin(selector.accepted_output_modes, ", "));
    case Stage::kCycle:
      return "already in the task's delegation chain: a cycle";
    case Stage::kDenied:
      return "the policy does not allow it";
    case Stage::kMatch:
      break;
  }
  return "";
}

// Every agent in the mesh, weighed against a selector.
struct Survey {
  std::vector<Candidate> locals;
  std::vector<Candidate> remotes;
  std::vector<std::string> agent_ids;
  absl::btree_set<std::string> skills;
  Stage best = Stage::kAgent;
  // Every agent that does not match, with how far it got (for Explain).
  std::vector<std::pair<Candidate, Stage>> rejected;
  // The admission's first refusal of a candidate.
  absl::Status denial;
};

// Weighs the agents of `local` (this node, `node_id`) and `remote` (nullptr:
// none) against the selector.
Survey SurveyMesh(const Selector& selector, const std::vector<std::string>& hops,
                  const std::string& node_id, const catalog::AgentCatalog::Snapshot& local,
                  const catalog::RemoteCatalog::Snapshot& remote, Admission* admission) {
  Survey survey;
  auto consider = [&](Candidate candidate, const std::string& agent_id, const std::string& node,
                      const AgentCard& card) {
    Stage stage = MatchAgent(agent_id, node, card, selector, hops, &candidate.skill, admission,
                             &survey.denial);
    survey.best = std::max(survey.best, stage);
    if (selector.agent_id.empty() || stage > Stage::kAgent) {
      for (const auto& s : card.skills()) survey.skills.insert(s.id());
    }
    if (stage != Stage::kMatch) {
      survey.rejected.emplace_back(std::move(candidate), stage);
    } else if (candidate.local) {
      survey.locals.push_back(std::move(candidate));
    } else {
      survey.remotes.push_back(std::move(candidate));
    }
  };
  for (const auto& agent : *local) {
    survey.agent_ids.push_back(agent->id());
    consider(Candidate{agent, nullptr, ""}, agent->id(), node_id, agent->card());
  }
  if (remote != nullptr) {
    for (const auto& agent : *remote) {
      survey.agent_ids.push_back(agent->qualified_id());
      consider(Candidate{nullptr, agent, ""}, agent->agent_id(), agent->node_id(), agent->card());
    }
  }
  return survey;
}

absl::Status CheckDepth(const std::vector<std::string>& hops, int max_hops) {
  if (static_cast<int>(hops.size()) >= max_hops) {
    return MakeA2aError(
        A2aError::kUnsupportedOperation,
        absl::StrCat("refused: the delegation chain is already ", hops.size(), " deep (",
                     absl::StrJoin(hops, " -> "), "), the --max-hops limit of ", max_hops));
  }
  return absl::OkStatus();
}

absl::Status AllBusy(const Selector& selector, size_t matches) {
  return absl::ResourceExhaustedError(absl::StrCat("all ", matches, " agent(s) matching ",
                                                   selector.Describe(),
                                                   " are at their max_concurrency; retry later"));
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

absl::StatusOr<Route> Router::Pick(const Selector& selector, const std::vector<std::string>& hops,
                                   Admission* admission, std::string* weighed) {
  if (absl::Status depth = CheckDepth(hops, options_.max_hops); !depth.ok()) {
    options_.telemetry->Routed("refused");
    return depth;
  }
  RemoteRunnerFactory* remote_runners = this->remote_runners();
  Survey survey = SurveyMesh(selector, hops, options_.node_id, local_.snapshot(),
                             remote_runners != nullptr ? remote_.snapshot() : nullptr, admission);
  std::vector<Candidate>& locals = survey.locals;
  std::vector<Candidate>& remotes = survey.remotes;
  const size_t matches = locals.size() + remotes.size();
  if (weighed != nullptr) {
    for (const std::vector<Candidate>* pool : {&locals, &remotes}) {
      for (const Candidate& c : *pool) {
        absl::StrAppend(weighed, weighed->empty() ? "" : ", ",
                        c.local ? c.local->id() : c.remote->qualified_id(), " load=", c.load());
      }
    }
  }
  if (matches == 0) {
    options_.telemetry->Routed(
        survey.best == Stage::kCycle || survey.best == Stage::kDenied ? "refused" : "none");
    if (survey.best == Stage::kDenied) return survey.denial;
    return NoMatch(survey.best, selector, hops, survey.agent_ids, survey.skills);
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
    route.bare_agent_id = pool[pick].agent_id();
    for (const AgentSkill& s : pool[pick].card().skills()) {
      if (s.id() == route.skill) route.tags = s.tags();
    }
    route.direct_replies = catalog::DeclaresExtension(pool[pick].card(), kDirectRepliesExtension);
    if (take_local) {
      route.agent_id = pool[pick].local->id();
      route.node_id = options_.node_id;
      route.runner = std::make_unique<catalog::LocalTaskRunner>(pool[pick].local);
      options_.telemetry->Routed("local");
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
    options_.telemetry->Routed("remote");
    return route;
  }
  options_.telemetry->Routed("busy");
  return AllBusy(selector, matches);
}

v1::RouteExplanation Router::Explain(const Selector& selector,
                                     const std::vector<std::string>& hops) const {
  v1::RouteExplanation out;
  out.set_selector(selector.Describe());
  out.set_policy(absl::StrCat(
      "candidates match every part of the selector, are not in the task's delegation chain and "
      "have a free slot; score = load (outstanding / max_concurrency), less ",
      options_.local_bias,
      " for an agent on this node; the lowest score wins, and among several similar ones the "
      "less loaded of two taken at random (power of two choices)"));
  RemoteRunnerFactory* remote_runners = this->remote_runners();
  Survey survey = SurveyMesh(selector, hops, options_.node_id, local_.snapshot(),
                             remote_runners != nullptr ? remote_.snapshot() : nullptr, nullptr);

  auto describe = [&](const Candidate& c, const std::string& excluded) {
    v1::RouteCandidate r;
    const bool local = c.local != nullptr;
    r.set_node_id(local ? options_.node_id : c.remote->node_id());
    r.set_agent_id(catalog::QualifiedAgentId(c.agent_id(), r.node_id()));
    r.set_local(local);
    r.set_skill(c.skill);
    r.set_outstanding(c.outstanding());
    r.set_max_concurrency(c.max_concurrency());
    r.set_load(c.load());
    r.set_score(c.load() - (local ? options_.local_bias : 0.0));
    r.set_excluded(excluded);
    const v1::RemoteEndpoint* remote = local ? c.local->remote() : c.remote->remote();
    if (remote != nullptr) *r.mutable_remote() = *remote;
    return r;
  };
  std::vector<v1::RouteCandidate> eligible;
  std::vector<v1::RouteCandidate> excluded;
  for (const auto* pool : {&survey.locals, &survey.remotes}) {
    for (const Candidate& c : *pool) {
      if (c.full()) {
        excluded.push_back(describe(
            c, absl::StrCat("busy: all ", c.max_concurrency(), " of its slots are taken")));
      } else {
        eligible.push_back(describe(c, ""));
      }
    }
  }
  for (const auto& [c, stage] : survey.rejected) {
    excluded.push_back(describe(c, StageReason(stage, selector)));
  }
  if (remote_runners != nullptr) {
    for (const auto& agent : remote_.all_agents()) {
      std::optional<catalog::RemoteNodeInfo> node = remote_.node(agent->node_id());
      if (node.has_value() && node->draining) {
        excluded.push_back(describe(Candidate{nullptr, agent, ""},
                                    absl::StrCat("node ", agent->node_id(), " is draining")));
      }
    }
  }
  // Best first; a local agent wins a tie with a remote one, as in Pick.
  std::sort(eligible.begin(), eligible.end(), [](const auto& a, const auto& b) {
    return std::make_tuple(a.score(), !a.local(), a.agent_id()) <
           std::make_tuple(b.score(), !b.local(), b.agent_id());
  });
  std::sort(excluded.begin(), excluded.end(),
            [](const auto& a, const auto& b) { return a.agent_id() < b.agent_id(); });

  absl::Status status = CheckDepth(hops, options_.max_hops);
  if (status.ok() && eligible.empty()) {
    const size_t matches = survey.locals.size() + survey.remotes.size();
    status = matches == 0 ? NoMatch(survey.best, selector, hops, survey.agent_ids, survey.skills)
                          : AllBusy(selector, matches);
  }
  if (!status.ok()) {
    out.set_error(std::string(status.message()));
  } else {
    const v1::RouteCandidate& best = eligible.front();
    out.set_pick_agent_id(best.agent_id());
    out.set_pick_node_id(best.node_id());
    out.set_tied(static_cast<int32_t>(
        std::count_if(eligible.begin(), eligible.end(), [&](const v1::RouteCandidate& c) {
          return c.score() == best.score() && c.local() == best.local();
        })));
  }
  for (auto& c : eligible) *out.add_candidates() = std::move(c);
  for (auto& c : excluded) *out.add_candidates() = std::move(c);
  return out;
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
