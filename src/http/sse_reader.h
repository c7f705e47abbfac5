#ifndef A2AMESH_HTTP_SSE_READER_H_
#define A2AMESH_HTTP_SSE_READER_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace a2amesh::http {

// Reads a Server-Sent Events stream (the WHATWG event-stream format) as it
// arrives, in pieces of any size: each event's `event:` name and its `data:`
// lines (joined by '\n') are handed over once its blank line comes. Lines may
// end in "\n", "\r\n" or "\r"; comments (":...") and `id:`/`retry:` fields are
// skipped. Not thread-safe.
class SseReader {
 public:
  using OnEvent = absl::FunctionRef<void(absl::string_view event, absl::string_view data)>;

  // Takes the next piece of the stream; calls `on_event` for each event it
  // completes.
  void Feed(absl::string_view piece, OnEvent on_event);

  // Bytes of an unfinished event held (to bound what a peer may make it hold).
  size_t buffered() const { return line_.size() + data_.size(); }

 private:
  void Line(absl::string_view line, OnEvent on_event);

  std::string line_;  // an unfinished line
  bool after_cr_ = false;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
};

}  // namespace a2amesh::http

#endif  // A2AMESH_HTTP_SSE_READER_H_
