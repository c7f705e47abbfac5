#ifndef A2AMESH_A2A_REST_ROUTES_H_
#define A2AMESH_A2A_REST_ROUTES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

// The HTTP+JSON (REST) binding's routes: which A2A method a verb and path
// name, and how the path and the query fill the request message.
namespace a2amesh::a2a {

// A route matched against a path (without its tenant prefix).
struct RestRoute {
  const char* method = nullptr;  // the A2A method, e.g. "GetTask"
  std::vector<const char*> verbs;
  bool body = false;      // the request message comes in the body (else the query)
  std::string id;         // {id} or {task_id}
  std::string config_id;  // {config_id}
  // The request message's field that `id` goes in.
  const char* id_field = "id";
};

// The route for `verb` on the path `segments` (decoded). If none matches:
// nullopt, with `*wrong_verb` set when the path is a route for other verbs
// (listed in `*allowed`: a 405) rather than no route at all (a 404).
std::optional<RestRoute> MatchRestRoute(const std::vector<std::string>& segments,
                                        const std::string& verb, bool* wrong_verb,
                                        std::vector<const char*>* allowed);

// The path pattern of A2A method `method`'s route ("/tasks/{id}:cancel"; its
// tenant's prefix "/{tenant}" not included): a request's http.route in
// traces. "" for a name that is no A2A method.
const char* RestPattern(absl::string_view method);

// Sets request fields from query parameters (camelCase or snake_case names;
// repeated values repeated or comma-separated; enums by name; timestamps in
// RFC 3339). Parameters that name no field (e.g. A2A-Version) are ignored;
// INVALID_ARGUMENT names a parameter whose value does not fit its field.
absl::Status ApplyQuery(absl::string_view query, google::protobuf::Message* message);

// Sets the string field `name` of `message`, if it has one.
void SetStringField(google::protobuf::Message* message, const std::string& name,
                    const std::string& value);

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_REST_ROUTES_H_
