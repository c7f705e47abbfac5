#ifndef A2AMESH_PEER_PEER_MANAGER_H_
#define A2AMESH_PEER_PEER_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "a2amesh/clock.h"
#include "a2amesh/executor.h"
#include "a2amesh/v1/peer.grpc.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "catalog/agent_catalog.h"
#include "catalog/remote_catalog.h"
#include "core/telemetry.h"
#include "core/weak_self.h"
#include "grpcpp/grpcpp.h"
#include "peer/connection.h"
#include "routing/router.h"
#include "tasks/task_manager.h"

namespace a2amesh::peer {

// A client call this node makes to a peer (a handoff), which Shutdown ends.
class CancellableCall {
 public:
  virtual ~CancellableCall() = default;
  virtual void CancelCall() = 0;
  // The node the call talks to ("" if none in particular): its calls are
  // canceled when it is found down, sooner than keepalive would notice.
  virtual const std::string& peer_node() const {
    static const std::string kNone;
    return kNone;
  }
};

struct PeerOptions {
  std::string node_id;
  // Where other nodes reach this node's gRPC port.
  std::string advertise_address;
  // Heartbeats (with agent loads) go to every peer this often...
  absl::Duration heartbeat = absl::Seconds(1);
  // ...and a peer silent this long is down.
  absl::Duration timeout = absl::Seconds(3);
  // A member that went down stays listed (down, since when) this long, even
  // when no one names it any more (a crashed node learned through gossip).
  absl::Duration forget_down_after = absl::Minutes(15);
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  int max_hops = 8;
  // A task handed to another node whose stream breaks after acceptance stays
  // WORKING this long while this node dials it again to resume the turn
  // (HandoffResume); only then does it fail. Zero: it fails at once.
  absl::Duration handoff_grace = absl::Seconds(30);
  // Hears of handoffs this node makes.
  Telemetry* telemetry = &NoTelemetry();
  // How this node dials peers (nullptr: plain text).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Peers prove who they are with a certificate of the mesh CA naming
  // spiffe://<trust_domain>/node/<id> (security/tls.h): a stream or handoff
  // whose certificate names another node than the one it claims is refused.
  bool authenticate = false;
  std::string trust_domain;
};

// One member of the mesh as this node sees it.
struct MemberState {
  std::string node_id;
  std::string address;
  bool up = false;
  bool draining = false;
  bool dialed = false;  // this node dialed the stream in use
  int agents = 0;
  // When a down member was last seen up (InfinitePast: never, by this node).
  absl::Time down_since = absl::InfinitePast();
};

// Keeps this node connected to every other member of the mesh and the catalog
// in step (DESIGN §4): dials the addresses that discovery sources and peers'
// member lists name, exchanges adverts, deltas and heartbeats on one stream per
// pair of nodes, marks a peer down (its agents leave routing) when its stream
// breaks or it falls silent, and redials with backoff. Also makes the runners
// that hand tasks to other nodes (routing::RemoteRunnerFactory), and channels
// to peers for forwarding.
//
// Thread-safe. Lock order: the local catalog's lock, then mu_, then connection
// locks; never the other way.
class PeerManager final : public catalog::CatalogListener,
                          public routing::RemoteRunnerFactory,
                          public ConnectionListener {
 public:
  PeerManager(PeerOptions options, catalog::AgentCatalog& local, catalog::RemoteCatalog& remote,
              tasks::TaskManager& tasks, Timers& timers, Clock& clock);
  ~PeerManager() override;

  const PeerOptions& options() const { return options_; }
  // Where peers reach this node, once known (the bound port); before Start.
  void SetAdvertiseAddress(const std::string& address);
  uint64_t incarnation() const { return incarnation_; }

  // Starts listening to the local catalog and the heartbeat loop.
  void Start();
  // Closes every peer stream and handoff, stops dialing, and waits until the
  // streams this node dialed are over.
  void Shutdown();

  // The addresses a discovery source names now (replacing what it named
  // before). Addresses a source stops naming, and no other source names, are
  // dropped: not dialed, refused when they dial in, ignored in member lists.
  void SetAddresses(const std::string& source, const std::vector<std::string>& addresses);

  // Tells every peer to stop routing to this node (`draining`), or to route
  // to it again.
  void SetDraining(bool draining = true);
  bool draining() const;
  // Whether Shutdown has begun.
  bool shut_down() const;
  // The node's timers (handoffs resume and expire on them). Until Shutdown.
  Timers& timers() { return timers_; }

  // Every other node: connected ones (up), and addresses this node is trying
  // to reach (down), ordered by node id.
  std::vector<MemberState> members() const;
  // What each discovery source names now, by source.
  std::map<std::string, std::vector<std::string>> discovered() const;
  int peers_up() const;

  // A channel to node `node_id` (nullptr if no such peer is known). One channel
  // per peer, shared by its catalog stream, handoffs and forwarded calls.
  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& node_id);

