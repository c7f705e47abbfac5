#ifndef A2AMESH_METRICS_EXPOSITION_H_
#define A2AMESH_METRICS_EXPOSITION_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

// Counters, histograms and the Prometheus text exposition format (0.0.4): the
// little of a Prometheus client library a node needs, so that meshd links no
// metrics library (and can be linked fully static).
namespace a2amesh::metrics {

// Label names and values, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes families of samples in the text format.
class TextWriter {
 public:
  // "# HELP" and "# TYPE" lines; `type` is counter, gauge or histogram.
  void Family(const std::string& name, const std::string& help, const char* type);
  void Sample(const std::string& name, const Labels& labels, double value);
  std::string Take() { return std::move(out_); }

 private:
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
  void Observe(double value);
  void Write(TextWriter& writer, const std::string& name, const Labels& labels) const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
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
