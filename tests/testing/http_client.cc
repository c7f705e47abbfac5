#include "testing/http_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace a2amesh::testing {

absl::StatusOr<std::unique_ptr<HttpConnection>> HttpConnection::Open(const std::string& address,
                                                                     const std::string& source) {
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), address.substr(colon + 1).c_str(), &hints, &found) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", address));
  }
  int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd >= 0 && !source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0) {
      freeaddrinfo(found);
      close(fd);
      return absl::UnavailableError(absl::StrCat("cannot connect from ", source));
    }
  }
  if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    freeaddrinfo(found);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", address, ": ", std::strerror(errno)));
  }
  freeaddrinfo(found);
  return std::unique_ptr<HttpConnection>(new HttpConnection(fd));
}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

bool HttpConnection::Send(const std::string& raw) {
  size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = send(fd_, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool HttpConnection::ReadUntil(const std::function<bool(const std::string&)>& done,
                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buffer[16 * 1024];
  while (!done(received_)) {
    if (absl::Now() >= deadline || fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n <= 0) {
      closed_ = true;
      return done(received_);
    }
    received_.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

absl::StatusOr<std::string> HttpExchange(const std::string& address, const std::string& raw,
                                         absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address);
  if (!connection.ok()) return connection.status();
  (*connection)->Send(raw);
  (*connection)->ReadUntil([&](const std::string&) { return (*connection)->closed(); }, timeout);
  return (*connection)->received();
}

absl::StatusOr<std::string> HttpsExchange(const std::string& address, const std::string& raw,
                                          const std::string& ca_pem,
                                          const std::string& client_cert_pem,
                                          const std::string& client_key_pem,
                                          absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address);
  if (!connection.ok()) return connection.status();
  auto openssl_error = [] {
    char text[256] = "unknown";
    if (unsigned long code = ERR_get_error(); code != 0) {
      ERR_error_string_n(code, text, sizeof(text));
    }
    ERR_clear_error();
    return std::string(text);
  };
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  BIO* ca_bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  while (X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca);
    X509_free(ca);
  }
  BIO_free(ca_bio);
  ERR_clear_error();
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!client_cert_pem.empty()) {
    BIO* cert_bio =
        BIO_new_mem_buf(client_cert_pem.data(), static_cast<int>(client_cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    BIO_free(cert_bio);
    BIO* key_bio = BIO_new_mem_buf(client_key_pem.data(), static_cast<int>(client_key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    BIO_free(key_bio);
    SSL_CTX_use_certificate(ctx.get(), cert);
    SSL_CTX_use_PrivateKey(ctx.get(), key);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  std::string host = address.substr(0, address.rfind(':'));
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) != 1) {
    ERR_clear_error();  // a name, not an address
    X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl.get()), host.c_str(), 0);
  }
  SSL_set_fd(ssl.get(), (*connection)->fd());
  // The socket blocks: the handshake and each read wait on it.
  timeval tv{static_cast<time_t>(absl::ToInt64Seconds(timeout)), 0};
  setsockopt((*connection)->fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (SSL_connect(ssl.get()) != 1) {
    return absl::UnavailableError(
        absl::StrCat("TLS handshake with ", address, ": ", openssl_error()));
  }
  if (SSL_write(ssl.get(), raw.data(), static_cast<int>(raw.size())) <= 0) {
    return absl::UnavailableError(absl::StrCat("TLS write: ", openssl_error()));
  }
  std::string received;
  char buffer[16 * 1024];
  while (true) {
    int n = SSL_read(ssl.get(), buffer, sizeof(buffer));
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  ERR_clear_error();
  return received;
}

absl::StatusOr<HttpResult> ParseHttpResponse(const std::string& raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end == std::string::npos) {
    return absl::DataLossError(absl::StrCat("not an HTTP response: '", raw, "'"));
  }
  HttpResult result;
  if (!absl::SimpleAtoi(raw.substr(9, 3), &result.status)) {
    return absl::DataLossError(absl::StrCat("no status in '", raw.substr(0, 40), "'"));
  }
  result.headers = raw.substr(0, end);
  result.body = raw.substr(end + 4);
  if (absl::StrContains(absl::AsciiStrToLower(result.headers), "transfer-encoding: chunked")) {
    std::string body;
    size_t at = 0;
    while (true) {
      const size_t line_end = result.body.find("\r\n", at);
      size_t size = 0;
      if (line_end == std::string::npos ||
          !absl::SimpleHexAtoi(result.body.substr(at, line_end - at), &size)) {
        return absl::DataLossError("a malformed chunked body");
      }
      if (size == 0) break;
      body += result.body.substr(line_end + 2, size);
      at = line_end + 2 + size + 2;
    }
    result.body = std::move(body);
  }
  return result;
}

absl::StatusOr<HttpResult> HttpGet(
    const std::string& address, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address, "\r\nConnection: close\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&request, name, ": ", value, "\r\n");
  absl::StatusOr<std::string> raw = HttpExchange(address, request + "\r\n");
  if (!raw.ok()) return raw.status();
  return ParseHttpResponse(*raw);
}

absl::StatusOr<std::unique_ptr<HttpConnection>> SubscribeOverRest(
    const std::string& address, const std::string& task_id, const std::string& last_event_id) {
  absl::StatusOr<std::unique_ptr<HttpConnection>> connection = HttpConnection::Open(address);
  if (!connection.ok()) return connection.status();
  std::string headers = "Host: x\r\nA2A-Version: 1.0\r\n";
  if (!last_event_id.empty()) absl::StrAppend(&headers, "Last-Event-ID: ", last_event_id, "\r\n");
  if (!(*connection)
           ->Send(absl::StrCat("GET /a2a/rest/tasks/", task_id, ":subscribe HTTP/1.1\r\n", headers,
                               "\r\n"))) {
    return absl::UnavailableError(absl::StrCat("cannot send to ", address));
  }
  return connection;
}

std::vector<SseEvent> SseEvents(const std::string& received) {
  std::vector<SseEvent> events;
  size_t at = 0;
  while ((at = received.find("data: ", at)) != std::string::npos) {
    SseEvent event;
    const size_t end = received.find("\n\n", at);
    event.data = received.substr(at + 6, end == std::string::npos ? end : end - at - 6);
    // "id: SEQ.EPOCH\n" right before the data line, in the same chunk.
    const size_t line = received.rfind("id: ", at);
    if (line != std::string::npos && received.find('\n', line) + 1 == at) {
      event.id = received.substr(line + 4, at - line - 5);
      (void)absl::SimpleAtoi(absl::string_view(event.id).substr(0, event.id.find('.')), &event.seq);
    }
    events.push_back(std::move(event));
    at = end == std::string::npos ? received.size() : end;
  }
  return events;
}

std::optional<double> ScrapeSample(const std::string& address, const std::string& series) {
  absl::StatusOr<HttpResult> scrape = HttpGet(address, "/metrics");
  if (!scrape.ok()) return std::nullopt;
  const std::string prefix = absl::StrCat("\n", series, " ");
  const size_t at = scrape->body.find(prefix);
  if (at == std::string::npos) return std::nullopt;
  const size_t start = at + prefix.size();
  double value = 0;
  if (!absl::SimpleAtod(scrape->body.substr(start, scrape->body.find('\n', start) - start),
                        &value)) {
    return std::nullopt;
  }
  return value;
}

absl::StatusOr<HttpResult> A2aHttp(const std::string& address, const std::string& method,
                                   const std::string& path, const std::string& body,
                                   const std::string& authorization) {
  std::string headers = "A2A-Version: 1.0\r\nContent-Type: application/json\r\n";
  if (!authorization.empty()) absl::StrAppend(&headers, "Authorization: ", authorization, "\r\n");
  absl::StatusOr<std::string> raw =
      HttpExchange(address, absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", address, "\r\n",
                                         headers, "Content-Length: ", body.size(),
                                         "\r\nConnection: close\r\n\r\n", body));
  if (!raw.ok()) return raw.status();
  return ParseHttpResponse(*raw);
}

}  // namespace a2amesh::testing
