#include "http/http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/log.h"

namespace a2amesh::http {
namespace {

constexpr char kHeaderEnd[] = "\r\n\r\n";
constexpr size_t kHeaderEndSize = 4;

bool SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// Binds and listens on host:port; the bound port in `port`.
absl::StatusOr<int> Listen(const std::string& address, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  const std::string service = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = host.empty() ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int error = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", address, ": ", gai_strerror(error)));
  }
  std::string why = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0 || !SetNonBlocking(fd)) {
      why = std::strerror(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    *port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    freeaddrinfo(found);
    return fd;
  }
  freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", why));
}

std::string Serialize(const Response& response, bool head, bool close) {
  std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status),
                                 "\r\nContent-Type: ", response.content_type,
                                 "\r\nContent-Length: ", response.body.size(), "\r\n");
  for (const auto& [name, value] : response.headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head) out += response.body;
  return out;
}

Response Error(int status, absl::string_view message) {
  Response response;
  response.status = status;
  response.body = absl::StrCat(message, "\n");
  return response;
}

}  // namespace

struct Server::Connection {
  int fd = -1;
  std::string in;
  std::string out;
  absl::Time last_active;
  // Close once `out` is written.
  bool closing = false;
};

const std::string* Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& address,
                                                      ServerOptions options, Handler handler) {
  int port = 0;
  absl::StatusOr<int> listen_fd = Listen(address, &port);
  if (!listen_fd.ok()) return listen_fd.status();
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    close(*listen_fd);
    return absl::UnavailableError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<Server>(
      new Server(std::move(options), std::move(handler), *listen_fd, wake_fd, port));
}

Server::Server(ServerOptions options, Handler handler, int listen_fd, int wake_fd, int port)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port) {
  thread_ = std::thread([this] { Loop(); });
}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);  // from now on, connecting is refused
  close(wake_fd_);
}

void Server::Loop() {
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = connections_.size() < options_.max_connections;
    fds.push_back({listen_fd_, static_cast<short>(accepting ? POLLIN : 0), 0});
    for (const auto& c : connections_) {
      fds.push_back({c->fd, static_cast<short>(c->out.empty() ? POLLIN : POLLOUT), 0});
    }
    // Wakes at least once a second to close idle connections.
    int ready = poll(fds.data(), fds.size(), 1000);
    if (ready < 0 && errno != EINTR) {
      A2AMESH_LOG(Error, "http server poll failed").With("error", std::strerror(errno));
      break;
    }
    if (stopping_.load()) break;
    const absl::Time now = absl::Now();
    std::vector<bool> keep(connections_.size(), true);
    for (size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = *connections_[i];
      const short events = fds[i + 2].revents;
      if (events & (POLLERR | POLLNVAL)) {
        keep[i] = false;
      } else if (events & POLLOUT) {
        keep[i] = OnWritable(c);
      } else if (events & (POLLIN | POLLHUP)) {
        keep[i] = OnReadable(c);
      } else if (now - c.last_active > options_.idle_timeout) {
        keep[i] = false;
      }
    }
    std::vector<std::unique_ptr<Connection>> kept;
    for (size_t i = 0; i < connections_.size(); ++i) {
      if (keep[i]) {
        kept.push_back(std::move(connections_[i]));
      } else {
        close(connections_[i]->fd);
      }
    }
    connections_ = std::move(kept);
    if (fds[1].revents & POLLIN) Accept();
  }
  for (const auto& c : connections_) close(c->fd);
  connections_.clear();
}

void Server::Accept() {
  while (connections_.size() < options_.max_connections) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: none left; errors: try again next round
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->last_active = absl::Now();
    connections_.push_back(std::move(c));
  }
}

bool Server::OnReadable(Connection& c) {
  char buffer[16 * 1024];
  while (true) {
    ssize_t n = read(c.fd, buffer, sizeof(buffer));
    if (n > 0) {
      c.in.append(buffer, static_cast<size_t>(n));
      c.last_active = absl::Now();
      if (c.in.size() > options_.max_header_bytes + options_.max_body_bytes) break;
      continue;
    }
    if (n == 0) {  // the client closed its side: answer what it sent, then close
      c.closing = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;
  }
  Process(c);
  if (!c.out.empty()) return OnWritable(c);
  return !c.closing;
}

bool Server::OnWritable(Connection& c) {
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      c.last_active = absl::Now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  if (c.closing) return false;
  Process(c);  // requests that arrived while the answer was written
  return true;
}

void Server::Process(Connection& c) {
  while (!c.closing || !c.in.empty()) {
    const size_t end = c.in.find(kHeaderEnd);
    if (end == std::string::npos) {
      if (c.in.size() > options_.max_header_bytes) {
        c.out += Serialize(Error(431, "request headers too large"), false, true);
        c.closing = true;
      } else if (c.closing && !c.in.empty()) {
        c.in.clear();  // a partial request from a client that left
      }
      return;
    }
    if (end > options_.max_header_bytes) {
      c.out += Serialize(Error(431, "request headers too large"), false, true);
      c.closing = true;
      return;
    }
    Request request;
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::string_view(c.in).substr(0, end), "\r\n");
    std::vector<absl::string_view> start = absl::StrSplit(lines[0], ' ');
    if (start.size() != 3 || start[0].empty() || start[1].empty() || start[1][0] != '/') {
      c.out += Serialize(Error(400, "malformed request line"), false, true);
      c.closing = true;
      return;
    }
    if (start[2] != "HTTP/1.1" && start[2] != "HTTP/1.0") {
      c.out += Serialize(Error(505, "HTTP/1.1 only"), false, true);
      c.closing = true;
      return;
    }
    request.method = std::string(start[0]);
    request.target = std::string(start[1]);
    const size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    request.query = question == std::string::npos ? "" : request.target.substr(question + 1);
    bool bad = false;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == absl::string_view::npos || colon == 0) {
        bad = true;
        break;
      }
      request.headers.emplace_back(
          absl::AsciiStrToLower(lines[i].substr(0, colon)),
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    if (bad) {
      c.out += Serialize(Error(400, "malformed header line"), false, true);
      c.closing = true;
      return;
    }
    if (request.Header("transfer-encoding") != nullptr) {
      c.out += Serialize(Error(501,
                               "chunked request bodies are not supported; send "
                               "Content-Length"),
                         false, true);
      c.closing = true;
      return;
    }
    size_t length = 0;
    if (const std::string* value = request.Header("content-length")) {
      if (!absl::SimpleAtoi(*value, &length)) {
        c.out += Serialize(Error(400, "bad Content-Length"), false, true);
        c.closing = true;
        return;
      }
      if (length > options_.max_body_bytes) {
        c.out += Serialize(
            Error(413, absl::StrCat("request body over ", options_.max_body_bytes, " bytes")),
            false, true);
        c.closing = true;
        return;
      }
    }
    const size_t body_start = end + kHeaderEndSize;
    if (c.in.size() < body_start + length) {
      if (c.closing) c.in.clear();  // the client left mid-body
      return;                       // wait for the rest
    }
    request.body = c.in.substr(body_start, length);
    c.in.erase(0, body_start + length);

    const std::string* connection = request.Header("connection");
    bool close = start[2] == "HTTP/1.0"
                     ? !(connection != nullptr && absl::EqualsIgnoreCase(*connection, "keep-alive"))
                     : (connection != nullptr && absl::EqualsIgnoreCase(*connection, "close"));
    close = close || c.closing;
    c.out += Serialize(handler_(request), request.method == "HEAD", close);
    if (close) {
      c.closing = true;
      c.in.clear();
      return;
    }
  }
}

}  // namespace a2amesh::http
