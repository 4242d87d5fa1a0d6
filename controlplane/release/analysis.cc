#include "controlplane/release/analysis.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "controlplane/release/judge.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {
namespace {

using hosting::v1::AnalysisVerdict;
using google::protobuf::util::TimeUtil;

hosting::v1::MetricComparison* Add(hosting::v1::AnalysisResult& r, const char* metric,
                                   double canary, double stable, double threshold,
                                   uint64_t cs, uint64_t ss, bool failed) {
  auto* m = r.add_metrics();
  m->set_metric(metric);
  m->set_canary(canary);
  m->set_stable(stable);
  m->set_threshold(threshold);
  m->set_canary_samples(cs);
  m->set_stable_samples(ss);
  m->set_verdict(failed ? hosting::v1::ANALYSIS_VERDICT_FAILED : hosting::v1::ANALYSIS_VERDICT_PASSED);
  return m;
}

JudgeSample JudgeSampleOf(const RevisionMetrics& m) {
  JudgeSample s;
  s.requests = m.requests;
  s.errors = m.errors;
  s.latency_bounds = m.latency_bounds;
  s.latency_counts = m.latency_counts;
  return s;
}

JudgeSample JudgeSampleOf(const hosting::v1::RevisionSample& m) {
  JudgeSample s;
  s.requests = m.requests();
  s.errors = m.errors();
  s.latency_bounds.assign(m.latency_bounds().begin(), m.latency_bounds().end());
  s.latency_counts.assign(m.latency_counts().begin(), m.latency_counts().end());
  return s;
}

hosting::v1::RevisionSample StoredSample(const RevisionMetrics& m) {
  hosting::v1::RevisionSample s;
  s.set_requests(m.requests);
  s.set_errors(m.errors);
  for (double b : m.latency_bounds) s.add_latency_bounds(b);
  for (double c : m.latency_counts) s.add_latency_counts(c);
  return s;
}

}  // namespace

hosting::v1::AnalysisSpec AnalysisDefaults(const hosting::v1::AnalysisSpec& in) {
  hosting::v1::AnalysisSpec s = in;
  if (!s.has_duration()) *s.mutable_duration() = TimeUtil::SecondsToDuration(30);
  if (s.max_error_ratio_increase() <= 0) s.set_max_error_ratio_increase(0.01);
  if (s.min_samples() == 0) s.set_min_samples(100);
  return s;
}

