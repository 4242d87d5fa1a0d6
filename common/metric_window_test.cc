#include "common/metric_window.h"

#include <cmath>

#include "gtest/gtest.h"

namespace hosting {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(CounterWindowTest, RateOverTheWindow) {
  CounterWindow w(absl::Seconds(10));
  EXPECT_EQ(w.Rate(), 0);
  for (int i = 0; i <= 30; ++i) w.Add(kT0 + absl::Seconds(i), 100.0 * i);  // 100/s
  EXPECT_DOUBLE_EQ(w.Rate(), 100);
  EXPECT_LE(w.Span(), absl::Seconds(11));
  EXPECT_GE(w.Span(), absl::Seconds(10));
}

TEST(CounterWindowTest, RateFollowsAChange) {
  CounterWindow w(absl::Seconds(5));
  double v = 0;
  for (int i = 0; i < 20; ++i) w.Add(kT0 + absl::Seconds(i), v += 10);
  for (int i = 20; i < 40; ++i) w.Add(kT0 + absl::Seconds(i), v += 50);
  EXPECT_DOUBLE_EQ(w.Rate(), 50);
}

TEST(CounterWindowTest, RecentRateSeesAStepBeforeTheWindowDoes) {
  CounterWindow w(absl::Seconds(30));
  EXPECT_TRUE(std::isnan(w.RecentRate(absl::Seconds(5))));
  double v = 0;
  for (int i = 0; i < 30; i += 2) w.Add(kT0 + absl::Seconds(i), v += 2 * 10);  // 10/s
  for (int i = 30; i < 40; i += 2) w.Add(kT0 + absl::Seconds(i), v += 2 * 50);  // 50/s
  EXPECT_DOUBLE_EQ(w.RecentRate(absl::Seconds(5)), 50);
  EXPECT_LT(w.Rate(), 30);
  // A counter two seconds old served 50/s for 2 of the last 5 s: 20/s over the window.
  CounterWindow young(absl::Seconds(30));
  young.Add(kT0, 0);
  young.Add(kT0 + absl::Seconds(2), 100);
  EXPECT_DOUBLE_EQ(young.RecentRate(absl::Seconds(5)), 20);
}

TEST(CounterWindowTest, CounterResetIsNotANegativeRate) {
  CounterWindow w(absl::Seconds(60));
  w.Add(kT0, 1000);
  w.Add(kT0 + absl::Seconds(1), 1100);
  w.Add(kT0 + absl::Seconds(2), 50);  // restarted: 50 new since
  EXPECT_DOUBLE_EQ(w.Increase(), 150);
  EXPECT_GT(w.Rate(), 0);
}

TEST(HistogramWindowTest, QuantilesInterpolateInsideBuckets) {
  HistogramWindow w(absl::Seconds(30));
  const std::vector<double> bounds = {0.01, 0.1, 1, INFINITY};
  w.Add(kT0, bounds, {0, 0, 0, 0});
  // 100 observations: 50 under 10 ms, 40 in (10 ms, 100 ms], 10 in (100 ms, 1 s].
  w.Add(kT0 + absl::Seconds(10), bounds, {50, 90, 100, 100});
  EXPECT_DOUBLE_EQ(w.Count(), 100);
  EXPECT_NEAR(w.Quantile(0.5), 0.01, 1e-9);
  EXPECT_NEAR(w.Quantile(0.7), 0.01 + 0.09 * 0.5, 1e-9);
  EXPECT_NEAR(w.Quantile(0.95), 0.1 + 0.9 * 0.5, 1e-9);
}

TEST(HistogramWindowTest, OnlyTheWindowCounts) {
  HistogramWindow w(absl::Seconds(10));
  const std::vector<double> bounds = {0.01, 1, INFINITY};
  w.Add(kT0, bounds, {0, 0, 0});
  w.Add(kT0 + absl::Seconds(5), bounds, {0, 100, 100});      // slow phase
  w.Add(kT0 + absl::Seconds(20), bounds, {1000, 1100, 1100}); // fast phase
  w.Add(kT0 + absl::Seconds(30), bounds, {2000, 2100, 2100});
  EXPECT_DOUBLE_EQ(w.Count(), 1000);
  EXPECT_LE(w.Quantile(0.99), 0.01);
}

TEST(HistogramWindowTest, EmptyIsNaNAndInfBucketReportsHighestBound) {
  HistogramWindow w(absl::Seconds(10));
  EXPECT_TRUE(std::isnan(w.Quantile(0.5)));
  const std::vector<double> bounds = {0.5, INFINITY};
  w.Add(kT0, bounds, {0, 0});
  w.Add(kT0 + absl::Seconds(1), bounds, {0, 10});  // all above 0.5 s
  EXPECT_DOUBLE_EQ(w.Quantile(0.99), 0.5);
}

TEST(HistogramWindowTest, ResetStartsOver) {
  HistogramWindow w(absl::Seconds(60));
  const std::vector<double> bounds = {1, INFINITY};
  w.Add(kT0, bounds, {100, 100});
  w.Add(kT0 + absl::Seconds(1), bounds, {5, 5});
  EXPECT_DOUBLE_EQ(w.Count(), 5);
}

TEST(BackoffTest, GrowsWithJitterUpToTheCapAndResets) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(5), 42);
  absl::Duration prev_cap = absl::Milliseconds(100);
  for (int i = 0; i < 12; ++i) {
    absl::Duration d = b.Next();
    EXPECT_GE(d, absl::Milliseconds(50));
    EXPECT_LE(d, absl::Seconds(5));
    EXPECT_LE(d, prev_cap);
    prev_cap = std::min(prev_cap * 2, absl::Seconds(5));
  }
  // Jitter: not every delay is the same.
  Backoff c(absl::Seconds(1), absl::Seconds(1), 7);
  absl::Duration a = c.Next(), d = c.Next();
  EXPECT_NE(a, d);
  b.Reset();
  EXPECT_EQ(b.attempt(), 0);
  EXPECT_LE(b.Next(), absl::Milliseconds(100));
}

}  // namespace
}  // namespace hosting
