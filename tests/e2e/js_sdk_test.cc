// Wire compatibility with the official A2A JS SDK: its gRPC client
// (tests/e2e/js/meshd-client.mjs, versions pinned by package-lock.json) sends
// to a real meshd process, which hands the tasks to the example agents
// (echo-agent, uppercase-agent) running as processes of their own.

#include <signal.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "testing/e2e_mesh.h"
#include "testing/subprocess.h"
#include "testing/temp_dir.h"

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

TEST(JsSdkTest, TheOfficialGrpcClientSendsAndStreamsThroughMeshd) {
  const std::string js_dir = testing::SourcePath("tests/e2e/js");
  ASSERT_FALSE(testing::ReadFileOrEmpty(js_dir + "/node_modules/@a2a-js/sdk/package.json").empty())
      << "the JS SDK is not installed: run `npm ci` in " << js_dir << " (tools/test does)";

  testing::TempDir dir;
  testing::E2eNode node(dir, "js-node", {"--ephemeral"});
  ASSERT_TRUE(node.Start());
  Subprocess echo = node.StartAgent("echo-agent", {});
  Subprocess uppercase = node.StartAgent("uppercase-agent", {"--chunk-delay", "20ms"});
  ASSERT_TRUE(node.WaitForAgent("echo"));
  ASSERT_TRUE(node.WaitForAgent("uppercase"));

  std::string out = dir.File("js.out");
  absl::StatusOr<Subprocess> client = Subprocess::Start(
      {"/usr/bin/env", "node", js_dir + "/meshd-client.mjs", node.address()}, out);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<int> exit_code = client->Wait(absl::Seconds(60));
  std::string output = testing::ReadFileOrEmpty(out);
  ASSERT_TRUE(exit_code.ok());
  ASSERT_EQ(*exit_code, 0) << output;

  std::vector<Step> steps;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    Step step;
    if (!JsonStringToMessage(std::string(line), &step.body).ok()) {
      continue;  // not one of ours (e.g. an npm warning)
    }
    step.step = step.body.fields().at("step").string_value();
    steps.push_back(std::move(step));
  }
  ASSERT_EQ(steps.size(), 10u) << output;

  Task sent = Field<Task>(steps[0], "task");
  EXPECT_EQ(steps[0].step, "send");
  EXPECT_THAT(sent.id(), HasSubstr("js-node~"));
  EXPECT_EQ(sent.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  ASSERT_EQ(sent.artifacts_size(), 1);
  EXPECT_EQ(sent.artifacts(0).parts(0).text(), "hello from js");

  Task immediate = Field<Task>(steps[1], "task");
  EXPECT_EQ(steps[1].step, "send_immediate");
  EXPECT_EQ(immediate.status().state(), lf::a2a::v1::TASK_STATE_SUBMITTED);

  std::vector<StreamResponse> events;
  for (int i = 2; i < 8; ++i) {
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

  Task got = Field<Task>(steps[8], "task");
  EXPECT_EQ(steps[8].step, "get");
  EXPECT_EQ(got.id(), id);
  EXPECT_EQ(got.status().state(), lf::a2a::v1::TASK_STATE_COMPLETED);
  ASSERT_EQ(got.artifacts_size(), 1);
  ASSERT_EQ(got.artifacts(0).parts_size(), 3);
  EXPECT_EQ(got.artifacts(0).parts(2).text(), "WORDS");

  EXPECT_EQ(steps[9].step, "error");
  EXPECT_EQ(steps[9].body.fields().at("name").string_value(), "GrpcTaskNotFoundError");
  EXPECT_THAT(steps[9].body.fields().at("message").string_value(), HasSubstr("js~no-such-task"));
}

}  // namespace
}  // namespace a2amesh
