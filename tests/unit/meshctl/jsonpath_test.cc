#include "meshctl/jsonpath.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "meshctl/client.h"
#include "meshctl/output.h"
#include "testing/status_matchers.h"

namespace a2amesh::meshctl {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;

google::protobuf::Value Document(const std::string& json) {
  google::protobuf::Value value;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &value).ok()) << json;
  return value;
}

std::string Render(const std::string& template_text, const std::string& json) {
  absl::StatusOr<JsonPathTemplate> parsed = JsonPathTemplate::Parse(template_text);
  EXPECT_THAT(parsed, IsOk());
  if (!parsed.ok()) return "";
  absl::StatusOr<std::string> text = parsed->Render(Document(json));
  EXPECT_THAT(text, IsOk());
  return text.ok() ? *text : "";
}

constexpr char kAgents[] = R"({"agents": [
  {"id": "echo@n1", "skills": ["echo"], "load": 0.5, "local": true},
  {"id": "plan@n2", "skills": ["plan", "route"], "load": 0, "local": false}]})";

TEST(JsonPathTest, PathsIndexesAndEveryElement) {
  EXPECT_EQ(Render("{.agents[0].id}", kAgents), "echo@n1");
  EXPECT_EQ(Render("{.agents[-1].id}", kAgents), "plan@n2");
  EXPECT_EQ(Render("{.agents[*].id}", kAgents), "echo@n1 plan@n2");
  EXPECT_EQ(Render("{.agents[1].skills}", kAgents), R"(["plan","route"])");
  EXPECT_EQ(Render("{.agents[0].load} {.agents[0].local}", kAgents), "0.5 true");
  EXPECT_EQ(Render("{.agents[0]['id']}", kAgents), "echo@n1");
  EXPECT_EQ(Render("{$.agents[0].id}", kAgents), "echo@n1");
  EXPECT_EQ(Render("ids: {.agents[*].id}!", kAgents), "ids: echo@n1 plan@n2!");
}

TEST(JsonPathTest, RangeRepeatsItsTextForEachResult) {
  EXPECT_EQ(Render(R"({range .agents[*]}{.id}{"\t"}{.skills[*]}{"\n"}{end})", kAgents),
            "echo@n1\techo\nplan@n2\tplan route\n");
  EXPECT_EQ(Render(R"({range .agents[*]}{range .skills[*]}<{@}>{end}{end})", kAgents),
            "<echo><plan><route>");
  // An object's members in key order (a map's own order changes).
  EXPECT_EQ(Render("{.m[*]}", R"({"m": {"b": 2, "a": 1, "c": 3}})"), "1 2 3");
}

TEST(JsonPathTest, MistakesAreNamed) {
  EXPECT_THAT(JsonPathTemplate::Parse("{.agents"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'{' is not closed")));
  EXPECT_THAT(JsonPathTemplate::Parse("{range .agents[*]}{.id}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("{range} has no {end}")));
  EXPECT_THAT(JsonPathTemplate::Parse("{end}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("{end} without {range}")));
  EXPECT_THAT(JsonPathTemplate::Parse("{agents}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a path")));
  EXPECT_THAT(JsonPathTemplate::Parse("{.agents[x]}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[x] is not an index")));
  EXPECT_THAT(JsonPathTemplate::Parse(R"({"\q"})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\\q is not an escape")));
  absl::StatusOr<JsonPathTemplate> missing = JsonPathTemplate::Parse("{.agents[0].nope}");
  ASSERT_THAT(missing, IsOk());
  EXPECT_THAT(missing->Render(Document(kAgents)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(".agents[0] has no field 'nope'")));
  absl::StatusOr<JsonPathTemplate> past = JsonPathTemplate::Parse("{.agents[5]}");
  ASSERT_THAT(past, IsOk());
  EXPECT_THAT(past->Render(Document(kAgents)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("past its 2 items")));
}

TEST(OutputFormatTest, ParsesEveryFormatAndNamesTheChoices) {
  EXPECT_EQ(ParseFormat("name")->format, Format::kName);
  absl::StatusOr<OutputFormat> jsonpath = ParseFormat("jsonpath={.a}");
  ASSERT_THAT(jsonpath, IsOk());
  EXPECT_EQ(jsonpath->format, Format::kJsonPath);
  ASSERT_TRUE(jsonpath->jsonpath.has_value());
  EXPECT_EQ(*jsonpath->jsonpath->Render(Document(R"({"a": "x"})")), "x");
  EXPECT_THAT(ParseFormat("xml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name, jsonpath=TEMPLATE")));
}

TEST(NodeTargetTest, ReadsWhatPeopleWriteForANode) {
  bool tls = false;
  EXPECT_EQ(*NodeTarget("10.0.0.5:7401", &tls), "10.0.0.5:7401");
  EXPECT_EQ(*NodeTarget("node-1", &tls), "node-1:7400");
  EXPECT_EQ(*NodeTarget("[::1]", &tls), "[::1]:7400");
  EXPECT_EQ(*NodeTarget("::1", &tls), "[::1]:7400");
  EXPECT_EQ(*NodeTarget("[::1]:7402", &tls), "[::1]:7402");
  EXPECT_EQ(*NodeTarget("http://node-1:7401/", &tls), "node-1:7401");
  EXPECT_EQ(*NodeTarget("http://node-1", &tls), "node-1:7400");
  EXPECT_FALSE(tls);
  EXPECT_EQ(*NodeTarget("https://mesh.example.com:443", &tls), "mesh.example.com:443");
  EXPECT_TRUE(tls);
  EXPECT_EQ(*NodeTarget("unix:/run/meshd.sock", &tls), "unix:/run/meshd.sock");
  EXPECT_EQ(*NodeTarget("dns:///mesh:7400", &tls), "dns:///mesh:7400");
  for (const char* bad :
       {"http://x/a2a", "ftp://x", "x:0", "x:99999", "x:port", "http://", ":7400", "[::1"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(NodeTarget(bad, &tls),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--server: '")));
  }
}

}  // namespace
}  // namespace a2amesh::meshctl
