#include "peer/peer_manager.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "peer/handoff.h"
#include "security/tls.h"

namespace a2amesh::peer {

// What OnMessage, OnClosed and friends decide under mu_ and do after releasing
// it (closing a stream or dialing may run gRPC callbacks that take mu_).
struct PeerManager::Action {
  std::vector<std::pair<std::shared_ptr<Connection>, std::string>> close;
  std::vector<std::string> dial;
  // Calls to a node found down, cancelled after kCallsGrace (a handoff then
  // resumes or fails, instead of when keepalive gives up on its connection).
  std::vector<std::weak_ptr<CancellableCall>> cancel;
};

namespace {

constexpr uint32_t kProtocol = 1;

// How long the calls to a node found down may still end on their own: a node
// that shuts down fails the turns it hosts, naming itself, before it closes
// its peer streams, and those events may arrive after the close is seen.
constexpr absl::Duration kCallsGrace = absl::Seconds(1);

uint64_t NewIncarnation() {
  // Wall-clock microseconds: a restarted node's incarnation is larger.
  return static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
}

}  // namespace

PeerManager::PeerManager(PeerOptions options, catalog::AgentCatalog& local,
                         catalog::RemoteCatalog& remote, tasks::TaskManager& tasks, Timers& timers,
                         Clock& clock)
    : options_(std::move(options)),
      incarnation_(NewIncarnation()),
      local_(local),
      remote_(remote),
      tasks_(tasks),
      timers_(timers),
      clock_(clock) {}

PeerManager::~PeerManager() { Shutdown(); }

void PeerManager::SetAdvertiseAddress(const std::string& address) {
  absl::MutexLock lock(&mu_);
  options_.advertise_address = address;
}

void PeerManager::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) {
      return;
    }
    started_ = true;
  }
  local_.AddListener(this);
  timers_.RunAfter(options_.heartbeat, weak_self_.Bind([](PeerManager& self) { self.Tick(); }));
  Action action;
  {
    absl::MutexLock lock(&mu_);
    ReconcileLocked(&action);
  }
  Run(action);
}

void PeerManager::Shutdown() {
  std::vector<std::shared_ptr<Connection>> connections;
  std::vector<std::weak_ptr<CancellableCall>> calls;
  bool was_started;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      return;
    }
    shut_down_ = true;
    was_started = started_;
    for (const auto& [ptr, state] : connections_) {
      connections.push_back(state->connection);
    }
    for (const auto& [ptr, call] : calls_) {
      calls.push_back(call);
    }
  }
  for (const auto& weak : calls) {
    if (std::shared_ptr<CancellableCall> call = weak.lock()) {
      call->CancelCall();
    }
  }
  weak_self_.Reset();
  if (was_started) {
    local_.RemoveListener(this);
  }
  for (const auto& connection : connections) {
    connection->Close("the node is shutting down");
  }
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return outbound_open_ == 0 && calls_.empty();
  };
  mu_.Await(absl::Condition(&done));
}

void PeerManager::TrackCall(const std::shared_ptr<CancellableCall>& call) {
  bool shut_down;
  {
    absl::MutexLock lock(&mu_);
    calls_[call.get()] = call;
    shut_down = shut_down_;
  }
  if (shut_down) {
    call->CancelCall();
  }
}

void PeerManager::UntrackCall(CancellableCall* call) {
  absl::MutexLock lock(&mu_);
  calls_.erase(call);
}

v1::PeerMessage PeerManager::HelloLocked() const {
  v1::PeerMessage message;
  auto* hello = message.mutable_hello();
  hello->set_node_id(options_.node_id);
  hello->set_incarnation(incarnation_);
  hello->set_address(options_.advertise_address);
  hello->set_protocol(kProtocol);
  return message;
}

v1::AgentAdvert PeerManager::AgentAdvertOf(const catalog::LocalAgent& agent) const {
  v1::AgentAdvert advert;
  advert.set_agent_id(agent.id());
  *advert.mutable_card() = agent.card();
  advert.set_max_concurrency(static_cast<uint32_t>(agent.max_concurrency()));
  advert.set_outstanding(static_cast<uint32_t>(std::max(0, agent.outstanding())));
  if (agent.remote() != nullptr) *advert.mutable_remote() = *agent.remote();
  return advert;
}

