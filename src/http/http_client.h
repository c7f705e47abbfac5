#ifndef A2AMESH_HTTP_HTTP_CLIENT_H_
#define A2AMESH_HTTP_HTTP_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh::http {

// An http:// or https:// URL, split.
struct Url {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  std::string port;
  std::string target;  // path and query, "/" at least
};

// INVALID_ARGUMENT naming what is wrong unless `url` is an absolute http(s)
// URL with a host and no user info.
absl::StatusOr<Url> ParseUrl(absl::string_view url);

// Whether `text` is an IPv4 or IPv6 address (not a name to resolve).
bool IsIpAddress(absl::string_view text);

// Whether an address (text form) is one a node may send to without being
// told it may: not loopback, private (RFC 1918, unique-local fc00::/7),
// link-local, carrier-grade NAT (100.64/10), unspecified or multicast. A
// webhook URL is chosen by a client; these are where SSRF would reach.
bool IsPublicAddress(absl::string_view address);

struct ClientOptions {
  // For the whole exchange: resolve, connect, TLS, write, read.
  absl::Duration timeout = absl::Seconds(10);
  // Send to loopback, private and link-local addresses too.
  bool allow_private = false;
  // Largest response read (the body is discarded).
  size_t max_response_bytes = 64 * 1024;
};

// A small asynchronous HTTP/1.1 client for webhooks, on Boost.Beast/Asio with
// one event-loop thread: POSTs over plain TCP or TLS (certificates checked
// against the system's CAs and the host name), one connection per request,
// each address checked against IsPublicAddress after resolution (so a DNS
// name cannot lead to a private address). Thread-safe.
class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();  // stops: pending callbacks run with CANCELLED
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POSTs `body`; `done` gets the response status, or an error: UNAVAILABLE
  // (could not connect or was cut off), DEADLINE_EXCEEDED, PERMISSION_DENIED
  // (the address is not allowed), INVALID_ARGUMENT (a bad URL). Runs on the
  // client's thread; must not block.
  void Post(const std::string& url, std::vector<std::pair<std::string, std::string>> headers,
            std::string body, std::function<void(absl::StatusOr<int>)> done);

  // Runs `fn` on the client's thread after `delay` (dropped if the client stops first).
  void After(absl::Duration delay, std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_HTTP_CLIENT_H_
