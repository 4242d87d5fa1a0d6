#include "controlplane/release/judge.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/metric_window.h"

namespace hosting::controlplane {
namespace {

// P(Z > z) for a standard normal Z.
double UpperTail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

MannWhitney MannWhitneyGrouped(const std::vector<double>& a, const std::vector<double>& b) {
  MannWhitney r;
  const size_t groups = std::min(a.size(), b.size());
  double rank_sum_a = 0, before = 0, ties = 0;
  for (size_t k = 0; k < groups; ++k) {
    const double t = a[k] + b[k];
    if (t <= 0) continue;
    const double mid_rank = before + (t + 1) / 2;
    rank_sum_a += a[k] * mid_rank;
    ties += t * t * t - t;
    before += t;
    r.n_a += a[k];
    r.n_b += b[k];
  }
  if (r.n_a <= 0 || r.n_b <= 0) return r;
  r.u = rank_sum_a - r.n_a * (r.n_a + 1) / 2;
  r.superiority = r.u / (r.n_a * r.n_b);
  const double n = r.n_a + r.n_b;
  const double mean = r.n_a * r.n_b / 2;
  const double variance = r.n_a * r.n_b / 12 * ((n + 1) - ties / (n * (n - 1)));
  if (!(variance > 0)) {  // every value tied: nothing tells the two apart
    r.p_greater = r.p_less = 0.5;
    return r;
  }
  const double sd = std::sqrt(variance);
  r.z = (r.u - mean) / sd;
  r.p_greater = UpperTail((r.u - mean - 0.5) / sd);
  r.p_less = 1 - UpperTail((r.u - mean + 0.5) / sd);
  return r;
}

MannWhitney MannWhitneySamples(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<std::pair<double, int>> all;
  all.reserve(a.size() + b.size());
  for (double x : a) all.push_back({x, 0});
  for (double x : b) all.push_back({x, 1});
  std::sort(all.begin(), all.end());
  std::vector<double> ga, gb;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i == 0 || all[i].first != all[i - 1].first) {
      ga.push_back(0);
      gb.push_back(0);
    }
    (all[i].second == 0 ? ga : gb).back() += 1;
  }
  return MannWhitneyGrouped(ga, gb);
}

Proportions TwoProportions(double x_a, double n_a, double x_b, double n_b) {
  Proportions r;
  if (n_a <= 0 || n_b <= 0) return r;
  r.ratio_a = x_a / n_a;
  r.ratio_b = x_b / n_b;
  const double pooled = (x_a + x_b) / (n_a + n_b);
  const double se = std::sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b));
  if (!(se > 0)) {  // no errors on either side, or nothing but errors: no difference to test
    r.p_greater = r.ratio_a > r.ratio_b ? 0 : 1;
    return r;
  }
  r.z = (r.ratio_a - r.ratio_b) / se;
  r.p_greater = UpperTail(r.z);
  return r;
}

hosting::v1::JudgeSpec JudgeDefaults(const hosting::v1::JudgeSpec& in) {
  hosting::v1::JudgeSpec s = in;
  if (s.confidence() <= 0) s.set_confidence(0.95);
  if (s.min_samples() == 0) s.set_min_samples(200);
  if (s.latency_tolerance() <= 0) s.set_latency_tolerance(0.1);
  if (s.error_tolerance() <= 0) s.set_error_tolerance(0.005);
  if (s.critical().empty()) s.add_critical("errors");
  if (s.pass_score() <= 0) s.set_pass_score(95);
  if (s.marginal_score() <= 0) s.set_marginal_score(75);
  return s;
}

