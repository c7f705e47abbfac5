#ifndef A2AMESH_HTTP_HTTP_SERVER_H_
#define A2AMESH_HTTP_HTTP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh::http {

struct Request {
  std::string method;
  // As sent ("/metrics?x=1"), and split.
  std::string target;
  std::string path;
  std::string query;
  // Names lower-cased, in the order sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header named `name` (lower case), or nullptr.
  const std::string* Header(absl::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Answers one request. Runs on the server's thread: it must not block.
using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  size_t max_connections = 256;
  // A connection with nothing to do for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
};

// A small HTTP/1.1 server on one thread and poll(2): keep-alive, pipelining,
// Content-Length bodies, HEAD, and the errors a client needs (400, 405 from
// handlers, 413, 431, 501 for chunked request bodies, 505). Stop is immediate.
// Made for /metrics; its handler is synchronous. Thread-safe.
class Server {
 public:
  // Listens on `address` ("host:port"; port 0 picks one; host "" or 0.0.0.0:
  // every IPv4 address, "[::]": every address). UNAVAILABLE naming the
  // address if it cannot.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& address,
                                                       ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // Closes every connection and stops listening. Idempotent.
  void Stop();

 private:
  struct Connection;

  Server(ServerOptions options, Handler handler, int listen_fd, int wake_fd, int port);
  void Loop();
  void Accept();
  // Reads what is there; false if the connection is done.
  bool OnReadable(Connection& connection);
  bool OnWritable(Connection& connection);
  // Answers every complete request in the connection's buffer.
  void Process(Connection& connection);

  const ServerOptions options_;
  const Handler handler_;
  const int listen_fd_;
  const int wake_fd_;
  const int port_;
  std::vector<std::unique_ptr<Connection>> connections_;  // the loop thread only
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// "Not Found" for 404, ...
absl::string_view ReasonPhrase(int status);

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_HTTP_SERVER_H_
