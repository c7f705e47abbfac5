#include "a2a/jsonrpc_request.h"

#include <string>

#include "a2a/http_framing.h"
#include "a2a/proto_json.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh::a2a {
namespace {

using ::testing::HasSubstr;

TEST(JsonRpcRequestTest, ReadsTheEnvelopeAndLeavesParamsAsTheirText) {
  const std::string body =
      R"({ "jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "n~1", "x": [1, {"y": 2}]} })";
  JsonRpcRequest request = ReadJsonRpcRequest(body);
  EXPECT_EQ(request.error_code, 0) << request.error;
  EXPECT_EQ(request.id, "7");
  EXPECT_EQ(request.method, "GetTask");
  EXPECT_EQ(request.params, R"({"id": "n~1", "x": [1, {"y": 2}]})");
}

TEST(JsonRpcRequestTest, IdsComeBackExactly) {
  struct Case {
    std::string id;      // as sent
    std::string echoed;  // as it must come back
  };
  for (const Case& c :
       {Case{"9007199254740993", "9007199254740993"},  // 2^53 + 1
        Case{"-12345678901234567890123", "-12345678901234567890123"}, Case{"\"abc\"", "\"abc\""},
        Case{"\"quote \\\" and \\u00e9\"", "\"quote \\\" and \u00e9\""}, Case{"null", "null"}}) {
    JsonRpcRequest request = ReadJsonRpcRequest(
        absl::StrCat(R"({"jsonrpc":"2.0","method":"GetTask","params":{},"id":)", c.id, "}"));
    EXPECT_EQ(request.error_code, 0) << request.error;
    EXPECT_EQ(request.id, c.echoed) << c.id;
  }
  // No id at all (a notification): answered with null.
  EXPECT_EQ(ReadJsonRpcRequest(R"({"jsonrpc":"2.0","method":"GetTask"})").id, "null");
}

TEST(JsonRpcRequestTest, BadEnvelopesGetTheSpecsCodesAndKeepTheIdWhenTheyCan) {
  JsonRpcRequest broken = ReadJsonRpcRequest(R"({"jsonrpc":"2.0","id":1,"method":)");
  EXPECT_EQ(broken.error_code, kParseError);
  EXPECT_EQ(broken.id, "null");
  EXPECT_THAT(broken.error, HasSubstr("Parse error"));

  EXPECT_EQ(ReadJsonRpcRequest(R"({"jsonrpc":"2.0"} trailing)").error_code, kParseError);
  EXPECT_THAT(ReadJsonRpcRequest(R"([{"jsonrpc":"2.0"}])").error,
              HasSubstr("batch requests are not supported"));
  EXPECT_EQ(ReadJsonRpcRequest("42").error_code, kInvalidRequest);

  JsonRpcRequest version = ReadJsonRpcRequest(R"({"jsonrpc":"1.0","id":"x","method":"GetTask"})");
  EXPECT_EQ(version.error_code, kInvalidRequest);
  EXPECT_EQ(version.id, "\"x\"");  // read on past the bad member: the id is known
  EXPECT_THAT(version.error, HasSubstr("\"jsonrpc\" must be \"2.0\""));

  JsonRpcRequest no_method = ReadJsonRpcRequest(R"({"jsonrpc":"2.0","id":3})");
  EXPECT_EQ(no_method.error_code, kInvalidRequest);
  EXPECT_THAT(no_method.error, HasSubstr("\"method\""));

  JsonRpcRequest bad_id = ReadJsonRpcRequest(R"({"jsonrpc":"2.0","id":{"a":1},"method":"m"})");
  EXPECT_EQ(bad_id.error_code, kInvalidRequest);
  EXPECT_EQ(bad_id.id, "null");
  EXPECT_EQ(ReadJsonRpcRequest(R"({"jsonrpc":"2.0","id":true,"method":"m"})").id, "null");

  JsonRpcRequest params =
      ReadJsonRpcRequest(R"({"jsonrpc":"2.0","id":4,"method":"m","params":[1]})");
  EXPECT_EQ(params.error_code, kInvalidParams);
  EXPECT_EQ(params.id, "4");
  EXPECT_TRUE(params.params.empty());

  JsonRpcRequest twice =
      ReadJsonRpcRequest(R"({"jsonrpc":"2.0","id":5,"method":"a","method":"b"})");
  EXPECT_EQ(twice.error_code, kInvalidRequest);
  EXPECT_THAT(twice.error, HasSubstr("\"method\" appears twice"));
}

TEST(JsonRpcRequestTest, DeepNestingIsRefusedQuicklyWithoutRecursion) {
  // 100,000 nested arrays: refused at the depth limit, without a deep stack.
  std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"a":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}}";
  JsonRpcRequest request = ReadJsonRpcRequest(deep);
  EXPECT_EQ(request.error_code, kInvalidRequest);
  EXPECT_THAT(request.error, HasSubstr("deeper than 64 levels (--max-json-depth)"));
  EXPECT_EQ(request.id, "1");
  // Objects too, and the limit is the caller's.
  std::string objects = R"({"jsonrpc":"2.0","id":2,"method":"SendMessage","params":)";
  for (int i = 0; i < 10; ++i) objects += R"({"a":)";
  objects += "1" + std::string(10, '}') + "}";
  EXPECT_EQ(ReadJsonRpcRequest(objects).error_code, 0);
  EXPECT_EQ(ReadJsonRpcRequest(objects, /*max_depth=*/8).error_code, kInvalidRequest);
}

TEST(JsonNestingTest, CountsArraysAndObjectsButNotBracketsInStrings) {
  EXPECT_FALSE(JsonNestsDeeperThan(R"({"a":[1,{"b":[]}]})", 4));
  EXPECT_TRUE(JsonNestsDeeperThan(R"({"a":[1,{"b":[]}]})", 3));
  EXPECT_FALSE(JsonNestsDeeperThan(R"({"a":"[[[[[[{{{{"})", 1));
  // An escaped quote does not end the string.
  EXPECT_FALSE(JsonNestsDeeperThan(R"({"a":"\"[[[[[["})", 1));
  // An escaped backslash does not escape the quote after it.
  EXPECT_TRUE(JsonNestsDeeperThan(R"({"a":"\\",b:[[[[[[]]]]]]})", 4));
  EXPECT_TRUE(JsonNestsDeeperThan(std::string(100000, '[') + std::string(100000, ']'), 64));
  EXPECT_FALSE(JsonNestsDeeperThan(std::string(64, '[') + std::string(64, ']'), 64));
}

}  // namespace
}  // namespace a2amesh::a2a