std::vector<std::string> PeerManager::MembersLocked() const {
  std::vector<std::string> members = {options_.advertise_address};
  for (const auto& [node, state] : peers_) {
    members.push_back(state->address);
  }
  std::sort(members.begin(), members.end());
  return members;
}

v1::PeerMessage PeerManager::AdvertLocked() const {
  v1::PeerMessage message;
  auto* advert = message.mutable_advert();
  advert->set_generation(generation_);
  advert->set_draining(draining_);
  for (const auto& agent : local_agents_) {
    *advert->add_agents() = AgentAdvertOf(*agent);
  }
  for (const std::string& member : MembersLocked()) {
    advert->add_members(member);
  }
  return message;
}

void PeerManager::BroadcastLocked(const v1::PeerMessage& message, Action*) {
  // Sent under mu_, so that every peer gets the deltas in generation order.
  for (const auto& [node, state] : peers_) {
    state->connection->Send(message);
  }
}

void PeerManager::MembersChangedLocked(Action* action) {
  v1::PeerMessage message;
  auto* delta = message.mutable_delta();
  delta->set_generation(++generation_);
  for (const std::string& member : MembersLocked()) {
    delta->add_members(member);
  }
  BroadcastLocked(message, action);
}

void PeerManager::OnAgentsAdded(const std::vector<std::shared_ptr<catalog::LocalAgent>>& agents) {
  absl::MutexLock lock(&mu_);
  v1::PeerMessage message;
  auto* delta = message.mutable_delta();
  for (const auto& agent : agents) {
    auto same = [&](const auto& a) { return a->id() == agent->id(); };
    local_agents_.erase(std::remove_if(local_agents_.begin(), local_agents_.end(), same),
                        local_agents_.end());
    local_agents_.push_back(agent);
    *delta->add_upserted() = AgentAdvertOf(*agent);
  }
  if (agents.empty()) {
    return;
  }
  delta->set_generation(++generation_);
  BroadcastLocked(message, nullptr);
}

void PeerManager::OnAgentRemoved(const std::shared_ptr<catalog::LocalAgent>& agent) {
  absl::MutexLock lock(&mu_);
  local_agents_.erase(std::remove(local_agents_.begin(), local_agents_.end(), agent),
                      local_agents_.end());
  v1::PeerMessage message;
  message.mutable_delta()->set_generation(++generation_);
  message.mutable_delta()->add_removed(agent->id());
  BroadcastLocked(message, nullptr);
}

void PeerManager::SetDraining(bool draining) {
  absl::MutexLock lock(&mu_);
  if (draining_ == draining) {
    return;
  }
  draining_ = draining;
  v1::PeerMessage message;
  message.mutable_delta()->set_generation(++generation_);
  message.mutable_delta()->set_draining(draining);
  BroadcastLocked(message, nullptr);
}

bool PeerManager::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool PeerManager::shut_down() const {
  absl::MutexLock lock(&mu_);
  return shut_down_;
}

void PeerManager::SetAddresses(const std::string& source,
                               const std::vector<std::string>& addresses) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_set<std::string> now(addresses.begin(), addresses.end());
    absl::flat_hash_set<std::string> before = std::move(sources_[source]);
    sources_[source] = now;
    for (const std::string& address : now) {
      tombstones_.erase(address);
    }
    for (const std::string& address : before) {
      if (now.contains(address)) {
        continue;
      }
      bool elsewhere = false;
      for (const auto& [other, named] : sources_) {
        elsewhere = elsewhere || (other != source && named.contains(address));
      }
      if (!elsewhere) {
        tombstones_.insert(address);
        gossip_.erase(address);
        absl::erase_if(former_, [&](const auto& item) { return item.second.address == address; });
        A2AMESH_LOG(Info, "member dropped by discovery")
            .With("address", address)
            .With("source", source);
      }
    }
    for (const auto& [ptr, state] : connections_) {
      if (tombstones_.contains(state->dial_address) ||
          (state->established && tombstones_.contains(state->address))) {
        action.close.emplace_back(state->connection,
                                  absl::StrCat("dropped from discovery (", source, ")"));
      }
    }
    ReconcileLocked(&action);
  }
  Run(action);
}

