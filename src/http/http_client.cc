#include "http/http_client.h"

#include <openssl/ssl.h>

#include <atomic>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "core/version.h"

namespace a2amesh::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

absl::StatusOr<Url> ParseUrl(absl::string_view url) {
  Url parsed;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    parsed.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", url, "' is not an http:// or https:// URL"));
  }
  const size_t end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, end);
  absl::string_view target = end == absl::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", url, "' has user info; send credentials as authentication instead"));
  }
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", url, "' has an unclosed IPv6 address"));
    }
    parsed.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return absl::InvalidArgumentError(absl::StrCat("'", url, "' has a malformed host"));
    }
    port = after;
  } else {
    const size_t colon = authority.rfind(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = authority.substr(colon + 1);
  }
  if (parsed.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", url, "' has no host"));
  }
  int port_number = 0;
  if (!port.empty() &&
      (!absl::SimpleAtoi(port, &port_number) || port_number <= 0 || port_number > 65535)) {
    return absl::InvalidArgumentError(absl::StrCat("'", url, "' has a bad port '", port, "'"));
  }
  parsed.port = port.empty() ? (parsed.tls ? "443" : "80") : std::string(port);
  parsed.target =
      target.empty() || target.front() != '/' ? absl::StrCat("/", target) : std::string(target);
  return parsed;
}

bool IsIpAddress(absl::string_view text) {
  boost::system::error_code ec;
  asio::ip::make_address(std::string(text), ec);
  return !ec;
}

bool IsPublicAddress(absl::string_view text) {
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(std::string(text), ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  if (address.is_unspecified() || address.is_loopback() || address.is_multicast()) return false;
  if (address.is_v4()) {
    const uint32_t ip = address.to_v4().to_uint();
    auto in = [ip](uint32_t net, int bits) { return (ip >> (32 - bits)) == (net >> (32 - bits)); };
    return !(in(0x00000000, 8) ||   // 0.0.0.0/8
             in(0x0A000000, 8) ||   // 10/8
             in(0x64400000, 10) ||  // 100.64/10 (carrier-grade NAT)
             in(0xA9FE0000, 16) ||  // 169.254/16 (link-local, cloud metadata)
             in(0xAC100000, 12) ||  // 172.16/12
             in(0xC0A80000, 16) ||  // 192.168/16
             in(0xFFFFFFFF, 32));   // broadcast
  }
  const asio::ip::address_v6 v6 = address.to_v6();
  const auto bytes = v6.to_bytes();
  const bool unique_local = (bytes[0] & 0xfe) == 0xfc;  // fc00::/7
  return !(v6.is_link_local() || v6.is_site_local() || unique_local);
}

struct Client::Impl {
  explicit Impl(ClientOptions o) : options(o) {
    work.emplace(ioc.get_executor());
    thread = std::thread([this] { ioc.run(); });
  }

  // Made at the first https:// request, on the client's thread: reading the
  // system's CA certificates takes milliseconds a node should not spend at
  // start-up when nothing needs TLS.
  asio::ssl::context& Tls() {
    if (!tls.has_value()) {
      tls.emplace(asio::ssl::context::tls_client);
      tls->set_default_verify_paths();
      tls->set_verify_mode(asio::ssl::verify_peer);
    }
    return *tls;
  }
  ~Impl() {
    work.reset();
    ioc.stop();
    thread.join();
  }

  const ClientOptions options;
  asio::io_context ioc;
  std::optional<asio::ssl::context> tls;  // the client's thread only
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
};

namespace {

// One POST, start to finish, on the client's thread. `done` runs exactly
// once: with the outcome, or CANCELLED if the client stops first.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(asio::io_context& ioc, asio::ssl::context* tls, const ClientOptions& options, Url url,
           std::string request, std::function<void(absl::StatusOr<int>)> done)
      : options_(options),
        url_(std::move(url)),
        request_(std::move(request)),
        done_(std::move(done)),
        resolver_(ioc),
        socket_(ioc),
        deadline_(ioc) {
    if (tls != nullptr) tls_.emplace(ioc, *tls);
  }

  ~Exchange() { Finish(absl::CancelledError("the node is stopping")); }

  void Start() {
    deadline_.expires_after(absl::ToChronoNanoseconds(options_.timeout));
    deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) {
        self->timed_out_ = true;
        self->resolver_.cancel();
        boost::system::error_code ignored;
        self->Lowest().close(ignored);
      }
    });
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type r) {
          self->OnResolved(ec, std::move(r));
        });
  }

 private:
  tcp::socket& Lowest() { return tls_ ? tls_->next_layer() : socket_; }

  absl::Status Failure(boost::system::error_code ec, absl::string_view what) {
    if (timed_out_) {
      return absl::DeadlineExceededError(absl::StrCat(what, " ", url_.host, ":", url_.port,
                                                      ": no answer within ",
                                                      absl::FormatDuration(options_.timeout)));
    }
    return absl::UnavailableError(
        absl::StrCat(what, " ", url_.host, ":", url_.port, ": ", ec.message()));
  }

  void OnResolved(boost::system::error_code ec, tcp::resolver::results_type results) {
    if (ec) return Finish(Failure(ec, "cannot resolve"));
    std::vector<tcp::endpoint> allowed;
    std::vector<std::string> refused;
    for (const auto& entry : results) {
      const std::string address = entry.endpoint().address().to_string();
      if (options_.allow_private || IsPublicAddress(address)) {
        allowed.push_back(entry.endpoint());
      } else {
        refused.push_back(address);
      }
    }
    if (allowed.empty()) {
      return Finish(absl::PermissionDeniedError(absl::StrCat(
          url_.host, " resolves to ", absl::StrJoin(refused, ", "),
          ": loopback, private and link-local addresses are not allowed as push targets")));
    }
    asio::async_connect(Lowest(), allowed,
                        [self = shared_from_this()](boost::system::error_code ec, tcp::endpoint) {
                          self->OnConnected(ec);
                        });
  }

  void OnConnected(boost::system::error_code ec) {
    if (ec) return Finish(Failure(ec, "cannot connect to"));
    if (!tls_) return Write(socket_);
    SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str());
    tls_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = shared_from_this()](boost::system::error_code ec) {
                            if (ec) return self->Finish(self->Failure(ec, "TLS with"));
                            self->Write(*self->tls_);
                          });
  }

  template <typename Stream>
  void Write(Stream& stream) {
    asio::async_write(stream, asio::buffer(request_),
                      [self = shared_from_this(), &stream](boost::system::error_code ec, size_t) {
                        if (ec) return self->Finish(self->Failure(ec, "cannot send to"));
                        self->Read(stream);
                      });
  }

  template <typename Stream>
  void Read(Stream& stream) {
    parser_.body_limit(options_.max_response_bytes);
    bhttp::async_read_header(stream, buffer_, parser_,
                             [self = shared_from_this()](boost::system::error_code ec, size_t) {
                               if (ec) return self->Finish(self->Failure(ec, "no answer from"));
                               self->Finish(self->parser_.get().result_int());
                             });
  }

  void Finish(absl::StatusOr<int> result) {
    if (!done_) return;
    boost::system::error_code ignored;
    deadline_.cancel();
    Lowest().close(ignored);
    std::exchange(done_, nullptr)(std::move(result));
  }

  const ClientOptions& options_;
  const Url url_;
  const std::string request_;
  std::function<void(absl::StatusOr<int>)> done_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  asio::steady_timer deadline_;
  boost::beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  bool timed_out_ = false;
};

}  // namespace

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(options)) {}

