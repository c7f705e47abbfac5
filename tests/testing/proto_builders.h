#ifndef A2AMESH_TESTS_TESTING_PROTO_BUILDERS_H_
#define A2AMESH_TESTS_TESTING_PROTO_BUILDERS_H_

#include <string>

#include "core/ids.h"
#include "lf/a2a/v1/a2a.pb.h"

// Small builders for A2A messages in tests.
namespace a2amesh::testing {

inline lf::a2a::v1::Message UserText(const std::string& text) {
  lf::a2a::v1::Message message;
  message.set_message_id(NewUuid());
  message.set_role(lf::a2a::v1::ROLE_USER);
  auto* part = message.add_parts();
  part->set_text(text);
  part->set_media_type("text/plain");
  return message;
}

inline lf::a2a::v1::SendMessageRequest SendText(const std::string& text) {
  lf::a2a::v1::SendMessageRequest request;
  *request.mutable_message() = UserText(text);
  return request;
}

inline lf::a2a::v1::StreamResponse Status(lf::a2a::v1::TaskState state,
                                          const std::string& text = "") {
  lf::a2a::v1::StreamResponse event;
  auto* status = event.mutable_status_update()->mutable_status();
  status->set_state(state);
  if (!text.empty()) {
    status->mutable_message()->add_parts()->set_text(text);
  }
  return event;
}

inline lf::a2a::v1::StreamResponse ArtifactChunk(const std::string& id, const std::string& text,
                                                 bool append, bool last) {
  lf::a2a::v1::StreamResponse event;
  auto* update = event.mutable_artifact_update();
  update->mutable_artifact()->set_artifact_id(id);
  update->mutable_artifact()->add_parts()->set_text(text);
  update->set_append(append);
  update->set_last_chunk(last);
  return event;
}

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_PROTO_BUILDERS_H_
