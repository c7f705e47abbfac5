#include "rpc/batching.h"

#include <deque>
#include <string>

#include "a2amesh/v1/agent_host.pb.h"
#include "gtest/gtest.h"

namespace a2amesh::rpc {
namespace {

v1::NodeToAgent Cancel(const std::string& task_id, size_t reason_bytes = 0) {
  v1::NodeToAgent message;
  message.mutable_cancel()->set_task_id(task_id);
  message.mutable_cancel()->set_reason(std::string(reason_bytes, 'r'));
  return message;
}

bool Batchable(const v1::NodeToAgent& message) {
  return !message.has_registered() && !message.has_batch();
}

TEST(BatchingTest, PacksTheWaitingMessagesInOrder) {
  std::deque<v1::NodeToAgent> queue = {Cancel("a"), Cancel("b"), Cancel("c")};
  v1::NodeToAgent merged = Cancel("stale");  // a reused message is cleared first
  ASSERT_TRUE(CoalesceIntoBatch(queue, &merged, Batchable));
  EXPECT_TRUE(queue.empty());
  ASSERT_TRUE(merged.has_batch());
  ASSERT_EQ(merged.batch().messages_size(), 3);
  EXPECT_EQ(merged.batch().messages(0).cancel().task_id(), "a");
  EXPECT_EQ(merged.batch().messages(2).cancel().task_id(), "c");
}

TEST(BatchingTest, LeavesAMessageThatMustGoAloneAndWhatFollowsIt) {
  v1::NodeToAgent registered;
  registered.mutable_registered()->set_node_id("n");
  std::deque<v1::NodeToAgent> queue = {registered, Cancel("a"), Cancel("b")};
  v1::NodeToAgent merged;
  EXPECT_FALSE(CoalesceIntoBatch(queue, &merged, Batchable));  // the front goes alone
  EXPECT_EQ(queue.size(), 3u);
  queue = {Cancel("a"), Cancel("b"), registered, Cancel("c")};
  ASSERT_TRUE(CoalesceIntoBatch(queue, &merged, Batchable));
  EXPECT_EQ(merged.batch().messages_size(), 2);  // stops before it
  ASSERT_EQ(queue.size(), 2u);
  EXPECT_TRUE(queue.front().has_registered());
}

TEST(BatchingTest, KeepsABatchUnderItsByteLimit) {
  std::deque<v1::NodeToAgent> queue;
  const size_t big = kMaxBatchBytes / 3;
  for (int i = 0; i < 5; ++i) queue.push_back(Cancel("t" + std::to_string(i), big));
  v1::NodeToAgent merged;
  ASSERT_TRUE(CoalesceIntoBatch(queue, &merged, Batchable));
  EXPECT_EQ(merged.batch().messages_size(), 2);  // a third would pass the limit
  EXPECT_LE(merged.ByteSizeLong(), kMaxBatchBytes + 64);
  EXPECT_EQ(queue.size(), 3u);
}

TEST(BatchingTest, KeepsABatchUnderItsCountLimit) {
  std::deque<v1::NodeToAgent> queue;
  for (size_t i = 0; i < kMaxBatchMessages + 10; ++i) queue.push_back(Cancel("t"));
  v1::NodeToAgent merged;
  ASSERT_TRUE(CoalesceIntoBatch(queue, &merged, Batchable));
  EXPECT_EQ(static_cast<size_t>(merged.batch().messages_size()), kMaxBatchMessages);
  EXPECT_EQ(queue.size(), 10u);
}

}  // namespace
}  // namespace a2amesh::rpc