  // An accepted Exchange stream (PeerService); `auth` is the call's.
  InboundConnection::Reactor* Accept(std::shared_ptr<const grpc::AuthContext> auth);

  // With `authenticate`: whether a call's certificate names a node of the
  // mesh (if not, counted as a "no_certificate" refusal). Without: true.
  bool AuthenticatePeer(const grpc::AuthContext& auth) const;
  // With `authenticate`: whether a call's certificate names node `claimed`
  // (if not, counted as an "identity" refusal). Without: true.
  bool Proves(const std::shared_ptr<const grpc::AuthContext>& auth,
              const std::string& claimed) const;

  // catalog::CatalogListener
  void OnAgentsAdded(const std::vector<std::shared_ptr<catalog::LocalAgent>>& agents) override;
  void OnAgentRemoved(const std::shared_ptr<catalog::LocalAgent>& agent) override;

  // routing::RemoteRunnerFactory
  std::unique_ptr<tasks::TaskRunner> HandoffRunner(
      std::vector<routing::RemoteCandidate> candidates) override;
  std::unique_ptr<tasks::TaskRunner> RebindRunner(
      std::shared_ptr<catalog::RemoteAgent> agent) override;

  // ConnectionListener
  void OnMessage(Connection* connection, const v1::PeerMessage& message) override;
  void OnClosed(Connection* connection, const std::string& reason) override;

  // Handoff calls this node makes register here so that Shutdown can end them;
  // they untrack themselves when over.
  void TrackCall(const std::shared_ptr<CancellableCall>& call);
  void UntrackCall(CancellableCall* call);

 private:
  struct ConnState {
    std::shared_ptr<Connection> connection;
    bool dialed = false;
    std::string dial_address;
    // From the peer's hello:
    bool established = false;
    std::string node_id;
    uint64_t incarnation = 0;
    std::string address;
    absl::Time last_heard;
  };
  struct DialState {
    bool in_progress = false;
    int failures = 0;
    absl::Time next_attempt = absl::InfinitePast();
  };
  struct Action;  // what to do once mu_ is released

  void Tick();
  // Takes an inbound stream in and says hello (refuses it once shut down).
  void Accepted(std::shared_ptr<Connection> connection);
  v1::PeerMessage HelloLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::PeerMessage AdvertLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> MembersLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::AgentAdvert AgentAdvertOf(const catalog::LocalAgent& agent) const;
  // Sends `message` to every established peer.
  void BroadcastLocked(const v1::PeerMessage& message, Action* action)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MembersChangedLocked(Action* action) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleHelloLocked(ConnState& state, const v1::Hello& hello, Action* action)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GossipLocked(const std::string& from_node, const std::vector<std::string>& members)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Which addresses to dial now.
  void ReconcileLocked(Action* action) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WantedLocked(const std::string& address) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every address discovery or gossip names that is wanted, ordered.
  absl::btree_set<std::string> WantedAddressesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether an established peer stream reaches the node at `address`.
  bool ConnectedLocked(const std::string& address) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(Action& action);
  void Dial(const std::string& address);
  std::shared_ptr<grpc::Channel> ChannelForAddressLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  PeerOptions options_;  // advertise_address is set once, before Start
  const uint64_t incarnation_;
  catalog::AgentCatalog& local_;
  catalog::RemoteCatalog& remote_;
  tasks::TaskManager& tasks_;
  Timers& timers_;
  Clock& clock_;
  WeakSelf<PeerManager> weak_self_{this};

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<catalog::LocalAgent>> local_agents_ ABSL_GUARDED_BY(mu_);
  // source -> addresses it names.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> sources_ ABSL_GUARDED_BY(mu_);
  // address -> the peers whose member lists name it.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> gossip_ ABSL_GUARDED_BY(mu_);
  // Addresses discovery dropped.
  absl::flat_hash_set<std::string> tombstones_ ABSL_GUARDED_BY(mu_);
  // Members that went down: node id -> where it was, and since when. Listed
  // as down for options_.forget_down_after; forgotten when they come back,
  // or when discovery drops their address (removed on purpose).
  struct Former {
    std::string address;
    absl::Time since;
  };
  absl::flat_hash_map<std::string, Former> former_ ABSL_GUARDED_BY(mu_);
  // Addresses that turned out to be this node.
  absl::flat_hash_set<std::string> self_addresses_ ABSL_GUARDED_BY(mu_);
  // Dialed address -> the node that answered there.
  absl::flat_hash_map<std::string, std::string> node_at_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, DialState> dials_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Connection*, std::unique_ptr<ConnState>> connections_ ABSL_GUARDED_BY(mu_);
  // node id -> its connection in use.
  absl::flat_hash_map<std::string, ConnState*> peers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<v1::Peer::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<CancellableCall*, std::weak_ptr<CancellableCall>> calls_ ABSL_GUARDED_BY(mu_);
  int outbound_open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace a2amesh::peer

#endif  // A2AMESH_PEER_PEER_MANAGER_H_
