#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace a2amesh {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

absl::Mutex g_sink_mu;
LogSink* g_sink ABSL_GUARDED_BY(g_sink_mu) = nullptr;

bool IsJson() {
  return g_format.load(std::memory_order_relaxed) == static_cast<int>(LogFormat::kJson);
}

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuotes(absl::string_view s) {
  if (s.empty()) {
    return true;
  }
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=') {
      return true;
    }
  }
  return false;
}

}  // namespace

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }
bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void SetLogSinkForTesting(LogSink sink) {
  absl::MutexLock lock(&g_sink_mu);
  delete g_sink;
  g_sink = sink ? new LogSink(std::move(sink)) : nullptr;
}

namespace {

// The trace of what this thread does (ScopedLogTrace).
struct ThreadTrace {
  char id[32];
  bool set = false;
};
thread_local ThreadTrace t_trace;

}  // namespace

ScopedLogTrace::ScopedLogTrace(absl::string_view trace_id) : had_previous_(t_trace.set) {
  if (had_previous_) std::memcpy(previous_, t_trace.id, sizeof(previous_));
  Set(trace_id);
}

ScopedLogTrace::~ScopedLogTrace() {
  t_trace.set = had_previous_;
  if (had_previous_) std::memcpy(t_trace.id, previous_, sizeof(previous_));
}

void ScopedLogTrace::Set(absl::string_view trace_id) {
  t_trace.set = trace_id.size() == sizeof(t_trace.id);
  if (t_trace.set) std::memcpy(t_trace.id, trace_id.data(), sizeof(t_trace.id));
}

LogLine::LogLine(LogLevel level, absl::string_view event) : level_(level) {
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  if (IsJson()) {
    line_ = absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", LevelName(level), "\",\"msg\":");
    AppendJsonString(&line_, event);
  } else {
    line_ = absl::StrFormat("%s %-5s %s", ts, LevelName(level), event);
  }
}

LogLine::~LogLine() {
  if (t_trace.set && !has_trace_) {
    WithRaw("trace_id", absl::string_view(t_trace.id, sizeof(t_trace.id)), true);
  }
  if (IsJson()) {
    line_.push_back('}');
  }
  line_.push_back('\n');
  absl::MutexLock lock(&g_sink_mu);
  if (g_sink != nullptr) {
    (*g_sink)(level_, line_);
    return;
  }
  std::fwrite(line_.data(), 1, line_.size(), stderr);
  std::fflush(stderr);
}

LogLine& LogLine::WithRaw(absl::string_view key, absl::string_view value, bool quote_text) {
  has_trace_ = has_trace_ || key == "trace_id";
  if (IsJson()) {
    line_.push_back(',');
    AppendJsonString(&line_, key);
    line_.push_back(':');
    if (quote_text) {
      AppendJsonString(&line_, value);
    } else {
      line_.append(value.data(), value.size());
    }
    return *this;
  }
  absl::StrAppend(&line_, " ", key, "=");
  if (quote_text && NeedsQuotes(value)) {
    AppendJsonString(&line_, value);
  } else {
    line_.append(value.data(), value.size());
  }
  return *this;
}

LogLine& LogLine::With(absl::string_view key, absl::string_view value) {
  return WithRaw(key, value, /*quote_text=*/true);
}

LogLine& LogLine::With(absl::string_view key, bool value) {
  return WithRaw(key, value ? "true" : "false", /*quote_text=*/false);
}

LogLine& LogLine::With(absl::string_view key, double value) {
  return WithRaw(key, absl::StrFormat("%.6g", value), /*quote_text=*/false);
}

LogLine& LogLine::WithInteger(absl::string_view key, int64_t value) {
  return WithRaw(key, absl::StrCat(value), /*quote_text=*/false);
}

LogLine& LogLine::With(absl::string_view key, const absl::Status& status) {
  return WithRaw(key, status.ToString(absl::StatusToStringMode::kWithNoExtraData),
                 /*quote_text=*/true);
}

LogLine& LogLine::With(absl::string_view key, absl::Duration value) {
  return WithRaw(key, absl::FormatDuration(value), /*quote_text=*/true);
}

}  // namespace a2amesh
