#include "http/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <limits>
#include <list>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "core/log.h"
#include "http/tls_context.h"
#include "openssl/x509v3.h"

namespace a2amesh::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Strand>;

namespace {

// Resolves "host:port" to an endpoint to listen on.
absl::StatusOr<tcp::endpoint> ListenEndpoint(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    host = "0.0.0.0";
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results =
      resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", address, ": ", ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint();
}

std::chrono::nanoseconds ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

}  // namespace

const std::string* Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

absl::string_view ReasonPhrase(int status) {
  boost::beast::string_view reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  if (status == 413) {
    return "Content Too Large";  // RFC 9110's name
  }
  return absl::string_view(reason.data(), reason.size());
}

class Session;

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(ServerOptions options, AsyncHandler handler)
      : options(std::move(options)), handler(std::move(handler)) {}

  const ServerOptions options;
  const AsyncHandler handler;
  // Declared before the io_context: sessions that die with it unregister here.
  absl::Mutex mu;
  absl::flat_hash_set<Session*> sessions ABSL_GUARDED_BY(mu);
  // The sessions waiting for (or reading) a request, longest first: what a
  // full server sheds to take a new connection; and each one's place in it.
  std::list<Session*> waiting ABSL_GUARDED_BY(mu);
  // With max_connections_per_address: each client address's open
  // connections, and its own waiting list (longest first), so that an
  // address at its cap finds its longest waiter at once.
  struct Address {
    size_t open = 0;
    std::list<Session*> waiting;
  };
  absl::flat_hash_map<std::string, Address> per_address ABSL_GUARDED_BY(mu);
  struct Place {
    std::list<Session*>::iterator in_all;
    std::list<Session*>::iterator in_address;  // with per-address caps only
  };
  absl::flat_hash_map<Session*, Place> waiting_at ABSL_GUARDED_BY(mu);

  // Puts `session` last in `waiting`, unless it is in it already.
  void EnterWaitingLocked(Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void LeaveWaitingLocked(Session* session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::atomic<uint64_t> shed{0};
  bool stopping ABSL_GUARDED_BY(mu) = false;
  int running ABSL_GUARDED_BY(mu) = 0;
  std::atomic<bool> stopped{false};
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  int port = 0;

  void Accept();
  bool Idle() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return running == 0; }
};

namespace {

class ExchangeImpl;

}  // namespace

