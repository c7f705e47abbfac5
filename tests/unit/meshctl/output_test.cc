#include "meshctl/output.h"

#include <sstream>

#include "a2amesh/v1/admin.pb.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "meshctl/meshctl.h"
#include "testing/status_matchers.h"

namespace a2amesh::meshctl {
namespace {

using ::a2amesh::testing::IsOk;
using ::a2amesh::testing::StatusIs;
using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

v1::ListAgentsResponse TwoAgents() {
  v1::ListAgentsResponse response;
  v1::AgentInfo* echo = response.add_agents();
  echo->set_id("echo@n1");
  echo->add_skills("echo");
  echo->add_tags("text");
  echo->add_tags("say: \"hi\"\n");  // needs quoting and escapes
  echo->set_max_concurrency(8);
  echo->set_load(0.25);
  echo->set_health(v1::AGENT_HEALTH_READY);
  response.add_agents()->set_id("empty@n2");
  return response;
}

TEST(OutputTest, JsonIsTheProto3MappingWithEveryField) {
  const std::string json = ToJson(TwoAgents());
  EXPECT_THAT(json, HasSubstr("\"id\": \"echo@n1\""));
  EXPECT_THAT(json, HasSubstr("\"maxConcurrency\": 8"));
  EXPECT_THAT(json, HasSubstr("\"health\": \"AGENT_HEALTH_READY\""));
  EXPECT_THAT(json, HasSubstr("\"local\": false"));  // defaults are printed too
  v1::ListAgentsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), TwoAgents().SerializeAsString());
  EXPECT_EQ(ToJson(TwoAgents(), /*pretty=*/false).find('\n'), std::string::npos);
}

TEST(OutputTest, YamlHasSortedKeysQuotedStringsAndBlockLists) {
  const std::string yaml = ToYaml(TwoAgents());
  EXPECT_THAT(yaml, HasSubstr("agents:\n  - agentId: \"\"\n"));
  EXPECT_THAT(yaml, HasSubstr("    health: \"AGENT_HEALTH_READY\"\n    id: \"echo@n1\"\n"));
  EXPECT_THAT(yaml, HasSubstr("    load: 0.25\n"));
  EXPECT_THAT(yaml, HasSubstr("    maxConcurrency: 8\n"));
  EXPECT_THAT(yaml, HasSubstr("    skills:\n      - \"echo\"\n"));
  EXPECT_THAT(yaml, HasSubstr("      - \"say: \\\"hi\\\"\\n\"\n"));
  EXPECT_THAT(yaml, HasSubstr("    skills: []\n"));  // the second agent
  EXPECT_THAT(yaml, HasSubstr("    local: false\n"));
  EXPECT_EQ(yaml.back(), '\n');
  EXPECT_EQ(ToYaml(v1::ListNodesResponse()), "nodes: []\n");
}

TEST(OutputTest, YamlQuotesKeysThatAreNotPlainNames) {
  google::protobuf::Struct document;
  (*document.mutable_fields())["a2amesh/skill"].set_string_value("x");
  (*document.mutable_fields())["on"].set_bool_value(true);
  (*document.mutable_fields())["nested"]
      .mutable_list_value()
      ->add_values()
      ->mutable_list_value()
      ->add_values()
      ->set_number_value(1);
  EXPECT_EQ(ToYaml(document), "\"a2amesh/skill\": \"x\"\nnested:\n  - - 1\n\"on\": true\n");
}

