#include "http/fetch.h"

#if A2AMESH_HAVE_CURL
#include <curl/curl.h>
#endif

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace a2amesh::http {
namespace {

#if A2AMESH_HAVE_CURL
struct Response {
  FetchResult* result;
  size_t max_bytes;
  bool too_big = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* out) {
  auto* response = static_cast<Response*>(out);
  if (response->result->body.size() + size * count > response->max_bytes) {
    response->too_big = true;
    return 0;
  }
  response->result->body.append(data, size * count);
  return size * count;
}

// The last `name` header of the answer (empty if none).
std::string Header(CURL* curl, const char* name) {
  curl_header* header = nullptr;
  if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK) return "";
  return std::string(absl::StripAsciiWhitespace(header->value));
}
#endif

}  // namespace

std::optional<absl::Duration> FreshFor(absl::string_view cache_control) {
  std::optional<absl::Duration> fresh;
  for (absl::string_view directive : absl::StrSplit(cache_control, ',')) {
    directive = absl::StripAsciiWhitespace(directive);
    if (absl::EqualsIgnoreCase(directive, "no-cache") ||
        absl::EqualsIgnoreCase(directive, "no-store")) {
      return absl::ZeroDuration();
    }
    if (absl::StartsWithIgnoreCase(directive, "max-age=")) {
      absl::string_view value = directive.substr(8);
      absl::ConsumePrefix(&value, "\"");
      absl::ConsumeSuffix(&value, "\"");
      int64_t seconds;
      if (absl::SimpleAtoi(value, &seconds) && seconds >= 0) fresh = absl::Seconds(seconds);
    }
  }
  return fresh;
}

bool CanFetch() {
#if A2AMESH_HAVE_CURL
  return true;
#else
  return false;
#endif
}

absl::StatusOr<FetchResult> Fetch(const FetchOptions& options) {
#if !A2AMESH_HAVE_CURL
  return absl::UnimplementedError(
      absl::StrCat(options.url, ": this meshd was built without libcurl (a fully static build)"));
#else
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("libcurl did not start");
  FetchResult result;
  Response response{&result, options.max_bytes};
  curl_slist* headers = nullptr;
  if (!options.bearer_token.empty()) {
    headers = curl_slist_append(
        headers, absl::StrCat("Authorization: Bearer ", options.bearer_token).c_str());
  }
  bool accept = false;
  for (const std::string& header : options.headers) {
    headers = curl_slist_append(headers, header.c_str());
    accept = accept || absl::StartsWithIgnoreCase(header, "accept:");
  }
  if (!accept) headers = curl_slist_append(headers, "Accept: application/json");
  if (!options.if_none_match.empty()) {
    headers =
        curl_slist_append(headers, absl::StrCat("If-None-Match: ", options.if_none_match).c_str());
  }
  if (!options.post_content_type.empty()) {
    headers = curl_slist_append(headers,
                                absl::StrCat("Content-Type: ", options.post_content_type).c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(options.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, options.body.data());
  }
  curl_easy_setopt(curl, CURLOPT_URL, options.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, options.protocols.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  if (!options.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options.cert_file.c_str());
  }
  if (!options.key_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, options.key_file.c_str());
  }
  if (!options.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  if (code == CURLE_OK) {
    result.etag = Header(curl, "ETag");
    result.cache_control = Header(curl, "Cache-Control");
  }
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  if (response.too_big) {
    return absl::UnavailableError(
        absl::StrCat(options.url, ": the answer is over ", options.max_bytes, " bytes"));
  }
  if (code != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(options.url, ": ", curl_easy_strerror(code)));
  }
  return result;
#endif
}

}  // namespace a2amesh::http