// One connection. Everything runs on its strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerCore& core, Socket socket, std::shared_ptr<asio::ssl::context> tls,
          std::string address)
      : core_(core),
        socket_(std::move(socket)),
        tls_context_(std::move(tls)),
        address_(std::move(address)),
        read_deadline_(socket_.get_executor()),
        write_deadline_(socket_.get_executor()),
        keep_alive_deadline_(socket_.get_executor()) {
    if (tls_context_ != nullptr) tls_.emplace(socket_, *tls_context_);
  }

  ~Session() {
    absl::MutexLock lock(&core_.mu);
    const bool counted = core_.sessions.erase(this) > 0;
    core_.LeaveWaitingLocked(this);
    if (counted && core_.options.max_connections_per_address > 0) {
      auto it = core_.per_address.find(address_);
      if (it != core_.per_address.end() && --it->second.open == 0) core_.per_address.erase(it);
    }
  }

  // The client's address, with max_connections_per_address (immutable).
  const std::string& address() const { return address_; }

  Strand strand() { return socket_.get_executor(); }

  // Reads requests; `over` (a message naming the limit): answers 503 instead (after the TLS
  // handshake, if any: the client would not understand it before).
  void Start(std::string over);
  void Reject(int status, std::string message) { Fail(status, std::move(message)); }

  // On the strand: closes the connection if it still waits for (or reads) a
  // request; one that has sent its request by now is left alone.
  void Shed();

  void Respond(ExchangeImpl* exchange, Response response);
  void StartStream(ExchangeImpl* exchange, Response head);
  void Write(ExchangeImpl* exchange, std::string data, std::function<void(bool)> written);
  void End(ExchangeImpl* exchange);
  void KeepAlive(ExchangeImpl* exchange, std::string piece, absl::Duration every);
  void Close();

 private:
  struct Pending {
    std::string data;
    std::function<void(bool)> written;
    bool last = false;  // the response ends with it
  };

  void ReadRequest();
  void ReadHeader();
  void OnHeader(boost::system::error_code ec);
  void EnterWaiting() {
    absl::MutexLock lock(&core_.mu);
    core_.EnterWaitingLocked(this);
  }
  void LeaveWaiting() {
    absl::MutexLock lock(&core_.mu);
    core_.LeaveWaitingLocked(this);
  }
  void OnRead(boost::system::error_code ec);
  bool FailRead(boost::system::error_code ec);
  void Dispatch();
  // Notices a client that closes the connection while its request is handled.
  void Watch();
  void OnWatch(boost::system::error_code ec, size_t n);
  void Fail(int status, std::string message);
  void Queue(std::string data, std::function<void(bool)> written, bool last);
  void WriteNext();
  void OnWrite(boost::system::error_code ec);
  // The response has been written: the next request, or the end.
  void Finished();
  // A deadline for what the connection waits on; past it, it is closed.
  // Reads (a request) and writes (a response) have one each.
  struct Deadline {
    explicit Deadline(const Strand& strand) : timer(strand) {}
    Timer timer;
    uint64_t generation = 0;
  };
  void Arm(Deadline& deadline, absl::Duration timeout);
  // The stream's keep-alive timer: due `in` from now.
  void ArmKeepAlive(absl::Duration in);
  void OnKeepAlive();
  void Disarm(Deadline& deadline) {
    ++deadline.generation;
    deadline.timer.cancel();
  }
  bool Current(ExchangeImpl* exchange) const;
  enum class Framing { kLength, kChunked, kUntilClose };
  std::string Head(const Response& response, Framing framing) const;

  std::string ClientCertificateSubject();
  // Runs fn(stream) on the connection's byte stream: TLS over the socket, or
  // the socket itself.
  template <typename Fn>
  void WithStream(Fn&& fn) {
    if (tls_.has_value()) {
      fn(*tls_);
    } else {
      fn(socket_);
    }
  }

  ServerCore& core_;
  Socket socket_;
  const std::shared_ptr<asio::ssl::context> tls_context_;
  const std::string address_;
  std::optional<asio::ssl::stream<Socket&>> tls_;
  Deadline read_deadline_;
  Deadline write_deadline_;
  // A stream's keep-alive (Exchange::KeepAlive): `keep_alive_piece_` goes out
  // once nothing has been queued since `last_write_` for `keep_alive_every_`.
  Deadline keep_alive_deadline_;
  std::string keep_alive_piece_;
  absl::Duration keep_alive_every_ = absl::ZeroDuration();
  absl::Time last_write_;
  boost::beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<ExchangeImpl> exchange_;
  bool keep_alive_ = false;
  bool head_request_ = false;
  bool http10_ = false;
  bool streaming_ = false;
  bool responded_ = false;
  std::deque<Pending> writes_;
  bool writing_ = false;
  bool watching_ = false;
  bool read_after_watch_ = false;
  bool closed_ = false;
  // Waiting for a request or reading one (from the start until Dispatch).
  bool reading_ = true;
};

namespace {

// Runs a write's callback exactly once: with the write's outcome, or with
// false if the write is dropped unrun (the connection or the server went away).
class WriteCallback {
 public:
  explicit WriteCallback(std::function<void(bool)> fn) : fn_(std::move(fn)) {}
  ~WriteCallback() { Run(false); }
  WriteCallback(const WriteCallback&) = delete;
  WriteCallback& operator=(const WriteCallback&) = delete;
  std::function<void(bool)> Take() { return std::exchange(fn_, nullptr); }
  void Run(bool ok) {
    if (std::function<void(bool)> fn = Take()) fn(ok);
  }

