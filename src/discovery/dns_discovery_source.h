#ifndef A2AMESH_DISCOVERY_DNS_DISCOVERY_SOURCE_H_
#define A2AMESH_DISCOVERY_DNS_DISCOVERY_SOURCE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "discovery/discovery_source.h"

namespace a2amesh::discovery {

struct DnsDiscoveryOptions {
  // The name to resolve, e.g. the Kubernetes headless Service
  // "a2a-mesh.default.svc.cluster.local".
  std::string name;
  // The port for addresses from A/AAAA records (SRV records carry their own).
  int port = 7400;
  absl::Duration interval = absl::Seconds(5);
  // A DNS server ("host:port") to ask instead of the system's resolvers.
  std::string server;
  absl::Duration query_timeout = absl::Seconds(2);
};

// Peer addresses from DNS, resolved with c-ares every `interval`: the SRV
// records of _grpc._tcp.<name> (their targets' A/AAAA addresses, with the SRV
// ports) if there are any, else the A/AAAA records of <name> with `port`. A
// lookup that fails (timeout, SERVFAIL) keeps the previous list; one that
// succeeds, even with no records, replaces it.
//
// c-ares 1.18 has no event thread: the source's own thread drives its sockets
// (ARES_OPT_SOCK_STATE_CB, poll, ares_process_fd) and timeouts. Thread-safe.
class DnsDiscoverySource final : public DiscoverySource {
 public:
  static absl::StatusOr<std::unique_ptr<DnsDiscoverySource>> Create(DnsDiscoveryOptions options);
  ~DnsDiscoverySource() override;

  std::string name() const override { return "dns:" + options_.name; }
  void Start(Update update) override;
  void Stop() override;

  // One lookup now, on the calling thread: "host:port" addresses, sorted.
  absl::StatusOr<std::vector<std::string>> Resolve() const;

 private:
  explicit DnsDiscoverySource(DnsDiscoveryOptions options) : options_(std::move(options)) {}
  void Loop(Update update);

  const DnsDiscoveryOptions options_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace a2amesh::discovery

#endif  // A2AMESH_DISCOVERY_DNS_DISCOVERY_SOURCE_H_
