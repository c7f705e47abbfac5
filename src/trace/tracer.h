#ifndef A2AMESH_TRACE_TRACER_H_
#define A2AMESH_TRACE_TRACER_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/telemetry.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "trace/span_context.h"

// Spans of the task path, exported over OTLP (docs/tracing.md). A node has one
// Tracer; components that record spans are given it (Tracer::Disabled() when
// tracing is off, which still passes callers' trace context on).
//
// Recording a span never blocks and never waits for the collector: an ended
// span is queued (bounded; past the bound it is dropped and counted) and the
// tracer's thread exports batches.
namespace a2amesh::trace {

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };

class Tracer;

// A span: recorded (sampled, tracing on) or only a context to pass on. Ends
// when End is called or, failing that, when it is destroyed. Move-only; not
// thread-safe (the task's lock guards a task's spans).
class Span {
 public:
  Span() = default;
  Span(Span&& other) noexcept { *this = std::move(other); }
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() { End(); }

  // Its context (what children and callees are given). Invalid for no span.
  const SpanContext& context() const { return context_; }
  bool recording() const { return data_ != nullptr; }

  // Attributes (OpenTelemetry semantic conventions where they exist).
  void SetName(absl::string_view name);
  void SetAttribute(absl::string_view key, absl::string_view value);
  void SetAttribute(absl::string_view key, const char* value) {
    SetAttribute(key, absl::string_view(value));
  }
  void SetAttribute(absl::string_view key, const std::string& value) {
    SetAttribute(key, absl::string_view(value));
  }
  void SetAttribute(absl::string_view key, int64_t value);
  void SetAttribute(absl::string_view key, bool value);
  // An event at `at` (a task's state change), with one optional attribute.
  void AddEvent(absl::string_view name, absl::string_view key = "", absl::string_view value = "",
                absl::Time at = absl::Now());
  // Status ERROR with `message`; Ok marks it OK (only when the outcome is
  // known to be a success: unset is the default).
  void SetError(absl::string_view message);
  void SetOk();
  // Ends it (at `at`) and hands it to the tracer; later calls do nothing.
  void End(absl::Time at = absl::Now());

 private:
  friend class Tracer;
  Tracer* tracer_ = nullptr;
  SpanContext context_;
  std::unique_ptr<opentelemetry::proto::trace::v1::Span> data_;
};

// Sends batches to a collector. Called on the tracer's thread only.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual absl::Status Export(
      const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request) = 0;
};

struct TracerOptions {
  // Root spans (no parent) are recorded with this probability, decided by
  // the trace id so that every node decides alike; a span with a parent is
  // recorded when its parent was (parent-based sampling).
  double sample_ratio = 1.0;
  // The Resource's attributes: service.name, service.instance.id, ...
  std::vector<std::pair<std::string, std::string>> resource;
  // Ended spans waiting for export, at most; more are dropped and counted.
  size_t max_queue = 2048;
  // Spans per export request, at most.
  size_t max_batch = 512;
  // A batch goes out when it is full or this long after its first span.
  absl::Duration export_interval = absl::Seconds(1);
  // What the tracer's destructor waits for the last batches, at most.
  absl::Duration shutdown_timeout = absl::Seconds(5);
  // Told of spans exported, dropped (queue full) and failed (the collector
  // refused or could not be reached). Must outlive the tracer.
  Telemetry* telemetry = nullptr;
};

class Tracer {
 public:
  // Starts the export thread.
  Tracer(TracerOptions options, std::unique_ptr<SpanExporter> exporter);
  // Exports what is queued (for up to shutdown_timeout), then stops.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // The tracer of a node with tracing off: records nothing; a span started
  // under a parent carries the parent's context, so callers' traces pass
  // through unchanged.
  static Tracer* Disabled();

  bool enabled() const { return exporter_ != nullptr; }

  // A span named `name` of `kind`, child of `parent` (nullptr or invalid: a
  // new trace). `remote`: the parent came from another process.
  Span StartSpan(absl::string_view name, SpanKind kind, const SpanContext* parent,
                 bool remote = false, absl::Time start = absl::Now());

  // Spans ended and queued, exported, dropped since start.
  uint64_t exported() const;
  uint64_t dropped() const;

 private:
  friend class Span;
  Tracer() : options_(), exporter_(nullptr) {}  // Disabled()
  void Enqueue(std::unique_ptr<opentelemetry::proto::trace::v1::Span> span);
  void Run();
  void Send(std::vector<std::unique_ptr<opentelemetry::proto::trace::v1::Span>>& batch);

  const TracerOptions options_;
  const std::unique_ptr<SpanExporter> exporter_;
  // The Resource and scope every request carries.
  opentelemetry::proto::resource::v1::Resource resource_;

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<opentelemetry::proto::trace::v1::Span>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t exported_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  // The last export failed (only the export thread reads and writes it).
  bool failing_ = false;
  std::thread thread_;
};

// A new random span id (never all zeros).
std::array<uint8_t, 8> NewSpanId();
// A new random trace id (never all zeros).
std::array<uint8_t, 16> NewTraceId();

}  // namespace a2amesh::trace

#endif  // A2AMESH_TRACE_TRACER_H_
