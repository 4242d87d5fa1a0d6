#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hosting/v1/autoscaling.pb.h"

namespace hosting::controlplane {

// One task of the service as the autoscaler sees it (all revisions together).
struct TaskSample {
  std::string id;
  // Probed healthy and serving; a task that is not is "not ready".
  bool ready = false;
  // Per-task metric values over the evaluation window; NaN when the task has none.
  double cpu_percent = NAN;
  double memory_percent = NAN;
  double rps = NAN;
  double in_flight = NAN;
};

// What one evaluation sees.
struct AutoscaleInput {
  absl::Time now;
  // The size of the service as a whole (its desired replicas, over every revision).
  int32_t current_replicas = 0;
  std::vector<TaskSample> tasks;
  // Service-wide p95 latency in milliseconds; NaN without requests.
  double p95_ms = NAN;
  // PromQL metric values by query (as written in the policy).
  std::map<std::string, absl::StatusOr<double>> promql;
  // Measured time from a scale-up to its tasks being ready; the forecast's default horizon.
  absl::Duration task_startup = absl::Seconds(15);
};

struct AutoscaleResult {
  // The size to scale to; equal to current_replicas when nothing moves.
  int32_t desired = 0;
  std::vector<hosting::v1::MetricRecommendation> recommendations;
  // Why: the decision, or why nothing moved.
  std::string reason;
  // Data that was missing or tasks not ready, and how they were counted; empty when none.
  std::string message;
  // The forecast asked for `desired` (it was above the metrics' recommendation).
  bool forecast_driven = false;
  // Shadow mode: the size the forecast would have scaled to (only when above `desired`).
  std::optional<int32_t> shadow_desired;
  double forecast_rps = NAN;
  absl::Duration forecast_horizon;
};

// Holt's linear trend (double exponential smoothing) over irregularly spaced samples.
class HoltForecast {
 public:
  HoltForecast(double alpha = 0.5, double beta = 0.3) : alpha_(alpha), beta_(beta) {}
  void Add(absl::Time t, double value);
  // Level + trend x horizon; NaN before two samples.
  double Forecast(absl::Duration horizon) const;
  // Per second.
  double trend() const { return trend_; }
  int samples() const { return samples_; }

 private:
  double alpha_, beta_;
  double level_ = 0, trend_ = 0;
  absl::Time last_;
  int samples_ = 0;
};

// Target tracking for one service, HPA semantics where they are sound and one step where the
// HPA is slow: desired = ceil(ready x value / target) per metric, the largest wins; nothing
// moves within the tolerance; missing metrics and not-ready tasks are counted against the
// move (0 on a scale-up, the target on a scale-down); scale-ups take the lowest recommendation
// of their stabilization window, scale-downs the highest of theirs; rate limits per period;
// min/max clamp. The optional forecast of the request rate may only raise the result.
// Pure logic over the input's time; not thread-safe (the owner serializes).
class Autoscaler {
 public:
  // kFull: the evaluation every evaluation_interval, over its window, both directions.
  // kScaleUpOnly: the check between evaluations over the short scale_up_window: it may only
  // raise the size (through the same stabilization and rate limits), records nothing when it
  // does not, and leaves the forecast to the full evaluations.
  enum class Mode { kFull, kScaleUpOnly };
  AutoscaleResult Evaluate(const hosting::v1::AutoscalingPolicy& policy,
                           const AutoscaleInput& in, Mode mode = Mode::kFull);
  // The service was scaled from -> to at `t` (counted by the rate limits).
  void Scaled(absl::Time t, int32_t from, int32_t to);
  // Forgets the recommendation history (after a policy change).
  void Reset();
  // Starts as if the service's current size had just been recommended, for scale-downs only:
  // a new policy, or a restarted hostd with no history, waits a whole scale-down window before
  // taking the service below `current`.
  void Seed(absl::Time now, int32_t current) { seed_ = {now, current}; }

 private:
  struct Change {
    absl::Time t;
    int32_t delta;
  };
  int32_t Stabilize(const hosting::v1::AutoscalingPolicy& policy, absl::Time now,
                    int32_t current, int32_t recommendation, std::string& why);
  int32_t LimitRate(const hosting::v1::AutoscalingPolicy& policy, absl::Time now, int32_t current,
                    int32_t desired, std::string& why) const;

  std::deque<std::pair<absl::Time, int32_t>> recommendations_;
  std::deque<Change> changes_;
  std::optional<std::pair<absl::Time, int32_t>> seed_;
  HoltForecast forecast_;
};

// Short name of a metric kind for people: cpu, memory, rps, inflight, p95, promql.
const char* MetricKindShortName(hosting::v1::MetricKind kind);

}  // namespace hosting::controlplane
