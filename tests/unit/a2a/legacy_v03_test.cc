// A2A 0.3's JSON to and from v1.0's messages. The 0.3 inputs are what the
// official JS SDK 0.3.14 server sends (tests/e2e/js03/echo-server.mjs).

#include "a2a/legacy_v03.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace a2amesh::a2a::legacy {
namespace {

using ::testing::HasSubstr;

TEST(LegacyCardTest, AV03CardListsItsUrlFirstAndItsOtherInterfacesAtItsVersion) {
  absl::StatusOr<lf::a2a::v1::AgentCard> card = ParseAgentCard(R"({
    "protocolVersion": "0.3.0", "name": "Legacy Echo Agent", "description": "d",
    "url": "http://127.0.0.1:41251/a2a/jsonrpc", "preferredTransport": "JSONRPC",
    "additionalInterfaces": [
      {"url": "http://127.0.0.1:41251/a2a/jsonrpc", "transport": "JSONRPC"},
      {"url": "127.0.0.1:41252", "transport": "GRPC"}],
    "version": "0.1.0", "capabilities": {"streaming": true, "pushNotifications": false,
                                         "stateTransitionHistory": true},
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "security": [{"bearer": []}],
    "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "legacy-echo", "name": "Legacy echo", "description": "e",
                "tags": ["echo"], "examples": ["hello"], "security": [{"bearer": []}]}]})");
  ASSERT_TRUE(card.ok()) << card.status();
  EXPECT_EQ(card->name(), "Legacy Echo Agent");
  EXPECT_TRUE(card->capabilities().streaming());
  ASSERT_EQ(card->supported_interfaces_size(), 2);  // the repeated JSONRPC one once
  EXPECT_EQ(card->supported_interfaces(0).url(), "http://127.0.0.1:41251/a2a/jsonrpc");
  EXPECT_EQ(card->supported_interfaces(0).protocol_binding(), "JSONRPC");
  EXPECT_EQ(card->supported_interfaces(0).protocol_version(), "0.3.0");
  EXPECT_EQ(card->supported_interfaces(1).protocol_binding(), "GRPC");
  EXPECT_EQ(card->supported_interfaces(1).protocol_version(), "0.3.0");
  ASSERT_EQ(card->skills_size(), 1);
  EXPECT_EQ(card->skills(0).id(), "legacy-echo");
  EXPECT_EQ(card->skills(0).tags(0), "echo");
}

TEST(LegacyCardTest, AV1CardIsParsedAsItIs) {
  absl::StatusOr<lf::a2a::v1::AgentCard> card = ParseAgentCard(R"({
    "name": "n", "supportedInterfaces": [{"url": "h:1", "protocolBinding": "GRPC",
                                          "protocolVersion": "1.0"}]})");
  ASSERT_TRUE(card.ok()) << card.status();
  EXPECT_EQ(card->supported_interfaces(0).protocol_version(), "1.0");
}

TEST(LegacyCardTest, WhatIsNotACardIsRefusedSayingWhy) {
  EXPECT_THAT(ParseAgentCard("<html>").status().message(), HasSubstr("not a JSON object"));
  EXPECT_THAT(ParseAgentCard(R"({"url": "http://x", "protocolVersion": "1.0"})").status().message(),
              HasSubstr("protocolVersion \"1.0\" with a card-level url"));
  EXPECT_THAT(ParseAgentCard(std::string(200, '[') + std::string(200, ']')).status().message(),
              HasSubstr("nests deeper"));
}

TEST(LegacyResultTest, ATaskWithHistoryAndArtifacts) {
  absl::StatusOr<lf::a2a::v1::StreamResponse> event = ParseResult(R"({
    "kind": "task", "id": "t1", "contextId": "c1",
    "status": {"state": "completed", "timestamp": "2026-12-02T17:08:50.262Z"},
    "history": [{"kind": "message", "messageId": "m2", "role": "user",
                 "parts": [{"kind": "text", "text": "task:x"}], "contextId": "c1", "taskId": "t1"}],
    "artifacts": [{"artifactId": "a1", "name": "echo",
                   "parts": [{"kind": "text", "text": "x"},
                             {"kind": "file", "file": {"uri": "https://f/x.png",
                                                       "mimeType": "image/png", "name": "x.png"}},
                             {"kind": "file", "file": {"bytes": "aGk="}},
                             {"kind": "data", "data": {"n": 1}}]}]})");
  ASSERT_TRUE(event.ok()) << event.status();
  const lf::a2a::v1::Task& task = event->task();
  EXPECT_EQ(task.id(), "t1");
  EXPECT_EQ(task.context_id(), "c1");
  EXPECT_EQ(task.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(task.status().timestamp().seconds() % 60, 50);
  ASSERT_EQ(task.history_size(), 1);
  EXPECT_EQ(task.history(0).role(), lf::a2a::v1::ROLE_USER);
  EXPECT_EQ(task.history(0).parts(0).text(), "task:x");
  const lf::a2a::v1::Artifact& artifact = task.artifacts(0);
  EXPECT_EQ(artifact.name(), "echo");
  ASSERT_EQ(artifact.parts_size(), 4);
  EXPECT_EQ(artifact.parts(0).text(), "x");
  EXPECT_EQ(artifact.parts(1).url(), "https://f/x.png");
  EXPECT_EQ(artifact.parts(1).media_type(), "image/png");
  EXPECT_EQ(artifact.parts(1).filename(), "x.png");
  EXPECT_EQ(artifact.parts(2).raw(), "hi");
  EXPECT_EQ(artifact.parts(3).data().struct_value().fields().at("n").number_value(), 1);
}

TEST(LegacyResultTest, AStatusUpdateAskingForInputDropsFinal) {
  absl::StatusOr<lf::a2a::v1::StreamResponse> event = ParseResult(R"({
    "kind": "status-update", "taskId": "t1", "contextId": "c1", "final": true,
    "status": {"state": "input-required", "timestamp": "2026-12-02T17:08:50.230Z",
               "message": {"kind": "message", "messageId": "m", "role": "agent",
                           "parts": [{"kind": "text", "text": "name?"}]}}})");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->status_update().task_id(), "t1");
  EXPECT_EQ(event->status_update().status().state(), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  EXPECT_EQ(event->status_update().status().message().role(), lf::a2a::v1::ROLE_AGENT);
  EXPECT_EQ(event->status_update().status().message().parts(0).text(), "name?");
}

TEST(LegacyResultTest, AnArtifactUpdateAndADirectMessage) {
  absl::StatusOr<lf::a2a::v1::StreamResponse> update = ParseResult(R"({
    "kind": "artifact-update", "taskId": "t1", "contextId": "c1", "append": true,
    "lastChunk": false, "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "y"}]}})");
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_TRUE(update->artifact_update().append());
  EXPECT_FALSE(update->artifact_update().last_chunk());
  EXPECT_EQ(update->artifact_update().artifact().parts(0).text(), "y");

  absl::StatusOr<lf::a2a::v1::StreamResponse> message = ParseResult(R"({
    "kind": "message", "messageId": "m", "role": "agent", "contextId": "c",
    "parts": [{"kind": "text", "text": "echo: hi"}]})");
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->message().parts(0).text(), "echo: hi");
}

