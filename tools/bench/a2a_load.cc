// a2a-load: a load generator for A2A servers (meshd, the bare echo server, the
// JS SDK's server) over gRPC or JSON-RPC. Closed loop (N requests always in
// flight) or open loop (a fixed rate, latency measured from when each request
// was due, so a slow server cannot hide its queueing), with a warm-up, and a
// report of throughput and latency percentiles as a table and JSON.
//
//   a2a-load --target grpc:127.0.0.1:7400 --skill echo --concurrency 32 --duration 10s
//   a2a-load --target jsonrpc:http://127.0.0.1:7480/a2a/jsonrpc --rate 2000
//   a2a-load --target grpc:127.0.0.1:7400 --call stream --text "a b c d"
//   a2a-load --target grpc:127.0.0.1:7400 --skill hold --open-streams 2000 --hold 5s

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "grpcpp/grpcpp.h"
#include "http/http_client.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "security/tls.h"

namespace a2amesh::bench {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct Config {
  std::string target;
  std::string call = "send";
  std::string skill;
  std::string text = "task:hello";
  int concurrency = 8;
  double rate = 0;  // requests per second; 0: closed loop
  std::string duration = "10s";
  std::string warmup = "1s";
  int channels = 1;
  int open_streams = 0;
  std::string hold = "0s";
  std::string json;
  bool return_immediately = false;
  // NAME=PID: processes whose CPU time over the measured window is reported
  // (with "client", this process).
  std::vector<std::string> cpu_pids;
  // gRPC targets: TLS (any file set turns it on) and a bearer token.
  a2amesh::security::ClientTlsOptions tls;
  std::string token;
};

// The channel credentials of a gRPC target (exits on unreadable files).
std::shared_ptr<grpc::ChannelCredentials> Credentials(const Config& config) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      a2amesh::security::ClientCredentials(config.tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "a2a-load: %s\n", std::string(credentials.status().message()).c_str());
    std::exit(2);
  }
  return *credentials;
}

// The metadata every call carries.
void AddMetadata(const Config& config, grpc::ClientContext* context) {
  context->AddMetadata("a2a-version", "1.0");
  if (!config.token.empty()) context->AddMetadata("authorization", "Bearer " + config.token);
}

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat;
// negative if it cannot be read.
double ProcessCpuSeconds(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: count fields after its ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The CPU time of named processes over the measured window.
class CpuMeter {
 public:
  explicit CpuMeter(const std::vector<std::string>& specs) {
    procs_.push_back({"client", "self"});
    for (const std::string& spec : specs) {
      std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits('=', 1));
      if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
        std::fprintf(stderr, "a2a-load: --cpu-pid '%s' is not NAME=PID\n", spec.c_str());
        std::exit(2);
      }
      procs_.push_back({parts[0], parts[1]});
    }
  }
  void Start() {
    for (Proc& p : procs_) p.start = ProcessCpuSeconds(p.pid);
  }
  void Stop() {
    for (Proc& p : procs_) p.end = ProcessCpuSeconds(p.pid);
  }
  // {"client":{"cpu_seconds":..,"cpu_us_per_request":..},...}
  std::string Json(size_t requests) const {
    std::vector<std::string> items;
    for (const Proc& p : procs_) {
      if (p.start < 0 || p.end < 0) continue;
      const double used = p.end - p.start;
      items.push_back(
          absl::StrFormat("\"%s\":{\"cpu_seconds\":%.3f,\"cpu_us_per_request\":%.2f}", p.name, used,
                          requests > 0 ? used * 1e6 / static_cast<double>(requests) : 0.0));
    }
    return absl::StrCat("{", absl::StrJoin(items, ","), "}");
  }
  void Print(size_t requests) const {
    for (const Proc& p : procs_) {
      if (p.start < 0 || p.end < 0) continue;
      std::printf("cpu %-10s %8.3f s  %8.2f us/request\n", p.name.c_str(), p.end - p.start,
                  requests > 0 ? (p.end - p.start) * 1e6 / static_cast<double>(requests) : 0.0);
    }
  }

 private:
  struct Proc {
    std::string name;
    std::string pid;
    double start = -1;
    double end = -1;
  };
  std::vector<Proc> procs_;
};

