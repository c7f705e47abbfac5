#include "a2a/http_framing.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "a2a/proto_json.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/a2a_error.h"
#include "google/rpc/status.pb.h"
#include "rpc/grpc_status.h"
#include "security/auth.h"

namespace a2amesh::a2a {
namespace {

// An error as the bindings show it: the status, and its google.rpc details
// (ErrorInfo for A2A errors, BadRequest for invalid fields) as ProtoJSON Any.
struct Error {
  absl::Status status;
  std::vector<std::string> details;
};

Error ErrorFrom(const grpc::Status& status) {
  Error error{rpc::FromGrpcStatus(status), {}};
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      std::string json;
      if (google::protobuf::util::MessageToJsonString(any, &json).ok()) {
        error.details.push_back(std::move(json));
      }
    }
  }
  return error;
}

std::string RestErrorJson(const Error& error, int http_status) {
  std::string json =
      absl::StrCat("{\"error\":{\"code\":", http_status,
                   ",\"status\":", JsonString(absl::StatusCodeToString(error.status.code())),
                   ",\"message\":", JsonString(error.status.message()));
  if (!error.details.empty()) {
    absl::StrAppend(&json, ",\"details\":[", absl::StrJoin(error.details, ","), "]");
  }
  json += "}}";
  return json;
}

std::string JsonRpcErrorJson(const std::string& id, int code, absl::string_view message,
                             const std::vector<std::string>& details = {}) {
  std::string json = absl::StrCat("{\"jsonrpc\":\"2.0\",\"id\":", id, ",\"error\":{\"code\":", code,
                                  ",\"message\":", JsonString(message));
  if (!details.empty()) {
    absl::StrAppend(&json, ",\"data\":[", absl::StrJoin(details, ","), "]");
  }
  json += "}}";
  return json;
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  if (std::optional<A2aError> error = GetA2aError(status)) {
    switch (*error) {
      case A2aError::kTaskNotFound:
        return 404;
      case A2aError::kInvalidAgentResponse:
        return 500;
      default:
        return 400;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

int JsonRpcCodeFor(const absl::Status& status) {
  if (std::optional<A2aError> error = GetA2aError(status)) {
    return A2aErrorJsonRpcCode(*error);
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kInvalidParams;
    case absl::StatusCode::kUnauthenticated:
      return kUnauthenticated;
    case absl::StatusCode::kPermissionDenied:
      return kPermissionDenied;
    case absl::StatusCode::kResourceExhausted:
      return kResourceExhausted;
    case absl::StatusCode::kUnavailable:
      return kUnavailable;
    case absl::StatusCode::kDeadlineExceeded:
      return kDeadlineExceeded;
    default:
      return kInternalError;
  }
}

namespace {

// 401 tells the client how to authenticate (RFC 9110 §11.6.1).
void AddChallenge(http::Response& response) {
  if (response.status == 401) {
    response.headers.emplace_back("WWW-Authenticate",
                                  std::string(security::Authenticator::kChallenge));
  }
}

// A refusal to come back later (429, 503) says when (RFC 9110 §10.2.3: whole
// seconds, rounded up): a rate limit's own delay, else a second, which is
// what clients and proxies back off by.
void AddRetryAfter(http::Response& response, const absl::Status& status) {
  if (std::optional<absl::Duration> delay = GetRetryAfter(status); delay.has_value()) {
    const int64_t seconds =
        std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(*delay, absl::Seconds(1))));
    response.headers.emplace_back("Retry-After", absl::StrCat(seconds));
  } else if (response.status == 429 || response.status == 503) {
    response.headers.emplace_back("Retry-After", "1");
  }
}

}  // namespace

http::Response JsonResponse(int status, const char* content_type, std::string body) {
  http::Response response;
  response.status = status;
  response.content_type = content_type;
  response.body = std::move(body);
  return response;
}

http::Response JsonRpcError(const std::string& id, int code, absl::string_view message) {
  return JsonResponse(200, kJsonType, JsonRpcErrorJson(id, code, message));
}

http::Response RestError(const absl::Status& status, int http_status) {
  if (http_status == 0) http_status = HttpStatusFor(status);
  http::Response response = JsonResponse(
      http_status, kA2aJsonType, RestErrorJson(ErrorFrom(rpc::ToGrpcStatus(status)), http_status));
  AddRetryAfter(response, status);
  return response;
}

http::Response SseHead() {
  http::Response head;
  head.content_type = "text/event-stream";
  head.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  return head;
}

bool JsonContent(const http::Request& request) {
  const std::string* type = request.Header("content-type");
  if (type == nullptr) {
    return true;
  }
  std::string media = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(*type).substr(0, type->find(';'))));
  return media == kJsonType || media == kA2aJsonType;
}

http::Response JsonRpcFraming::Result(const google::protobuf::Message& result) const {
  return JsonResponse(200, kJsonType, Envelope(ResultJson(result)));
}

http::Response JsonRpcFraming::Failure(const grpc::Status& status) const {
  // JSON-RPC errors ride on 200, except that a caller who must authenticate
  // (or may not) is told so by HTTP as well, as every HTTP client expects.
  int http_status = 200;
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) http_status = 401;
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) http_status = 403;
  const absl::Status error = rpc::FromGrpcStatus(status);
  // A rate limit's refusal too: clients and proxies back off on 429 + Retry-After.
  if (GetRetryAfter(error).has_value()) http_status = 429;
  http::Response response = JsonResponse(http_status, kJsonType, ErrorJson(status));
  AddChallenge(response);
  AddRetryAfter(response, error);
  return response;
}

std::string JsonRpcFraming::Event(const google::protobuf::Message& event) const {
  return absl::StrCat("data: ", Envelope(ToJson(event)), "\n\n");
}

std::string JsonRpcFraming::FailureEvent(const grpc::Status& status) const {
  return absl::StrCat("event: error\ndata: ", ErrorJson(status), "\n\n");
}

std::string JsonRpcFraming::Envelope(const std::string& result) const {
  return absl::StrCat("{\"jsonrpc\":\"2.0\",\"id\":", id_, ",\"result\":", result, "}");
}

std::string JsonRpcFraming::ErrorJson(const grpc::Status& status) const {
  Error error = ErrorFrom(status);
  return JsonRpcErrorJson(id_, JsonRpcCodeFor(error.status), error.status.message(), error.details);
}

http::Response RestFraming::Result(const google::protobuf::Message& result) const {
  return JsonResponse(200, kA2aJsonType, ResultJson(result));
}

http::Response RestFraming::Failure(const grpc::Status& status) const {
  Error error = ErrorFrom(status);
  const int http_status = HttpStatusFor(error.status);
  http::Response response =
      JsonResponse(http_status, kA2aJsonType, RestErrorJson(error, http_status));
  AddChallenge(response);
  AddRetryAfter(response, error.status);
  return response;
}

std::string RestFraming::Event(const google::protobuf::Message& event) const {
  return absl::StrCat("data: ", ToJson(event), "\n\n");
}

std::string RestFraming::FailureEvent(const grpc::Status& status) const {
  Error error = ErrorFrom(status);
  return absl::StrCat("event: error\ndata: ", RestErrorJson(error, HttpStatusFor(error.status)),
                      "\n\n");
}

}  // namespace a2amesh::a2a
