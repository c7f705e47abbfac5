#ifndef A2AMESH_TESTS_TESTING_HTTP_CLIENT_H_
#define A2AMESH_TESTS_TESTING_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace a2amesh::testing {

struct HttpResult {
  int status = 0;
  // The header block, lines as sent.
  std::string headers;
  std::string body;
};

// A raw client connection, for tests that watch a response arrive piece by
// piece or that hang up in the middle.
class HttpConnection {
 public:
  // `source`: the local IPv4 address to connect from ("" for any), e.g.
  // 127.0.0.2 to be another client of a loopback server.
  static absl::StatusOr<std::unique_ptr<HttpConnection>> Open(const std::string& address,
                                                              const std::string& source = "");
  ~HttpConnection();

  bool Send(const std::string& raw);
  // Reads until `done(everything received so far)` holds; false if the
  // connection closed or `timeout` passed first.
  bool ReadUntil(const std::function<bool(const std::string&)>& done,
                 absl::Duration timeout = absl::Seconds(10));
  const std::string& received() const { return received_; }
  // Whether the server closed the connection (seen by ReadUntil).
  bool closed() const { return closed_; }
  void Close();
  int fd() const { return fd_; }

 private:
  explicit HttpConnection(int fd) : fd_(fd) {}
  int fd_;
  bool closed_ = false;
  std::string received_;
};

// Sends `raw` (a whole HTTP request, or several) to host:port and returns all
// the server sends until it closes the connection or `timeout` passes.
absl::StatusOr<std::string> HttpExchange(const std::string& address, const std::string& raw,
                                         absl::Duration timeout = absl::Seconds(10));

// GET `path` with Connection: close (and `headers`), parsed.
absl::StatusOr<HttpResult> HttpGet(
    const std::string& address, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// Opens a connection to host:port and sends GET
// /a2a/rest/tasks/{task_id}:subscribe (A2A-Version 1.0), with `last_event_id`
// as Last-Event-ID unless it is empty; the events are read off the connection.
absl::StatusOr<std::unique_ptr<HttpConnection>> SubscribeOverRest(
    const std::string& address, const std::string& task_id, const std::string& last_event_id = "");

// One server-sent event as a test reads it off the wire: its `id:` ("" without
// one), the sequence number the id starts with (a node's ids are "SEQ.EPOCH";
// -1 without one), and its `data:`.
struct SseEvent {
  std::string id;
  int64_t seq = -1;
  std::string data;
};
// The events in `received` (a raw HTTP response with a chunked SSE body, as
// far as it has come), in order. Comments (keep-alives) are not events.
std::vector<SseEvent> SseEvents(const std::string& received);

// The value of sample `series` (its name and labels as the node writes them,
// e.g. a2amesh_skill_running{skill="slow"}) in a scrape of host:port's
// /metrics; nullopt if the scrape fails or holds no such sample.
std::optional<double> ScrapeSample(const std::string& address, const std::string& series);

// HttpExchange over TLS: the server's certificate must chain to `ca_pem` and
// name `address`'s host; `client_cert_pem`/`client_key_pem`, if set, are
// presented. UNAVAILABLE (with OpenSSL's reason) if the handshake fails.
absl::StatusOr<std::string> HttpsExchange(const std::string& address, const std::string& raw,
                                          const std::string& ca_pem,
                                          const std::string& client_cert_pem = "",
                                          const std::string& client_key_pem = "",
                                          absl::Duration timeout = absl::Seconds(10));

// An A2A call over HTTP (A2A-Version 1.0, a JSON body) with Connection:
// close, and `authorization` as the Authorization header unless empty;
// parsed.
absl::StatusOr<HttpResult> A2aHttp(const std::string& address, const std::string& method,
                                   const std::string& path, const std::string& body,
                                   const std::string& authorization = "");

// Splits one HTTP response, undoing a chunked transfer encoding.
absl::StatusOr<HttpResult> ParseHttpResponse(const std::string& raw);

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_HTTP_CLIENT_H_
