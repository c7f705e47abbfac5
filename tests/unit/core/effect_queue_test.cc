#include "core/effect_queue.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace a2amesh {
namespace {

using ::testing::ElementsAre;

// An owner as the task manager's entries are: state and effects under one lock.
struct Owner {
  absl::Mutex mu;
  EffectQueue effects;
  int state ABSL_GUARDED_BY(mu) = 0;
};

TEST(EffectQueueTest, EffectsRunAfterTheLockIsReleased) {
  Owner owner;
  bool lock_was_free = false;
  {
    EffectLock lock(&owner.mu, &owner.effects);
    owner.state = 1;
    owner.effects.Add([&] {
      // A lock held by this thread (or any other) could not be taken.
      lock_was_free = owner.mu.TryLock();
      if (lock_was_free) owner.mu.Unlock();
    });
  }
  EXPECT_TRUE(lock_was_free);
}

TEST(EffectQueueTest, EffectsRunInOrderIncludingThoseTheyQueue) {
  Owner owner;
  std::vector<std::string> ran;
  {
    EffectLock lock(&owner.mu, &owner.effects);
    owner.effects.Add([&] {
      ran.push_back("first");
      // An effect may change the owner again: what it decides runs after it.
      EffectLock again(&owner.mu, &owner.effects);
      owner.state = 2;
      owner.effects.Add([&] { ran.push_back("queued by first"); });
    });
    owner.effects.Add([&] { ran.push_back("second"); });
  }
  EXPECT_THAT(ran, ElementsAre("first", "second", "queued by first"));
}

TEST(EffectQueueTest, AThreadThatFindsEffectsRunningLeavesItsOwnToThatThread) {
  Owner owner;
  absl::Notification first_running;
  absl::Notification release_first;
  absl::Mutex ran_mu;
  std::vector<std::pair<std::string, std::thread::id>> ran;
  auto record = [&](std::string what) {
    absl::MutexLock lock(&ran_mu);
    ran.emplace_back(std::move(what), std::this_thread::get_id());
  };
  std::thread runner([&] {
    EffectLock lock(&owner.mu, &owner.effects);
    owner.effects.Add([&] {
      record("slow");
      first_running.Notify();
      release_first.WaitForNotification();
    });
  });
  first_running.WaitForNotification();
  {
    // The runner is inside an effect: this change's effect is queued behind
    // it, and this thread goes on at once.
    EffectLock lock(&owner.mu, &owner.effects);
    owner.state = 3;
    owner.effects.Add([&] { record("later"); });
  }
  {
    absl::MutexLock lock(&ran_mu);
    ASSERT_EQ(ran.size(), 1u);  // "later" waits for "slow"
  }
  release_first.Notify();
  runner.join();
  absl::MutexLock lock(&ran_mu);
  ASSERT_EQ(ran.size(), 2u);
  EXPECT_EQ(ran[1].first, "later");
  EXPECT_EQ(ran[1].second, ran[0].second);  // run by the thread that was running
}

TEST(EffectQueueTest, ALockWithNoEffectsRunsNothing) {
  Owner owner;
  {
    EffectLock lock(&owner.mu, &owner.effects);
    owner.state = 4;
  }
  EXPECT_FALSE(owner.effects.Claim());
}

}  // namespace
}  // namespace a2amesh
