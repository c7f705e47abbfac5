#include "trace/tracer.h"

#include <cstring>

#include "absl/random/random.h"
#include "core/log.h"
#include "core/version.h"

namespace a2amesh::trace {
namespace {

namespace otlp = ::opentelemetry::proto;

uint64_t UnixNanos(absl::Time t) { return static_cast<uint64_t>(absl::ToUnixNanos(t)); }

absl::BitGen& Random() {
  thread_local absl::BitGen gen;
  return gen;
}

template <size_t N>
std::array<uint8_t, N> RandomNonZero() {
  std::array<uint8_t, N> id;
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t word = absl::Uniform<uint64_t>(Random());
      std::memcpy(id.data() + i, &word, std::min<size_t>(8, N - i));
    }
  } while (std::all_of(id.begin(), id.end(), [](uint8_t b) { return b == 0; }));
  return id;
}

// The trace id's last 7 bytes (56 bits of randomness, W3C Trace Context
// level 2) against the ratio: every node samples a trace alike.
bool SampledByRatio(const std::array<uint8_t, 16>& trace_id, double ratio) {
  if (ratio >= 1.0) return true;
  if (ratio <= 0.0) return false;
  uint64_t random = 0;
  for (size_t i = 9; i < 16; ++i) random = random << 8 | trace_id[i];
  return static_cast<double>(random) < ratio * static_cast<double>(uint64_t{1} << 56);
}

otlp::common::v1::KeyValue* AddAttribute(
    google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attributes,
    absl::string_view key) {
  for (auto& attribute : *attributes) {
    if (attribute.key() == key) return &attribute;
  }
  auto* attribute = attributes->Add();
  attribute->set_key(std::string(key));
  return attribute;
}

}  // namespace

std::array<uint8_t, 8> NewSpanId() { return RandomNonZero<8>(); }
std::array<uint8_t, 16> NewTraceId() { return RandomNonZero<16>(); }

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    End();
    tracer_ = other.tracer_;
    context_ = std::move(other.context_);
    data_ = std::move(other.data_);
    other.tracer_ = nullptr;
    other.context_ = SpanContext();
  }
  return *this;
}

void Span::SetName(absl::string_view name) {
  if (data_) data_->set_name(std::string(name));
}

void Span::SetAttribute(absl::string_view key, absl::string_view value) {
  if (data_) {
    AddAttribute(data_->mutable_attributes(), key)
        ->mutable_value()
        ->set_string_value(std::string(value));
  }
}

void Span::SetAttribute(absl::string_view key, int64_t value) {
  if (data_) AddAttribute(data_->mutable_attributes(), key)->mutable_value()->set_int_value(value);
}

void Span::SetAttribute(absl::string_view key, bool value) {
  if (data_) AddAttribute(data_->mutable_attributes(), key)->mutable_value()->set_bool_value(value);
}

void Span::AddEvent(absl::string_view name, absl::string_view key, absl::string_view value,
                    absl::Time at) {
  if (!data_) return;
  auto* event = data_->add_events();
  event->set_time_unix_nano(UnixNanos(at));
  event->set_name(std::string(name));
  if (!key.empty()) {
    auto* attribute = event->add_attributes();
    attribute->set_key(std::string(key));
    attribute->mutable_value()->set_string_value(std::string(value));
  }
}

void Span::SetError(absl::string_view message) {
  if (!data_) return;
  data_->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
  data_->mutable_status()->set_message(std::string(message));
}

void Span::SetOk() {
  if (data_) data_->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_OK);
}

void Span::End(absl::Time at) {
  if (!data_) return;
  data_->set_end_time_unix_nano(UnixNanos(at));
  tracer_->Enqueue(std::move(data_));
}

Tracer* Tracer::Disabled() {
  static Tracer* const disabled = new Tracer();
  return disabled;
}

Tracer::Tracer(TracerOptions options, std::unique_ptr<SpanExporter> exporter)
    : options_(std::move(options)), exporter_(std::move(exporter)) {
  for (const auto& [key, value] : options_.resource) {
    auto* attribute = resource_.add_attributes();
    attribute->set_key(key);
    attribute->mutable_value()->set_string_value(value);
  }
  if (exporter_ != nullptr) thread_ = std::thread([this] { Run(); });
}

Tracer::~Tracer() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