hosting::v1::AnalysisResult Analyze(const hosting::v1::AnalysisSpec& in,
                                    const RevisionMetrics* stable,
                                    const RevisionMetrics& canary,
                                    const PromqlResults& promql, absl::string_view other) {
  const hosting::v1::AnalysisSpec spec = AnalysisDefaults(in);
  hosting::v1::AnalysisResult r;
  const uint64_t cs = static_cast<uint64_t>(std::llround(canary.requests));
  const uint64_t ss = stable ? static_cast<uint64_t>(std::llround(stable->requests)) : 0;
  const bool canary_enough = cs >= spec.min_samples();
  const bool stable_enough = stable == nullptr || ss >= spec.min_samples();
  std::vector<std::string> failures;

  if (canary_enough) {
    if (stable == nullptr) {
      // No stable side to compare with (a blue-green preview before its switch): the allowed
      // increase is over a baseline of zero errors, or a 30 % error preview would pass.
      const double limit = spec.max_error_ratio_increase();
      const bool bad = canary.error_ratio > limit;
      Add(r, "error_ratio_increase", canary.error_ratio, 0, limit, cs, ss, bad);
      if (bad) {
        failures.push_back(absl::StrFormat("5xx ratio %.2f%% with no stable baseline (allowed %.2f%%)",
                                           canary.error_ratio * 100, limit * 100));
      }
    } else if (stable_enough) {
      const double limit = stable->error_ratio + spec.max_error_ratio_increase();
      const bool bad = canary.error_ratio > limit;
      Add(r, "error_ratio_increase", canary.error_ratio, stable->error_ratio, limit, cs, ss, bad);
      if (bad) {
        failures.push_back(absl::StrFormat(
            "5xx ratio %.2f%% vs %s %.2f%% (allowed +%.2f points)", canary.error_ratio * 100,
            other, stable->error_ratio * 100, spec.max_error_ratio_increase() * 100));
      }
    }
    if (spec.max_error_ratio() > 0) {
      const bool bad = canary.error_ratio > spec.max_error_ratio();
      Add(r, "error_ratio", canary.error_ratio, stable ? stable->error_ratio : 0,
          spec.max_error_ratio(), cs, ss, bad);
      if (bad) {
        failures.push_back(absl::StrFormat("5xx ratio %.2f%% above %.2f%%",
                                           canary.error_ratio * 100, spec.max_error_ratio() * 100));
      }
    }
    // Latency quantiles: relative to stable, and absolute.
    struct Quantile {
      const char* name;
      double canary, stable;
      double max_ratio;
      const google::protobuf::Duration* max;
    };
    for (const Quantile& q :
         {Quantile{"p95", canary.p95, stable ? stable->p95 : NAN, spec.max_p95_latency_ratio(),
                   spec.has_max_p95_latency() ? &spec.max_p95_latency() : nullptr},
          Quantile{"p99", canary.p99, stable ? stable->p99 : NAN, spec.max_p99_latency_ratio(),
                   spec.has_max_p99_latency() ? &spec.max_p99_latency() : nullptr}}) {
      if (!std::isfinite(q.canary)) continue;
      if (q.max_ratio > 0 && stable != nullptr && stable_enough && std::isfinite(q.stable) &&
          q.stable > 0) {
        const double limit = q.stable * q.max_ratio;
        const bool bad = q.canary > limit;
        Add(r, absl::StrCat(q.name, "_latency_ratio").c_str(), q.canary, q.stable, limit, cs, ss,
            bad);
        if (bad) {
          failures.push_back(absl::StrFormat("%s %.1f ms vs %s %.1f ms (allowed x%.2f)",
                                             q.name, q.canary * 1e3, other, q.stable * 1e3,
                                             q.max_ratio));
        }
      }
      if (q.max != nullptr) {
        const double limit = TimeUtil::DurationToNanoseconds(*q.max) / 1e9;
        if (limit > 0) {
          const bool bad = q.canary > limit;
          Add(r, absl::StrCat(q.name, "_latency").c_str(), q.canary,
              std::isfinite(q.stable) ? q.stable : 0, limit, cs, ss, bad);
          if (bad) {
            failures.push_back(absl::StrFormat("%s %.1f ms above %.1f ms", q.name,
                                               q.canary * 1e3, limit * 1e3));
          }
        }
      }
    }
  }
  std::vector<std::string> promql_missing;
  for (const auto& check : spec.promql()) {
    const std::string name = check.name().empty() ? check.query() : check.name();
    auto it = promql.find(check.query());
    if (it == promql.end() || !it->second.ok()) {
      promql_missing.push_back(absl::StrCat(
          name, ": ", it == promql.end() ? "not queried" : it->second.status().message()));
      continue;
    }
    const bool bad = *it->second > check.max_value();
    Add(r, absl::StrCat("promql:", name).c_str(), *it->second, 0, check.max_value(), cs, ss, bad);
    if (bad) {
      failures.push_back(absl::StrFormat("PromQL %s = %.6g above %.6g", name, *it->second,
                                         check.max_value()));
    }
  }
  // The statistical judge, against the stable revision (a blue-green preview has none: spec
  // validation refuses a judge there).
  JudgeResult judge;
  const bool judging = spec.has_judge() && stable != nullptr;
  if (judging) {
    judge = Judge(spec.judge(), JudgeSampleOf(*stable), JudgeSampleOf(canary));
    for (const auto& m : judge.metrics) *r.add_metrics() = m;
    if (judge.verdict != hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE) {
      r.set_judged(true);
      r.set_score(judge.score);
    }
    if (judge.verdict == hosting::v1::ANALYSIS_VERDICT_FAILED) failures.push_back(judge.reason);
  }
  if (!failures.empty()) {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_FAILED);
    std::string reason;
    for (const auto& f : failures) absl::StrAppend(&reason, reason.empty() ? "" : "; ", f);
    r.set_reason(absl::StrCat("canary worse than allowed: ", reason, " (", cs,
                              " canary requests, ", ss, " ", other, ")"));
  } else if (!canary_enough || !stable_enough) {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    r.set_reason(absl::StrCat("not enough data: canary ", cs,
                              stable ? absl::StrCat(", ", other, " ", ss) : std::string(),
                              " requests in the window, ", spec.min_samples(),
                              " needed on each side"));
  } else if (!promql_missing.empty()) {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    std::string why;
    for (const auto& m : promql_missing) absl::StrAppend(&why, why.empty() ? "" : "; ", m);
    r.set_reason(absl::StrCat("no data from PromQL: ", why));
  } else if (judging && judge.verdict == hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE) {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    r.set_reason(judge.reason);
  } else {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_PASSED);
    r.set_reason(absl::StrCat("canary within bounds over ", cs, " requests",
                              stable ? absl::StrCat(" (", other, " ", ss, ")") : std::string(),
                              judging ? absl::StrCat("; ", judge.reason) : std::string()));
  }
  return r;
}

hosting::v1::AnalysisSamples SamplesOf(const hosting::v1::AnalysisSpec& spec,
                                       const RevisionMetrics& stable,
                                       const RevisionMetrics& canary) {
  hosting::v1::AnalysisSamples out;
  *out.mutable_stable() = StoredSample(stable);
  *out.mutable_canary() = StoredSample(canary);
  if (spec.has_judge()) *out.mutable_judge() = spec.judge();
  return out;
}

hosting::v1::JudgeReleaseResponse JudgeAgain(const hosting::v1::Release& release,
                                             const hosting::v1::JudgeSpec* judge) {
  hosting::v1::JudgeReleaseResponse out;
  out.set_id(release.id());
  for (int i = 0; i < release.analyses_size(); ++i) {
    const hosting::v1::AnalysisResult& a = release.analyses(i);
    if (!a.has_samples()) continue;
    const hosting::v1::JudgeSpec& spec = judge != nullptr ? *judge : a.samples().judge();
    const JudgeResult r =
        Judge(spec, JudgeSampleOf(a.samples().stable()), JudgeSampleOf(a.samples().canary()));
    hosting::v1::JudgedAnalysis* j = out.add_analyses();
    j->set_index(i);
    j->set_kind(a.kind());
    j->set_original_verdict(a.verdict());
    hosting::v1::AnalysisResult* again = j->mutable_judged();
    again->set_kind(a.kind());
    again->set_verdict(r.verdict);
    again->set_reason(r.reason);
    for (const auto& m : r.metrics) *again->add_metrics() = m;
    if (r.verdict != hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE) {
      again->set_judged(true);
      again->set_score(r.score);
    }
    *again->mutable_started_at() = a.started_at();
    *again->mutable_finished_at() = a.finished_at();
  }
  return out;
}

}  // namespace hosting::controlplane
