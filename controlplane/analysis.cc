#include "controlplane/analysis.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

}  // namespace

hosting::v1::AnalysisSpec AnalysisDefaults(const hosting::v1::AnalysisSpec& in) {
  hosting::v1::AnalysisSpec s = in;
  if (!s.has_duration()) *s.mutable_duration() = TimeUtil::SecondsToDuration(30);
  if (s.max_error_ratio_increase() <= 0) s.set_max_error_ratio_increase(0.01);
  if (s.min_samples() == 0) s.set_min_samples(100);
  return s;
}

hosting::v1::AnalysisResult Analyze(const hosting::v1::AnalysisSpec& in,
                                    const AgentRegistry::RevisionAggregate* stable,
                                    const AgentRegistry::RevisionAggregate& canary) {
  const hosting::v1::AnalysisSpec spec = AnalysisDefaults(in);
  hosting::v1::AnalysisResult r;
  const uint64_t cs = static_cast<uint64_t>(std::llround(canary.requests));
  const uint64_t ss = stable ? static_cast<uint64_t>(std::llround(stable->requests)) : 0;
  const bool canary_enough = cs >= spec.min_samples();
  const bool stable_enough = stable == nullptr || ss >= spec.min_samples();
  std::vector<std::string> failures;

  if (canary_enough) {
    if (stable != nullptr && stable_enough) {
      const double limit = stable->error_ratio + spec.max_error_ratio_increase();
      const bool bad = canary.error_ratio > limit;
      Add(r, "error_ratio_increase", canary.error_ratio, stable->error_ratio, limit, cs, ss, bad);
      if (bad) {
        failures.push_back(absl::StrFormat(
            "5xx ratio %.2f%% vs stable %.2f%% (allowed +%.2f points)", canary.error_ratio * 100,
            stable->error_ratio * 100, spec.max_error_ratio_increase() * 100));
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
    if (spec.max_p99_latency_ratio() > 0 && stable != nullptr && stable_enough &&
        std::isfinite(canary.p99) && std::isfinite(stable->p99) && stable->p99 > 0) {
      const double limit = stable->p99 * spec.max_p99_latency_ratio();
      const bool bad = canary.p99 > limit;
      Add(r, "p99_latency_ratio", canary.p99, stable->p99, limit, cs, ss, bad);
      if (bad) {
        failures.push_back(absl::StrFormat("p99 %.1f ms vs stable %.1f ms (allowed x%.2f)",
                                           canary.p99 * 1e3, stable->p99 * 1e3,
                                           spec.max_p99_latency_ratio()));
      }
    }
    if (spec.has_max_p99_latency() && std::isfinite(canary.p99)) {
      const double limit = TimeUtil::DurationToNanoseconds(spec.max_p99_latency()) / 1e9;
      if (limit > 0) {
        const bool bad = canary.p99 > limit;
        Add(r, "p99_latency", canary.p99, stable ? stable->p99 : 0, limit, cs, ss, bad);
        if (bad) {
          failures.push_back(absl::StrFormat("p99 %.1f ms above %.1f ms", canary.p99 * 1e3,
                                             limit * 1e3));
        }
      }
    }
  }
  if (!failures.empty()) {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_FAILED);
    std::string reason;
    for (const auto& f : failures) absl::StrAppend(&reason, reason.empty() ? "" : "; ", f);
    r.set_reason(absl::StrCat("canary worse than allowed: ", reason, " (", cs,
                              " canary requests, ", ss, " stable)"));
  } else if (!canary_enough || !stable_enough) {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_INCONCLUSIVE);
    r.set_reason(absl::StrCat("not enough data: canary ", cs,
                              stable ? absl::StrCat(", stable ", ss) : std::string(),
                              " requests in the window, ", spec.min_samples(),
                              " needed on each side"));
  } else {
    r.set_verdict(hosting::v1::ANALYSIS_VERDICT_PASSED);
    r.set_reason(absl::StrCat("canary within bounds over ", cs, " requests",
                              stable ? absl::StrCat(" (stable ", ss, ")") : std::string()));
  }
  return r;
}

}  // namespace hosting::controlplane
