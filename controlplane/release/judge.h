#pragma once

// The statistical judge of a canary analysis (Kayenta's method, hosting's samples): per metric
// a one-sided test that the canary is worse than the revision it is compared with, at a stated
// confidence and by more than a tolerated effect; a score over the metrics; critical metrics
// that veto.

#include <string>
#include <vector>

#include "hosting/v1/releases.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// A Mann-Whitney U test of sample A against sample B, with the normal approximation corrected
// for ties and for continuity.
struct MannWhitney {
  double n_a = 0, n_b = 0;
  double u = 0;  // U of A: pairs (a, b) with a > b, ties counted half
  double z = 0;
  // One-sided p-values: A tends to be larger than B, or smaller.
  double p_greater = 1;
  double p_less = 1;
  // The probability that a value of A exceeds one of B (ties half): U / (n_a n_b); 0.5 when
  // the two are alike.
  double superiority = 0.5;
};

// Over grouped values: `a` and `b` count the observations of each group (a histogram's
// buckets, in ascending order); values in one group are ties.
MannWhitney MannWhitneyGrouped(const std::vector<double>& a, const std::vector<double>& b);

// Over raw values.
MannWhitney MannWhitneySamples(const std::vector<double>& a, const std::vector<double>& b);

// A one-sided two-proportion z-test that x_a / n_a is larger than x_b / n_b.
struct Proportions {
  double ratio_a = 0, ratio_b = 0;
  double z = 0;
  double p_greater = 1;
};
Proportions TwoProportions(double x_a, double n_a, double x_b, double n_b);

// What the judge compares of one side: its requests, 5xx responses and latency histogram
// (ascending upper bounds in seconds, cumulative counts) over the agents' window.
struct JudgeSample {
  double requests = 0;
  double errors = 0;
  std::vector<double> latency_bounds;
  std::vector<double> latency_counts;
};

// JudgeSpec with its documented defaults filled in.
hosting::v1::JudgeSpec JudgeDefaults(const hosting::v1::JudgeSpec& spec);

struct JudgeResult {
  // PASSED, FAILED or INCONCLUSIVE (a metric without enough samples on either side, or a score
  // between marginal and pass).
  hosting::v1::AnalysisVerdict verdict = hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE;
  double score = 0;
  std::string reason;
  std::vector<hosting::v1::MetricComparison> metrics;
};

// Judges `canary` against `baseline` (the stable revision, or a baseline started beside the
// canary) on the metrics JudgeMetricNames lists (controlplane/spec/validation.h).
JudgeResult Judge(const hosting::v1::JudgeSpec& spec, const JudgeSample& baseline,
                  const JudgeSample& canary);

}  // namespace hosting::controlplane
