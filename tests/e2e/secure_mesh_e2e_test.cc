// Three meshd processes with TLS, mTLS between peers and bearer-token auth:
// a task routes across nodes, and meshctl reaches the mesh through a context
// of its config file. Certificates are made in the test.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/e2e_mesh.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::Subprocess;
using ::testing::HasSubstr;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class SecureMeshE2eTest : public ::testing::Test {
 protected:
  SecureMeshE2eTest() {
    testing::WriteFileAtomically(dir_.File("ca.crt"), ca_.cert_pem());
    testing::WriteFileAtomically(dir_.File("tokens"),
                                 absl::StrCat(kClientToken, " operator admin\n", kAgentToken,
                                              " echo-agent agent:echo,skill:echo\n"));
    testing::WriteFileAtomically(dir_.File("operator.token"), absl::StrCat(kClientToken, "\n"));
  }

  std::vector<std::string> NodeFlags(const std::string& id) {
    testing::NodeTlsFiles tls = testing::WriteNodeTls(dir_.path(), ca_, id);
    return {"--ephemeral",
            "--tls-cert",
            tls.cert,
            "--tls-key",
            tls.key,
            "--tls-client-ca",
            tls.ca,
            "--auth-token-file",
            dir_.File("tokens"),
            "--peer-heartbeat",
            "200ms",
            "--peer-timeout",
            "2s"};
  }

  // meshctl with the test's config file.
  Result Meshctl(std::vector<std::string> args) {
    static int calls = 0;
    std::vector<std::string> argv = {"/usr/bin/env", "A2AMESH_CONFIG=" + dir_.File("meshctl.json"),
                                     testing::BinaryPath("meshctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string out = dir_.File(absl::StrCat("meshctl-", ++calls, ".out"));
    const std::string err = dir_.File(absl::StrCat("meshctl-", calls, ".err"));
    Result result;
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv, out, err);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return result;
    result.code = process->Wait(absl::Seconds(60)).value_or(-1);
    result.out = testing::ReadFileOrEmpty(out);
    result.err = testing::ReadFileOrEmpty(err);
    return result;
  }

  static constexpr char kClientToken[] = "operator-0123456789abcdef";
  static constexpr char kAgentToken[] = "echo-agent-0123456789abcd";
  testing::TempDir dir_;
  testing::TestCa ca_;
};

TEST_F(SecureMeshE2eTest, AThreeNodeMtlsMeshRoutesATaskAndMeshctlReachesItThroughAContext) {
  testing::E2eNode n1(dir_, "n1", NodeFlags("n1"));
  ASSERT_TRUE(n1.Start());
  std::vector<std::string> flags2 = NodeFlags("n2");
  flags2.insert(flags2.end(), {"--peers", n1.address()});
  testing::E2eNode n2(dir_, "n2", flags2);
  ASSERT_TRUE(n2.Start());
  std::vector<std::string> flags3 = NodeFlags("n3");
  flags3.insert(flags3.end(), {"--peers", n1.address()});
  testing::E2eNode n3(dir_, "n3", flags3);
  ASSERT_TRUE(n3.Start());
  Subprocess agent =
      n3.StartAgent("echo-agent", {"--token", kAgentToken, "--tls-ca", dir_.File("ca.crt")});
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_.cert_pem();
  n2.SetClient(grpc::SslCredentials(ssl), kClientToken);
  ASSERT_TRUE(n2.WaitForAgent("echo"));  // n2 routes to n3's agent, over mTLS

  // A context, as an operator would set it up.
  Result set = Meshctl({"config", "set-context", "secure", "--server", n2.address(), "--tls-ca",
                        dir_.File("ca.crt"), "--token-file", dir_.File("operator.token")});
  ASSERT_EQ(set.code, 0) << set.err;
  ASSERT_EQ(Meshctl({"config", "use-context", "secure"}).code, 0);

  Result nodes = Meshctl({"nodes"});
  ASSERT_EQ(nodes.code, 0) << nodes.err;
  for (const char* id : {"n1", "n2", "n3"}) EXPECT_THAT(nodes.out, HasSubstr(id));
  EXPECT_THAT(nodes.out, ::testing::Not(HasSubstr("down")));

  Result sent = Meshctl({"send", "--skill", "echo", "across the mesh"});
  ASSERT_EQ(sent.code, 0) << sent.err;
  // Sent to n2, run by the agent on n3.
  EXPECT_THAT(sent.out, HasSubstr("completed: echoed by echo@n3"));
  EXPECT_THAT(sent.out, HasSubstr("across the mesh"));

  // Without the context: plain text to a TLS node fails, and TLS without a
  // token is refused.
  Result plain = Meshctl(
      {"--server", n2.address(), "--config", dir_.File("none.json"), "nodes", "--timeout", "3s"});
  EXPECT_EQ(plain.code, 1);
  Result no_token = Meshctl({"--config", dir_.File("none.json"), "--server", n2.address(),
                             "--tls-ca", dir_.File("ca.crt"), "nodes"});
  EXPECT_EQ(no_token.code, 1);
  EXPECT_THAT(no_token.err, HasSubstr("authentication required"));
}

}  // namespace
}  // namespace a2amesh