bool PeerManager::WantedLocked(const std::string& address) const {
  return !address.empty() && address != options_.advertise_address &&
         !tombstones_.contains(address) && !self_addresses_.contains(address);
}

absl::btree_set<std::string> PeerManager::WantedAddressesLocked() const {
  absl::btree_set<std::string> wanted;
  for (const auto& [source, addresses] : sources_) {
    for (const std::string& address : addresses) {
      if (WantedLocked(address)) wanted.insert(address);
    }
  }
  for (const auto& [address, from] : gossip_) {
    if (WantedLocked(address)) wanted.insert(address);
  }
  return wanted;
}

bool PeerManager::ConnectedLocked(const std::string& address) const {
  auto node = node_at_.find(address);
  if (node != node_at_.end() && peers_.contains(node->second)) {
    return true;
  }
  return std::any_of(peers_.begin(), peers_.end(),
                     [&](const auto& peer) { return peer.second->address == address; });
}

void PeerManager::ReconcileLocked(Action* action) {
  if (!started_ || shut_down_) {
    return;
  }
  const absl::Time now = clock_.Now();
  for (const std::string& address : WantedAddressesLocked()) {
    DialState& dial = dials_[address];
    if (ConnectedLocked(address) || dial.in_progress || dial.next_attempt > now) {
      continue;
    }
    dial.in_progress = true;
    action->dial.push_back(address);
  }
}

std::shared_ptr<grpc::Channel> PeerManager::ChannelForAddressLocked(const std::string& address) {
  auto it = channels_.find(address);
  if (it != channels_.end()) {
    return it->second;
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.min_backoff)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.min_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.max_backoff)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  auto channel = grpc::CreateCustomChannel(
      address,
      options_.credentials != nullptr ? options_.credentials : grpc::InsecureChannelCredentials(),
      args);
  channels_[address] = channel;
  stubs_[address] = v1::Peer::NewStub(channel);
  return channel;
}

std::shared_ptr<grpc::Channel> PeerManager::ChannelTo(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto peer = peers_.find(node_id);
  if (peer != peers_.end()) {
    return ChannelForAddressLocked(peer->second->address);
  }
  std::optional<catalog::RemoteNodeInfo> info = remote_.node(node_id);
  if (info.has_value() && !info->address.empty()) {
    return ChannelForAddressLocked(info->address);
  }
  return nullptr;
}

void PeerManager::Dial(const std::string& address) {
  std::shared_ptr<OutboundConnection> connection;
  v1::PeerMessage hello;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      dials_[address].in_progress = false;
      return;
    }
    ChannelForAddressLocked(address);
    connection = std::make_shared<OutboundConnection>(*this, *stubs_[address]);
    auto state = std::make_unique<ConnState>();
    state->connection = connection;
    state->dialed = true;
    state->dial_address = address;
    state->last_heard = clock_.Now();
    connections_[connection.get()] = std::move(state);
    ++outbound_open_;
    hello = HelloLocked();
  }
  connection->Begin(std::move(hello));
}

bool PeerManager::AuthenticatePeer(const grpc::AuthContext& auth) const {
  if (!options_.authenticate) return true;
  if (security::PeerNodeId(auth, options_.trust_domain).has_value()) return true;
  options_.telemetry->PeerRefused("no_certificate");
  return false;
}

bool PeerManager::Proves(const std::shared_ptr<const grpc::AuthContext>& auth,
                         const std::string& claimed) const {
  if (!options_.authenticate) return true;
  std::optional<std::string> proven =
      auth != nullptr ? security::PeerNodeId(*auth, options_.trust_domain) : std::nullopt;
  if (proven.has_value() && *proven == claimed) return true;
  options_.telemetry->PeerRefused("identity");
  A2AMESH_LOG(Warning, "peer refused: its certificate names another node")
      .With("claims", claimed)
      .With("certificate", proven.value_or("(none)"));
  return false;
}

