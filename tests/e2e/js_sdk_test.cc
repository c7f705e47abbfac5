// Wire compatibility with the official A2A JS SDK: its client
// (tests/e2e/js/meshd-client.mjs, versions pinned by package-lock.json)
// discovers a real meshd process's agent card and runs the same scenario over
// each binding the card lists (JSON-RPC, HTTP+JSON, gRPC); meshd hands the
// tasks to the example agents (echo-agent, uppercase-agent) running as
// processes of their own. The results must be the same on every binding.

#include <signal.h>

#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"
#include "testing/test_certs.h"

namespace a2amesh {
namespace {

using ::a2amesh::testing::Subprocess;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageToJsonString;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using ::testing::HasSubstr;

struct Step {
  std::string step;
  google::protobuf::Struct body;
};

template <typename Message>
Message Field(const Step& step, const std::string& name) {
  Message message;
  std::string json;
  EXPECT_TRUE(MessageToJsonString(step.body.fields().at(name), &json).ok());
  auto status = JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return message;
}

// Runs the JS client over `binding` against `node`; its steps in order.
std::vector<Step> RunClient(const testing::TempDir& dir, const testing::E2eNode& node,
                            const std::string& binding) {
  const std::string js_dir = testing::SourcePath("tests/e2e/js");
  std::string out = dir.File("js-" + binding + ".out");
  absl::StatusOr<Subprocess> client =
      Subprocess::Start({"/usr/bin/env", "node", js_dir + "/meshd-client.mjs",
                         absl::StrCat("http://", node.http_address()), binding},
                        out);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return {};
  absl::StatusOr<int> exit_code = client->Wait(absl::Seconds(60));
  std::string output = testing::ReadFileOrEmpty(out);
  EXPECT_TRUE(exit_code.ok());
  EXPECT_EQ(exit_code.value_or(-1), 0) << binding << ":\n" << output;
  std::vector<Step> steps;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    Step step;
    if (!JsonStringToMessage(std::string(line), &step.body).ok()) {
      continue;  // not one of ours (e.g. an npm warning)
    }
    step.step = step.body.fields().at("step").string_value();
    steps.push_back(std::move(step));
  }
  return steps;
}

// `value` without what differs from run to run (ids, timestamps) or from
// binding to binding by design (the binding's own name, the SDK's error
// class, how many events a subscription caught before the task ended).
void Normalize(google::protobuf::Value* value) {
  if (value->has_struct_value()) {
    auto* fields = value->mutable_struct_value()->mutable_fields();
    for (const char* key :
         {"id", "contextId", "messageId", "taskId", "timestamp", "binding", "name", "events"}) {
      fields->erase(key);
    }
    for (auto& [key, field] : *fields) Normalize(&field);
  } else if (value->has_list_value()) {
    for (auto& item : *value->mutable_list_value()->mutable_values()) Normalize(&item);
  }
}

google::protobuf::Value Normalized(const Step& step) {
  google::protobuf::Value value;
  *value.mutable_struct_value() = step.body;
  Normalize(&value);
  if (step.step == "cancel") {
    // How far the task got before the cancel reached it is a matter of timing.
    auto* task = (*value.mutable_struct_value()->mutable_fields())["task"].mutable_struct_value();
    task->mutable_fields()->erase("history");
    task->mutable_fields()->erase("artifacts");
  }
  return value;
}

MATCHER_P(SameAs, expected, "") {
  if (google::protobuf::util::MessageDifferencer::Equals(arg, expected)) return true;
  std::string a, b;
  (void)MessageToJsonString(arg, &a);
  (void)MessageToJsonString(expected, &b);
  *result_listener << "\n  is " << a << "\n  vs " << b;
  return false;
}

TEST(JsSdkTest, TheOfficialClientDiscoversTheCardAndWorksTheSameOverEveryBinding) {
  const std::string js_dir = testing::SourcePath("tests/e2e/js");
  ASSERT_FALSE(testing::ReadFileOrEmpty(js_dir + "/node_modules/@a2a-js/sdk/package.json").empty())
      << "the JS SDK is not installed: run `npm ci` in " << js_dir << " (tools/test does)";

  testing::TempDir dir;
  testing::E2eNode node(dir, "js-node", {"--ephemeral"});
  ASSERT_TRUE(node.Start());
  Subprocess echo = node.StartAgent("echo-agent", {});
  Subprocess uppercase = node.StartAgent("uppercase-agent", {"--chunk-delay", "20ms"});
  // A chat-style agent: answers with a direct Message, no task.
  Subprocess chat =
      node.StartAgent("echo-agent", {"--agent-id", "chat", "--skill", "chat", "--reply"});
  ASSERT_TRUE(node.WaitForAgent("echo"));
  ASSERT_TRUE(node.WaitForAgent("uppercase"));
  ASSERT_TRUE(node.WaitForAgent("chat"));

  std::map<std::string, std::vector<Step>> runs;
  for (const std::string binding : {"JSONRPC", "HTTP+JSON", "GRPC"}) {
    SCOPED_TRACE(binding);
    std::vector<Step> steps = RunClient(dir, node, binding);
    ASSERT_EQ(steps.size(), 17u);

    EXPECT_EQ(steps[0].step, "card");
    EXPECT_EQ(steps[0].body.fields().at("binding").string_value(), binding);
    EXPECT_TRUE(steps[0].body.fields().at("streaming").bool_value());
    EXPECT_TRUE(steps[0].body.fields().at("pushNotifications").bool_value());
    std::vector<std::string> skills;
    for (const auto& skill : steps[0].body.fields().at("skills").list_value().values()) {
      skills.push_back(skill.string_value());
    }
    EXPECT_THAT(skills, ::testing::UnorderedElementsAre("echo", "uppercase", "chat"));

    Task sent = Field<Task>(steps[1], "task");
    EXPECT_EQ(steps[1].step, "send");
    EXPECT_THAT(sent.id(), HasSubstr("js-node~"));
    EXPECT_EQ(sent.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
    ASSERT_EQ(sent.artifacts_size(), 1);
    EXPECT_EQ(sent.artifacts(0).parts(0).text(), "hello from js");

    Task immediate = Field<Task>(steps[2], "task");
    EXPECT_EQ(steps[2].step, "send_immediate");
    EXPECT_EQ(immediate.status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);

    std::vector<StreamResponse> events;
    for (int i = 3; i < 9; ++i) {
      EXPECT_EQ(steps[i].step, "stream");
      events.push_back(Field<StreamResponse>(steps[i], "event"));
    }
    const std::string id = events[0].task().id();
    EXPECT_EQ(events[0].task().status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);
    EXPECT_EQ(events[1].status_update().status().state(), lf::a2a::v1::TASK_STATE_WORKING);
    const char* chunks[] = {"STREAM ", "THESE ", "WORDS"};
    for (int i = 0; i < 3; ++i) {
      const auto& update = events[2 + i].artifact_update();
      EXPECT_EQ(update.task_id(), id);
      EXPECT_EQ(update.artifact().parts(0).text(), chunks[i]);
      EXPECT_EQ(update.append(), i > 0);
      EXPECT_EQ(update.last_chunk(), i == 2);
    }
    EXPECT_EQ(events[5].status_update().task_id(), id);
    EXPECT_EQ(events[5].status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);

    Task got = Field<Task>(steps[9], "task");
    EXPECT_EQ(steps[9].step, "get");
    EXPECT_EQ(got.id(), id);
    EXPECT_EQ(got.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
    ASSERT_EQ(got.artifacts_size(), 1);
    ASSERT_EQ(got.artifacts(0).parts_size(), 3);
    EXPECT_EQ(got.artifacts(0).parts(2).text(), "WORDS");

    EXPECT_EQ(steps[10].step, "list");
    auto listed = Field<lf::a2a::v1::ListTasksResponse>(steps[10], "response");
    ASSERT_EQ(listed.tasks_size(), 1);
    EXPECT_EQ(listed.tasks(0).id(), id);
    EXPECT_EQ(listed.tasks(0).history_size(), 0);  // historyLength 0
    EXPECT_EQ(listed.tasks(0).artifacts_size(), 1);

    EXPECT_EQ(steps[11].step, "push");
    auto created = Field<lf::a2a::v1::TaskPushNotificationConfig>(steps[11], "created");
    EXPECT_EQ(created.id(), "js-hook");
    EXPECT_THAT(created.task_id(), HasSubstr("js-node~"));
    EXPECT_EQ(created.authentication().credentials(), "js-secret");
    auto got_hook = Field<lf::a2a::v1::TaskPushNotificationConfig>(steps[11], "got");
    EXPECT_EQ(got_hook.url(), "https://hooks.example.com/a2a");
    EXPECT_EQ(got_hook.token(), "js-token");
    EXPECT_EQ(steps[11].body.fields().at("listed").number_value(), 1);
    EXPECT_EQ(steps[11].body.fields().at("left").number_value(), 0);

    EXPECT_EQ(steps[12].step, "cancel");
    EXPECT_EQ(Field<Task>(steps[12], "task").status().state(), lf::a2a::v1::TASK_STATE_CANCELED);

    EXPECT_EQ(steps[13].step, "subscribe");
    EXPECT_EQ(steps[13].body.fields().at("first").string_value(), "task");
    EXPECT_EQ(Field<StreamResponse>(steps[13], "last").status_update().status().state(),
              lf::a2a::v1::TASK_STATE_COMPLETED);
    Task subscribed = Field<Task>(steps[13], "final");
    EXPECT_EQ(subscribed.artifacts(0).parts_size(), 6);

    EXPECT_EQ(steps[14].step, "error");
    EXPECT_EQ(steps[14].body.fields().at("reason").string_value(), "TASK_NOT_FOUND");
    EXPECT_THAT(steps[14].body.fields().at("message").string_value(), HasSubstr("js~no-such-task"));

    // The direct reply: a Message, not a Task, blocking and streamed (its one event).
    EXPECT_EQ(steps[15].step, "reply");
    EXPECT_EQ(steps[15].body.fields().at("kind").string_value(), "message");
    auto reply = Field<lf::a2a::v1::Message>(steps[15], "message");
    EXPECT_EQ(reply.role(), lf::a2a::v1::ROLE_AGENT);
    EXPECT_EQ(reply.parts(0).text(), "echo: hi there");
    EXPECT_TRUE(reply.task_id().empty());
    EXPECT_FALSE(reply.context_id().empty());
    EXPECT_EQ(steps[16].step, "reply_stream");
    const auto& streamed = steps[16].body.fields().at("events").list_value().values();
    ASSERT_EQ(streamed.size(), 1);
    StreamResponse only;
    std::string only_json;
    ASSERT_TRUE(MessageToJsonString(streamed[0], &only_json).ok());
    ASSERT_TRUE(JsonStringToMessage(only_json, &only).ok()) << only_json;
    ASSERT_TRUE(only.has_message()) << only_json;
    EXPECT_EQ(only.message().parts(0).text(), "echo: and streamed");
    runs[binding] = std::move(steps);
  }

  // The same answers, step by step, whatever the binding.
  ASSERT_EQ(runs.size(), 3u);
  for (size_t i = 0; i < runs["GRPC"].size(); ++i) {
    EXPECT_THAT(Normalized(runs["JSONRPC"][i]), SameAs(Normalized(runs["GRPC"][i])))
        << "step " << i;
    EXPECT_THAT(Normalized(runs["HTTP+JSON"][i]), SameAs(Normalized(runs["GRPC"][i])))
        << "step " << i;
  }
}

// Runs meshd-secure-client.mjs; its steps in order.
std::vector<Step> RunSecureClient(const testing::TempDir& dir, const testing::E2eNode& node,
                                  const std::string& binding, const std::string& ca_file,
                                  const std::string& token, const std::string& name) {
  const std::string js_dir = testing::SourcePath("tests/e2e/js");
  std::string out = dir.File("js-secure-" + name + ".out");
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "NODE_EXTRA_CA_CERTS=" + ca_file,
                                   "node",
                                   js_dir + "/meshd-secure-client.mjs",
                                   absl::StrCat("https://", node.http_address()),
                                   binding,
                                   ca_file};
  if (!token.empty()) argv.push_back(token);
  absl::StatusOr<Subprocess> client = Subprocess::Start(argv, out);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return {};
  absl::StatusOr<int> exit_code = client->Wait(absl::Seconds(60));
  std::string output = testing::ReadFileOrEmpty(out);
  EXPECT_EQ(exit_code.value_or(-1), 0) << name << ":\n" << output;
  std::vector<Step> steps;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    Step step;
    if (!JsonStringToMessage(std::string(line), &step.body).ok()) continue;
    step.step = step.body.fields().at("step").string_value();
    steps.push_back(std::move(step));
  }
  return steps;
}

TEST(JsSdkTest, WithATokenTheOfficialClientStreamsOverTlsOnEveryBindingAndWithoutOneItIsRefused) {
  testing::TempDir dir;
  testing::TestCa ca;
  testing::NodeTlsFiles tls = testing::WriteNodeTls(dir.path(), ca, "js-tls");
  const std::string client_token = "js-client-0123456789abcdef";
  const std::string agent_token = "uppercase-agent-0123456789";
  testing::WriteFileAtomically(dir.File("tokens"),
                               absl::StrCat(client_token, " js-client\n", agent_token,
                                            " uppercase-agent agent:uppercase,skill:uppercase\n"));
  testing::E2eNode node(dir, "js-tls",
                        {"--ephemeral", "--tls-cert", tls.cert, "--tls-key", tls.key,
                         "--tls-client-ca", tls.ca, "--auth-token-file", dir.File("tokens")});
  ASSERT_TRUE(node.Start());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.cert_pem();
  node.SetClient(grpc::SslCredentials(ssl), client_token);
  Subprocess uppercase =
      node.StartAgent("uppercase-agent", {"--token", agent_token, "--tls-ca", tls.ca});
  ASSERT_TRUE(node.WaitForAgent("uppercase"));

  for (const std::string binding : {"JSONRPC", "HTTP+JSON", "GRPC"}) {
    SCOPED_TRACE(binding);
    std::vector<Step> steps = RunSecureClient(dir, node, binding, tls.ca, client_token, binding);
    ASSERT_GE(steps.size(), 2u) << (steps.empty() ? "" : steps[0].body.DebugString());
    ASSERT_EQ(steps[0].step, "card");
    const auto& card = steps[0].body.fields();
    EXPECT_TRUE(card.at("securitySchemes").struct_value().fields().contains("bearer"));
    EXPECT_EQ(card.at("securityRequirements").list_value().values_size(), 1);
    if (binding != "GRPC") {
      EXPECT_THAT(card.at("binding").string_value(), HasSubstr("https://"));
    }
    StreamResponse last = Field<StreamResponse>(steps.back(), "event");
    EXPECT_EQ(last.status_update().status().state(), lf::a2a::v1::TASK_STATE_COMPLETED)
        << steps.back().body.DebugString();
    for (const Step& step : steps) EXPECT_NE(step.step, "error") << step.body.DebugString();

    // The same client without the token is refused: the public card reads,
    // but the SDK asks for the extended card the card offers (and would then
    // send the task), and gets the binding's authentication error.
    std::vector<Step> refused =
        RunSecureClient(dir, node, binding, tls.ca, "", binding + "-no-token");
    ASSERT_FALSE(refused.empty());
    for (const Step& step : refused) EXPECT_NE(step.step, "stream") << step.body.DebugString();
    ASSERT_EQ(refused.back().step, "error");
    const std::string message = refused.back().body.fields().at("message").string_value();
    // The SDK raises the node's own message on every binding (HTTP 401 with
    // WWW-Authenticate on the HTTP ones, UNAUTHENTICATED on gRPC).
    EXPECT_THAT(message, HasSubstr("authentication required")) << message;
  }
}

}  // namespace
}  // namespace a2amesh
