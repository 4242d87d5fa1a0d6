#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/agents/revision_metrics.h"
#include "hosting/v1/releases.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// AnalysisSpec with its documented defaults filled in.
hosting::v1::AnalysisSpec AnalysisDefaults(const hosting::v1::AnalysisSpec& spec);

// Judges a new revision against the stable one from the agents' windows. `stable` may be null
// (blue-green preview: only the absolute bounds apply). Verdicts:
//  - FAILED as soon as the canary has min_samples requests and breaks a bound (early abort);
//  - INCONCLUSIVE when either side has fewer than min_samples (never a silent pass);
//  - PASSED otherwise.
// With a judge (spec.judge) its metrics are added (method, p-value, effect), its failure fails
// the analysis, and until it has judged (min_samples on both sides) the verdict is
// INCONCLUSIVE; `judged` and `score` are set once it has.
// PromQL checks are judged from `promql`: each check's result keyed by its query as written
// (before "{{revision}}" substitution); a missing or failed one is no data.
// The caller decides whether the analysis' duration has run out. `other` names the side the
// canary is compared with in the reason ("stable", or "baseline" for a canary's baseline).
using PromqlResults = std::map<std::string, absl::StatusOr<double>>;
hosting::v1::AnalysisResult Analyze(const hosting::v1::AnalysisSpec& spec,
                                    const RevisionMetrics* stable,
                                    const RevisionMetrics& canary,
                                    const PromqlResults& promql = {},
                                    absl::string_view other = "stable");

// What an analysis compared, kept with it so that its judge can run again (JudgeRelease): both
// sides' requests, errors and latency histograms, and the analysis' judge.
hosting::v1::AnalysisSamples SamplesOf(const hosting::v1::AnalysisSpec& spec,
                                       const RevisionMetrics& stable,
                                       const RevisionMetrics& canary);

// Judges again every analysis of `release` that kept its samples: with `judge` when given,
// else with the analysis' own judge (the defaults when it had none).
hosting::v1::JudgeReleaseResponse JudgeAgain(const hosting::v1::Release& release,
                                             const hosting::v1::JudgeSpec* judge);

}  // namespace hosting::controlplane
