#include "trace/span_context.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace a2amesh::trace {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is not allowed
}

// Decodes exactly 2 * N lowercase hex digits into `out`.
template <size_t N>
bool DecodeHex(absl::string_view hex, std::array<uint8_t, N>* out) {
  if (hex.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    const int high = HexDigit(hex[2 * i]);
    const int low = HexDigit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    (*out)[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

template <size_t N>
std::string EncodeHex(const std::array<uint8_t, N>& bytes) {
  std::string hex(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    hex[2 * i] = kHex[bytes[i] >> 4];
    hex[2 * i + 1] = kHex[bytes[i] & 0x0f];
  }
  return hex;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

bool WellFormedTracestate(absl::string_view tracestate) {
  if (tracestate.size() > 512) return false;
  int members = 0;
  for (absl::string_view member : absl::StrSplit(tracestate, ',')) {
    member = absl::StripAsciiWhitespace(member);
    if (member.empty()) continue;
    if (++members > 32 || member.find('=') == absl::string_view::npos) return false;
  }
  return std::all_of(tracestate.begin(), tracestate.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

}  // namespace

bool SpanContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }

std::string SpanContext::TraceIdHex() const { return EncodeHex(trace_id); }

std::string SpanContext::SpanIdHex() const { return EncodeHex(span_id); }

std::optional<SpanContext> ParseTraceparent(absl::string_view traceparent) {
  traceparent = absl::StripAsciiWhitespace(traceparent);
  // version "-" trace-id "-" parent-id "-" trace-flags: 55 characters in
  // version 00; later versions may append "-" and more.
  if (traceparent.size() < 55) return std::nullopt;
  std::array<uint8_t, 1> version;
  if (!DecodeHex(traceparent.substr(0, 2), &version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0x00 && traceparent.size() != 55) return std::nullopt;
  if (traceparent.size() > 55 && traceparent[55] != '-') return std::nullopt;
  if (traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-') {
    return std::nullopt;
  }
  SpanContext context;
  std::array<uint8_t, 1> flags;
  if (!DecodeHex(traceparent.substr(3, 32), &context.trace_id) ||
      !DecodeHex(traceparent.substr(36, 16), &context.span_id) ||
      !DecodeHex(traceparent.substr(53, 2), &flags) || !context.valid()) {
    return std::nullopt;
  }
  // Only the flags Trace Context defines (sampled, random) are passed on.
  context.flags = flags[0] & 0x03;
  return context;
}

std::optional<SpanContext> ParseTraceContext(absl::string_view traceparent,
                                             absl::string_view tracestate) {
  std::optional<SpanContext> context = ParseTraceparent(traceparent);
  if (context.has_value() && WellFormedTracestate(tracestate)) {
    context->trace_state = std::string(absl::StripAsciiWhitespace(tracestate));
  }
  return context;
}

std::string FormatTraceparent(const SpanContext& context) {
  if (!context.valid()) return "";
  std::string out = "00-";
  out += EncodeHex(context.trace_id);
  out += '-';
  out += EncodeHex(context.span_id);
  out += '-';
  out += kHex[context.flags >> 4];
  out += kHex[context.flags & 0x0f];
  return out;
}

std::string SampledTraceId(absl::string_view traceparent) {
  std::optional<SpanContext> context = ParseTraceparent(traceparent);
  return context.has_value() && context->sampled() ? context->TraceIdHex() : std::string();
}

}  // namespace a2amesh::trace