 private:
  std::function<void(bool)> fn_;
};

class ExchangeImpl final : public Exchange, public std::enable_shared_from_this<ExchangeImpl> {
 public:
  ExchangeImpl(std::weak_ptr<ServerCore> core, std::weak_ptr<Session> session, Request request)
      : core_(std::move(core)), session_(std::move(session)), request_(std::move(request)) {}

  const Request& request() const override { return request_; }

  void Respond(Response response) override {
    Post([response = std::move(response)](Session& s, ExchangeImpl* self) mutable {
      s.Respond(self, std::move(response));
    });
  }
  void StartStream(Response head) override {
    Post([head = std::move(head)](Session& s, ExchangeImpl* self) mutable {
      s.StartStream(self, std::move(head));
    });
  }
  void Write(std::string data, std::function<void(bool)> written) override {
    auto callback = std::make_shared<WriteCallback>(std::move(written));
    Post([data = std::move(data), callback](Session& s, ExchangeImpl* self) mutable {
      s.Write(self, std::move(data), callback->Take());
    });
  }
  void End() override {
    Post([](Session& s, ExchangeImpl* self) { s.End(self); });
  }
  void KeepAlive(std::string piece, absl::Duration every) override {
    Post([piece = std::move(piece), every](Session& s, ExchangeImpl* self) mutable {
      s.KeepAlive(self, std::move(piece), every);
    });
  }
  void Name(absl::string_view binding, absl::string_view method) override {
    // Read on the strand, after the Respond or StartStream posted after this.
    binding_ = std::string(binding);
    method_ = std::string(method);
  }
  void NameTrace(absl::string_view trace_id) override {
    // Read on the strand, as Name's.
    trace_id_ = std::string(trace_id);
  }
  // On the strand: tells on_response of the response's `status`.
  void Answered(const ServerOptions& options, int status) const {
    if (const auto& on_response = options.on_response) {
      on_response(binding_.empty() ? "none" : binding_, method_, status, absl::Now() - read_at_,
                  trace_id_);
    }
  }
  void OnClientGone(std::function<void()> gone) override {
    bool now;
    {
      absl::MutexLock lock(&mu_);
      now = gone_;
      if (!now) {
        on_gone_.push_back(std::move(gone));
      }
    }
    if (now) {
      gone();
    }
  }

  // On the strand: the connection closed before the response ended.
  void ClientGone() {
    std::vector<std::function<void()>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      if (gone_) return;
      gone_ = true;
      callbacks.swap(on_gone_);
    }
    for (auto& callback : callbacks) {
      callback();
    }
  }
  // On the strand: the response has ended; gone callbacks are dropped.
  void Ended() {
    absl::MutexLock lock(&mu_);
    gone_ = true;
    on_gone_.clear();
  }

 private:
  // Runs `fn` on the session's strand if the server runs and the session
  // lives (dropping `fn` unrun otherwise).
  template <typename Fn>
  void Post(Fn fn) {
    // The core first, the session after it: held in that order, the session
    // (its socket, its strand) is let go before the core and its loop.
    const std::shared_ptr<ServerCore> core = core_.lock();
    if (core == nullptr || core->stopped.load(std::memory_order_acquire)) return;
    const std::shared_ptr<Session> session = session_.lock();
    if (session == nullptr) return;
    asio::post(session->strand(),
               [session = session_, self = shared_from_this(), fn = std::move(fn)]() mutable {
                 if (std::shared_ptr<Session> s = session.lock()) {
                   fn(*s, self.get());
                 }
               });
  }

