#include "discovery/dns_discovery_source.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"

namespace a2amesh::discovery {
namespace {

constexpr int kClassIn = 1;
constexpr int kTypeSrv = 33;

// What one round of lookups gathers. Used by one thread at a time.
struct Lookup {
  // Sockets c-ares wants watched: fd -> (readable, writable).
  std::map<int, std::pair<bool, bool>> sockets;
  int pending = 0;
  // SRV records: (target, port).
  std::vector<std::pair<std::string, int>> srv;
  bool srv_failed = false;
  std::string error;
  std::vector<std::string> addresses;
  bool address_failed = false;
};

struct AddressQuery {
  Lookup* lookup;
  int port;
};

bool IsAbsent(int status) { return status == ARES_ENODATA || status == ARES_ENOTFOUND; }

void OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* lookup = static_cast<Lookup*>(data);
  if (readable || writable) {
    lookup->sockets[fd] = {readable != 0, writable != 0};
  } else {
    lookup->sockets.erase(fd);
  }
}

void OnSrv(void* arg, int status, int, unsigned char* answer, int length) {
  auto* lookup = static_cast<Lookup*>(arg);
  --lookup->pending;
  if (status != ARES_SUCCESS) {
    if (!IsAbsent(status)) {
      lookup->srv_failed = true;
      lookup->error = absl::StrCat("SRV lookup: ", ares_strerror(status));
    }
    return;
  }
  ares_srv_reply* replies = nullptr;
  int parsed = ares_parse_srv_reply(answer, length, &replies);
  if (parsed != ARES_SUCCESS) {
    lookup->srv_failed = true;
    lookup->error = absl::StrCat("SRV reply: ", ares_strerror(parsed));
    return;
  }
  for (ares_srv_reply* r = replies; r != nullptr; r = r->next) {
    lookup->srv.emplace_back(r->host, r->port);
  }
  ares_free_data(replies);
}

void OnAddresses(void* arg, int status, int, ares_addrinfo* result) {
  auto* query = static_cast<AddressQuery*>(arg);
  Lookup* lookup = query->lookup;
  int port = query->port;
  delete query;
  --lookup->pending;
  if (status != ARES_SUCCESS) {
    if (!IsAbsent(status)) {
      lookup->address_failed = true;
      lookup->error = absl::StrCat("address lookup: ", ares_strerror(status));
    }
    return;
  }
  for (ares_addrinfo_node* node = result->nodes; node != nullptr; node = node->ai_next) {
    char text[INET6_ADDRSTRLEN] = {0};
    if (node->ai_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(node->ai_addr);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      lookup->addresses.push_back(absl::StrCat(text, ":", port));
    } else if (node->ai_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(node->ai_addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      lookup->addresses.push_back(absl::StrCat("[", text, "]:", port));
    }
  }
  ares_freeaddrinfo(result);
}

void ResolveAddresses(ares_channel channel, Lookup* lookup, const std::string& host, int port) {
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  ++lookup->pending;
  ares_getaddrinfo(channel, host.c_str(), nullptr, &hints, OnAddresses,
                   new AddressQuery{lookup, port});
}

// Drives `channel` until every query of `lookup` has answered.
void Drive(ares_channel channel, Lookup* lookup) {
  while (lookup->pending > 0) {
    std::vector<pollfd> fds;
    for (const auto& [fd, wants] : lookup->sockets) {
      pollfd p{};
      p.fd = fd;
      p.events = static_cast<short>((wants.first ? POLLIN : 0) | (wants.second ? POLLOUT : 0));
      fds.push_back(p);
    }
    timeval max{0, 200 * 1000};
    timeval wait{};
    timeval* next = ares_timeout(channel, &max, &wait);
    int timeout_ms = static_cast<int>(next->tv_sec * 1000 + next->tv_usec / 1000);
    int ready = poll(fds.data(), fds.size(), timeout_ms);
    if (ready <= 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      continue;
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      ares_socket_t read_fd = (p.revents & (POLLIN | POLLERR | POLLHUP)) ? p.fd : ARES_SOCKET_BAD;
      ares_socket_t write_fd = (p.revents & POLLOUT) ? p.fd : ARES_SOCKET_BAD;
      ares_process_fd(channel, read_fd, write_fd);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<DnsDiscoverySource>> DnsDiscoverySource::Create(
    DnsDiscoveryOptions options) {
  static std::once_flag init;
  static int init_status = ARES_SUCCESS;
  std::call_once(init, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("c-ares: ", ares_strerror(init_status)));
  }
  if (options.name.empty()) {
    return absl::InvalidArgumentError("--discovery-dns: the name is empty");
  }
  if (options.port <= 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--discovery-dns-port: ", options.port, " is not a port"));
  }
  auto source = std::unique_ptr<DnsDiscoverySource>(new DnsDiscoverySource(std::move(options)));
  return source;
}

DnsDiscoverySource::~DnsDiscoverySource() { Stop(); }

absl::StatusOr<std::vector<std::string>> DnsDiscoverySource::Resolve() const {
  Lookup lookup;
  ares_options opts{};
  opts.sock_state_cb = OnSocketState;
  opts.sock_state_cb_data = &lookup;
  opts.timeout = static_cast<int>(absl::ToInt64Milliseconds(options_.query_timeout));
  opts.tries = 2;
  ares_channel channel = nullptr;
  int status = ares_init_options(&channel, &opts,
                                 ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (status != ARES_SUCCESS) {
    return absl::UnavailableError(absl::StrCat("c-ares init: ", ares_strerror(status)));
  }
  if (!options_.server.empty()) {
    status = ares_set_servers_ports_csv(channel, options_.server.c_str());
    if (status != ARES_SUCCESS) {
      ares_destroy(channel);
      return absl::InvalidArgumentError(
          absl::StrCat("--discovery-dns-server: '", options_.server, "': ", ares_strerror(status)));
    }
  }
  // The SRV records and the name's own addresses, at once.
  ++lookup.pending;
  ares_query(channel, absl::StrCat("_grpc._tcp.", options_.name).c_str(), kClassIn, kTypeSrv, OnSrv,
             &lookup);
  ResolveAddresses(channel, &lookup, options_.name, options_.port);
  Drive(channel, &lookup);
  bool use_srv = !lookup.srv.empty();
  if (use_srv) {
    lookup.addresses.clear();
    lookup.address_failed = false;
    for (const auto& [target, port] : lookup.srv) {
      ResolveAddresses(channel, &lookup, target, port);
    }
    Drive(channel, &lookup);
  }
  ares_destroy(channel);
  if ((use_srv && lookup.address_failed) ||
      (!use_srv && (lookup.srv_failed || lookup.address_failed))) {
    return absl::UnavailableError(
        absl::StrCat("DNS lookup of ", options_.name, " failed: ", lookup.error));
  }
  std::sort(lookup.addresses.begin(), lookup.addresses.end());
  lookup.addresses.erase(std::unique(lookup.addresses.begin(), lookup.addresses.end()),
                         lookup.addresses.end());
  return lookup.addresses;
}

void DnsDiscoverySource::Start(Update update) {
  absl::MutexLock lock(&mu_);
  stopping_ = false;
  thread_ = std::thread([this, update = std::move(update)] { Loop(update); });
}

void DnsDiscoverySource::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void DnsDiscoverySource::Loop(Update update) {
  std::vector<std::string> last;
  bool reported = false;
  while (true) {
    absl::StatusOr<std::vector<std::string>> addresses = Resolve();
    if (!addresses.ok()) {
      A2AMESH_LOG(Warning, "DNS discovery failed; keeping the previous members")
          .With("name", options_.name)
          .With("error", addresses.status());
    } else if (!reported || *addresses != last) {
      A2AMESH_LOG(Info, "DNS discovery")
          .With("name", options_.name)
          .With("addresses", static_cast<int>(addresses->size()));
      last = *addresses;
      reported = true;
      update(last);
    }
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.interval)) {
      return;
    }
  }
}

}  // namespace a2amesh::discovery
