#include "rpc/write_queue.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh::rpc {
namespace {

using ::testing::ElementsAre;

// Records what the queue asks of a reactor; the test plays gRPC by calling
// OnWriteDone.
struct FakeReactor {
  void StartWrite(const std::string* message) { writes.push_back(*message); }
  void Finish(grpc::Status status) {
    finishes.push_back(status);
    finished_after_writes = writes.size();
  }
  void StartRead(int*) { ++reads; }
  std::vector<std::string> writes;
  std::vector<grpc::Status> finishes;
  size_t finished_after_writes = 0;
  int reads = 0;
};

using Queue = WriteQueue<FakeReactor, std::string>;
const grpc::Status kGone(grpc::StatusCode::UNAVAILABLE, "gone");

TEST(WriteQueueTest, WritesOneAtATimeInOrder) {
  FakeReactor reactor;
  Queue queue(10);
  EXPECT_EQ(queue.Write("a"), Queue::Result::kQueued);  // before Attach: waits
  queue.Attach(&reactor);
  EXPECT_THAT(reactor.writes, ElementsAre("a"));
  queue.Write("b");
  queue.Write("c");
  EXPECT_THAT(reactor.writes, ElementsAre("a"));  // "a" is still in flight
  queue.OnWriteDone(true, kGone);
  EXPECT_THAT(reactor.writes, ElementsAre("a", "b"));
  queue.OnWriteDone(true, kGone);
  queue.OnWriteDone(true, kGone);
  EXPECT_THAT(reactor.writes, ElementsAre("a", "b", "c"));
  EXPECT_TRUE(reactor.finishes.empty());
}

TEST(WriteQueueTest, FinishesAfterTheQueuedWritesExactlyOnce) {
  FakeReactor reactor;
  Queue queue(10);
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.Finish(grpc::Status::OK);
  queue.Finish(kGone);  // only the first counts
  EXPECT_EQ(queue.Write("late"), Queue::Result::kClosed);
  EXPECT_TRUE(reactor.finishes.empty());
  queue.OnWriteDone(true, kGone);
  queue.OnWriteDone(true, kGone);
  ASSERT_EQ(reactor.finishes.size(), 1u);
  EXPECT_TRUE(reactor.finishes[0].ok());
  EXPECT_EQ(reactor.finished_after_writes, 2u);
}

TEST(WriteQueueTest, DropQueuedFinishesAfterTheWriteInFlight) {
  FakeReactor reactor;
  Queue queue(10);
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.Finish(kGone, /*drop_queued=*/true);
  EXPECT_TRUE(reactor.finishes.empty());  // never Finish with a write outstanding
  queue.OnWriteDone(true, kGone);
  EXPECT_THAT(reactor.writes, ElementsAre("a"));
  ASSERT_EQ(reactor.finishes.size(), 1u);
  EXPECT_EQ(reactor.finishes[0].error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(WriteQueueTest, AFailedWriteFinishesTheCall) {
  FakeReactor reactor;
  Queue queue(10);
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.OnWriteDone(false, kGone);
  EXPECT_THAT(reactor.writes, ElementsAre("a"));
  ASSERT_EQ(reactor.finishes.size(), 1u);
  EXPECT_EQ(reactor.finishes[0].error_message(), "gone");
}

TEST(WriteQueueTest, RefusesPastItsBound) {
  FakeReactor reactor;
  Queue queue(2);
  queue.Attach(&reactor);
  EXPECT_EQ(queue.Write("in flight"), Queue::Result::kQueued);
  EXPECT_EQ(queue.Write("1"), Queue::Result::kQueued);
  EXPECT_EQ(queue.Write("2"), Queue::Result::kQueued);
  EXPECT_EQ(queue.Write("3"), Queue::Result::kFull);
}

TEST(WriteQueueTest, NoReadFollowsFinishAndNothingTouchesADetachedReactor) {
  FakeReactor reactor;
  Queue queue(10);
  int in = 0;
  queue.Attach(&reactor);
  EXPECT_TRUE(queue.WithOpenReactor([&](FakeReactor* r) { r->StartRead(&in); }));
  queue.Finish(grpc::Status::OK);
  EXPECT_FALSE(queue.WithOpenReactor([&](FakeReactor* r) { r->StartRead(&in); }));
  EXPECT_EQ(reactor.reads, 1);
  queue.Detach();
  EXPECT_EQ(queue.Write("x"), Queue::Result::kClosed);
  EXPECT_EQ(reactor.finishes.size(), 1u);
}

}  // namespace
}  // namespace a2amesh::rpc