  // Weak, both: a handler queued in the loop holds the exchange, so an
  // exchange that owned the core (which owns the loop) would make a cycle
  // nothing breaks once the loop stops with it queued. A strand must not
  // outlive its loop either, so the exchange keeps none of its own.
  const std::weak_ptr<ServerCore> core_;
  const std::weak_ptr<Session> session_;
  const Request request_;
  const absl::Time read_at_ = absl::Now();
  std::string binding_;
  std::string method_;
  std::string trace_id_;
  absl::Mutex mu_;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> on_gone_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

bool Session::Current(ExchangeImpl* exchange) const {
  return !closed_ && exchange_ != nullptr && exchange_.get() == exchange;
}

void Session::Arm(Deadline& deadline, absl::Duration timeout) {
  const uint64_t generation = ++deadline.generation;
  deadline.timer.expires_after(ToChrono(timeout));
  deadline.timer.async_wait(
      [self = shared_from_this(), &deadline, generation](boost::system::error_code ec) {
        if (!ec && generation == deadline.generation) {
          self->Close();
        }
      });
}

std::string Session::ClientCertificateSubject() {
  SSL* ssl = tls_->native_handle();
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  std::string first_uri;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::string spiffe;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
    if (spiffe.empty() && absl::StartsWith(text, "spiffe://")) spiffe = text;
    if (first_uri.empty()) first_uri = std::move(text);
  }
  GENERAL_NAMES_free(names);
  if (!spiffe.empty()) return spiffe;
  if (!first_uri.empty()) return first_uri;
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) <= 0) {
    return "";
  }
  return cn;
}

void Session::Start(std::string over) {
  auto begin = [this, over = std::move(over)] {
    if (!over.empty()) {
      Reject(503, over);
    } else {
      ReadRequest();
    }
  };
  if (!tls_.has_value()) return begin();
  Arm(read_deadline_, core_.options.idle_timeout);
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this(), begin](boost::system::error_code ec) {
                          self->Disarm(self->read_deadline_);
                          if (self->closed_) return;
                          if (ec) return self->Close();  // not TLS, or not trusted
                          begin();
                        });
}

void Session::Shed() {
  if (closed_ || !reading_) return;
  core_.shed.fetch_add(1, std::memory_order_relaxed);
  Close();
}

void Session::ReadRequest() {
  if (closed_) return;
  reading_ = true;
  EnterWaiting();
  if (buffer_.size() > 0) return ReadHeader();  // pipelined: it is here
  // Idle until the request's first bytes; from then on the header has
  // header_timeout to arrive.
  Arm(read_deadline_, core_.options.idle_timeout);
  WithStream([this](auto& stream) {
    stream.async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          self->Disarm(self->read_deadline_);
          self->buffer_.commit(n);
          if (self->closed_) return;
          if (ec) return self->Close();  // the client left (or idled out) between requests
          self->ReadHeader();
        });
  });
}

void Session::ReadHeader() {
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(core_.options.max_header_bytes));
  // The declared length is checked once the header is in (so the error can
  // be shaped for the request's path); a chunked body is limited as it comes.
  // (Not boost::none: Beast 1.74 then refuses every Content-Length.)
  parser_->body_limit(std::numeric_limits<uint64_t>::max());
  Arm(read_deadline_, core_.options.header_timeout);
  WithStream([this](auto& stream) {
    bhttp::async_read_header(
        stream, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnHeader(ec); });
  });
}

// An error of a request being read; false if there is none.
bool Session::FailRead(boost::system::error_code ec) {
  if (!ec) return false;
  if (ec == bhttp::error::header_limit) {
    Fail(431, "request headers are larger than the server accepts");
  } else if (ec == bhttp::error::bad_version) {
    Fail(505, "only HTTP/1.0 and HTTP/1.1 are served here");
  } else if (ec == bhttp::error::body_limit) {
    Fail(413, absl::StrCat("request body is larger than the server accepts (",
                           core_.options.max_body_bytes, " bytes)"));
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
             ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    Fail(400, absl::StrCat("malformed HTTP request: ", ec.message()));
  } else {
    Close();  // the client left (or idled out) between requests
  }
  return true;
}

