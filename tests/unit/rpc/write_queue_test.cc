#include "rpc/write_queue.h"

#include <deque>
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

// Joins the waiting messages with '+', the way a batch packs them.
bool JoinAll(std::deque<std::string>& queue, std::string* merged) {
  merged->clear();
  while (!queue.empty()) {
    if (!merged->empty()) merged->push_back('+');
    merged->append(queue.front());
    queue.pop_front();
  }
  return true;
}

TEST(WriteQueueTest, MessagesThatWaitBehindAWriteGoOutAsOne) {
  FakeReactor reactor;
  Queue queue(10);
  queue.SetCoalesce(JoinAll);
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.Write("c");
  queue.OnWriteDone(true, kGone);
  queue.Write("d");
  EXPECT_THAT(reactor.writes, ElementsAre("a", "b+c"));
  queue.OnWriteDone(true, kGone);
  EXPECT_THAT(reactor.writes, ElementsAre("a", "b+c", "d"));
}

TEST(WriteQueueTest, ACoalesceThatDeclinesWritesOneMessage) {
  FakeReactor reactor;
  Queue queue(10);
  queue.SetCoalesce([](std::deque<std::string>&, std::string*) { return false; });
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.Write("c");
  queue.OnWriteDone(true, kGone);
  queue.OnWriteDone(true, kGone);
  EXPECT_THAT(reactor.writes, ElementsAre("a", "b", "c"));
}

TEST(WriteQueueTest, AHeldBurstGoesOutTogetherOnRelease) {
  FakeReactor reactor;
  Queue queue(10);
  queue.SetCoalesce(JoinAll);
  queue.Attach(&reactor);
  queue.Hold();
  queue.Hold();  // holds nest
  queue.Write("a");
  queue.Write("b");
  queue.Release();
  EXPECT_TRUE(reactor.writes.empty());
  queue.Write("c");
  queue.Release();
  EXPECT_THAT(reactor.writes, ElementsAre("a+b+c"));
}

TEST(WriteQueueTest, OfferLeavesTheMessageWithTheCallerWhenRefused) {
  FakeReactor reactor;
  Queue queue(1);
  queue.Attach(&reactor);
  std::string first = "first";
  EXPECT_EQ(queue.Offer(&first), Queue::Result::kQueued);
  std::string second = "second";
  EXPECT_EQ(queue.Offer(&second), Queue::Result::kQueued);
  std::string third = "third";
  EXPECT_EQ(queue.Offer(&third), Queue::Result::kFull);
  EXPECT_EQ(third, "third");
  queue.Finish(grpc::Status::OK);
  std::string fourth = "fourth";
  EXPECT_EQ(queue.Offer(&fourth), Queue::Result::kClosed);
  EXPECT_EQ(fourth, "fourth");
}

TEST(WriteQueueTest, AStoppedQueueRefusesWritesAndKeepsWhatWaitsForDetach) {
  FakeReactor reactor;
  Queue queue(10);
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.Stop();  // the stream is over; the reactor may be gone
  EXPECT_EQ(queue.Write("c"), Queue::Result::kClosed);
  queue.OnWriteDone(true, kGone);  // "a" completes: nothing more is started
  EXPECT_THAT(reactor.writes, ElementsAre("a"));
  EXPECT_TRUE(reactor.finishes.empty());
  EXPECT_THAT(queue.Detach(), ElementsAre("b"));
}

TEST(WriteQueueTest, DetachReturnsWhatWasNeverWritten) {
  FakeReactor reactor;
  Queue queue(10);
  queue.Attach(&reactor);
  queue.Write("a");
  queue.Write("b");
  queue.Write("c");
  queue.OnWriteDone(false, kGone);  // the stream broke while "a" was written
  EXPECT_THAT(reactor.writes, ElementsAre("a"));
  std::deque<std::string> unsent = queue.Detach();
  EXPECT_THAT(unsent, ElementsAre("b", "c"));  // "a" may or may not have arrived
}

}  // namespace
}  // namespace a2amesh::rpc