JudgeResult Judge(const hosting::v1::JudgeSpec& in, const JudgeSample& baseline,
                  const JudgeSample& canary) {
  const hosting::v1::JudgeSpec spec = JudgeDefaults(in);
  const double alpha = 1 - spec.confidence();
  JudgeResult out;
  auto add = [&](const std::string& name) -> hosting::v1::MetricComparison& {
    hosting::v1::MetricComparison& m = out.metrics.emplace_back();
    m.set_metric(name);
    m.set_critical(Contains(spec.critical(), name));
    m.set_dry_run(Contains(spec.dry_run(), name));
    return m;
  };
  // A metric fails when the canary is worse at the stated confidence (one-sided p below
  // 1 - confidence) and by more than its tolerance; it passes otherwise.
  auto decide = [alpha](hosting::v1::MetricComparison& m, double canary_value, double stable_value,
                        double threshold, double p, double effect, double tolerance) {
    m.set_canary(canary_value);
    m.set_stable(stable_value);
    m.set_threshold(threshold);
    m.set_p_value(p);
    m.set_effect(effect);
    m.set_verdict(p < alpha && effect > tolerance ? hosting::v1::ANALYSIS_VERDICT_FAILED
                                                  : hosting::v1::ANALYSIS_VERDICT_PASSED);
  };
  auto enough = [&](double a, double b) {
    return a >= spec.min_samples() && b >= spec.min_samples();
  };

  // Latency: every request of each side, grouped by histogram bucket.
  {
    hosting::v1::MetricComparison& m = add("latency");
    m.set_method("mann-whitney");
    std::vector<double> a, b;  // per bucket, not cumulative
    const bool same_layout = !canary.latency_bounds.empty() &&
                             canary.latency_bounds == baseline.latency_bounds &&
                             canary.latency_counts.size() == canary.latency_bounds.size() &&
                             baseline.latency_counts.size() == baseline.latency_bounds.size();
    double n_a = 0, n_b = 0;
    if (same_layout) {
      for (size_t k = 0; k < canary.latency_counts.size(); ++k) {
        a.push_back(
            std::max(0.0, canary.latency_counts[k] - (k ? canary.latency_counts[k - 1] : 0)));
        b.push_back(
            std::max(0.0, baseline.latency_counts[k] - (k ? baseline.latency_counts[k - 1] : 0)));
        n_a += a.back();
        n_b += b.back();
      }
    }
    m.set_canary_samples(static_cast<uint64_t>(std::llround(n_a)));
    m.set_stable_samples(static_cast<uint64_t>(std::llround(n_b)));
    if (same_layout && enough(n_a, n_b)) {
      const double med_a = BucketQuantile(canary.latency_bounds, canary.latency_counts, 0.5);
      const double med_b = BucketQuantile(baseline.latency_bounds, baseline.latency_counts, 0.5);
      const MannWhitney t = MannWhitneyGrouped(a, b);
      const double effect = med_b > 0 ? med_a / med_b - 1 : 0;
      decide(m, med_a, med_b, med_b * (1 + spec.latency_tolerance()), t.p_greater, effect,
             spec.latency_tolerance());
    } else {
      m.set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    }
  }
  // Errors: the 5xx ratio of each side's requests.
  {
    hosting::v1::MetricComparison& m = add("errors");
    m.set_method("two-proportion");
    m.set_canary_samples(static_cast<uint64_t>(std::llround(canary.requests)));
    m.set_stable_samples(static_cast<uint64_t>(std::llround(baseline.requests)));
    if (enough(canary.requests, baseline.requests)) {
      const Proportions t =
          TwoProportions(canary.errors, canary.requests, baseline.errors, baseline.requests);
      const double effect = t.ratio_a - t.ratio_b;
      decide(m, t.ratio_a, t.ratio_b, t.ratio_b + spec.error_tolerance(), t.p_greater, effect,
             spec.error_tolerance());
    } else {
      m.set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    }
  }

  std::vector<std::string> failed, vetoes, waiting, dry;
  int judged = 0, passed = 0;
  for (const hosting::v1::MetricComparison& m : out.metrics) {
    const std::string text =
        m.metric() == "latency"
            ? absl::StrFormat("latency median %.2f ms vs %.2f ms (%+.0f%%, p=%.3g)",
                              m.canary() * 1e3, m.stable() * 1e3, m.effect() * 100, m.p_value())
            : absl::StrFormat("errors %.2f%% vs %.2f%% (%+.2f points, p=%.3g)", m.canary() * 100,
                              m.stable() * 100, m.effect() * 100, m.p_value());
    if (m.dry_run()) {
      if (m.verdict() == hosting::v1::ANALYSIS_VERDICT_FAILED) dry.push_back(text);
      continue;
    }
    if (m.verdict() == hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE) {
      waiting.push_back(absl::StrCat(m.metric(), " (", m.canary_samples(), " canary, ",
                                     m.stable_samples(), " baseline samples)"));
      continue;
    }
    ++judged;
    if (m.verdict() == hosting::v1::ANALYSIS_VERDICT_PASSED) {
      ++passed;
    } else {
      failed.push_back(text);
      if (m.critical()) vetoes.push_back(m.metric());
    }
  }
  out.score = judged > 0 ? 100.0 * passed / judged : 0;
  const std::string dry_note =
      dry.empty() ? "" : absl::StrCat("; dry-run, not acting: ", absl::StrJoin(dry, ", "));
  if (!vetoes.empty()) {
    out.verdict = hosting::v1::ANALYSIS_VERDICT_FAILED;
    out.reason = absl::StrCat("judge: critical metric failed (", absl::StrJoin(vetoes, ", "),
                              "): ", absl::StrJoin(failed, "; "), dry_note);
  } else if (!waiting.empty()) {
    out.verdict = hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE;
    out.reason = absl::StrCat("judge: not enough samples yet for ", absl::StrJoin(waiting, ", "),
                              "; ", spec.min_samples(), " needed on each side", dry_note);
  } else if (judged == 0) {
    out.verdict = hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE;
    out.reason = absl::StrCat("judge: every metric is dry-run", dry_note);
  } else if (out.score >= spec.pass_score()) {
    out.verdict = hosting::v1::ANALYSIS_VERDICT_PASSED;
    out.reason =
        absl::StrFormat("judge: score %.0f (pass %.0f)%s", out.score, spec.pass_score(), dry_note);
  } else if (out.score < spec.marginal_score()) {
    out.verdict = hosting::v1::ANALYSIS_VERDICT_FAILED;
    out.reason = absl::StrFormat("judge: score %.0f below %.0f: %s%s", out.score,
                                 spec.marginal_score(), absl::StrJoin(failed, "; "), dry_note);
  } else {
    out.verdict = hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE;
    out.reason = absl::StrFormat("judge: score %.0f between %.0f and %.0f: %s%s", out.score,
                                 spec.marginal_score(), spec.pass_score(),
                                 absl::StrJoin(failed, "; "), dry_note);
  }
  return out;
}

}  // namespace hosting::controlplane
