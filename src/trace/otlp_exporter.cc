#include "trace/otlp_exporter.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "http/fetch.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace a2amesh::trace {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(absl::StrCat("--otlp-ca-file ", path, ": cannot read it"));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class GrpcExporter final : public SpanExporter {
 public:
  GrpcExporter(const OtlpOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options), stub_(collector::TraceService::NewStub(std::move(channel))) {}

  absl::Status Export(const collector::ExportTraceServiceRequest& request) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
    for (const auto& [key, value] : options_.headers) context.AddMetadata(key, value);
    collector::ExportTraceServiceResponse response;
    grpc::Status status = stub_->Export(&context, request, &response);
    if (!status.ok()) {
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("OTLP/gRPC ", options_.endpoint, ": ", status.error_message()));
    }
    if (response.partial_success().rejected_spans() > 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("OTLP/gRPC ", options_.endpoint, ": the collector rejected ",
                       response.partial_success().rejected_spans(),
                       " spans: ", response.partial_success().error_message()));
    }
    return absl::OkStatus();
  }

 private:
  const OtlpOptions options_;
  std::unique_ptr<collector::TraceService::Stub> stub_;
};

class HttpExporter final : public SpanExporter {
 public:
  HttpExporter(const OtlpOptions& options, std::string url) : options_(options) {
    fetch_.url = std::move(url);
    fetch_.protocols = "http,https";
    fetch_.ca_file = options.ca_file;
    fetch_.post_content_type = "application/x-protobuf";
    fetch_.timeout = options.timeout;
    fetch_.headers.push_back("Accept: application/x-protobuf");
    for (const auto& [key, value] : options.headers) {
      fetch_.headers.push_back(absl::StrCat(key, ": ", value));
    }
  }

  absl::Status Export(const collector::ExportTraceServiceRequest& request) override {
    http::FetchOptions fetch = fetch_;
    request.SerializeToString(&fetch.body);
    absl::StatusOr<http::FetchResult> result = http::Fetch(fetch);
    if (!result.ok()) {
      return absl::UnavailableError(absl::StrCat("OTLP/HTTP ", result.status().message()));
    }
    if (result->status < 200 || result->status > 299) {
      return absl::UnavailableError(
          absl::StrCat("OTLP/HTTP ", fetch.url, ": HTTP ", result->status));
    }
    return absl::OkStatus();
  }

 private:
  const OtlpOptions options_;
  http::FetchOptions fetch_;
};

}  // namespace

absl::StatusOr<OtlpOptions::Protocol> ParseOtlpProtocol(absl::string_view name) {
  if (name == "grpc") return OtlpOptions::Protocol::kGrpc;
  if (name == "http/protobuf") return OtlpOptions::Protocol::kHttpProtobuf;
  return absl::InvalidArgumentError(
      absl::StrCat("--otlp-protocol: \"", name, "\" is not one of grpc, http/protobuf"));
}

absl::StatusOr<std::unique_ptr<SpanExporter>> MakeOtlpExporter(OtlpOptions options) {
  if (options.endpoint.empty()) {
    return absl::InvalidArgumentError("--otlp-endpoint: is empty");
  }
  for (auto& [key, value] : options.headers) {
    if (key.empty() || key.find_first_of(" :\t\r\n") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--otlp-header \"", key,
                       "\": a header needs a name without spaces or colons, and "
                       "its value on one line"));
    }
    absl::AsciiStrToLower(&key);  // gRPC metadata keys are lowercase
  }
  absl::string_view endpoint = options.endpoint;
  const bool https = absl::ConsumePrefix(&endpoint, "https://");
  const bool http = !https && absl::ConsumePrefix(&endpoint, "http://");
  if (options.protocol == OtlpOptions::Protocol::kHttpProtobuf) {
    if (!https && !http) {
      return absl::InvalidArgumentError(
          absl::StrCat("--otlp-endpoint ", options.endpoint,
                       ": OTLP/HTTP needs a URL (http://host:4318 or https://...)"));
    }
    if (!http::CanFetch()) {
      return absl::InvalidArgumentError(
          "--otlp-protocol http/protobuf: this meshd was built without libcurl (a fully static "
          "build); use grpc");
    }
    std::string url = options.endpoint;
    if (endpoint.find('/') == absl::string_view::npos) {
      url = absl::StrCat(absl::StripSuffix(url, "/"), "/v1/traces");
    } else if (absl::EndsWith(endpoint, "/") && endpoint.find('/') == endpoint.size() - 1) {
      url = absl::StrCat(url, "v1/traces");
    }
    return std::unique_ptr<SpanExporter>(new HttpExporter(options, std::move(url)));
  }
  std::string target(absl::StripSuffix(endpoint, "/"));
  if (target.empty() || target.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--otlp-endpoint ", options.endpoint,
                                                   ": OTLP/gRPC needs host:port (optionally after "
                                                   "http:// or https://), without a path"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (https || !options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      absl::StatusOr<std::string> roots = ReadFile(options.ca_file);
      if (!roots.ok()) return roots.status();
      ssl.pem_root_certs = *std::move(roots);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return std::unique_ptr<SpanExporter>(
      new GrpcExporter(options, grpc::CreateChannel(target, credentials)));
}

}  // namespace a2amesh::trace
