#include "controlplane/release/judge.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;

// appsvc's buckets: the R10 series (ten a decade) from 0.1 ms to 10 s.
std::vector<double> Bounds() {
  std::vector<double> b;
  for (double decade = 1e-4; decade < 10; decade *= 10) {
    for (double m : {1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0}) b.push_back(decade * m);
  }
  b.push_back(10);
  b.push_back(INFINITY);
  return b;
}

// `n` requests whose latency is log-normal around `median` seconds, and `errors` of them 5xx,
// as the agents' window holds them.
JudgeSample Sample(double n, double median, double errors, uint32_t seed, double sigma = 0.3) {
  JudgeSample s;
  s.requests = n;
  s.errors = errors;
  s.latency_bounds = Bounds();
  s.latency_counts.assign(s.latency_bounds.size(), 0);
  std::mt19937 rng(seed);
  std::lognormal_distribution<double> d(std::log(median), sigma);
  for (int i = 0; i < n; ++i) {
    const double x = d(rng);
    for (size_t k = 0; k < s.latency_bounds.size(); ++k) {
      if (x <= s.latency_bounds[k]) s.latency_counts[k] += 1;  // cumulative
    }
  }
  return s;
}

const hosting::v1::MetricComparison& Metric(const JudgeResult& r, const std::string& name) {
  for (const auto& m : r.metrics) {
    if (m.metric() == name) return m;
  }
  static const hosting::v1::MetricComparison kNone;
  ADD_FAILURE() << "no metric " << name;
  return kNone;
}

TEST(MannWhitneyTest, KnownValues) {
  // Wholly separated samples: U = 0; the normal approximation with continuity correction
  // gives p = 0.00609 that A is smaller (as scipy.stats.mannwhitneyu, method="asymptotic").
  MannWhitney t = MannWhitneySamples({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10});
  EXPECT_EQ(t.u, 0);
  EXPECT_EQ(t.superiority, 0);
  EXPECT_NEAR(t.p_less, 0.00609, 1e-4);
  EXPECT_NEAR(t.p_greater, 0.9967, 1e-4);  // (U - mean - 0.5) / sd = -2.716
  // Identical samples: U is half the pairs, and nothing is significant.
  t = MannWhitneySamples({1, 2, 3, 4}, {1, 2, 3, 4});
  EXPECT_EQ(t.u, 8);
  EXPECT_DOUBLE_EQ(t.superiority, 0.5);
  EXPECT_GT(t.p_greater, 0.4);
  EXPECT_GT(t.p_less, 0.4);
  // Everything tied: no variance, no verdict either way.
  t = MannWhitneySamples({3, 3, 3}, {3, 3});
  EXPECT_EQ(t.p_greater, 0.5);
}

TEST(MannWhitneyTest, GroupedCountsEqualTheSamplesTheyStandFor) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> bucket(0, 9);
  std::vector<double> a_raw, b_raw, a(10, 0), b(10, 0);
  for (int i = 0; i < 300; ++i) {
    const int x = bucket(rng), y = std::min(9, bucket(rng) + 1);
    a_raw.push_back(x);
    b_raw.push_back(y);
    a[x] += 1;
    b[y] += 1;
  }
  const MannWhitney raw = MannWhitneySamples(a_raw, b_raw);
  const MannWhitney grouped = MannWhitneyGrouped(a, b);
  EXPECT_DOUBLE_EQ(raw.u, grouped.u);
  EXPECT_NEAR(raw.p_less, grouped.p_less, 1e-12);
  EXPECT_LT(grouped.p_less, 1e-6);  // b was shifted up by a bucket
}

TEST(TwoProportionsTest, KnownValues) {
  // 30 of 1000 against 10 of 1000: z = 3.19, one-sided p = 0.0007.
  Proportions p = TwoProportions(30, 1000, 10, 1000);
  EXPECT_NEAR(p.z, 3.19, 0.01);
  EXPECT_NEAR(p.p_greater, 0.0007, 1e-4);
  EXPECT_GT(TwoProportions(10, 1000, 30, 1000).p_greater, 0.99);
  EXPECT_EQ(TwoProportions(0, 1000, 0, 1000).p_greater, 1);
}