void Session::OnHeader(boost::system::error_code ec) {
  Disarm(read_deadline_);
  if (closed_ || FailRead(ec)) return;
  const auto& header = parser_->get();
  if (header.version() != 10 && header.version() != 11) {
    return Fail(505, "only HTTP/1.0 and HTTP/1.1 are served here");
  }
  const boost::optional<uint64_t> length = parser_->content_length();
  if (length.has_value() && *length > core_.options.max_body_bytes) {
    return Fail(413, absl::StrCat("request body is larger than the server accepts (", *length,
                                  " bytes; at most ", core_.options.max_body_bytes, ")"));
  }
  parser_->body_limit(core_.options.max_body_bytes);
  if (parser_->is_done()) {
    return Dispatch();
  }
  if (absl::EqualsIgnoreCase(absl::string_view(header[bhttp::field::expect].data(),
                                               header[bhttp::field::expect].size()),
                             "100-continue")) {
    // The client waits for this before it sends the body.
    Queue("HTTP/1.1 100 Continue\r\n\r\n", nullptr, /*last=*/false);
  }
  Arm(read_deadline_, core_.options.idle_timeout);
  WithStream([this](auto& stream) {
    bhttp::async_read(
        stream, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnRead(ec); });
  });
}

void Session::OnRead(boost::system::error_code ec) {
  Disarm(read_deadline_);
  if (closed_ || FailRead(ec)) return;
  Dispatch();
}

void Session::Dispatch() {
  reading_ = false;
  LeaveWaiting();
  auto message = parser_->release();
  parser_.reset();
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  const size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) {
    request.query = request.target.substr(question + 1);
  }
  for (const auto& field : message) {
    request.headers.emplace_back(absl::AsciiStrToLower(absl::string_view(
                                     field.name_string().data(), field.name_string().size())),
                                 std::string(field.value()));
  }
  request.body = std::move(message.body());
  if (tls_.has_value()) request.client_certificate_subject = ClientCertificateSubject();
  request.client_address = address_;
  keep_alive_ = message.keep_alive();
  head_request_ = message.method() == bhttp::verb::head;
  http10_ = message.version() == 10;
  streaming_ = false;
  responded_ = false;
  exchange_ =
      std::make_shared<ExchangeImpl>(core_.weak_from_this(), weak_from_this(), std::move(request));
  Watch();
  std::shared_ptr<ExchangeImpl> exchange = exchange_;
  core_.handler(exchange);
}

void Session::Watch() {
  // Data already buffered is the next pipelined request: the client is there.
  if (watching_ || closed_ || buffer_.size() > 0) return;
  watching_ = true;
  WithStream([this](auto& stream) {
    stream.async_read_some(buffer_.prepare(4096),
                           [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                             self->OnWatch(ec, n);
                           });
  });
}

void Session::OnWatch(boost::system::error_code ec, size_t n) {
  watching_ = false;
  buffer_.commit(n);
  if (closed_) return;
  if (read_after_watch_) {
    read_after_watch_ = false;
    if (ec && ec != asio::error::operation_aborted) {
      return Close();
    }
    return ReadRequest();
  }
  if (ec) {
    Close();  // the client closed the connection before its answer
  }
  // Data: a pipelined request, read once this one is answered.
}

