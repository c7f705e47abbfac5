#ifndef A2AMESH_TESTS_TESTING_TCP_PROXY_H_
#define A2AMESH_TESTS_TESTING_TCP_PROXY_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh::testing {

// A TCP relay on 127.0.0.1 that a test can cut, to stand between two nodes as
// the network does: Cut() resets every relayed connection and refuses new
// ones (accepted, then reset at once) until Heal(). Real sockets, one thread
// per direction of each connection. Thread-safe.
class TcpProxy {
 public:
  // Listens on a port of its own; relays nowhere until SetTarget.
  TcpProxy();
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // "127.0.0.1:PORT", where clients connect.
  std::string address() const;
  // Where connections are relayed to ("127.0.0.1:PORT").
  void SetTarget(const std::string& target);

  void Cut();
  void Heal();
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop();
  void Relay(int client);

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  std::string target_ ABSL_GUARDED_BY(mu_);
  bool cut_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int> open_ ABSL_GUARDED_BY(mu_);  // relayed sockets, both sides
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_TCP_PROXY_H_