InboundConnection::Reactor* PeerManager::Accept(std::shared_ptr<const grpc::AuthContext> auth) {
  return InboundConnection::Accept(
      *this, std::move(auth),
      [this](std::shared_ptr<Connection> connection) { Accepted(std::move(connection)); });
}

void PeerManager::Accepted(std::shared_ptr<Connection> connection) {
  bool refuse;
  {
    absl::MutexLock lock(&mu_);
    refuse = shut_down_;
    auto state = std::make_unique<ConnState>();
    state->connection = connection;
    state->last_heard = clock_.Now();
    connections_[connection.get()] = std::move(state);
    if (!refuse) {
      connection->Send(HelloLocked());
    }
  }
  if (refuse) {
    connection->Close("the node is shutting down");
  }
}

void PeerManager::HandleHelloLocked(ConnState& state, const v1::Hello& hello, Action* action) {
  if (hello.node_id() == options_.node_id) {
    if (state.dialed) {
      self_addresses_.insert(state.dial_address);
    }
    action->close.emplace_back(state.connection, "that address is this node");
    return;
  }
  if (!Proves(state.connection->auth_context(), hello.node_id())) {
    action->close.emplace_back(
        state.connection, absl::StrCat("its certificate does not name node ", hello.node_id()));
    return;
  }
  if (tombstones_.contains(hello.address()) ||
      (state.dialed && tombstones_.contains(state.dial_address))) {
    action->close.emplace_back(state.connection, "that node was dropped from discovery");
    return;
  }
  state.node_id = hello.node_id();
  state.incarnation = hello.incarnation();
  state.address = hello.address().empty() ? state.dial_address : hello.address();
  if (state.dialed) {
    node_at_[state.dial_address] = state.node_id;
    dials_[state.dial_address].failures = 0;
  }
  auto existing = peers_.find(state.node_id);
  const bool replacing = existing != peers_.end();
  if (existing != peers_.end()) {
    ConnState& old = *existing->second;
    if (old.incarnation != state.incarnation) {
      if (state.incarnation < old.incarnation) {
        action->close.emplace_back(state.connection, "an older incarnation of a known node");
        return;
      }
      // The node restarted: forget all about its previous run.
      action->close.emplace_back(old.connection, "replaced by the node's new incarnation");
      remote_.RemoveNode(state.node_id);
      peers_.erase(existing);
    } else {
      // Both nodes dialed: keep the stream dialed by the smaller node id, on
      // both sides.
      const std::string& keeper = std::min(options_.node_id, state.node_id);
      const std::string& dialer = state.dialed ? options_.node_id : state.node_id;
      if (dialer != keeper) {
        action->close.emplace_back(
            state.connection,
            absl::StrCat("duplicate stream; keeping the one ", keeper, " dialed"));
        return;
      }
      action->close.emplace_back(
          old.connection, absl::StrCat("duplicate stream; keeping the one ", keeper, " dialed"));
      peers_.erase(existing);
    }
  }
  state.established = true;
  peers_[state.node_id] = &state;
  former_.erase(state.node_id);
  state.connection->Send(AdvertLocked());
  if (!replacing) {
    A2AMESH_LOG(Info, "peer up")
        .With("peer", state.node_id)
        .With("address", state.address)
        .With("dialed", state.dialed);
  }
  MembersChangedLocked(action);
}

void PeerManager::GossipLocked(const std::string& from_node,
                               const std::vector<std::string>& members) {
  for (auto it = gossip_.begin(); it != gossip_.end();) {
    it->second.erase(from_node);
    if (it->second.empty()) {
      gossip_.erase(it++);
    } else {
      ++it;
    }
  }
  for (const std::string& member : members) {
    if (WantedLocked(member)) {
      gossip_[member].insert(from_node);
    }
  }
}

