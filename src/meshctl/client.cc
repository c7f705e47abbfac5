#include "meshctl/client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/a2a_error.h"
#include "rpc/grpc_status.h"
#include "security/tls.h"

namespace a2amesh::meshctl {

absl::StatusOr<std::string> NodeTarget(const std::string& server, bool* tls) {
  constexpr char kDefaultPort[] = "7400";
  absl::string_view rest = server;
  auto bad = [&server](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--server: '", server, "' ", why));
  };
  for (absl::string_view scheme : {"unix:", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(rest, scheme)) return server;  // gRPC's own target syntax
  }
  if (absl::ConsumePrefix(&rest, "https://")) {
    *tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://") && absl::StrContains(rest, "://")) {
    return bad("has a scheme meshctl does not know (http:// or https://, or none)");
  }
  if (absl::EndsWith(rest, "/")) rest.remove_suffix(1);
  if (absl::StrContains(rest, "/")) return bad("has a path: a node is host[:port]");
  if (rest.empty()) return bad("names no host");
  std::string host(rest);
  std::string port;
  if (absl::StartsWith(rest, "[")) {  // [v6] or [v6]:port
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) return bad("opens a [ it does not close");
    host = std::string(rest.substr(0, close + 1));
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return bad("has text after ]");
    port = std::string(after);
  } else if (std::count(rest.begin(), rest.end(), ':') > 1) {
    host = absl::StrCat("[", rest, "]");  // a bare IPv6 address: no port in it
  } else if (const size_t colon = rest.find(':'); colon != absl::string_view::npos) {
    host = std::string(rest.substr(0, colon));
    port = std::string(rest.substr(colon + 1));
  }
  if (host.empty() || host == "[]") return bad("names no host");
  if (port.empty()) port = kDefaultPort;
  int number = 0;
  if (!absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
    return bad(absl::StrCat("has a port that is not 1 to 65535: '", port, "'"));
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  security::ClientTlsOptions tls;
  tls.enabled = options.tls || !options.ca_file.empty() || !options.cert_file.empty();
  tls.ca_file = options.ca_file;
  tls.cert_file = options.cert_file;
  tls.key_file = options.key_file;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security::ClientCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  // Responses carry whole catalogs and task trees.
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  return std::unique_ptr<Client>(
      new Client(options, grpc::CreateCustomChannel(options.server, *credentials, args)));
}

std::unique_ptr<grpc::ClientContext> Client::Context(absl::Duration default_timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("a2a-version", "1.0");
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  absl::Duration timeout = options_.timeout.value_or(default_timeout);
  if (timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  return context;
}

std::string DescribeError(const grpc::Status& status, const std::string& server) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (status.error_message().find("failed to connect") != std::string::npos ||
       status.error_message().find("DNS resolution failed") != std::string::npos ||
       status.error_message().find("Connection refused") != std::string::npos)) {
    return absl::StrCat("cannot reach a node at ", server,
                        " (UNAVAILABLE: ", status.error_message(),
                        "); check --server or A2AMESH_SERVER");
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::StrCat("no answer from ", server, " within the deadline (DEADLINE_EXCEEDED); ",
                        "raise --timeout");
  }
  std::string text =
      absl::StrCat(status.error_message(), " (", StatusCodeName(status.error_code()));
  absl::Status converted = rpc::FromGrpcStatus(status);
  if (std::optional<A2aError> error = GetA2aError(converted); error.has_value()) {
    absl::StrAppend(&text, ", A2A ", A2aErrorReason(*error));
  }
  return text + ")";
}

}  // namespace a2amesh::meshctl