Client::~Client() = default;

void Client::Post(const std::string& url, std::vector<std::pair<std::string, std::string>> headers,
                  std::string body, std::function<void(absl::StatusOr<int>)> done) {
  absl::StatusOr<Url> parsed = ParseUrl(url);
  if (!parsed.ok()) {
    asio::post(impl_->ioc, [done = std::move(done), status = parsed.status()] { done(status); });
    return;
  }
  const bool default_port = parsed->port == (parsed->tls ? "443" : "80");
  const std::string host =
      absl::StrContains(parsed->host, ':') ? absl::StrCat("[", parsed->host, "]") : parsed->host;
  std::string request =
      absl::StrCat("POST ", parsed->target, " HTTP/1.1\r\nHost: ", host,
                   default_port ? "" : absl::StrCat(":", parsed->port), "\r\nUser-Agent: a2a-mesh/",
                   Version(), "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n");
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&request, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&request, "\r\n", body);
  // `done` runs even if the client stops before this does.
  struct Pending {
    std::function<void(absl::StatusOr<int>)> done;
    ~Pending() {
      if (done) done(absl::CancelledError("the node is stopping"));
    }
  };
  auto pending = std::make_shared<Pending>();
  pending->done = std::move(done);
  asio::post(impl_->ioc, [impl = impl_.get(), url = *std::move(parsed),
                          request = std::move(request), pending]() mutable {
    asio::ssl::context* tls = url.tls ? &impl->Tls() : nullptr;
    auto exchange =
        std::make_shared<Exchange>(impl->ioc, tls, impl->options, std::move(url),
                                   std::move(request), std::exchange(pending->done, nullptr));
    exchange->Start();
  });
}

void Client::After(absl::Duration delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->ioc);
  timer->expires_after(absl::ToChronoNanoseconds(delay));
  timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
    if (!ec) fn();
  });
}

}  // namespace a2amesh::http