void PeerManager::OnMessage(Connection* connection, const v1::PeerMessage& message) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    auto it = connections_.find(connection);
    if (it == connections_.end()) {
      return;
    }
    ConnState& state = *it->second;
    state.last_heard = clock_.Now();
    if (message.has_hello()) {
      if (!state.established && state.node_id.empty()) {
        HandleHelloLocked(state, message.hello(), &action);
      }
    } else {
      auto peer = peers_.find(state.node_id);
      if (peer == peers_.end() || peer->second != &state) {
        return;  // not (or no longer) the stream in use for that node
      }
      switch (message.msg_case()) {
        case v1::PeerMessage::kAdvert: {
          remote_.ApplyAdvert(state.node_id, state.incarnation, state.address, message.advert());
          GossipLocked(state.node_id,
                       {message.advert().members().begin(), message.advert().members().end()});
          ReconcileLocked(&action);
          break;
        }
        case v1::PeerMessage::kDelta:
          remote_.ApplyDelta(state.node_id, message.delta());
          if (!message.delta().members().empty()) {
            GossipLocked(state.node_id,
                         {message.delta().members().begin(), message.delta().members().end()});
            ReconcileLocked(&action);
          }
          if (message.delta().has_draining() && message.delta().draining()) {
            A2AMESH_LOG(Info, "peer draining").With("peer", state.node_id);
          }
          break;
        case v1::PeerMessage::kHeartbeat:
          remote_.ApplyLoads(state.node_id, message.heartbeat().loads());
          break;
        default:
          break;
      }
    }
  }
  Run(action);
}

void PeerManager::OnClosed(Connection* connection, const std::string& reason) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    auto it = connections_.find(connection);
    if (it == connections_.end()) {
      return;
    }
    std::unique_ptr<ConnState> state = std::move(it->second);
    connections_.erase(it);
    if (state->dialed) {
      --outbound_open_;
      DialState& dial = dials_[state->dial_address];
      dial.in_progress = false;
      if (state->established) {
        dial.next_attempt = clock_.Now() + options_.min_backoff;
      } else {
        ++dial.failures;
        absl::Duration backoff = options_.min_backoff * (1 << std::min(dial.failures, 10));
        backoff = std::min(backoff, options_.max_backoff);
        thread_local absl::BitGen gen;
        dial.next_attempt =
            clock_.Now() + backoff / 2 +
            absl::Milliseconds(absl::Uniform<int64_t>(
                gen, 0, std::max<int64_t>(1, absl::ToInt64Milliseconds(backoff) / 2)));
      }
      timers_.RunAfter(dial.next_attempt - clock_.Now(), weak_self_.Bind([](PeerManager& self) {
        Action retry;
        {
          absl::MutexLock lock(&self.mu_);
          self.ReconcileLocked(&retry);
        }
        self.Run(retry);
      }));
    }
    auto peer = peers_.find(state->node_id);
    if (state->established && peer != peers_.end() && peer->second == state.get()) {
      peers_.erase(peer);
      remote_.RemoveNode(state->node_id);
      GossipLocked(state->node_id, {});
      const absl::Time now = clock_.Now();
      absl::erase_if(former_, [&](const auto& item) {
        return now - item.second.since >= options_.forget_down_after;
      });
      // (One that discovery dropped was removed on purpose: not listed.)
      if (!tombstones_.contains(state->address) && !tombstones_.contains(state->dial_address)) {
        former_[state->node_id] = Former{state->address, now};
      }
      A2AMESH_LOG(Warning, "peer down").With("peer", state->node_id).With("reason", reason);
      for (const auto& [ptr, call] : calls_) {
        // (A tracked call is alive: it untracks itself before it goes.)
        if (ptr->peer_node() == state->node_id) action.cancel.push_back(call);
      }
      MembersChangedLocked(&action);
    }
  }
  Run(action);
}