std::string Session::Head(const Response& response, Framing framing) const {
  std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status),
                                 "\r\nContent-Type: ", response.content_type, "\r\n");
  for (const auto& [name, value] : response.headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (framing == Framing::kChunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (framing == Framing::kLength) {
    absl::StrAppend(&out, "Content-Length: ", response.body.size(), "\r\n");
  }
  if (!keep_alive_) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  return out;
}

void Session::Respond(ExchangeImpl* exchange, Response response) {
  if (!Current(exchange) || responded_) return;
  responded_ = true;
  exchange->Answered(core_.options, response.status);
  std::string out = Head(response, Framing::kLength);
  if (!head_request_) {
    out += response.body;
  }
  Queue(std::move(out), nullptr, /*last=*/true);
}

void Session::StartStream(ExchangeImpl* exchange, Response head) {
  if (!Current(exchange) || responded_) return;
  responded_ = true;
  streaming_ = true;
  exchange->Answered(core_.options, head.status);
  std::string body = std::move(head.body);
  head.body.clear();
  if (head_request_) {
    Queue(Head(head, Framing::kLength), nullptr, /*last=*/true);
    return;
  }
  if (http10_) {  // no chunked encoding in HTTP/1.0: the body ends with the connection
    keep_alive_ = false;
  }
  Queue(Head(head, http10_ ? Framing::kUntilClose : Framing::kChunked), nullptr, /*last=*/false);
  if (!body.empty()) {
    Write(exchange, std::move(body), nullptr);
  }
}

void Session::Write(ExchangeImpl* exchange, std::string data, std::function<void(bool)> written) {
  if (!Current(exchange) || !streaming_ || head_request_) {
    if (written) written(false);
    return;
  }
  if (data.empty()) {  // an empty chunk would end the body
    if (written) written(true);
    return;
  }
  if (keep_alive_every_ > absl::ZeroDuration()) last_write_ = absl::Now();
  if (http10_) {
    Queue(std::move(data), std::move(written), /*last=*/false);
    return;
  }
  std::string chunk = absl::StrCat(absl::Hex(data.size()), "\r\n");
  chunk += data;
  chunk += "\r\n";
  Queue(std::move(chunk), std::move(written), /*last=*/false);
}

void Session::End(ExchangeImpl* exchange) {
  if (!Current(exchange) || !streaming_ || head_request_) return;
  streaming_ = false;
  keep_alive_every_ = absl::ZeroDuration();
  Disarm(keep_alive_deadline_);
  Queue(http10_ ? "" : "0\r\n\r\n", nullptr, /*last=*/true);
}

void Session::KeepAlive(ExchangeImpl* exchange, std::string piece, absl::Duration every) {
  if (!Current(exchange) || !streaming_ || head_request_ || every <= absl::ZeroDuration()) return;
  keep_alive_piece_ = std::move(piece);
  keep_alive_every_ = every;
  last_write_ = absl::Now();
  ArmKeepAlive(every);
}

void Session::ArmKeepAlive(absl::Duration in) {
  const uint64_t generation = ++keep_alive_deadline_.generation;
  keep_alive_deadline_.timer.expires_after(ToChrono(in));
  keep_alive_deadline_.timer.async_wait(
      [self = shared_from_this(), generation](boost::system::error_code ec) {
        if (!ec && generation == self->keep_alive_deadline_.generation) self->OnKeepAlive();
      });
}

void Session::OnKeepAlive() {
  if (closed_ || !streaming_ || keep_alive_every_ <= absl::ZeroDuration()) return;
  const absl::Duration quiet = absl::Now() - last_write_;
  if (quiet < keep_alive_every_) {
    return ArmKeepAlive(keep_alive_every_ - quiet);
  }
  if (writes_.empty()) {  // else a write is on its way: that is no quiet stream
    Write(exchange_.get(), keep_alive_piece_, nullptr);
  }
  last_write_ = absl::Now();
  ArmKeepAlive(keep_alive_every_);
}

void Session::Fail(int status, std::string message) {
  keep_alive_ = false;
  Request partial;
  if (parser_.has_value() && parser_->is_header_done()) {
    const auto& header = parser_->get();
    partial.method = std::string(header.method_string());
    partial.target = std::string(header.target());
    partial.path = partial.target.substr(0, partial.target.find('?'));
  }
  Response response;
  if (core_.options.error_response) {
    response = core_.options.error_response(partial, status, message);
    response.status = status;
  } else {
    response.status = status;
    response.body = std::move(message) + "\n";
  }
  const bool has_retry_after =
      std::any_of(response.headers.begin(), response.headers.end(),
                  [](const auto& header) { return header.first == "Retry-After"; });
  if ((status == 429 || status == 503) && !has_retry_after) {
    response.headers.emplace_back("Retry-After", "1");  // over a limit: back off a second
  }
  if (core_.options.on_response)
    core_.options.on_response("server", "", status, absl::ZeroDuration(), "");
  Queue(Head(response, Framing::kLength) + response.body, nullptr, /*last=*/true);
}

void Session::Queue(std::string data, std::function<void(bool)> written, bool last) {
  writes_.push_back(Pending{std::move(data), std::move(written), last});
  WriteNext();
}

void Session::WriteNext() {
  if (writing_ || writes_.empty() || closed_) return;
  writing_ = true;
  Arm(write_deadline_, core_.options.write_timeout);
  WithStream([this](auto& stream) {
    asio::async_write(
        stream, asio::buffer(writes_.front().data),
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnWrite(ec); });
  });
}

