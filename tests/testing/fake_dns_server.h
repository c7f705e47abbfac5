#ifndef A2AMESH_TESTS_TESTING_FAKE_DNS_SERVER_H_
#define A2AMESH_TESTS_TESTING_FAKE_DNS_SERVER_H_

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh::testing {

// A DNS server for tests: speaks real DNS over UDP on 127.0.0.1:<port> and
// answers A and SRV queries from a table the test edits (AAAA and other types
// get empty answers; unknown names NXDOMAIN). "Fake the protocol, not the
// library": the code under test uses real c-ares against it. Thread-safe.
class FakeDnsServer {
 public:
  struct Srv {
    std::string target;
    int port;
  };

  FakeDnsServer();
  ~FakeDnsServer();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void SetA(const std::string& name, std::vector<std::string> ipv4);
  void SetSrv(const std::string& name, std::vector<Srv> records);
  void Remove(const std::string& name);
  int queries() const { return queries_.load(); }

 private:
  void Loop();
  std::string Answer(const std::string& query);

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> a_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<Srv>> srv_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_FAKE_DNS_SERVER_H_