void PeerManager::Tick() {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      return;
    }
    v1::PeerMessage heartbeat;
    auto* beat = heartbeat.mutable_heartbeat();
    beat->set_unix_ms(absl::ToUnixMillis(clock_.Now()));
    for (const auto& agent : local_agents_) {
      auto* load = beat->add_loads();
      load->set_agent_id(agent->id());
      load->set_outstanding(static_cast<uint32_t>(std::max(0, agent->outstanding())));
    }
    const absl::Time now = clock_.Now();
    for (const auto& [ptr, state] : connections_) {
      if (now - state->last_heard > options_.timeout) {
        action.close.emplace_back(
            state->connection,
            absl::StrCat("no word from ", state->node_id.empty() ? "the peer" : state->node_id,
                         " for ", absl::FormatDuration(now - state->last_heard), " (peer timeout ",
                         absl::FormatDuration(options_.timeout), ")"));
      } else if (state->established) {
        state->connection->Send(heartbeat);
      }
    }
    ReconcileLocked(&action);
  }
  Run(action);
  timers_.RunAfter(options_.heartbeat, weak_self_.Bind([](PeerManager& self) { self.Tick(); }));
}

void PeerManager::Run(Action& action) {
  for (auto& [connection, reason] : action.close) {
    connection->Close(reason);
  }
  for (const std::string& address : action.dial) {
    Dial(address);
  }
  if (!action.cancel.empty()) {
    // (Weak: a call that ended meanwhile is gone, and none outlives Shutdown.)
    timers_.RunAfter(kCallsGrace, [calls = std::move(action.cancel)] {
      for (const std::weak_ptr<CancellableCall>& weak : calls) {
        if (std::shared_ptr<CancellableCall> call = weak.lock()) call->CancelCall();
      }
    });
  }
}

std::vector<MemberState> PeerManager::members() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, MemberState> members;
  for (const catalog::RemoteNodeInfo& info : remote_.nodes()) {
    MemberState& member = members[info.node_id];
    member.node_id = info.node_id;
    member.address = info.address;
    member.draining = info.draining;
    member.agents = info.agents;
  }
  for (const auto& [node, state] : peers_) {
    MemberState& member = members[node];
    member.node_id = node;
    member.address = state->address;
    member.up = true;
    member.dialed = state->dialed;
  }
  // Addresses this node is trying to reach: down members, under the id of the
  // node last found there (or their address, if none ever answered).
  for (const std::string& address : WantedAddressesLocked()) {
    if (ConnectedLocked(address)) {
      continue;
    }
    auto node = node_at_.find(address);
    const std::string key = node != node_at_.end() ? node->second : address;
    if (members.count(key) > 0) {
      continue;
    }
    MemberState& member = members[key];
    member.node_id = node != node_at_.end() ? node->second : "";
    member.address = address;
  }
  // Members that went down, dialed or not, for a while.
  const absl::Time now = clock_.Now();
  for (const auto& [node, former] : former_) {
    if (now - former.since >= options_.forget_down_after) continue;
    MemberState& member = members[node];
    if (member.up) continue;
    member.node_id = node;
    if (member.address.empty()) member.address = former.address;
    member.down_since = former.since;
  }
  std::vector<MemberState> list;
  for (auto& [node, member] : members) {
    list.push_back(std::move(member));
  }
  return list;
}

std::map<std::string, std::vector<std::string>> PeerManager::discovered() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::vector<std::string>> discovered;
  for (const auto& [source, addresses] : sources_) {
    std::vector<std::string>& list = discovered[source];
    list.assign(addresses.begin(), addresses.end());
    std::sort(list.begin(), list.end());
  }
  return discovered;
}

int PeerManager::peers_up() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(peers_.size());
}

std::unique_ptr<tasks::TaskRunner> PeerManager::HandoffRunner(
    std::vector<routing::RemoteCandidate> candidates) {
  return std::make_unique<peer::HandoffRunner>(*this, tasks_, std::move(candidates));
}

std::unique_ptr<tasks::TaskRunner> PeerManager::RebindRunner(
    std::shared_ptr<catalog::RemoteAgent> agent) {
  std::vector<routing::RemoteCandidate> candidates = {{std::move(agent), ""}};
  return std::make_unique<peer::HandoffRunner>(*this, tasks_, std::move(candidates));
}

}  // namespace a2amesh::peer
