#include "testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace a2amesh::testing {
namespace {

// Closes `fd` with a reset (SO_LINGER 0), as a dropped connection looks.
void Reset(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  shutdown(fd, SHUT_RDWR);
}

int Connect(const std::string& target) {
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(target.substr(colon + 1), &port)) return -1;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, target.substr(0, colon).c_str(), &to.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Copies bytes from `in` to `out` until either side ends.
void Pump(int in, int out) {
  char buffer[16384];
  for (;;) {
    const ssize_t got = read(in, buffer, sizeof(buffer));
    if (got <= 0) break;
    for (ssize_t sent = 0; sent < got;) {
      const ssize_t n = send(out, buffer + sent, static_cast<size_t>(got - sent), MSG_NOSIGNAL);
      if (n <= 0) {
        shutdown(in, SHUT_RDWR);
        return;
      }
      sent += n;
    }
  }
  shutdown(out, SHUT_RDWR);
}

}  // namespace

TcpProxy::TcpProxy() {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(at);
  if (bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0 &&
      listen(listener_, 64) == 0 &&
      getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &size) == 0) {
    port_ = ntohs(at.sin_port);
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  close(listener_);
  std::vector<std::thread> pumps;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : open_) Reset(fd);
    pumps.swap(pumps_);
  }
  for (std::thread& pump : pumps) pump.join();
  absl::MutexLock lock(&mu_);
  for (int fd : open_) close(fd);
}

std::string TcpProxy::address() const { return absl::StrCat("127.0.0.1:", port_); }

void TcpProxy::SetTarget(const std::string& target) {
  absl::MutexLock lock(&mu_);
  target_ = target;
}

void TcpProxy::Cut() {
  absl::MutexLock lock(&mu_);
  cut_ = true;
  for (int fd : open_) Reset(fd);
}

void TcpProxy::Heal() {
  absl::MutexLock lock(&mu_);
  cut_ = false;
}

void TcpProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd ready{listener_, POLLIN, 0};
    if (poll(&ready, 1, 100) <= 0) continue;
    const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++accepted_;
    Relay(client);
  }
}

void TcpProxy::Relay(int client) {
  std::string target;
  {
    absl::MutexLock lock(&mu_);
    if (cut_ || target_.empty()) {
      Reset(client);
      close(client);
      return;
    }
    target = target_;
  }
  const int server = Connect(target);
  if (server < 0) {
    Reset(client);
    close(client);
    return;
  }
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  absl::MutexLock lock(&mu_);
  if (cut_) {  // cut while connecting
    Reset(client);
    Reset(server);
  }
  open_.push_back(client);
  open_.push_back(server);
  pumps_.emplace_back([client, server] { Pump(client, server); });
  pumps_.emplace_back([client, server] { Pump(server, client); });
}

}  // namespace a2amesh::testing
