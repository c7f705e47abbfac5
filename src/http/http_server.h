#ifndef A2AMESH_HTTP_HTTP_SERVER_H_
#define A2AMESH_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh::http {

class TlsContextSource;

struct Request {
  std::string method;
  // As sent ("/metrics?x=1"), and split.
  std::string target;
  std::string path;
  std::string query;
  // Names lower-cased, in the order sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Over TLS, who a client certificate verified against the server's client
  // CA names: its first spiffe:// URI SAN, else its first URI SAN, else its
  // subject CN; "" without one.
  std::string client_certificate_subject;
  // The client's IP address, as the connection sees it.
  std::string client_address;

  // The first header named `name` (lower case), or nullptr.
  const std::string* Header(absl::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// One request being answered. The handler answers it exactly once, either with
// Respond() or with StartStream() followed by Write()s and End() (a chunked
// body, e.g. server-sent events). Every method may be called from any thread;
// calls after the exchange has ended, or after the client has gone, do nothing.
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Request& request() const = 0;
  virtual void Respond(Response response) = 0;
  // Sends `head`'s status and headers; its body, if any, is the first piece.
  virtual void StartStream(Response head) = 0;
  // Sends one piece of a streamed body. `written`, if set, runs once the piece
  // is on the socket (true) or can never be (false): a streaming producer
  // waits for it before making the next piece, so a slow client slows it down
  // instead of growing a queue.
  virtual void Write(std::string data, std::function<void(bool ok)> written) = 0;
  virtual void End() = 0;
  // After StartStream: writes `piece` (e.g. an SSE comment) whenever the
  // stream has sent nothing for `every`, until it ends; a write still waiting
  // for a slow client counts as sending.
  virtual void KeepAlive(std::string piece, absl::Duration every) = 0;
  // `gone` runs once if the connection closes before the response has ended
  // (the client left, a write timed out, or the server stopped), so that the
  // work behind the request can be cancelled.
  virtual void OnClientGone(std::function<void()> gone) = 0;
  // Names what the request is, for ServerOptions::on_response, in bounded
  // words the handler chooses (a binding and a method: "jsonrpc",
  // "SendMessage"), never text the client sent. Call it before answering.
  virtual void Name(absl::string_view binding, absl::string_view method) = 0;
  // Names the sampled trace (32 hex digits) the request belongs to, for
  // ServerOptions::on_response (a metric's exemplar). Call it before
  // answering.
  virtual void NameTrace(absl::string_view trace_id) = 0;
};

// Takes a request; must not block (answer later from any thread).
using AsyncHandler = std::function<void(std::shared_ptr<Exchange>)>;
// Answers a request at once, on the server's thread: it must not block.
using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  // Connections served at once. A new one past this takes the place of the
  // connection that has waited longest for (or been longest reading) a
  // request -- an idle keep-alive one, or a slow client's -- so that a flood
  // of idle or slowloris connections cannot lock real clients out; only when
  // every connection is busy with a request is the new one answered 503.
  size_t max_connections = 256;
  // Connections from one client address served at once (0: no cap). A new
  // one past it takes the place of that address's connection that has
  // waited longest for a request, or is answered 503: one address cannot
  // hold every slot, nor shed other clients' connections once at its cap.
  size_t max_connections_per_address = 0;
  // A connection waiting this long for a request (or its body) is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  // A request's header must be in within this of its first byte (a client
  // sending it a byte at a time is cut off).
  absl::Duration header_timeout = absl::Seconds(10);
  // A client that takes longer than this to take one write is closed.
  absl::Duration write_timeout = absl::Seconds(30);
  // Threads running the event loop.
  int threads = 1;
  // Formats the errors the server answers by itself (400, 413, 431, 503,
  // 505); `request` has what was read of the request (method and target, if
  // the request line was), no body. Default: the message as text/plain.
  std::function<Response(const Request& request, int status, const std::string& message)>
      error_response;
  // Serve HTTPS with the context it gives each new connection; nullptr: plain
  // HTTP. A connection that does not finish its handshake within
  // idle_timeout is closed.
  std::shared_ptr<TlsContextSource> tls;
  // Runs on the server's thread as each response's head goes out: what the
  // handler named the request (Exchange::Name; "none", "" if it did not;
  // "server", "" for an error the server answered by itself), its status,
  // the time since the request was read, and its trace (Exchange::NameTrace;
  // "" if none). Must not block.
  std::function<void(absl::string_view binding, absl::string_view method, int status,
                     absl::Duration elapsed, absl::string_view trace_id)>
      on_response;
};

class ServerCore;

// An HTTP/1.1 server on Boost.Beast/Asio, over TCP or TLS: event-driven, so
// one thread holds thousands of open streams. Keep-alive, pipelining (answers in order),
// chunked request bodies, HEAD, streamed (chunked) responses with
// back-pressure, and the errors a client needs before any handler runs: 400,
// 413 (body over max_body_bytes), 431 (headers over max_header_bytes), 503
// (over max_connections, or max_connections_per_address, with none to shed),
// 505. Stop is immediate.
// Thread-safe.
class Server {
 public:
  // Listens on `address` ("host:port"; port 0 picks one; host "" or 0.0.0.0:
  // every IPv4 address, "[::]": every address). UNAVAILABLE naming the address
  // if it cannot, INVALID_ARGUMENT if it is not host:port.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& address,
                                                       ServerOptions options, AsyncHandler handler);
  static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& address,
                                                       ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  // Connections closed to make room for new ones (see max_connections).
  uint64_t shed_connections() const;
  // Closes every connection (their exchanges see the client gone) and stops
  // listening. Idempotent.
  void Stop();

 private:
  explicit Server(std::shared_ptr<ServerCore> core);
  std::shared_ptr<ServerCore> core_;
};

// "Not Found" for 404, ...
absl::string_view ReasonPhrase(int status);

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_HTTP_SERVER_H_