void Session::OnWrite(boost::system::error_code ec) {
  Disarm(write_deadline_);
  writing_ = false;
  if (closed_) return;
  Pending done = std::move(writes_.front());
  writes_.pop_front();
  if (ec) {
    if (done.written) done.written(false);
    return Close();
  }
  if (done.written) done.written(true);
  if (done.last) {
    return Finished();
  }
  WriteNext();
}

void Session::Finished() {
  if (exchange_ != nullptr) {
    exchange_->Ended();
    exchange_.reset();
  }
  if (!keep_alive_) {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    return Close();
  }
  if (watching_) {
    read_after_watch_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    return;
  }
  ReadRequest();
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  LeaveWaiting();
  Disarm(read_deadline_);
  Disarm(write_deadline_);
  Disarm(keep_alive_deadline_);
  boost::system::error_code ignored;
  socket_.close(ignored);
  std::deque<Pending> writes;
  writes.swap(writes_);
  for (Pending& pending : writes) {
    if (pending.written) pending.written(false);
  }
  if (exchange_ != nullptr) {
    std::shared_ptr<ExchangeImpl> exchange = std::move(exchange_);
    exchange->ClientGone();
  }
}

void ServerCore::EnterWaitingLocked(Session* session) {
  if (waiting_at.contains(session)) return;
  Place place;
  place.in_all = waiting.insert(waiting.end(), session);
  if (options.max_connections_per_address > 0) {
    std::list<Session*>& own = per_address[session->address()].waiting;
    place.in_address = own.insert(own.end(), session);
  }
  waiting_at.emplace(session, place);
}

void ServerCore::LeaveWaitingLocked(Session* session) {
  auto it = waiting_at.find(session);
  if (it == waiting_at.end()) return;
  waiting.erase(it->second.in_all);
  if (options.max_connections_per_address > 0) {
    auto address = per_address.find(session->address());
    if (address != per_address.end()) address->second.waiting.erase(it->second.in_address);
  }
  waiting_at.erase(it);
}

