#include "tasks/page_token.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/a2a_error.h"

namespace a2amesh::tasks {

std::string EncodePageToken(int64_t status_unix_ms, const std::string& task_id) {
  std::string token;
  absl::WebSafeBase64Escape(absl::StrCat(status_unix_ms, "/", task_id), &token);
  return token;
}

absl::Status DecodePageToken(const std::string& token, TaskQuery* query) {
  std::string raw;
  size_t slash;
  if (!absl::WebSafeBase64Unescape(token, &raw) || (slash = raw.find('/')) == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(raw).substr(0, slash), &query->cursor_status_unix_ms) ||
      slash + 1 == raw.size()) {
    return InvalidFieldError("page_token", "is not a page token this node issued");
  }
  query->has_cursor = true;
  query->cursor_id = raw.substr(slash + 1);
  return absl::OkStatus();
}

}  // namespace a2amesh::tasks
