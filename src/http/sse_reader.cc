#include "http/sse_reader.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace a2amesh::http {

void SseReader::Feed(absl::string_view piece, OnEvent on_event) {
  for (char c : piece) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the rest of a "\r\n"
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      std::string line = std::move(line_);
      line_.clear();
      Line(line, on_event);
      continue;
    }
    line_.push_back(c);
  }
}

void SseReader::Line(absl::string_view line, OnEvent on_event) {
  if (line.empty()) {  // the event is complete
    if (has_data_) on_event(event_.empty() ? "message" : event_, data_);
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (absl::StartsWith(line, ":")) return;  // a comment
  absl::string_view field = line;
  absl::string_view value;
  if (size_t colon = line.find(':'); colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    absl::ConsumePrefix(&value, " ");
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  }
}

}  // namespace a2amesh::http