TEST(LegacyResultTest, WhatIsNotA03ResultIsRefusedNamingWhere) {
  EXPECT_THAT(ParseResult(R"({"kind": "thing"})").status().message(),
              HasSubstr("of kind \"thing\""));
  // A v1.0 answer to a 0.3 call is not mistaken for one.
  EXPECT_THAT(ParseResult(R"({"task": {"id": "t"}})").status().message(), HasSubstr("kind \"\""));
  EXPECT_THAT(ParseResult(R"({"kind": "status-update", "status": {"state": "TASK_STATE_WORKING"}})")
                  .status()
                  .message(),
              HasSubstr("status-update.status: state \"TASK_STATE_WORKING\""));
  EXPECT_THAT(ParseResult(R"({"kind": "task", "id": "t", "status": {"state": "working"},
                              "history": [{"kind": "message", "role": "robot"}]})")
                  .status()
                  .message(),
              HasSubstr("task.history[0]: role \"robot\""));
  EXPECT_THAT(ParseResult(R"({"kind": "message", "role": "agent",
                              "parts": [{"kind": "text"}, {"kind": "video"}]})")
                  .status()
                  .message(),
              HasSubstr("message.parts[0]: a text part with no text"));
}

TEST(LegacyParamsTest, AV1RequestIsSentIn03Shape) {
  lf::a2a::v1::SendMessageRequest request;
  auto* message = request.mutable_message();
  message->set_message_id("m1");
  message->set_role(lf::a2a::v1::ROLE_USER);
  message->set_task_id("t1");
  message->set_context_id("c1");
  message->add_parts()->set_text("hello");
  auto* file = message->add_parts();
  file->set_url("https://f/x.png");
  file->set_media_type("image/png");
  message->add_parts()->mutable_data()->set_number_value(7);
  request.mutable_configuration()->add_accepted_output_modes("text/plain");
  (*request.mutable_metadata()->mutable_fields())["k"].set_string_value("v");

  rapidjson::Document params;
  const std::string json = MessageSendParams(request);
  params.Parse(json.c_str());
  ASSERT_FALSE(params.HasParseError()) << json;
  const auto& m = params["message"];
  EXPECT_STREQ(m["kind"].GetString(), "message");
  EXPECT_STREQ(m["role"].GetString(), "user");
  EXPECT_STREQ(m["messageId"].GetString(), "m1");
  EXPECT_STREQ(m["taskId"].GetString(), "t1");
  EXPECT_STREQ(m["contextId"].GetString(), "c1");
  EXPECT_STREQ(m["parts"][0]["kind"].GetString(), "text");
  EXPECT_STREQ(m["parts"][0]["text"].GetString(), "hello");
  EXPECT_STREQ(m["parts"][1]["kind"].GetString(), "file");
  EXPECT_STREQ(m["parts"][1]["file"]["uri"].GetString(), "https://f/x.png");
  EXPECT_STREQ(m["parts"][1]["file"]["mimeType"].GetString(), "image/png");
  EXPECT_STREQ(m["parts"][2]["kind"].GetString(), "data");
  EXPECT_EQ(m["parts"][2]["data"]["value"].GetDouble(), 7);  // 0.3's data is an object
  EXPECT_TRUE(params["configuration"]["blocking"].GetBool());
  EXPECT_STREQ(params["configuration"]["acceptedOutputModes"][0].GetString(), "text/plain");
  EXPECT_STREQ(params["metadata"]["k"].GetString(), "v");

  // returnImmediately is 0.3's blocking, turned round.
  request.mutable_configuration()->set_return_immediately(true);
  const std::string now = MessageSendParams(request);
  params.Parse(now.c_str());
  ASSERT_FALSE(params.HasParseError()) << now;
  EXPECT_FALSE(params["configuration"]["blocking"].GetBool());
  EXPECT_FALSE(params["configuration"].HasMember("returnImmediately"));
}

}  // namespace
}  // namespace a2amesh::a2a::legacy
