// DNS discovery with real c-ares against a DNS server in the test, speaking
// real DNS over UDP on 127.0.0.1.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "catalog/remote_catalog.h"
#include "discovery/dns_discovery_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "peer/peer_manager.h"
#include "testing/fake_dns_server.h"
#include "testing/node_harness.h"
#include "testing/status_matchers.h"
#include "testing/wait.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::FakeDnsServer;
using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::NodeHarness;
using ::a2amesh::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::unique_ptr<discovery::DnsDiscoverySource> Source(const FakeDnsServer& dns,
                                                      const std::string& name, int port = 7400) {
  discovery::DnsDiscoveryOptions options;
  options.name = name;
  options.port = port;
  options.server = dns.address();
  options.query_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<discovery::DnsDiscoverySource>> source =
      discovery::DnsDiscoverySource::Create(options);
  EXPECT_THAT(source, IsOk());
  return std::move(source).value();
}

TEST(DnsDiscoverySourceTest, SrvRecordsGiveTheirTargetsAndPorts) {
  FakeDnsServer dns;
  dns.SetSrv("_grpc._tcp.mesh.test", {{"n1.mesh.test", 7401}, {"n2.mesh.test", 7402}});
  dns.SetA("n1.mesh.test", {"127.0.0.11"});
  dns.SetA("n2.mesh.test", {"127.0.0.12"});
  dns.SetA("mesh.test", {"127.0.0.99"});  // ignored when there are SRV records
  absl::StatusOr<std::vector<std::string>> addresses = Source(dns, "mesh.test")->Resolve();
  ASSERT_THAT(addresses, IsOk());
  EXPECT_THAT(*addresses, ElementsAre("127.0.0.11:7401", "127.0.0.12:7402"));
}

TEST(DnsDiscoverySourceTest, WithoutSrvTheNamesAddressesTakeThePort) {
  FakeDnsServer dns;
  dns.SetA("headless.test", {"127.0.0.21", "127.0.0.22"});
  absl::StatusOr<std::vector<std::string>> addresses =
      Source(dns, "headless.test", 7500)->Resolve();
  ASSERT_THAT(addresses, IsOk());
  EXPECT_THAT(*addresses, ElementsAre("127.0.0.21:7500", "127.0.0.22:7500"));
}

TEST(DnsDiscoverySourceTest, AnUnknownNameIsAnEmptyAnswerAndADeadServerAnError) {
  FakeDnsServer dns;
  absl::StatusOr<std::vector<std::string>> none = Source(dns, "nothing.test")->Resolve();
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(*none, IsEmpty());

  discovery::DnsDiscoveryOptions options;
  options.name = "mesh.test";
  options.server = "127.0.0.1:9";  // nothing answers there
  options.query_timeout = absl::Milliseconds(100);
  auto source = discovery::DnsDiscoverySource::Create(options);
  ASSERT_THAT(source, IsOk());
  EXPECT_THAT((*source)->Resolve(), ::a2amesh::testing::StatusIs(absl::StatusCode::kUnavailable));
}

TEST(DnsDiscoverySourceTest, BadOptionsNameTheFlag) {
  discovery::DnsDiscoveryOptions options;
  EXPECT_THAT(discovery::DnsDiscoverySource::Create(options),
              ::a2amesh::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           ::testing::HasSubstr("--discovery-dns")));
  options.name = "x.test";
  options.server = "not a server";
  auto source = discovery::DnsDiscoverySource::Create(options);
  ASSERT_THAT(source, IsOk());
  EXPECT_THAT((*source)->Resolve(),
              ::a2amesh::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                           ::testing::HasSubstr("--discovery-dns-server")));
}

// Three nodes find each other through SRV records; when one record goes, the
// others drop that node at their next refresh.
TEST(DnsDiscoveryMeshTest, TheMeshFormsAndFollowsTheRecords) {
  FakeDnsServer dns;
  auto options = [&](const std::string& id) {
    NodeOptions o = NodeHarness::TestOptions(id);
    o.discovery_dns = "mesh.test";
    o.discovery_dns_server = dns.address();
    o.discovery_interval = absl::Milliseconds(200);
    o.peer_heartbeat = absl::Milliseconds(100);
    o.peer_timeout = absl::Milliseconds(600);
    return o;
  };
  NodeHarness n1(options("n1"));
  NodeHarness n2(options("n2"));
  NodeHarness n3(options("n3"));
  std::vector<FakeDnsServer::Srv> records;
  for (NodeHarness* node : {&n1, &n2, &n3}) {
    std::string host = node->node().node_id() + ".mesh.test";
    dns.SetA(host, {"127.0.0.1"});
    records.push_back({host, node->node().grpc_port()});
  }
  dns.SetSrv("_grpc._tcp.mesh.test", records);
  auto up = [](NodeHarness& node) { return node.node().peers().peers_up(); };
  auto discovered = [](NodeHarness& node) {
    return node.node().peers().discovered()["dns:mesh.test"].size();
  };
  ASSERT_TRUE(WaitFor([&] { return up(n1) == 2 && up(n2) == 2 && up(n3) == 2; }));
  // Every node has seen all three records before one goes away.
  ASSERT_TRUE(
      WaitFor([&] { return discovered(n1) == 3 && discovered(n2) == 3 && discovered(n3) == 3; }));

  records.pop_back();  // n3's record goes away
  dns.SetSrv("_grpc._tcp.mesh.test", records);
  ASSERT_TRUE(WaitFor([&] { return up(n1) == 1 && up(n2) == 1; }));
  // n3 still runs and still finds n1 and n2 in DNS, but they refuse it.
  EXPECT_FALSE(WaitFor([&] { return up(n1) != 1 || up(n2) != 1; }, absl::Milliseconds(800)));
  EXPECT_FALSE(n1.node().remote_catalog().node("n3").has_value());
  std::vector<peer::MemberState> members = n1.node().peers().members();
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].node_id, "n2");
}

}  // namespace
}  // namespace a2amesh
