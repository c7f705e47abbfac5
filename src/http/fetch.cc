#include "http/fetch.h"

#if A2AMESH_HAVE_CURL
#include <curl/curl.h>
#endif

#include <mutex>

#include "absl/strings/str_cat.h"

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

#endif

}  // namespace

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
  headers = curl_slist_append(headers, "Accept: application/json");
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
