#include "a2a/proto_json.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "lf/a2a/v1/a2a.pb.h"

namespace a2amesh::a2a {

using google::protobuf::Message;

std::unique_ptr<Message> NewMessage(const google::protobuf::Descriptor* type) {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

google::protobuf::util::JsonParseOptions ProtoJsonParseOptions() {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return options;
}

std::string ToJson(const Message& message, bool print_defaults) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = print_defaults;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return "{}";
  }
  return json;
}

std::string JsonString(absl::string_view text) {
  google::protobuf::Value value;
  value.set_string_value(std::string(text));
  return ToJson(value);
}

std::string ResultJson(const Message& result) {
  if (result.GetDescriptor() == lf::a2a::v1::ListTasksResponse::descriptor()) {
    const auto& list = static_cast<const lf::a2a::v1::ListTasksResponse&>(result);
    std::string json = "{\"tasks\":[";
    for (int i = 0; i < list.tasks_size(); ++i) {
      absl::StrAppend(&json, i > 0 ? "," : "", ToJson(list.tasks(i)));
    }
    absl::StrAppend(&json, "],\"nextPageToken\":", JsonString(list.next_page_token()),
                    ",\"pageSize\":", list.page_size(), ",\"totalSize\":", list.total_size(), "}");
    return json;
  }
  if (result.GetDescriptor() == lf::a2a::v1::AgentCard::descriptor()) {
    return ToJson(result, /*print_defaults=*/true);
  }
  return ToJson(result);
}

}  // namespace a2amesh::a2a