// Latencies and counts, from the end of the warm-up to the end of the run.
class Stats {
 public:
  void Start(absl::Time measure_from) {
    std::lock_guard<std::mutex> lock(mu_);
    from_ = measure_from;
  }
  void Record(absl::Time due, absl::Time done, bool ok, int events, const std::string& error) {
    std::lock_guard<std::mutex> lock(mu_);
    if (due < from_) return;  // warm-up
    if (!ok) {
      ++errors_;
      if (first_error_.empty()) first_error_ = error;
      return;
    }
    latencies_us_.push_back(absl::ToDoubleMicroseconds(done - due));
    events_ += events;
  }
  std::string Report(const Config& config, absl::Duration measured, const CpuMeter& cpu) {
    std::lock_guard<std::mutex> lock(mu_);
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double p) {
      if (latencies_us_.empty()) return 0.0;
      size_t i = static_cast<size_t>(std::ceil(p / 100.0 * latencies_us_.size())) - 1;
      return latencies_us_[std::min(i, latencies_us_.size() - 1)] / 1000.0;
    };
    double sum = 0;
    for (double v : latencies_us_) sum += v;
    const size_t n = latencies_us_.size();
    const double seconds = absl::ToDoubleSeconds(measured);
    const double throughput = seconds > 0 ? n / seconds : 0;
    const double mean = n > 0 ? sum / n / 1000.0 : 0;
    std::printf("%-44s %10s %8s %9s %9s %9s %9s %9s\n", "target / call", "req/s", "errors",
                "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms");
    std::printf("%-44s %10.0f %8lld %9.3f %9.3f %9.3f %9.3f %9.3f\n",
                absl::StrCat(config.target, " ", config.call).substr(0, 44).c_str(), throughput,
                static_cast<long long>(errors_), pct(50), pct(90), pct(99), pct(100), mean);
    if (!first_error_.empty()) std::printf("first error: %s\n", first_error_.c_str());
    cpu.Print(n);
    return absl::StrFormat(
        "{\"target\":\"%s\",\"call\":\"%s\",\"skill\":\"%s\",\"concurrency\":%d,\"rate\":%g,"
        "\"seconds\":%.3f,\"requests\":%d,\"errors\":%lld,\"throughput_rps\":%.1f,"
        "\"events_per_request\":%.2f,\"latency_ms\":{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
        "\"max\":%.4f,\"mean\":%.4f},\"cpu\":%s,\"first_error\":\"%s\"}",
        config.target, config.call, config.skill, config.concurrency, config.rate, seconds,
        static_cast<int>(n), static_cast<long long>(errors_), throughput,
        n > 0 ? static_cast<double>(events_) / n : 0.0, pct(50), pct(90), pct(99), pct(100), mean,
        cpu.Json(n), absl::StrReplaceAll(first_error_, {{"\"", "'"}, {"\\", "/"}}));
  }

 private:
  std::mutex mu_;
  absl::Time from_ = absl::InfiniteFuture();
  std::vector<double> latencies_us_;
  int64_t errors_ = 0;
  int64_t events_ = 0;
  std::string first_error_;
};

// Something that sends one request and calls back when it is answered.
class Caller {
 public:
  virtual ~Caller() = default;
  // `done(ok, events, error)` runs on the caller's own thread.
  virtual void Call(std::function<void(bool, int, std::string)> done) = 0;
};

lf::a2a::v1::SendMessageRequest MakeRequest(const Config& config, int64_t n) {
  lf::a2a::v1::SendMessageRequest request;
  auto* message = request.mutable_message();
  message->set_message_id(absl::StrCat("load-", n));
  message->set_role(lf::a2a::v1::ROLE_USER);
  message->add_parts()->set_text(config.text);
  if (!config.skill.empty()) {
    (*request.mutable_metadata()->mutable_fields())["a2amesh/skill"].set_string_value(config.skill);
  }
  if (config.return_immediately) {
    request.mutable_configuration()->set_return_immediately(true);
  }
  return request;
}

