#pragma once

#include "absl/time/time.h"
#include "controlplane/agent_registry.h"
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
// The caller decides whether the analysis' duration has run out.
hosting::v1::AnalysisResult Analyze(const hosting::v1::AnalysisSpec& spec,
                                    const AgentRegistry::RevisionAggregate* stable,
                                    const AgentRegistry::RevisionAggregate& canary);

}  // namespace hosting::controlplane
