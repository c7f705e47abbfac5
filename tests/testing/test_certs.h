#ifndef A2AMESH_TESTS_TESTING_TEST_CERTS_H_
#define A2AMESH_TESTS_TESTING_TEST_CERTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace a2amesh::testing {

// A certificate and its private key, PEM.
struct KeyCert {
  std::string cert_pem;
  std::string key_pem;
};

struct CertSpec {
  std::string common_name = "a2a-mesh test";
  // Subject alternative names.
  std::vector<std::string> uris;
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ips = {"127.0.0.1"};
  // Validity, from now (negative not_after: expired).
  absl::Duration not_before = -absl::Hours(1);
  absl::Duration not_after = absl::Hours(24);
};

// A certificate authority made with OpenSSL in the test (EC P-256): nothing
// is committed, every run has its own keys.
class TestCa {
 public:
  explicit TestCa(const std::string& name = "a2a-mesh test CA");
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return ca_.cert_pem; }
  // A leaf certificate this CA signs (for servers and clients both).
  KeyCert Issue(const CertSpec& spec) const;
  // A node's: URI SAN spiffe://<trust_domain>/node/<node_id>, and localhost.
  KeyCert IssueNode(const std::string& node_id, const std::string& trust_domain = "a2a-mesh") const;

 private:
  struct Key;
  std::unique_ptr<Key> key_;
  KeyCert ca_;
};

// Writes `text` to `path` (replacing it atomically, as a rotation would).
void WriteFileAtomically(const std::string& path, const std::string& text);

// Where WriteNodeTls put a node's TLS files.
struct NodeTlsFiles {
  std::string cert;  // <dir>/<node_id>.crt
  std::string key;   // <dir>/<node_id>.key
  std::string ca;    // <dir>/ca.crt
};
// Writes `ca`'s certificate and a certificate of it for node `node_id`
// (IssueNode) into `dir`.
NodeTlsFiles WriteNodeTls(const std::string& dir, const TestCa& ca, const std::string& node_id);

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_TEST_CERTS_H_
