#ifndef A2AMESH_METRICS_EXPOSITION_H_
#define A2AMESH_METRICS_EXPOSITION_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

// Counters, histograms and their exposition in the Prometheus text format
// (0.0.4) or in OpenMetrics 1.0 (with exemplars, for a scraper that asks for
// it): the little of a Prometheus client library a node needs, so that meshd
// links no metrics library (and can be linked fully static).
namespace a2amesh::metrics {

// Label names and values, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Format {
  kText,         // text/plain; version=0.0.4
  kOpenMetrics,  // application/openmetrics-text; version=1.0.0
};

// The Content-Type of `format`.
const char* ContentType(Format format);

// Which format a scraper's Accept header asks for: OpenMetrics if it accepts
// application/openmetrics-text (q > 0), else the text format. `accept` may be
// null (no header).
Format NegotiateFormat(const std::string* accept);

// An observation's sampled trace (an OpenMetrics exemplar): what links a
// histogram's bucket to a trace that shows one of its slow (or fast) calls.
struct Exemplar {
  std::array<char, 32> trace_id{};  // W3C trace id, lowercase hex
  double value = 0;
  absl::Time at;
};

// Writes families of samples in one format.
class TextWriter {
 public:
  explicit TextWriter(Format format = Format::kText) : format_(format) {}

  Format format() const { return format_; }
  // "# HELP" and "# TYPE" lines; `type` is counter, gauge or histogram. A
  // counter's name ends in _total, which OpenMetrics leaves out of these
  // lines (its samples keep it).
  void Family(const std::string& name, const std::string& help, const char* type);
  // `exemplar` is written in OpenMetrics only (the text format has none).
  void Sample(const std::string& name, const Labels& labels, double value,
              const Exemplar* exemplar = nullptr);
  // What was written (OpenMetrics: ended with "# EOF").
  std::string Take();

 private:
  const Format format_;
  std::string out_;
};

class Counter {
 public:
  void Increment() { value_.fetch_add(1, std::memory_order_relaxed); }
  void Add(uint64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  // `trace_id`: the W3C trace id (32 hex digits) of the sampled trace the
  // observation belongs to, or empty. The last one of each bucket is kept as
  // its exemplar.
  void Observe(double value, absl::string_view trace_id = "");
  void Write(TextWriter& writer, const std::string& name, const Labels& labels) const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
  // Per bucket like counts_, made at the first exemplar: a histogram that
  // never sees a sampled trace (tracing off) costs nothing more.
  mutable absl::Mutex exemplars_mu_;
  std::unique_ptr<Exemplar[]> exemplars_ ABSL_GUARDED_BY(exemplars_mu_);
};

// Metrics of one name, one per set of label values. Add finds or makes the
// one for `labels`; what it returns lives as long as the family. Thread-safe.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<double> bounds = {})
      : name_(std::move(name)), help_(std::move(help)), bounds_(std::move(bounds)) {}

  T& Add(const Labels& labels) {
    absl::MutexLock lock(&mu_);
    auto it = metrics_.find(labels);
    if (it == metrics_.end()) {
      it = metrics_.emplace(labels, Make()).first;
    }
    return *it->second;
  }

  void Write(TextWriter& writer) const;

 private:
  std::unique_ptr<T> Make() const;

  const std::string name_;
  const std::string help_;
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> metrics_ ABSL_GUARDED_BY(mu_);
};

template <>
std::unique_ptr<Counter> Family<Counter>::Make() const;
template <>
std::unique_ptr<Histogram> Family<Histogram>::Make() const;
template <>
void Family<Counter>::Write(TextWriter& writer) const;
template <>
void Family<Histogram>::Write(TextWriter& writer) const;

}  // namespace a2amesh::metrics

#endif  // A2AMESH_METRICS_EXPOSITION_H_