// --- gRPC --------------------------------------------------------------------

class GrpcCaller final : public Caller {
 public:
  GrpcCaller(const Config& config, const std::string& address) : config_(config) {
    for (int i = 0; i < std::max(1, config.channels); ++i) {
      grpc::ChannelArguments args;
      args.SetInt("a2a.load.channel", i);  // distinct channels, distinct connections
      stubs_.push_back(lf::a2a::v1::A2AService::NewStub(
          grpc::CreateCustomChannel(address, Credentials(config), args)));
    }
  }

  void Call(std::function<void(bool, int, std::string)> done) override {
    const int64_t n = next_.fetch_add(1);
    auto& stub = *stubs_[n % stubs_.size()];
    if (config_.call == "stream") {
      (new Stream(config_, stub, MakeRequest(config_, n), std::move(done)))->Start();
      return;
    }
    struct State {
      grpc::ClientContext context;
      lf::a2a::v1::SendMessageRequest request;
      lf::a2a::v1::SendMessageResponse response;
    };
    auto state = std::make_shared<State>();
    AddMetadata(config_, &state->context);
    state->request = MakeRequest(config_, n);
    stub.async()->SendMessage(&state->context, &state->request, &state->response,
                              [state, done = std::move(done)](grpc::Status status) {
                                done(status.ok(), 1, status.error_message());
                              });
  }

 private:
  class Stream final : public grpc::ClientReadReactor<lf::a2a::v1::StreamResponse> {
   public:
    Stream(const Config& config, lf::a2a::v1::A2AService::Stub& stub,
           lf::a2a::v1::SendMessageRequest request,
           std::function<void(bool, int, std::string)> done)
        : request_(std::move(request)), done_(std::move(done)) {
      AddMetadata(config, &context_);
      stub.async()->SendStreamingMessage(&context_, &request_, this);
    }
    void Start() {
      StartRead(&event_);
      StartCall();
    }
    void OnReadDone(bool ok) override {
      if (!ok) return;
      ++events_;
      StartRead(&event_);
    }
    void OnDone(const grpc::Status& status) override {
      done_(status.ok(), events_, status.error_message());
      delete this;
    }

   private:
    grpc::ClientContext context_;
    lf::a2a::v1::SendMessageRequest request_;
    lf::a2a::v1::StreamResponse event_;
    std::function<void(bool, int, std::string)> done_;
    int events_ = 0;
  };

  const Config& config_;
  std::vector<std::unique_ptr<lf::a2a::v1::A2AService::Stub>> stubs_;
  std::atomic<int64_t> next_{0};
};

// --- JSON-RPC over HTTP/1.1 keep-alive ----------------------------------------

