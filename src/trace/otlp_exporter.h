#ifndef A2AMESH_TRACE_OTLP_EXPORTER_H_
#define A2AMESH_TRACE_OTLP_EXPORTER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "trace/tracer.h"

namespace a2amesh::trace {

struct OtlpOptions {
  enum class Protocol { kGrpc, kHttpProtobuf };
  // gRPC: "host:port", "http://host:port" (plaintext) or "https://host:port"
  // (TLS). HTTP: "http(s)://host:port" (spans go to /v1/traces) or a URL
  // with its own path (used as is).
  std::string endpoint;
  Protocol protocol = Protocol::kGrpc;
  // Sent with every export (gRPC metadata, HTTP headers): a collector's
  // authentication, e.g. {"authorization", "Bearer ..."}. Names are sent
  // lowercase.
  std::vector<std::pair<std::string, std::string>> headers;
  // PEM roots the collector's certificate must chain to (empty: the
  // system's). Setting it turns TLS on for a gRPC endpoint without a scheme.
  std::string ca_file;
  absl::Duration timeout = absl::Seconds(10);
};

// "grpc" or "http/protobuf" (the names of OTEL_EXPORTER_OTLP_PROTOCOL).
absl::StatusOr<OtlpOptions::Protocol> ParseOtlpProtocol(absl::string_view name);

// An exporter that sends ExportTraceServiceRequests to an OpenTelemetry
// collector over OTLP/gRPC (TraceService.Export) or OTLP/HTTP (a protobuf
// POST, through HTTPS_PROXY/NO_PROXY as libcurl honours them).
// INVALID_ARGUMENT naming what is wrong with `options`.
absl::StatusOr<std::unique_ptr<SpanExporter>> MakeOtlpExporter(OtlpOptions options);

}  // namespace a2amesh::trace

#endif  // A2AMESH_TRACE_OTLP_EXPORTER_H_
