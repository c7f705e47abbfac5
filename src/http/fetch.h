#ifndef A2AMESH_HTTP_FETCH_H_
#define A2AMESH_HTTP_FETCH_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh::http {

struct FetchOptions {
  std::string url;
  // "https", or "http,https".
  std::string protocols = "https";
  // PEM roots to check the server's certificate against (empty: the system's).
  std::string ca_file;
  // A client certificate and its key (PEM files), for mutual TLS.
  std::string cert_file;
  std::string key_file;
  // Sent as "Authorization: Bearer ..." when set.
  std::string bearer_token;
  // Sent as If-None-Match when set (an ETag of an earlier answer): the
  // server may answer 304 Not Modified, with no body.
  std::string if_none_match;
  // When set, the request is a POST of `body` with this Content-Type.
  std::string post_content_type;
  std::string body;
  // More request headers ("Name: value" each). Accept is application/json
  // unless one of them sets it.
  std::vector<std::string> headers;
  absl::Duration timeout = absl::Seconds(10);
  size_t max_bytes = 1024 * 1024;
};

struct FetchResult {
  long status = 0;  // the HTTP status
  std::string body;
  // Its ETag and Cache-Control headers (empty if absent).
  std::string etag;
  std::string cache_control;
};

// How long an answer with this Cache-Control header stays fresh (RFC 9111
// §5.2.2): zero for no-cache or no-store, max-age's seconds, nullopt when the
// header says neither (or max-age is not a number).
std::optional<absl::Duration> FreshFor(absl::string_view cache_control);

// Whether this build can fetch (libcurl; a fully static build goes without).
bool CanFetch();

// GETs (or POSTs) `options.url` with libcurl: certificates checked, HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY honoured as enterprise egress needs, redirects not
// followed. Blocks (call it from a thread that may). UNAVAILABLE naming the
// URL and the reason when no HTTP answer came (or the body passed max_bytes);
// UNIMPLEMENTED without libcurl. Any HTTP status is a result.
absl::StatusOr<FetchResult> Fetch(const FetchOptions& options);

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_FETCH_H_
