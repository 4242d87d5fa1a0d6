#include "controlplane/query/async_query.h"

#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

// A source that holds every query until released, counting them.
class HeldQuery final : public MetricsQuery {
 public:
  absl::StatusOr<double> Instant(const std::string&) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
    }
    release_.WaitForNotification();
    return 0.5;
  }
  void Release() { release_.Notify(); }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Notification release_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(AsyncMetricsQueryTest, AnswersAtOnceWhileTheSourceIsSlowAndAsksOnceAtATime) {
  FakeClock clock;
  HeldQuery source;
  {
    AsyncMetricsQuery async(source, clock, absl::Seconds(1));
    absl::StatusOr<double> first = async.Latest("up");
    EXPECT_TRUE(absl::IsUnavailable(first.status()));
    EXPECT_THAT(std::string(first.status().message()), ::testing::HasSubstr("not answered yet"));
    clock.Advance(absl::Seconds(10));
    EXPECT_TRUE(absl::IsUnavailable(async.Latest("up").status()));
    ASSERT_TRUE(Eventually([&] { return source.calls() == 1; }));
    EXPECT_EQ(source.calls(), 1) << "one query in flight, however often it is asked for";
    source.Release();
    ASSERT_TRUE(Eventually([&] { return async.Latest("up").ok(); }));
    EXPECT_EQ(*async.Latest("up"), 0.5);
    // Older than the refresh: asked again, the last answer served meanwhile.
    clock.Advance(absl::Seconds(2));
    EXPECT_EQ(*async.Latest("up"), 0.5);
    ASSERT_TRUE(Eventually([&] { return source.calls() == 2; }));
    async.Forget(absl::Seconds(0));
  }
}

}  // namespace
}  // namespace hosting::controlplane
