#pragma once

#include <deque>
#include <vector>

#include "absl/time/time.h"

namespace hosting {

// Rates and quantiles over a sliding time window, computed from cumulative counters as
// Prometheus exposes them (rate() and histogram_quantile() semantics). Counter resets (a task
// restarted) are handled: a decrease starts a new run and the increase across it is kept.
// Not thread-safe; the owner serializes access.
class CounterWindow {
 public:
  explicit CounterWindow(absl::Duration window) : window_(window) {}

  void Add(absl::Time t, double cumulative);
  // Increase per second over the window; 0 with fewer than two samples.
  double Rate() const;
  // Increase per second between the newest sample and the newest one at least `over` older
  // (or the oldest held), over at least `over` (a younger counter was idle before its first
  // sample); NaN with fewer than two samples. A short-window rate within the window, for
  // decisions that must follow a change quickly.
  double RecentRate(absl::Duration over) const;
  // Increase over the window.
  double Increase() const;
  // Time covered by the samples held.
  absl::Duration Span() const;
  size_t samples() const { return points_.size(); }

 private:
  struct Point {
    absl::Time t;
    double value;  // reset-corrected cumulative value
  };
  absl::Duration window_;
  std::deque<Point> points_;
  double offset_ = 0;  // added after counter resets
  double last_raw_ = 0;
  bool have_raw_ = false;
};

// A cumulative histogram over a sliding window.
class HistogramWindow {
 public:
  explicit HistogramWindow(absl::Duration window) : window_(window) {}

  // `bounds` ascending upper bounds (seconds; last may be +Inf), `counts` cumulative per bound.
  void Add(absl::Time t, const std::vector<double>& bounds, const std::vector<double>& counts);
  // Observations in the window.
  double Count() const;
  // The q-quantile (0..1) of observations in the window, linearly interpolated inside a bucket
  // as histogram_quantile does; NaN when the window holds no observation.
  double Quantile(double q) const;
  // Cumulative counts of the observations in the window, per bound (to merge windows).
  std::vector<double> WindowCounts() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  struct Snapshot {
    absl::Time t;
    std::vector<double> counts;
  };

  absl::Duration window_;
  std::vector<double> bounds_;
  std::deque<Snapshot> snapshots_;
};

// histogram_quantile over cumulative bucket counts; NaN when there is no observation.
double BucketQuantile(const std::vector<double>& bounds, const std::vector<double>& counts,
                      double q);

// Exponential backoff with full jitter (AWS architecture blog), for reconnect loops.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed = 0)
      : initial_(initial), max_(max), state_(seed ? seed : 0x9E3779B97F4A7C15ull) {}

  // The next delay: uniform in [initial/2, cap] where cap doubles per attempt up to max.
  absl::Duration Next();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  uint64_t state_;
  int attempt_ = 0;
};

}  // namespace hosting
