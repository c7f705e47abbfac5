#include "http/curl_loop.h"

#if A2AMESH_HAVE_CURL
#include <curl/curl.h>
#endif

#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace a2amesh::http {

bool CurlLoop::Available() {
#if A2AMESH_HAVE_CURL
  return true;
#else
  return false;  // a fully static build
#endif
}

#if !A2AMESH_HAVE_CURL

class CurlLoop::Impl {};

absl::StatusOr<std::unique_ptr<CurlLoop>> CurlLoop::Start() {
  return absl::UnimplementedError("this meshd was built without libcurl (a fully static build)");
}

CurlLoop::Id CurlLoop::Add(Request request) {
  request.on_done(absl::CancelledError("no libcurl"), Response{});
  return 0;
}

void CurlLoop::Cancel(Id) {}

#else

class CurlLoop::Impl {
 public:
  explicit Impl(CURLM* multi) : multi_(multi) {
    thread_ = std::thread([this] { Run(); });
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    thread_.join();
    curl_multi_cleanup(multi_);
  }

  Id Add(Request request) {
    Id id;
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        id = ++last_id_;
        added_.emplace_back(id, std::move(request));
      } else {
        id = 0;
      }
    }
    if (id == 0) {
      request.on_done(absl::CancelledError(absl::StrCat(request.url, ": the node is stopping")),
                      Response{});
      return 0;
    }
    curl_multi_wakeup(multi_);
    return id;
  }

  void Cancel(Id id) {
    {
      absl::MutexLock lock(&mu_);
      cancelled_.push_back(id);
    }
    curl_multi_wakeup(multi_);
  }

 private:
  // One request under way; the loop thread's alone.
  struct Transfer {
    Id id = 0;
    Request request;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    Response response;
    bool answered = false;  // the status line and headers are in
  };

  static size_t OnBody(char* data, size_t size, size_t count, void* out) {
    auto* transfer = static_cast<Transfer*>(out);
    if (!transfer->answered) {
      transfer->answered = true;
      curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->response.status);
      const char* type = nullptr;
      curl_easy_getinfo(transfer->easy, CURLINFO_CONTENT_TYPE, &type);
      if (type != nullptr) transfer->response.content_type = type;
    }
    if (transfer->request.on_data) {
      transfer->request.on_data(transfer->response, absl::string_view(data, size * count));
    }
    return size * count;
  }

  void Begin(Id id, Request request) {
    auto transfer = std::make_unique<Transfer>();
    transfer->id = id;
    transfer->request = std::move(request);
    const Request& r = transfer->request;
    CURL* easy = curl_easy_init();
    if (easy == nullptr) {
      Finish(std::move(transfer), absl::UnavailableError(absl::StrCat(r.url, ": libcurl failed")));
      return;
    }
    transfer->easy = easy;
    for (const std::string& header : r.headers) {
      transfer->headers = curl_slist_append(transfer->headers, header.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, r.protocols.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(r.connect_timeout)));
    if (r.timeout > absl::ZeroDuration()) {
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(absl::ToInt64Milliseconds(r.timeout)));
    }
    if (!r.body.empty()) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data());
    }
    if (!r.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, r.ca_file.c_str());
    if (!r.cert_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLCERT, r.cert_file.c_str());
    if (!r.key_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLKEY, r.key_file.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer.get());
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      Finish(std::move(transfer), absl::UnavailableError(absl::StrCat(r.url, ": libcurl failed")));
      return;
    }
    live_.emplace(id, std::move(transfer));
  }

  // Ends `transfer` (out of the multi handle if it was in) and reports.
  void Finish(std::unique_ptr<Transfer> transfer, absl::Status status) {
    if (transfer->easy != nullptr) {
      curl_multi_remove_handle(multi_, transfer->easy);
      curl_easy_cleanup(transfer->easy);
    }
    curl_slist_free_all(transfer->headers);
    if (transfer->request.on_done) {
      transfer->request.on_done(std::move(status), transfer->response);
    }
  }

  void End(Id id, absl::Status status) {
    auto it = live_.find(id);
    if (it == live_.end()) return;  // over already
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    live_.erase(it);
    Finish(std::move(transfer), std::move(status));
  }

  void Run() {
    while (true) {
      std::vector<std::pair<Id, Request>> added;
      std::vector<Id> cancelled;
      bool stopping;
      {
        absl::MutexLock lock(&mu_);
        added.swap(added_);
        cancelled.swap(cancelled_);
        stopping = stopping_;
      }
      for (auto& [id, request] : added) Begin(id, std::move(request));
      for (Id id : cancelled) End(id, absl::CancelledError("cancelled"));
      if (stopping) {
        while (!live_.empty()) {
          End(live_.begin()->first, absl::CancelledError("the node is stopping"));
        }
        return;
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
        if (message->msg != CURLMSG_DONE) continue;
        Transfer* transfer = nullptr;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
        const CURLcode code = message->data.result;
        if (transfer->response.status == 0) {
          curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->response.status);
        }
        End(transfer->id, code == CURLE_OK
                              ? absl::OkStatus()
                              : absl::UnavailableError(absl::StrCat(transfer->request.url, ": ",
                                                                    curl_easy_strerror(code))));
      }
      curl_multi_poll(multi_, nullptr, 0, /*timeout_ms=*/1000, nullptr);
    }
  }

  CURLM* const multi_;
  absl::Mutex mu_;
  std::vector<std::pair<Id, Request>> added_ ABSL_GUARDED_BY(mu_);
  std::vector<Id> cancelled_ ABSL_GUARDED_BY(mu_);
  Id last_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<Id, std::unique_ptr<Transfer>> live_;  // the loop thread's
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<CurlLoop>> CurlLoop::Start() {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return absl::InternalError("libcurl's multi interface did not start");
  return std::unique_ptr<CurlLoop>(new CurlLoop(std::make_unique<Impl>(multi)));
}

CurlLoop::Id CurlLoop::Add(Request request) { return impl_->Add(std::move(request)); }

void CurlLoop::Cancel(Id id) { impl_->Cancel(id); }

#endif

CurlLoop::CurlLoop(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CurlLoop::~CurlLoop() = default;

}  // namespace a2amesh::http
