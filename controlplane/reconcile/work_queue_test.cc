#include "controlplane/reconcile/work_queue.h"

#include <atomic>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

TEST(WorkQueueTest, DuplicatesCollapse) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Depth(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
  q.Done("a");
  q.Done("b");
  EXPECT_EQ(q.Depth(), 0u);
}

TEST(WorkQueueTest, KeyAddedWhileProcessingComesBackAfterDone) {
  WorkQueue q;
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  q.Add("a");  // dirty: must not be handed out while "a" is processing
  q.Add("b");
  EXPECT_EQ(q.Get(), "b");
  q.Done("b");
  q.Done("a");
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
}

TEST(WorkQueueTest, NeverHandsOneKeyToTwoWorkers) {
  WorkQueue q;
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) {
        int now = ++in_flight;
        int prev = max_in_flight.load();
        while (now > prev && !max_in_flight.compare_exchange_weak(prev, now)) {
        }
        absl::SleepFor(absl::Microseconds(200));
        --in_flight;
        ++processed;
        q.Done(*key);
      }
    });
  }
  // Keep adding while the workers run, so several of them wait on the one key
  // at once; then wait (without a time bound that a slow sanitizer build could
  // miss) until the last addition has been processed before shutting down.
  for (int i = 0; i < 200; ++i) {
    q.Add("same");
    if (i % 20 == 0) absl::SleepFor(absl::Microseconds(500));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (q.Depth() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  while (processed.load() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(max_in_flight.load(), 1);
  EXPECT_GE(processed.load(), 1);
}

TEST(WorkQueueTest, AddAfterWaitsOnTheClock) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("later", absl::Seconds(5));
  q.Add("now");
  EXPECT_EQ(q.TryGet(), "now");
  q.Done("now");
  clock.Advance(absl::Milliseconds(4999));
  EXPECT_EQ(q.TryGet(), std::nullopt);
  clock.Advance(absl::Milliseconds(1));
  EXPECT_EQ(q.TryGet(), "later");
  q.Done("later");
}

// A stuck service gets a hint on every event; each used to add another self-renewing poll.
TEST(WorkQueueTest, AddAfterKeepsOneWaitPerKeyAndTheSoonerTime) {
  FakeClock clock;
  WorkQueue q(clock);
  for (int i = 0; i < 100; ++i) q.AddAfter("stuck", absl::Seconds(1));
  EXPECT_EQ(q.Depth(), 1u);
  q.AddAfter("stuck", absl::Seconds(5));  // later than the wait it has: ignored
  q.AddAfter("other", absl::Seconds(5));
  q.AddAfter("other", absl::Seconds(2));  // sooner: replaces
  EXPECT_EQ(q.Depth(), 2u);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(q.TryGet(), "stuck");
  q.Done("stuck");
  EXPECT_EQ(q.TryGet(), std::nullopt) << "one copy of the key, not a hundred";
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(q.TryGet(), "other");
  q.Done("other");
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(q.TryGet(), std::nullopt);
  EXPECT_EQ(q.Depth(), 0u);
}

TEST(WorkQueueTest, RateLimitBacksOffOnTheClockAndForgetResets) {
  FakeClock clock;
  WorkQueue q(clock, absl::Milliseconds(10), absl::Milliseconds(40));
  // Due after `delay` on the clock, not a moment before.
  auto due_after = [&](absl::Duration delay) {
    q.AddRateLimited("k");
    clock.Advance(delay - absl::Milliseconds(1));
    if (q.TryGet().has_value()) return false;
    clock.Advance(absl::Milliseconds(1));
    std::optional<std::string> key = q.TryGet();
    if (key) q.Done(*key);
    return key == "k";
  };
  EXPECT_TRUE(due_after(absl::Milliseconds(10)));
  EXPECT_TRUE(due_after(absl::Milliseconds(20)));
  EXPECT_TRUE(due_after(absl::Milliseconds(40)));
  EXPECT_TRUE(due_after(absl::Milliseconds(40))) << "capped at the maximum";
  q.Forget("k");
  EXPECT_TRUE(due_after(absl::Milliseconds(10)));
}

TEST(WorkQueueTest, GetWakesForADelayedKey) {
  WorkQueue q;
  q.AddAfter("later", absl::Milliseconds(20));
  EXPECT_EQ(q.Get(), "later");
  q.Done("later");
}

TEST(WorkQueueTest, ShutDownWakesWaiters) {
  WorkQueue q;
  std::thread t([&] { EXPECT_EQ(q.Get(), std::nullopt); });
  absl::SleepFor(absl::Milliseconds(20));
  q.ShutDown();
  t.join();
  q.Add("ignored");
  EXPECT_EQ(q.Get(), std::nullopt);
}

}  // namespace
}  // namespace hosting::controlplane
