// An HTTP+JSON request line as a client sends it: "VERB /path?query". The
// path is split and percent-decoded, routed, and the query applied to the
// route's request message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "a2a/proto_json.h"
#include "a2a/rest_routes.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "http/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  const size_t space = line.find(' ');
  if (space == std::string::npos) return 0;
  const std::string verb = line.substr(0, space);
  const std::string target = line.substr(space + 1);
  const size_t question = target.find('?');
  const std::string path = target.substr(0, question);
  const std::string query = question == std::string::npos ? "" : target.substr(question + 1);
  std::vector<std::string> segments;
  for (absl::string_view raw : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    std::optional<std::string> segment = a2amesh::http::PercentDecode(raw);
    if (!segment.has_value()) return 0;
    segments.push_back(*segment);
  }
  bool wrong_verb = false;
  std::vector<const char*> allowed;
  std::optional<a2amesh::a2a::RestRoute> route =
      a2amesh::a2a::MatchRestRoute(segments, verb, &wrong_verb, &allowed);
  if (route.has_value() == wrong_verb && route.has_value()) std::abort();
  if (wrong_verb && allowed.empty()) std::abort();  // a 405 lists what is allowed
  (void)a2amesh::http::ParseQuery(query);
  if (route.has_value()) {
    const google::protobuf::Descriptor* type =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            std::string("lf.a2a.v1.") + route->method + "Request");
    if (type != nullptr) {
      std::unique_ptr<google::protobuf::Message> message = a2amesh::a2a::NewMessage(type);
      (void)a2amesh::a2a::ApplyQuery(query, message.get());
    }
  }
  return 0;
}