Span Tracer::StartSpan(absl::string_view name, SpanKind kind, const SpanContext* parent,
                       bool remote, absl::Time start) {
  Span span;
  const bool has_parent = parent != nullptr && parent->valid();
  if (!enabled()) {
    // Tracing off: the caller's context passes through unchanged.
    if (has_parent) span.context_ = *parent;
    return span;
  }
  span.tracer_ = this;
  span.context_.trace_id = has_parent ? parent->trace_id : NewTraceId();
  span.context_.span_id = NewSpanId();
  if (has_parent) span.context_.trace_state = parent->trace_state;
  const bool sampled = has_parent ? parent->sampled()
                                  : SampledByRatio(span.context_.trace_id, options_.sample_ratio);
  span.context_.flags = sampled ? 0x01 : 0x00;
  if (!sampled) return span;
  auto data = std::make_unique<otlp::trace::v1::Span>();
  data->set_trace_id(span.context_.trace_id.data(), span.context_.trace_id.size());
  data->set_span_id(span.context_.span_id.data(), span.context_.span_id.size());
  if (!span.context_.trace_state.empty()) data->set_trace_state(span.context_.trace_state);
  uint32_t flags = span.context_.flags | otlp::trace::v1::SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK;
  if (has_parent) {
    data->set_parent_span_id(parent->span_id.data(), parent->span_id.size());
    if (remote) flags |= otlp::trace::v1::SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK;
  }
  data->set_flags(flags);
  data->set_name(std::string(name));
  data->set_kind(static_cast<otlp::trace::v1::Span::SpanKind>(kind));
  data->set_start_time_unix_nano(UnixNanos(start));
  span.data_ = std::move(data);
  return span;
}

void Tracer::Enqueue(std::unique_ptr<otlp::trace::v1::Span> span) {
  bool dropped = false;
  {
    absl::MutexLock lock(&mu_);
    if (queue_.size() >= options_.max_queue || stopping_) {
      ++dropped_;
      dropped = true;
    } else {
      queue_.push_back(std::move(span));
    }
  }
  if (dropped && options_.telemetry != nullptr) options_.telemetry->TraceSpans("dropped", 1);
  // `span`, if dropped, is freed here, after the lock.
}

uint64_t Tracer::exported() const {
  absl::MutexLock lock(&mu_);
  return exported_;
}

uint64_t Tracer::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void Tracer::Run() {
  std::vector<std::unique_ptr<otlp::trace::v1::Span>> batch;
  absl::Time deadline = absl::InfiniteFuture();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Wakes when a batch is full, when the first span of one has waited
      // export_interval, or at shutdown.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.size() >= options_.max_batch;
      };
      auto waiting = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      if (queue_.empty()) mu_.Await(absl::Condition(&waiting));
      if (deadline == absl::InfiniteFuture()) deadline = absl::Now() + options_.export_interval;
      mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
      if (stopping_) break;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      deadline = queue_.empty() ? absl::InfiniteFuture() : absl::Now() + options_.export_interval;
    }
    Send(batch);
  }
  // Shutdown: what is queued goes out, for as long as shutdown_timeout allows.
  const absl::Time give_up = absl::Now() + options_.shutdown_timeout;
  while (absl::Now() < give_up) {
    {
      absl::MutexLock lock(&mu_);
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty()) break;
    Send(batch);
  }
}

void Tracer::Send(std::vector<std::unique_ptr<otlp::trace::v1::Span>>& batch) {
  if (batch.empty()) return;
  otlp::collector::trace::v1::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  *resource_spans->mutable_resource() = resource_;
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("a2a-mesh");
  scope_spans->mutable_scope()->set_version(std::string(Version()));
  for (auto& span : batch) scope_spans->mutable_spans()->AddAllocated(span.release());
  const uint64_t count = batch.size();
  batch.clear();
  absl::Status status = exporter_->Export(request);
  if (!status.ok()) {
    // Said once per outage; the metric counts every batch.
    if (!failing_) {
      A2AMESH_LOG(Warning, "spans not exported; retrying with the next batches")
          .With("spans", count)
          .With("error", status);
    }
    failing_ = true;
    if (options_.telemetry != nullptr) options_.telemetry->TraceSpans("failed", count);
    return;
  }
  if (failing_) {
    A2AMESH_LOG(Info, "spans exported again");
  }
  failing_ = false;
  {
    absl::MutexLock lock(&mu_);
    exported_ += count;
  }
  if (options_.telemetry != nullptr) options_.telemetry->TraceSpans("exported", count);
}

}  // namespace a2amesh::trace
