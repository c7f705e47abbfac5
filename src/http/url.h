#ifndef A2AMESH_HTTP_URL_H_
#define A2AMESH_HTTP_URL_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Decoding the parts of request URLs.
namespace a2amesh::http {

// `in` with %XX escapes decoded and '+' as a space; nullopt if an escape is
// malformed.
std::optional<std::string> PercentDecode(absl::string_view in);

// The parameters of a query string ("a=1&b=x%20y"), decoded, in order;
// INVALID_ARGUMENT naming the parameter that is not percent-encoded correctly.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query);

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_URL_H_
