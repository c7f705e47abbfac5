#ifndef A2AMESH_TESTS_TESTING_TRACE_COLLECTOR_H_
#define A2AMESH_TESTS_TESTING_TRACE_COLLECTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace a2amesh::testing {

// One span as a collector got it, with the resource it came under.
struct CollectedSpan {
  opentelemetry::proto::trace::v1::Span span;
  // service.instance.id of its resource (the node id).
  std::string instance;
};

// An OTLP/gRPC collector on loopback that keeps what it gets, and can be held
// still (Export waits until Release). Starts released unless told otherwise.
class TraceCollector final
    : public opentelemetry::proto::collector::trace::v1::TraceService::Service {
 public:
  explicit TraceCollector(bool held = false) {
    if (!held) hold_.Notify();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~TraceCollector() override {
    Release();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  std::string endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }

  grpc::Status Export(
      grpc::ServerContext* context,
      const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* request,
      opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse*) override {
    hold_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    auto it = context->client_metadata().find("authorization");
    if (it != context->client_metadata().end()) {
      authorization_ = std::string(it->second.data(), it->second.size());
    }
    requests_.push_back(*request);
    for (const auto& resource : request->resource_spans()) {
      std::string instance;
      for (const auto& attribute : resource.resource().attributes()) {
        if (attribute.key() == "service.instance.id") instance = attribute.value().string_value();
      }
      for (const auto& scope : resource.scope_spans()) {
        for (const auto& span : scope.spans()) spans_.push_back({span, instance});
      }
    }
    return grpc::Status::OK;
  }

  void Release() {
    if (!hold_.HasBeenNotified()) hold_.Notify();
  }

  // Waits (up to 20 s) until `done` holds of the spans so far; returns them.
  template <typename Done>
  std::vector<CollectedSpan> WaitUntil(Done done) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(spans_); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(20));
    return spans_;
  }
  std::vector<CollectedSpan> WaitForSpans(size_t n) {
    return WaitUntil([n](const std::vector<CollectedSpan>& spans) { return spans.size() >= n; });
  }
  std::vector<opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::string authorization() {
    absl::MutexLock lock(&mu_);
    return authorization_;
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Notification hold_;
  absl::Mutex mu_;
  std::vector<opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest> requests_
      ABSL_GUARDED_BY(mu_);
  std::vector<CollectedSpan> spans_ ABSL_GUARDED_BY(mu_);
  std::string authorization_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_TRACE_COLLECTOR_H_