TEST(OutputTest, TablesAlignColumnsByWhatTheTerminalShows) {
  Table table({"TASK", "STATE"});
  table.AddRow({"a~1", "completed"});
  table.AddRow({"└─ b~2", "failed"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "TASK    STATE\n"
            "a~1     completed\n"
            "└─ b~2  failed\n");
}

TEST(OutputTest, JsonKeysOfMapsAreSortedEveryTime) {
  google::protobuf::Struct document;
  auto& fields = *document.mutable_fields();
  std::vector<std::string> keys;
  for (char c = 'z'; c >= 'a'; --c) keys.push_back(std::string(1, c) + "key");
  for (const std::string& key : keys) fields[key].set_string_value(key);
  const std::string json = ToJson(document, /*pretty=*/false);
  size_t last = 0;
  for (char c = 'a'; c <= 'z'; ++c) {
    const size_t at = json.find(absl::StrCat("\"", std::string(1, c), "key\":"));
    ASSERT_NE(at, std::string::npos) << c;
    EXPECT_GT(at, last) << json;
    last = at;
  }
}

TEST(OutputTest, TablesPrintWithoutHeadersOrAsNames) {
  Table table({"TASK", "STATE"});
  table.AddRow({"n1~a", "completed"});
  table.AddRow({"\u251c\u2500 n2~b", "working"});
  table.AddRow({"\u2502  \u2514\u2500 n2~c", "working"});
  std::ostringstream headless;
  table.Print(headless, /*headers=*/false);
  EXPECT_EQ(headless.str().substr(0, 4), "n1~a");
  std::ostringstream names;
  table.Print(names, /*headers=*/true, /*names_only=*/true);
  EXPECT_EQ(names.str(), "n1~a\nn2~b\nn2~c\n");
  EXPECT_TRUE(Table({"A"}).empty());
  EXPECT_FALSE(table.empty());
}

TEST(OutputTest, AgesReadLikeKubectl) {
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  auto ago = [&](absl::Duration d) {
    return Age(TimeUtil::MillisecondsToTimestamp(absl::ToUnixMillis(now - d)), now);
  };
  EXPECT_EQ(ago(absl::Seconds(5)), "5s");
  EXPECT_EQ(ago(absl::Seconds(119)), "119s");
  EXPECT_EQ(ago(absl::Minutes(7)), "7m");
  EXPECT_EQ(ago(absl::Hours(5)), "5h");
  EXPECT_EQ(ago(absl::Hours(24 * 9)), "9d");
  EXPECT_EQ(ago(-absl::Seconds(3)), "0s");  // clocks disagree
  EXPECT_EQ(Age(google::protobuf::Timestamp(), now), "-");
}

TEST(OutputTest, StatesReadAndParseAsPeopleWriteThem) {
  EXPECT_EQ(StateName(lf::a2a::v1::TASK_STATE_INPUT_REQUIRED), "input-required");
  EXPECT_EQ(*ParseState("input-required"), lf::a2a::v1::TASK_STATE_INPUT_REQUIRED);
  EXPECT_EQ(*ParseState("Completed"), lf::a2a::v1::TASK_STATE_COMPLETED);
  EXPECT_EQ(*ParseState("TASK_STATE_FAILED"), lf::a2a::v1::TASK_STATE_FAILED);
  EXPECT_THAT(ParseState("done"), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("'done' is not a task state (submitted, ")));
  EXPECT_THAT(ParseState("unspecified"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseFormat("xml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("table, wide, json, yaml")));
  EXPECT_THAT(ParseFormat("wide"), IsOk());
}

TEST(OutputTest, PartsTextShowsEveryKindOfPart) {
  google::protobuf::RepeatedPtrField<lf::a2a::v1::Part> parts;
  parts.Add()->set_text("hello");
  (*parts.Add()->mutable_data()->mutable_struct_value()->mutable_fields())["n"].set_number_value(2);
  parts.Add()->set_url("https://example.com/x.pdf");
  lf::a2a::v1::Part* raw = parts.Add();
  raw->set_raw("abc");
  raw->set_filename("x.bin");
  EXPECT_EQ(PartsText(parts), "hello {\"n\":2} <https://example.com/x.pdf> <x.bin, 3 bytes>");
}

TEST(OutputTest, CompletionScriptsCoverEveryVerb) {
  for (const char* shell : {"bash", "zsh"}) {
    const std::string script = CompletionScript(shell);
    for (const char* verb : {"nodes", "agents", "card", "skills", "tasks", "task", "send", "cancel",
                             "route", "watch", "drain", "health", "version"}) {
      EXPECT_THAT(script, HasSubstr(verb)) << shell;
    }
  }
  EXPECT_EQ(std::string(CompletionScript("fish")), "");
}

}  // namespace
}  // namespace a2amesh::meshctl