class JsonRpcCaller final : public Caller {
 public:
  JsonRpcCaller(const Config& config, const std::string& url) : config_(config) {
    absl::StatusOr<http::Url> parsed = http::ParseUrl(url);
    if (!parsed.ok()) {
      std::fprintf(stderr, "a2a-load: %s\n", std::string(parsed.status().message()).c_str());
      std::exit(2);
    }
    url_ = *parsed;
    work_.emplace(ioc_.get_executor());
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~JsonRpcCaller() override {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }

  void Call(std::function<void(bool, int, std::string)> done) override {
    const int64_t n = next_.fetch_add(1);
    std::string body = Body(n);
    asio::post(ioc_, [this, body = std::move(body), done = std::move(done)]() mutable {
      std::shared_ptr<Connection> connection;
      if (!idle_.empty()) {
        connection = std::move(idle_.back());
        idle_.pop_back();
      } else {
        connection = std::make_shared<Connection>(*this);
      }
      connection->Send(std::move(body), std::move(done));
    });
  }

 private:
  // One keep-alive connection; on the caller's thread only.
  class Connection : public std::enable_shared_from_this<Connection> {
   public:
    explicit Connection(JsonRpcCaller& owner) : owner_(owner), socket_(owner.ioc_) {}

    void Send(std::string body, std::function<void(bool, int, std::string)> done) {
      done_ = std::move(done);
      request_ = absl::StrCat("POST ", owner_.url_.target, " HTTP/1.1\r\nHost: ", owner_.url_.host,
                              ":", owner_.url_.port,
                              "\r\nContent-Type: application/json\r\nA2A-Version: 1.0\r\n"
                              "Content-Length: ",
                              body.size(), "\r\n\r\n", body);
      if (socket_.is_open()) return Write();
      tcp::resolver resolver(owner_.ioc_);
      boost::system::error_code ec;
      auto endpoints = resolver.resolve(owner_.url_.host, owner_.url_.port, ec);
      if (ec) return Fail(ec.message());
      asio::async_connect(socket_, endpoints,
                          [self = shared_from_this()](boost::system::error_code ec, tcp::endpoint) {
                            if (ec) return self->Fail(ec.message());
                            self->socket_.set_option(tcp::no_delay(true));
                            self->Write();
                          });
    }

   private:
    void Write() {
      asio::async_write(socket_, asio::buffer(request_),
                        [self = shared_from_this()](boost::system::error_code ec, size_t) {
                          if (ec) return self->Fail(ec.message());
                          self->Read();
                        });
    }
    void Read() {
      parser_.emplace();
      parser_->body_limit(64 * 1024 * 1024);
      bhttp::async_read(socket_, buffer_, *parser_,
                        [self = shared_from_this()](boost::system::error_code ec, size_t) {
                          if (ec) return self->Fail(ec.message());
                          self->Done();
                        });
    }
    void Done() {
      const auto& response = parser_->get();
      const std::string& body = response.body();
      int events = 1;
      bool ok = response.result_int() == 200 && !absl::StrContains(body, "\"error\":");
      const auto type = response[bhttp::field::content_type];
      if (absl::StartsWith(absl::string_view(type.data(), type.size()), "text/event-stream")) {
        events = 0;
        for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos; at += 6) {
          ++events;
        }
      }
      auto done = std::move(done_);
      if (!response.keep_alive()) {
        socket_.close();
      }
      owner_.idle_.push_back(shared_from_this());
      done(ok, events, ok ? "" : body.substr(0, 200));
    }
    void Fail(const std::string& error) {
      boost::system::error_code ignored;
      socket_.close(ignored);
      auto done = std::move(done_);
      owner_.idle_.push_back(shared_from_this());  // reconnects on its next use
      done(false, 0, error);
    }

    JsonRpcCaller& owner_;
    tcp::socket socket_;
    boost::beast::flat_buffer buffer_;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
    std::string request_;
    std::function<void(bool, int, std::string)> done_;
  };

  std::string Body(int64_t n) const {
    std::string metadata =
        config_.skill.empty()
            ? ""
            : absl::StrCat(",\"metadata\":{\"a2amesh/skill\":\"", config_.skill, "\"}");
    return absl::StrCat(
        "{\"jsonrpc\":\"2.0\",\"id\":", n, ",\"method\":\"",
        config_.call == "stream" ? "SendStreamingMessage" : "SendMessage",
        "\",\"params\":{\"message\":{\"messageId\":\"load-", n,
        "\",\"role\":\"ROLE_USER\",\"parts\":[{\"text\":\"", config_.text, "\"}]}", metadata,
        config_.return_immediately ? ",\"configuration\":{\"returnImmediately\":true}" : "", "}}");
  }

  const Config& config_;
  http::Url url_;
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::vector<std::shared_ptr<Connection>> idle_;  // the caller's thread only
  std::atomic<int64_t> next_{0};
};

absl::Duration ParseDuration(const std::string& text, const char* flag) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    std::fprintf(stderr, "a2a-load: %s: '%s' is not a duration (e.g. 10s, 500ms)\n", flag,
                 text.c_str());
    std::exit(2);
  }
  return d;
}

