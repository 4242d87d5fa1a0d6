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
  for (int i = 0; i < 200; ++i) q.Add("same");
  absl::SleepFor(absl::Milliseconds(100));
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(max_in_flight.load(), 1);
  EXPECT_GE(processed.load(), 1);
}

TEST(WorkQueueTest, AddAfterDelays) {
  WorkQueue q;
  q.AddAfter("later", absl::Milliseconds(50));
  q.Add("now");
  EXPECT_EQ(q.Get(), "now");
  q.Done("now");
  absl::Time start = absl::Now();
  EXPECT_EQ(q.Get(), "later");
  // Compared with the requested delay, not timed against a budget.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  q.Done("later");
}

TEST(WorkQueueTest, RateLimitBacksOffAndForgetResets) {
  WorkQueue q(absl::Milliseconds(10), absl::Milliseconds(40));
  absl::Time t0 = absl::Now();
  q.AddRateLimited("k");  // 10 ms
  ASSERT_EQ(q.Get(), "k");
  q.Done("k");
  absl::Duration first = absl::Now() - t0;
  t0 = absl::Now();
  q.AddRateLimited("k");  // 20 ms
  ASSERT_EQ(q.Get(), "k");
  q.Done("k");
  absl::Duration second = absl::Now() - t0;
  EXPECT_GE(second, absl::Milliseconds(20));
  EXPECT_GE(second, first);
  q.Forget("k");
  t0 = absl::Now();
  q.AddRateLimited("k");  // back to 10 ms
  ASSERT_EQ(q.Get(), "k");
  q.Done("k");
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(10));
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
