#include "metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

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

const char* ContentType(Format format) {
  return format == Format::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

Format NegotiateFormat(const std::string* accept) {
  if (accept == nullptr) return Format::kText;
  for (absl::string_view range : absl::StrSplit(*accept, ',')) {
    std::vector<absl::string_view> params = absl::StrSplit(range, ';');
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(params[0]),
                                "application/openmetrics-text")) {
      continue;
    }
    double q = 1;
    for (size_t i = 1; i < params.size(); ++i) {
      absl::string_view param = absl::StripAsciiWhitespace(params[i]);
      if (absl::ConsumePrefix(&param, "q=") && !absl::SimpleAtod(param, &q)) q = 0;
    }
    if (q > 0) return Format::kOpenMetrics;
  }
  return Format::kText;
}

void TextWriter::Family(const std::string& name, const std::string& help, const char* type) {
  absl::string_view family = name;
  if (format_ == Format::kOpenMetrics && absl::string_view(type) == "counter") {
    absl::ConsumeSuffix(&family, "_total");
  }
  absl::StrAppend(&out_, "# HELP ", family, " ");
  for (char c : help) {
    if (c == '\\') {
      out_.append("\\\\");
    } else if (c == '\n') {
      out_.append("\\n");
    } else if (c == '"' && format_ == Format::kOpenMetrics) {
      out_.append("\\\"");  // OpenMetrics escapes HELP as it does label values
    } else {
      out_.push_back(c);
    }
  }
  absl::StrAppend(&out_, "\n# TYPE ", family, " ", type, "\n");
}

std::string TextWriter::Take() {
  if (format_ == Format::kOpenMetrics) out_.append("# EOF\n");
  return std::move(out_);
}

void TextWriter::Sample(const std::string& name, const Labels& labels, double value,
                        const Exemplar* exemplar) {
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
  absl::StrAppend(&out_, " ", Number(value));
  if (exemplar != nullptr && format_ == Format::kOpenMetrics) {
    absl::StrAppend(&out_, " # {trace_id=\"",
                    absl::string_view(exemplar->trace_id.data(), exemplar->trace_id.size()), "\"} ",
                    Number(exemplar->value), " ",
                    Number(static_cast<double>(absl::ToUnixMicros(exemplar->at)) / 1e6));
  }
  out_.push_back('\n');
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value, absl::string_view trace_id) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
  if (trace_id.size() != sizeof(Exemplar::trace_id)) return;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&exemplars_mu_);
  if (exemplars_ == nullptr) exemplars_ = std::make_unique<Exemplar[]>(bounds_.size() + 1);
  Exemplar& exemplar = exemplars_[bucket];
  std::copy(trace_id.begin(), trace_id.end(), exemplar.trace_id.begin());
  exemplar.value = value;
  exemplar.at = now;
}

void Histogram::Write(TextWriter& writer, const std::string& name, const Labels& labels) const {
  std::vector<Exemplar> exemplars;
  if (writer.format() == Format::kOpenMetrics) {
    absl::MutexLock lock(&exemplars_mu_);
    if (exemplars_ != nullptr) exemplars.assign(&exemplars_[0], &exemplars_[bounds_.size() + 1]);
  }
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    with_le.back().second = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
    const Exemplar* exemplar =
        i < exemplars.size() && exemplars[i].trace_id[0] != 0 ? &exemplars[i] : nullptr;
    writer.Sample(name + "_bucket", with_le, static_cast<double>(cumulative), exemplar);
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
