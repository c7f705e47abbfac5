#include "core/thread_pool.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace a2amesh {
namespace {

TEST(ThreadPoolTest, RunsEverythingScheduledBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 1000; ++i) {
      pool.Schedule([&ran] { ran.fetch_add(1); });
    }
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(ThreadPoolTest, OneThreadRunsInOrder) {
  std::vector<int> order;
  {
    ThreadPool pool(1);
    for (int i = 0; i < 100; ++i) {
      pool.Schedule([&order, i] { order.push_back(i); });
    }
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(order[i], i);
  }
}

TEST(TimerThreadTest, FiresInDeadlineOrder) {
  TimerThread timers;
  absl::Mutex mu;
  std::vector<int> fired;
  absl::Notification done;
  timers.RunAfter(absl::Milliseconds(30), [&] {
    absl::MutexLock lock(&mu);
    fired.push_back(3);
    done.Notify();
  });
  timers.RunAfter(absl::Milliseconds(10), [&] {
    absl::MutexLock lock(&mu);
    fired.push_back(1);
  });
  timers.RunAfter(absl::Milliseconds(20), [&] {
    absl::MutexLock lock(&mu);
    fired.push_back(2);
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
}

TEST(TimerThreadTest, CancelledTimersDoNotFire) {
  TimerThread timers;
  std::atomic<bool> cancelled_fired{false};
  absl::Notification later;
  Timers::Id id = timers.RunAfter(absl::Milliseconds(10), [&] { cancelled_fired = true; });
  EXPECT_TRUE(timers.Cancel(id));
  EXPECT_FALSE(timers.Cancel(id));
  timers.RunAfter(absl::Milliseconds(40), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(cancelled_fired.load());
}

TEST(TimerThreadTest, ASoonerTimerAddedLaterStillFiresFirst) {
  TimerThread timers;
  absl::Notification soon;
  std::atomic<bool> late_fired{false};
  timers.RunAfter(absl::Hours(1), [&] { late_fired = true; });
  timers.RunAfter(absl::Milliseconds(5), [&] { soon.Notify(); });
  EXPECT_TRUE(soon.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(late_fired.load());
}

}  // namespace
}  // namespace a2amesh
