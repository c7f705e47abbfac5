#ifndef A2AMESH_A2A_HTTP_FRAMING_H_
#define A2AMESH_A2A_HTTP_FRAMING_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"
#include "http/http_server.h"

// How the HTTP bindings show results, errors and stream events: the error
// mapping of A2A v1.0.1 (HTTP statuses, JSON-RPC codes, google.rpc details)
// and the two framings, JSON-RPC 2.0 and HTTP+JSON (REST).
namespace a2amesh::a2a {

inline constexpr char kJsonType[] = "application/json";
inline constexpr char kA2aJsonType[] = "application/a2a+json";

// JSON-RPC 2.0's own error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// Implementation-defined server errors (JSON-RPC reserves -32000..-32099 for
// them; A2A's own errors are -32001..-32009), numbered after the HTTP status
// the REST binding gives the same error: a caller that did not prove who it
// is (401) or may not do what it asked (403); a limit reached -- of the
// request (--max-parts) or of the node (open streams, agents' concurrency) --
// (429); the node or the mesh unable to serve now (503); out of time (504).
inline constexpr int kUnauthenticated = -32040;
inline constexpr int kPermissionDenied = -32043;
inline constexpr int kResourceExhausted = -32029;
inline constexpr int kUnavailable = -32053;
inline constexpr int kDeadlineExceeded = -32054;

// The HTTP status of an error: A2A errors by name, the rest by gRPC code.
int HttpStatusFor(const absl::Status& status);
// The JSON-RPC code of an error: -32001.. for A2A errors, -32602 for invalid
// arguments, the codes above, -32603 otherwise.
int JsonRpcCodeFor(const absl::Status& status);

// A JSON-RPC error response (`id` as JSON: a number, a string literal or null).
http::Response JsonRpcError(const std::string& id, int code, absl::string_view message);
// `status` as a REST error; `http_status` overrides the mapped one (405, 415).
http::Response RestError(const absl::Status& status, int http_status = 0);
// A 200-or-other response with a JSON body.
http::Response JsonResponse(int status, const char* content_type, std::string body);
// The head of a server-sent event stream.
http::Response SseHead();
// Whether a request body may be taken as JSON: no Content-Type, or a JSON one.
bool JsonContent(const http::Request& request);

// How one binding shapes the answers of a call.
class HttpFraming {
 public:
  virtual ~HttpFraming() = default;
  virtual http::Response Result(const google::protobuf::Message& result) const = 0;
  virtual http::Response Failure(const grpc::Status& status) const = 0;
  // One server-sent event.
  virtual std::string Event(const google::protobuf::Message& event) const = 0;
  virtual std::string FailureEvent(const grpc::Status& status) const = 0;
};

// JSON-RPC 2.0: every answer is an envelope with the request's id.
class JsonRpcFraming final : public HttpFraming {
 public:
  // `id`: the request's id as JSON, exactly as it came (numbers keep every
  // digit).
  explicit JsonRpcFraming(std::string id) : id_(std::move(id)) {}
  http::Response Result(const google::protobuf::Message& result) const override;
  http::Response Failure(const grpc::Status& status) const override;
  std::string Event(const google::protobuf::Message& event) const override;
  std::string FailureEvent(const grpc::Status& status) const override;

 private:
  std::string Envelope(const std::string& result) const;
  std::string ErrorJson(const grpc::Status& status) const;
  const std::string id_;
};

// HTTP+JSON: results as they are, errors with HTTP statuses.
class RestFraming final : public HttpFraming {
 public:
  http::Response Result(const google::protobuf::Message& result) const override;
  http::Response Failure(const grpc::Status& status) const override;
  std::string Event(const google::protobuf::Message& event) const override;
  std::string FailureEvent(const grpc::Status& status) const override;
};

}  // namespace a2amesh::a2a

#endif  // A2AMESH_A2A_HTTP_FRAMING_H_
