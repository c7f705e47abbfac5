#ifndef A2AMESH_TESTS_TESTING_HTTP_CLIENT_H_
#define A2AMESH_TESTS_TESTING_HTTP_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace a2amesh::testing {

struct HttpResult {
  int status = 0;
  // The header block, lines as sent.
  std::string headers;
  std::string body;
};

// Sends `raw` (a whole HTTP request, or several) to host:port and returns all
// the server sends until it closes the connection or `timeout` passes.
absl::StatusOr<std::string> HttpExchange(const std::string& address, const std::string& raw,
                                         absl::Duration timeout = absl::Seconds(10));

// GET `path` with Connection: close, parsed.
absl::StatusOr<HttpResult> HttpGet(const std::string& address, const std::string& path);

// Splits one HTTP response, undoing a chunked transfer encoding.
absl::StatusOr<HttpResult> ParseHttpResponse(const std::string& raw);

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_HTTP_CLIENT_H_
