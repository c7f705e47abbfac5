#ifndef A2AMESH_HTTP_URL_H_
#define A2AMESH_HTTP_URL_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Encoding and decoding the parts of URLs.
namespace a2amesh::http {

// `in` with %XX escapes decoded and '+' as a space; nullopt if an escape is
// malformed.
std::optional<std::string> PercentDecode(absl::string_view in);

// `in` with every byte but RFC 3986's unreserved ones (A-Z a-z 0-9 - . _ ~)
// percent-encoded: safe as one path segment or query value.
std::string PercentEncode(absl::string_view in);

// The parameters of a query string ("a=1&b=x%20y"), decoded, in order;
// INVALID_ARGUMENT naming the parameter that is not percent-encoded correctly.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query);

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_URL_H_