// Closed loop: `concurrency` calls in flight until the end; each answer sends
// the next. Open loop: one call every 1/rate seconds, whatever is in flight.
absl::Duration Run(const Config& config, Caller& caller, Stats& stats, CpuMeter& cpu) {
  const absl::Duration warmup = ParseDuration(config.warmup, "--warmup");
  const absl::Duration duration = ParseDuration(config.duration, "--duration");
  const absl::Time start = absl::Now();
  const absl::Time measure_from = start + warmup;
  const absl::Time end = measure_from + duration;
  stats.Start(measure_from);
  // Samples CPU times at the start and the end of the measured window.
  std::thread meter([&] {
    absl::SleepFor(measure_from - absl::Now());
    cpu.Start();
    absl::SleepFor(end - absl::Now());
    cpu.Stop();
  });
  std::mutex mu;
  std::condition_variable idle;
  int in_flight = 0;
  auto finish = [&] {
    std::lock_guard<std::mutex> lock(mu);
    if (--in_flight == 0) idle.notify_all();
  };
  // Outlives the loop below: answers call it until the end.
  std::function<void()> issue;
  if (config.rate <= 0) {
    issue = [&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++in_flight;
      }
      const absl::Time due = absl::Now();
      caller.Call([&, due](bool ok, int events, std::string error) {
        const absl::Time now = absl::Now();
        stats.Record(due, now, ok, events, error);
        if (now < end) issue();
        finish();
      });
    };
    for (int i = 0; i < config.concurrency; ++i) issue();
  } else {
    const absl::Duration interval = absl::Seconds(1) / config.rate;
    absl::Time due = start;
    while (due < end) {
      const absl::Time now = absl::Now();
      if (due > now) absl::SleepFor(due - now);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++in_flight;
      }
      caller.Call([&, due](bool ok, int events, std::string error) {
        stats.Record(due, absl::Now(), ok, events, error);
        finish();
      });
      due += interval;
    }
  }
  std::unique_lock<std::mutex> lock(mu);
  idle.wait(lock, [&] { return in_flight == 0; });
  lock.unlock();
  meter.join();
  return std::min(absl::Now(), end) - measure_from;
}

