#include "metrics/exposition.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace a2amesh::metrics {
namespace {

// A label value as the text format quotes it.
void AppendEscaped(std::string* out, const std::string& value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

// The shortest text that reads back as `value` (absl::StrCat keeps only six
// significant digits: a timestamp or a large counter would lose its ones).
std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return error == std::errc() ? std::string(buffer, end) : absl::StrCat(value);
}

}  // namespace

void TextWriter::Family(const std::string& name, const std::string& help, const char* type) {
  absl::StrAppend(&out_, "# HELP ", name, " ");
  for (char c : help) {
    if (c == '\\') {
      out_.append("\\\\");
    } else if (c == '\n') {
      out_.append("\\n");
    } else {
      out_.push_back(c);
    }
  }
  absl::StrAppend(&out_, "\n# TYPE ", name, " ", type, "\n");
}

void TextWriter::Sample(const std::string& name, const Labels& labels, double value) {
  out_.append(name);
  if (!labels.empty()) {
    out_.push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_.push_back(',');
      absl::StrAppend(&out_, labels[i].first, "=\"");
      AppendEscaped(&out_, labels[i].second);
      out_.push_back('"');
    }
    out_.push_back('}');
  }
  absl::StrAppend(&out_, " ", Number(value), "\n");
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

void Histogram::Write(TextWriter& writer, const std::string& name, const Labels& labels) const {
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    with_le.back().second = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
    writer.Sample(name + "_bucket", with_le, static_cast<double>(cumulative));
  }
  writer.Sample(name + "_sum", labels, sum_.load(std::memory_order_relaxed));
  writer.Sample(name + "_count", labels, static_cast<double>(cumulative));
}

template <>
std::unique_ptr<Counter> Family<Counter>::Make() const {
  return std::make_unique<Counter>();
}

template <>
std::unique_ptr<Histogram> Family<Histogram>::Make() const {
  return std::make_unique<Histogram>(bounds_);
}

template <>
void Family<Counter>::Write(TextWriter& writer) const {
  writer.Family(name_, help_, "counter");
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, counter] : metrics_) {
    writer.Sample(name_, labels, static_cast<double>(counter->value()));
  }
}

template <>
void Family<Histogram>::Write(TextWriter& writer) const {
  writer.Family(name_, help_, "histogram");
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, histogram] : metrics_) {
    histogram->Write(writer, name_, labels);
  }
}

}  // namespace a2amesh::metrics