TEST(JudgeTest, EqualDistributionsPass) {
  JudgeResult r = Judge({}, Sample(2000, 0.010, 2, 1), Sample(2000, 0.010, 3, 2));
  EXPECT_EQ(r.verdict, hosting::v1::ANALYSIS_VERDICT_PASSED) << r.reason;
  EXPECT_EQ(r.score, 100);
  EXPECT_EQ(Metric(r, "latency").verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_EQ(Metric(r, "latency").method(), "mann-whitney");
  EXPECT_EQ(Metric(r, "errors").method(), "two-proportion");
  EXPECT_TRUE(Metric(r, "errors").critical());
  EXPECT_THAT(r.reason, HasSubstr("score 100"));
}

TEST(JudgeTest, EqualDistributionsRarelyFailAtTheStatedConfidence) {
  // Without the effect tolerance, alike sides fail about 1 - confidence of the time; with it
  // (the default 10 %) almost never. Fixed seeds: the same answer every run.
  hosting::v1::JudgeSpec no_tolerance;
  no_tolerance.set_latency_tolerance(1e-9);
  int failed = 0, failed_with_tolerance = 0;
  const int runs = 400;
  for (int i = 0; i < runs; ++i) {
    const JudgeSample a = Sample(500, 0.010, 0, 100 + i), b = Sample(500, 0.010, 0, 9000 + i);
    failed += Metric(Judge(no_tolerance, a, b), "latency").verdict() ==
              hosting::v1::ANALYSIS_VERDICT_FAILED;
    failed_with_tolerance +=
        Metric(Judge({}, a, b), "latency").verdict() == hosting::v1::ANALYSIS_VERDICT_FAILED;
  }
  EXPECT_LE(failed, runs * 0.05 * 1.6) << failed << " of " << runs;
  EXPECT_EQ(failed_with_tolerance, 0);
}

TEST(JudgeTest, ACanaryThirtyPercentSlowerFailsAtTheStatedConfidence) {
  const JudgeSample baseline = Sample(400, 0.010, 0, 1), canary = Sample(400, 0.013, 0, 2);
  JudgeResult r = Judge({}, baseline, canary);
  const auto& latency = Metric(r, "latency");
  EXPECT_EQ(latency.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_LT(latency.p_value(), 0.05);
  EXPECT_NEAR(latency.effect(), 0.3, 0.1);
  // Latency is not critical by default: one metric of two failed, score 50, below 75.
  EXPECT_EQ(r.verdict, hosting::v1::ANALYSIS_VERDICT_FAILED) << r.reason;
  EXPECT_EQ(r.score, 50);
  EXPECT_THAT(r.reason, HasSubstr("score 50 below 75"));
  EXPECT_THAT(r.reason, HasSubstr("latency median"));

  // A faster canary is never worse; a 5 % slower one is within the tolerance.
  EXPECT_EQ(Judge({}, baseline, Sample(400, 0.007, 0, 3)).verdict,
            hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_EQ(Judge({}, baseline, Sample(4000, 0.0105, 0, 4)).verdict,
            hosting::v1::ANALYSIS_VERDICT_PASSED);
}

TEST(JudgeTest, TooFewSamplesAreInconclusive) {
  JudgeResult r = Judge({}, Sample(1000, 0.010, 0, 1), Sample(150, 0.030, 0, 2));
  EXPECT_EQ(r.verdict, hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  EXPECT_THAT(r.reason, HasSubstr("not enough samples yet for latency (150 canary"));
  EXPECT_EQ(Metric(r, "latency").verdict(), hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  // Different bucket layouts cannot be compared either.
  JudgeSample other = Sample(1000, 0.010, 0, 3);
  other.latency_bounds.back() = 99;
  EXPECT_EQ(Metric(Judge({}, Sample(1000, 0.010, 0, 1), other), "latency").verdict(),
            hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
}

TEST(JudgeTest, ACriticalMetricVetoesAndADryRunOneNeverActs) {
  // Errors (critical by default): 4 % against 0.5 %.
  JudgeResult r = Judge({}, Sample(1000, 0.010, 5, 1), Sample(1000, 0.010, 40, 2));
  EXPECT_EQ(r.verdict, hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(r.reason, HasSubstr("critical metric failed (errors)"));
  EXPECT_EQ(r.score, 50);

  // Latency dry-run: judged and recorded as failed, the analysis passes.
  hosting::v1::JudgeSpec spec;
  spec.add_dry_run("latency");
  r = Judge(spec, Sample(1000, 0.010, 0, 1), Sample(1000, 0.020, 0, 2));
  EXPECT_EQ(r.verdict, hosting::v1::ANALYSIS_VERDICT_PASSED) << r.reason;
  EXPECT_TRUE(Metric(r, "latency").dry_run());
  EXPECT_EQ(Metric(r, "latency").verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(r.reason, HasSubstr("dry-run, not acting: latency median"));

  // Between the marginal and pass scores: inconclusive.
  spec.Clear();
  spec.set_marginal_score(40);
  r = Judge(spec, Sample(1000, 0.010, 0, 1), Sample(1000, 0.020, 0, 2));
  EXPECT_EQ(r.verdict, hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
  EXPECT_THAT(r.reason, HasSubstr("score 50 between 40 and 95"));
}

}  // namespace
}  // namespace hosting::controlplane