// Opens `count` streams to tasks that stay open (an agent that holds them),
// waits until each has its first event, reports, and holds them.
int OpenStreams(const Config& config, const std::string& address) {
  struct Held final : public grpc::ClientReadReactor<lf::a2a::v1::StreamResponse> {
    grpc::ClientContext context;
    lf::a2a::v1::SendMessageRequest request;
    lf::a2a::v1::StreamResponse event;
    std::atomic<int>* opened;
    std::atomic<int>* done;
    bool counted = false;
    void OnReadDone(bool ok) override {
      if (!ok) return;
      if (!counted) {
        counted = true;
        opened->fetch_add(1);
      }
      StartRead(&event);
    }
    void OnDone(const grpc::Status&) override { done->fetch_add(1); }
  };
  std::atomic<int> opened{0};
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<Held>> streams;
  std::vector<std::unique_ptr<lf::a2a::v1::A2AService::Stub>> stubs;
  for (int i = 0; i < std::max(1, config.channels); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("a2a.load.channel", i);
    stubs.push_back(lf::a2a::v1::A2AService::NewStub(
        grpc::CreateCustomChannel(address, Credentials(config), args)));
  }
  const absl::Time start = absl::Now();
  for (int i = 0; i < config.open_streams; ++i) {
    auto held = std::make_unique<Held>();
    held->opened = &opened;
    held->done = &done;
    AddMetadata(config, &held->context);
    held->request = MakeRequest(config, i);
    stubs[i % stubs.size()]->async()->SendStreamingMessage(&held->context, &held->request,
                                                           held.get());
    held->StartRead(&held->event);
    held->StartCall();
    streams.push_back(std::move(held));
  }
  const absl::Time deadline = start + absl::Seconds(120);
  while (opened.load() + done.load() < config.open_streams && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::string json = absl::StrFormat(
      "{\"target\":\"%s\",\"open_streams\":%d,\"opened\":%d,\"failed\":%d,\"seconds\":%.3f}",
      config.target, config.open_streams, opened.load(), done.load(), seconds);
  std::printf("%s\n", json.c_str());
  std::fflush(stdout);
  if (!config.json.empty()) std::ofstream(config.json) << json << "\n";
  absl::SleepFor(ParseDuration(config.hold, "--hold"));
  for (auto& held : streams) held->context.TryCancel();
  while (done.load() < config.open_streams && absl::Now() < deadline + absl::Seconds(30)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  return opened.load() == config.open_streams ? 0 : 1;
}

int Main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Config config;
  CLI::App app{"a2a-load: load for A2A servers over gRPC or JSON-RPC"};
  app.add_option("--target", config.target, "grpc:HOST:PORT or jsonrpc:http://HOST:PORT/PATH")
      ->required();
  app.add_option("--call", config.call, "send (SendMessage) or stream (SendStreamingMessage)")
      ->check(CLI::IsMember({"send", "stream"}))
      ->capture_default_str();
  app.add_option("--skill", config.skill, "a2amesh/skill metadata (none if empty)");
  app.add_option("--text", config.text, "the message's text")->capture_default_str();
  app.add_option("--concurrency", config.concurrency, "closed loop: requests in flight")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rate", config.rate, "open loop: requests per second (0: closed loop)")
      ->capture_default_str();
  app.add_option("--duration", config.duration, "measured time")->capture_default_str();
  app.add_option("--warmup", config.warmup, "unmeasured time first")->capture_default_str();
  app.add_option("--channels", config.channels, "gRPC channels (connections)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--open-streams", config.open_streams,
                 "open this many streams, report when all have an event, hold them");
  app.add_option("--hold", config.hold, "with --open-streams: how long to hold them")
      ->capture_default_str();
  app.add_option("--json", config.json, "also write the result as JSON to this file");
  app.add_option("--token", config.token, "gRPC: bearer token sent with every call");
  app.add_option("--tls-ca", config.tls.ca_file, "gRPC: dial with TLS, trusting this PEM CA");
  app.add_option("--tls-cert", config.tls.cert_file, "gRPC: client certificate (PEM)");
  app.add_option("--tls-key", config.tls.key_file, "gRPC: key (PEM) of --tls-cert");
  app.add_flag("--return-immediately", config.return_immediately,
               "answer once the task is accepted (stored), not when it ends");
  app.add_option("--cpu-pid", config.cpu_pids,
                 "NAME=PID: also report the CPU time (user + system) this process used over the "
                 "measured window, in total and per request (repeatable; the client's own is "
                 "always reported)");
  CLI11_PARSE(app, argc, argv);
  config.tls.enabled = !config.tls.ca_file.empty() || !config.tls.cert_file.empty();
  if ((config.tls.enabled || !config.token.empty()) && !absl::StartsWith(config.target, "grpc:")) {
    std::fprintf(stderr, "a2a-load: --token and --tls-* are for grpc: targets\n");
    return 2;
  }

  std::unique_ptr<Caller> caller;
  std::string address;
  if (absl::StartsWith(config.target, "grpc:")) {
    address = config.target.substr(5);
    if (config.open_streams > 0) return OpenStreams(config, address);
    caller = std::make_unique<GrpcCaller>(config, address);
  } else if (absl::StartsWith(config.target, "jsonrpc:")) {
    caller = std::make_unique<JsonRpcCaller>(config, config.target.substr(8));
  } else {
    std::fprintf(stderr, "a2a-load: --target '%s' is not grpc:HOST:PORT or jsonrpc:URL\n",
                 config.target.c_str());
    return 2;
  }
  Stats stats;
  CpuMeter cpu(config.cpu_pids);
  const absl::Duration measured = Run(config, *caller, stats, cpu);
  std::string json = stats.Report(config, measured, cpu);
  if (!config.json.empty()) std::ofstream(config.json) << json << "\n";
  return 0;
}

}  // namespace
}  // namespace a2amesh::bench

int main(int argc, char** argv) { return a2amesh::bench::Main(argc, argv); }
