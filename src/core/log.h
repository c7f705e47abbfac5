#ifndef A2AMESH_CORE_LOG_H_
#define A2AMESH_CORE_LOG_H_

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh {

// Structured logs: one line per meaningful event, with key=value fields, as text
// or as JSON (one object per line). The installed Abseil has no absl/log, so this
// is the project's logging shim.
//
//   A2AMESH_LOG(Info, "agent registered").With("agent", id).With("skills", n);
//
// The line is written when the full expression ends. Thread-safe.

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// Process-wide settings; main() sets them once before starting threads. Logging
// is the one process-wide facility, as in every server of this kind.
void SetLogLevel(LogLevel level);
void SetLogFormat(LogFormat format);
bool LogEnabled(LogLevel level);

// Replaces where finished lines go (default: stderr). For tests; pass nullptr to
// restore stderr.
using LogSink = absl::AnyInvocable<void(LogLevel, absl::string_view line)>;
void SetLogSinkForTesting(LogSink sink);

// Appends `s` to `out` as a JSON string literal (quotes and escapes).
void AppendJsonString(std::string* out, absl::string_view s);

// Names the trace (32 hex digits, W3C trace id) of what this thread does for
// a scope: the log lines written in it carry it as `trace_id`
// (docs/tracing.md). Scopes nest; "" (or anything else than 32 characters)
// means none. Set() changes it within the scope.
class ScopedLogTrace {
 public:
  explicit ScopedLogTrace(absl::string_view trace_id = "");
  ~ScopedLogTrace();
  ScopedLogTrace(const ScopedLogTrace&) = delete;
  ScopedLogTrace& operator=(const ScopedLogTrace&) = delete;
  void Set(absl::string_view trace_id);

 private:
  char previous_[32];
  bool had_previous_;
};

class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view event);
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();

  LogLine& With(absl::string_view key, absl::string_view value);
  LogLine& With(absl::string_view key, const char* value) {
    return With(key, absl::string_view(value));
  }
  LogLine& With(absl::string_view key, const std::string& value) {
    return With(key, absl::string_view(value));
  }
  LogLine& With(absl::string_view key, bool value);
  LogLine& With(absl::string_view key, double value);
  LogLine& With(absl::string_view key, const absl::Status& status);
  LogLine& With(absl::string_view key, absl::Duration value);
  template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
  LogLine& With(absl::string_view key, Int value) {
    return WithInteger(key, static_cast<int64_t>(value));
  }

 private:
  LogLine& WithInteger(absl::string_view key, int64_t value);
  LogLine& WithRaw(absl::string_view key, absl::string_view json_value, bool quote_text);

  LogLevel level_;
  std::string line_;
  bool has_trace_ = false;  // the caller named the trace_id itself
};

}  // namespace a2amesh

#define A2AMESH_LOG(level, event)                              \
  if (!::a2amesh::LogEnabled(::a2amesh::LogLevel::k##level)) { \
  } else                                                       \
    ::a2amesh::LogLine(::a2amesh::LogLevel::k##level, event)

#endif  // A2AMESH_CORE_LOG_H_
