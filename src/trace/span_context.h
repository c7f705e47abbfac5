#ifndef A2AMESH_TRACE_SPAN_CONTEXT_H_
#define A2AMESH_TRACE_SPAN_CONTEXT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the identity of a
// span as it crosses a process boundary, in the `traceparent` and
// `tracestate` headers (HTTP) or metadata keys (gRPC), and in the fields of
// our own protos that carry it (peer.proto HandoffStart, agent_host.proto
// TaskAssignment and DelegateRequest, store.proto TaskInfo).
namespace a2amesh::trace {

inline constexpr absl::string_view kTraceparentKey = "traceparent";
inline constexpr absl::string_view kTracestateKey = "tracestate";

struct SpanContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  // W3C trace flags; bit 0: sampled.
  uint8_t flags = 0;
  // The vendors' list, passed on as received (dropped if malformed).
  std::string trace_state;

  // Both ids are set (neither is all zeros).
  bool valid() const;
  bool sampled() const { return (flags & 0x01) != 0; }
  // 32 and 16 lowercase hex digits.
  std::string TraceIdHex() const;
  std::string SpanIdHex() const;

  friend bool operator==(const SpanContext& a, const SpanContext& b) {
    return a.trace_id == b.trace_id && a.span_id == b.span_id && a.flags == b.flags &&
           a.trace_state == b.trace_state;
  }
};

// Parses a traceparent header: "00-<32 hex trace id>-<16 hex span id>-<2 hex
// flags>", lowercase. A later version (01 to fe) is read by its first four
// fields, as the specification asks; version ff, uppercase hex, all-zero ids
// and anything malformed give nullopt (the receiver then starts a new trace).
std::optional<SpanContext> ParseTraceparent(absl::string_view traceparent);

// Reads `traceparent` (and `tracestate`, kept only when it is well formed:
// at most 32 list members and 512 characters of printable ASCII).
std::optional<SpanContext> ParseTraceContext(absl::string_view traceparent,
                                             absl::string_view tracestate);

// "00-<trace id>-<span id>-<flags>"; empty for an invalid context.
std::string FormatTraceparent(const SpanContext& context);

// The trace id (32 hex digits) of `traceparent` if it is well formed and its
// flags say sampled, else "": what a metric's exemplar names.
std::string SampledTraceId(absl::string_view traceparent);

}  // namespace a2amesh::trace

#endif  // A2AMESH_TRACE_SPAN_CONTEXT_H_
