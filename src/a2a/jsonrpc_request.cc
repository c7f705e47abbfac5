#include "a2a/jsonrpc_request.h"

#include "a2a/http_framing.h"
#include "a2a/proto_json.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"

namespace a2amesh::a2a {
namespace {

// Watches the top-level object's members go by; for "params" it only notes
// where its text starts and ends. Returning false stops the reader (the
// reason is in `error`).
class EnvelopeScanner final
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EnvelopeScanner> {
 public:
  EnvelopeScanner(rapidjson::MemoryStream& in, absl::string_view body, int max_depth,
                  JsonRpcRequest& out)
      : in_(in), body_(body), max_depth_(max_depth), out_(out) {}

  bool Null() { return Scalar("null", Kind::kNull); }
  bool Bool(bool b) { return Scalar(b ? "true" : "false", Kind::kBool); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return Scalar(absl::string_view(text, length), Kind::kNumber);
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return Scalar(absl::string_view(text, length), Kind::kString);
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    if (depth_ == 1) {
      absl::string_view key(text, length);
      member_ = key == "jsonrpc"  ? Member::kJsonRpc
                : key == "method" ? Member::kMethod
                : key == "id"     ? Member::kId
                : key == "params" ? Member::kParams
                                  : Member::kOther;
      if (member_ != Member::kOther && (seen_ & Bit(member_)) != 0) {
        return Fail(kInvalidRequest, absl::StrCat("Invalid Request: \"", key, "\" appears twice"));
      }
      seen_ |= Bit(member_);
    }
    return true;
  }
  bool StartObject() { return Open(/*object=*/true); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool StartArray() { return Open(/*object=*/false); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

  bool saw_jsonrpc() const { return (seen_ & Bit(Member::kJsonRpc)) != 0; }
  bool saw_method() const { return (seen_ & Bit(Member::kMethod)) != 0; }

 private:
  enum class Member { kNone, kJsonRpc, kMethod, kId, kParams, kOther };
  enum class Kind { kNull, kBool, kNumber, kString };
  static unsigned Bit(Member m) { return 1u << static_cast<unsigned>(m); }

  // Stops reading: the envelope is not usable at all.
  bool Fail(int code, std::string error) {
    Note(code, std::move(error));
    return false;
  }
  // Goes on reading, so that the id is known for the error response.
  bool Note(int code, std::string error) {
    if (out_.error_code == 0) {
      out_.error_code = code;
      out_.error = std::move(error);
    }
    return true;
  }

  bool Scalar(absl::string_view text, Kind kind) {
    if (depth_ == 0) {
      return Fail(kInvalidRequest,
                  "Invalid Request: the body must be a JSON-RPC 2.0 request object");
    }
    if (depth_ != 1) {
      return true;
    }
    switch (member_) {
      case Member::kJsonRpc:
        if (kind != Kind::kString || text != "2.0") {
          Note(kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
        }
        break;
      case Member::kMethod:
        if (kind != Kind::kString || text.empty()) {
          Note(kInvalidRequest, "Invalid Request: \"method\" must be a non-empty string");
        }
        out_.method = std::string(text);
        break;
      case Member::kId:
        if (kind == Kind::kBool) {
          out_.id = "null";  // an id that is not one is no id to echo
          return Fail(kInvalidRequest, "Invalid Request: id must be a string, a number or null");
        }
        out_.id = kind == Kind::kString ? JsonString(text) : std::string(text);
        break;
      case Member::kParams:
        if (kind != Kind::kNull) {
          Note(kInvalidParams, "Invalid params: \"params\" must be an object");
        }
        break;
      default:
        break;
    }
    member_ = Member::kNone;
    return true;
  }

  bool Open(bool object) {
    if (depth_ == 0 && !object) {
      return Fail(kInvalidRequest,
                  "Invalid Request: batch requests are not supported; send one request per POST");
    }
    if (depth_ == 1) {
      if (member_ == Member::kParams && object) {
        // The reader calls back next to the '{' (before or after taking it,
        // depending on its mode).
        const size_t at = in_.Tell();
        params_start_ = at < body_.size() && body_[at] == '{' ? at : at - 1;
        in_params_ = true;
      } else if (member_ == Member::kParams) {
        Note(kInvalidParams, "Invalid params: \"params\" must be an object");
      } else if (member_ == Member::kId) {
        out_.id = "null";
        return Fail(kInvalidRequest, "Invalid Request: id must be a string, a number or null");
      } else if (member_ == Member::kJsonRpc) {
        Note(kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\"");
      } else if (member_ == Member::kMethod) {
        Note(kInvalidRequest, "Invalid Request: \"method\" must be a non-empty string");
      }
    }
    if (++depth_ > max_depth_) {
      return Fail(kInvalidRequest, absl::StrCat("Invalid Request: the body nests deeper than ",
                                                max_depth_, " levels (--max-json-depth)"));
    }
    return true;
  }

  bool Close() {
    --depth_;
    if (depth_ == 1) {
      if (in_params_) {
        const size_t at = in_.Tell();
        const size_t end = at < body_.size() && body_[at] == '}' ? at + 1 : at;
        out_.params = body_.substr(params_start_, end - params_start_);
        in_params_ = false;
      }
      member_ = Member::kNone;
    }
    return true;
  }

  rapidjson::MemoryStream& in_;
  const absl::string_view body_;
  const int max_depth_;
  JsonRpcRequest& out_;
  int depth_ = 0;
  Member member_ = Member::kNone;
  unsigned seen_ = 0;
  size_t params_start_ = 0;
  bool in_params_ = false;
};

}  // namespace

JsonRpcRequest ReadJsonRpcRequest(absl::string_view body, int max_depth) {
  JsonRpcRequest request;
  rapidjson::MemoryStream in(body.data(), body.size());
  EnvelopeScanner scanner(in, body, max_depth, request);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |         // no recursion on deep input
                              rapidjson::kParseNumbersAsStringsFlag |  // ids keep every digit
                              rapidjson::kParseStopWhenDoneFlag;
  rapidjson::ParseResult parsed = reader.Parse<kFlags>(in, scanner);
  const bool stopped = parsed.Code() == rapidjson::kParseErrorTermination;  // by the scanner
  if (!stopped) {
    const size_t end = parsed.IsError() ? parsed.Offset() : in.Tell();
    if (parsed.IsError() || body.find_first_not_of(" \t\r\n", end) != absl::string_view::npos) {
      request.error_code = kParseError;
      request.error = absl::StrCat(
          "Parse error: the body is not JSON (",
          parsed.IsError() ? rapidjson::GetParseError_En(parsed.Code()) : "text after the value",
          " at byte ", end, ")");
      request.id = "null";
    }
  }
  if (request.error_code == 0 && !scanner.saw_jsonrpc()) {
    request.error_code = kInvalidRequest;
    request.error = "Invalid Request: \"jsonrpc\" must be \"2.0\"";
  } else if (request.error_code == 0 && !scanner.saw_method()) {
    request.error_code = kInvalidRequest;
    request.error = "Invalid Request: \"method\" must be a non-empty string";
  }
  if (request.error_code != 0) {
    request.params = {};
  }
  return request;
}

}  // namespace a2amesh::a2a
