#ifndef A2AMESH_HTTP_CURL_LOOP_H_
#define A2AMESH_HTTP_CURL_LOOP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh::http {

// Outbound HTTP requests, many at once, on one thread: libcurl's multi
// interface (keep-alive connections reused per host, HTTPS_PROXY/NO_PROXY
// honoured, certificates checked). A response's body is handed over as it
// arrives, so a long Server-Sent Events stream costs no thread of its own.
//
// Callbacks run on the loop's thread, one at a time, never under the loop's
// lock; they must not block. Thread-safe.
class CurlLoop {
 public:
  using Id = uint64_t;

  struct Response {
    long status = 0;  // the HTTP status
    std::string content_type;
  };

  struct Request {
    std::string url;
    // "https", or "http,https".
    std::string protocols = "http,https";
    // "Name: value" lines; a body is POSTed.
    std::vector<std::string> headers;
    std::string body;
    // PEM roots to check the server's certificate against (empty: the system's).
    std::string ca_file;
    // A client certificate and its key (PEM files), for mutual TLS.
    std::string cert_file;
    std::string key_file;
    // The whole exchange (none if zero), and connecting.
    absl::Duration timeout = absl::ZeroDuration();
    absl::Duration connect_timeout = absl::Seconds(10);
    // Each piece of the body, in order, once the status line and headers are in.
    absl::AnyInvocable<void(const Response& response, absl::string_view data)> on_data;
    // Once, last: OK once the whole body came (any HTTP status), else
    // UNAVAILABLE naming the URL and why, or CANCELLED (Cancel, the loop stops).
    absl::AnyInvocable<void(absl::Status status, const Response& response)> on_done;
  };

  // UNIMPLEMENTED in a build without libcurl (a fully static one).
  static absl::StatusOr<std::unique_ptr<CurlLoop>> Start();
  // Whether Start can work (this build has libcurl).
  static bool Available();
  // Ends every request (on_done: CANCELLED) and the thread.
  ~CurlLoop();
  CurlLoop(const CurlLoop&) = delete;
  CurlLoop& operator=(const CurlLoop&) = delete;

  // Starts `request`. Once stopping, its on_done runs at once, CANCELLED.
  Id Add(Request request);
  // Ends request `id` (on_done: CANCELLED) unless it is over already.
  void Cancel(Id id);

  class Impl;

 private:
  explicit CurlLoop(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_CURL_LOOP_H_
