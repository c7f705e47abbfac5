#ifndef A2AMESH_DISCOVERY_DISCOVERY_SOURCE_H_
#define A2AMESH_DISCOVERY_DISCOVERY_SOURCE_H_

#include <functional>
#include <string>
#include <vector>

namespace a2amesh::discovery {

// A source of peer addresses ("host:port"): static flags, DNS, and later a
// distributed store. The mesh combines all sources with the member lists peers
// gossip. Implementations are thread-safe.
class DiscoverySource {
 public:
  using Update = std::function<void(const std::vector<std::string>& addresses)>;

  virtual ~DiscoverySource() = default;
  // A short name for logs and membership ("static", "dns:mesh.example").
  virtual std::string name() const = 0;
  // Starts; `update` gets the full current list whenever it changes (maybe on
  // a thread of the source's own), and never after Stop returns.
  virtual void Start(Update update) = 0;
  virtual void Stop() = 0;
};

// The addresses of --peers: reported once.
class StaticDiscoverySource final : public DiscoverySource {
 public:
  explicit StaticDiscoverySource(std::vector<std::string> addresses)
      : addresses_(std::move(addresses)) {}
  std::string name() const override { return "static"; }
  void Start(Update update) override { update(addresses_); }
  void Stop() override {}

 private:
  const std::vector<std::string> addresses_;
};

}  // namespace a2amesh::discovery

#endif  // A2AMESH_DISCOVERY_DISCOVERY_SOURCE_H_