void ServerCore::Accept() {
  acceptor.async_accept(
      asio::make_strand(ioc), [this](boost::system::error_code ec, Socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
          return;
        }
        if (ec) {
          // Out of file descriptors (or memory): accepting again at once would
          // spin. Wait a little; connections queue in the backlog meanwhile.
          A2AMESH_LOG(Warning, "cannot accept HTTP connections").With("error", ec.message());
          auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(100));
          timer->async_wait([this, timer](boost::system::error_code) { Accept(); });
          return;
        }
        socket.set_option(tcp::no_delay(true), ec);
        std::string address;
        if (options.max_connections_per_address > 0) {
          address = socket.remote_endpoint(ec).address().to_string();
        }
        auto session = std::make_shared<Session>(
            *this, std::move(socket), options.tls != nullptr ? options.tls->Current() : nullptr,
            std::move(address));
        bool accepted;
        std::string over;  // why the new connection is refused
        std::weak_ptr<Session> shed;
        {
          absl::MutexLock lock(&mu);
          accepted = !stopping;
          Session* longest = nullptr;
          if (accepted && options.max_connections_per_address > 0 &&
              per_address[session->address()].open >= options.max_connections_per_address) {
            // The address is at its cap: its own connection that has waited
            // longest for a request makes room, or the new one is refused.
            const std::list<Session*>& own = per_address[session->address()].waiting;
            if (!own.empty()) {
              longest = own.front();
            } else {
              over = absl::StrCat("too many connections from ", session->address(), " (at most ",
                                  options.max_connections_per_address, "); try again later");
            }
          } else if (accepted && sessions.size() >= options.max_connections) {
            // Full: the connection that has waited longest for a request
            // makes room.
            if (!waiting.empty()) {
              longest = waiting.front();
            } else {
              over = "too many connections; try again later";
            }
          }
          if (longest != nullptr) {
            // Closed on its strand, after this.
            LeaveWaitingLocked(longest);
            shed = longest->weak_from_this();  // alive: its destructor needs `mu`
          }
          if (accepted) {
            sessions.insert(session.get());
            if (options.max_connections_per_address > 0) ++per_address[session->address()].open;
            EnterWaitingLocked(session.get());
          }
        }
        if (std::shared_ptr<Session> longest = shed.lock()) {
          asio::post(longest->strand(), [longest] { longest->Shed(); });
        }
        if (accepted) {
          asio::post(session->strand(), [session, over = std::move(over)]() mutable {
            session->Start(std::move(over));
          });
        }
        Accept();
      });
}

Server::Server(std::shared_ptr<ServerCore> core) : core_(std::move(core)) {}

Server::~Server() { Stop(); }

int Server::port() const { return core_->port; }

uint64_t Server::shed_connections() const { return core_->shed.load(std::memory_order_relaxed); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& address,
                                                      ServerOptions options, AsyncHandler handler) {
  absl::StatusOr<tcp::endpoint> endpoint = ListenEndpoint(address);
  if (!endpoint.ok()) return endpoint.status();
  const int threads = std::max(1, options.threads);
  auto core = std::make_shared<ServerCore>(std::move(options), std::move(handler));
  boost::system::error_code ec;
  core->acceptor.open(endpoint->protocol(), ec);
  if (!ec) core->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) core->acceptor.bind(*endpoint, ec);
  if (!ec) core->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", ec.message()));
  }
  core->port = core->acceptor.local_endpoint().port();
  core->work.emplace(core->ioc.get_executor());
  core->Accept();
  {
    absl::MutexLock lock(&core->mu);
    core->running = threads;
  }
  for (int i = 0; i < threads; ++i) {
    core->threads.emplace_back([c = core.get()] {
      c->ioc.run();
      absl::MutexLock lock(&c->mu);
      --c->running;
    });
  }
  return std::unique_ptr<Server>(new Server(std::move(core)));
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& address,
                                                      ServerOptions options, Handler handler) {
  return Start(address, std::move(options),
               [handler = std::move(handler)](std::shared_ptr<Exchange> exchange) {
                 exchange->Respond(handler(exchange->request()));
               });
}

void Server::Stop() {
  ServerCore& core = *core_;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&core.mu);
    if (core.stopping) return;
    core.stopping = true;
    for (Session* session : core.sessions) {
      if (std::shared_ptr<Session> live = session->weak_from_this().lock()) {
        sessions.push_back(std::move(live));
      }
    }
  }
  asio::post(core.ioc, [&core] {
    boost::system::error_code ignored;
    core.acceptor.close(ignored);
  });
  for (std::shared_ptr<Session>& session : sessions) {
    asio::post(session->strand(), [session] { session->Close(); });
  }
  sessions.clear();
  // Let the loop run the closes (their exchanges see the client gone), then stop.
  core.work.reset();
  {
    absl::MutexLock lock(&core.mu);
    core.mu.AwaitWithTimeout(absl::Condition(&core, &ServerCore::Idle), absl::Seconds(2));
  }
  core.stopped.store(true, std::memory_order_release);
  core.ioc.stop();
  for (std::thread& thread : core.threads) {
    thread.join();
  }
  core.threads.clear();
}

}  // namespace a2amesh::http
