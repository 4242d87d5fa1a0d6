#include "common/metric_window.h"

#include <algorithm>
#include <cmath>

namespace hosting {

void CounterWindow::Add(absl::Time t, double cumulative) {
  if (have_raw_ && cumulative < last_raw_) offset_ += last_raw_;  // reset: keep what was counted
  last_raw_ = cumulative;
  have_raw_ = true;
  points_.push_back({t, cumulative + offset_});
  // Keep one point at or before the window's start so the window is fully covered.
  while (points_.size() > 2 && points_[1].t <= t - window_) points_.pop_front();
}

double CounterWindow::Increase() const {
  if (points_.size() < 2) return 0;
  return points_.back().value - points_.front().value;
}

absl::Duration CounterWindow::Span() const {
  if (points_.size() < 2) return absl::ZeroDuration();
  return points_.back().t - points_.front().t;
}

double CounterWindow::RecentRate(absl::Duration over) const {
  if (points_.size() < 2) return NAN;
  const Point& last = points_.back();
  const Point* from = &points_.front();
  for (auto it = points_.rbegin() + 1; it != points_.rend(); ++it) {
    if (it->t <= last.t - over) {
      from = &*it;
      break;
    }
  }
  const double seconds = absl::ToDoubleSeconds(last.t - from->t);
  if (seconds <= 0) return NAN;
  // A counter younger than `over` counts as idle before its first sample, so that the rates of
  // a group of counters (tasks) sum to the group's rate over the same window.
  return (last.value - from->value) / std::max(seconds, absl::ToDoubleSeconds(over));
}

double CounterWindow::Rate() const {
  absl::Duration span = Span();
  if (span <= absl::ZeroDuration()) return 0;
  return Increase() / absl::ToDoubleSeconds(span);
}

void HistogramWindow::Add(absl::Time t, const std::vector<double>& bounds,
                          const std::vector<double>& counts) {
  if (bounds != bounds_) {
    // A new bucket layout (new revision of the application): start over.
    bounds_ = bounds;
    snapshots_.clear();
  }
  if (!snapshots_.empty()) {
    const auto& prev = snapshots_.back().counts;
    bool reset = false;
    for (size_t i = 0; i < counts.size() && i < prev.size(); ++i) reset |= counts[i] < prev[i];
    if (reset) snapshots_.clear();  // the task restarted: its old counts are gone
  }
  snapshots_.push_back({t, counts});
  while (snapshots_.size() > 2 && snapshots_[1].t <= t - window_) snapshots_.pop_front();
}

std::vector<double> HistogramWindow::WindowCounts() const {
  if (snapshots_.empty()) return {};
  if (snapshots_.size() == 1) return snapshots_.back().counts;
  std::vector<double> d = snapshots_.back().counts;
  const auto& first = snapshots_.front().counts;
  for (size_t i = 0; i < d.size() && i < first.size(); ++i) d[i] -= first[i];
  return d;
}

double HistogramWindow::Count() const {
  std::vector<double> d = WindowCounts();
  return d.empty() ? 0 : d.back();
}

double HistogramWindow::Quantile(double q) const { return BucketQuantile(bounds_, WindowCounts(), q); }

double BucketQuantile(const std::vector<double>& bounds, const std::vector<double>& d, double q) {
  if (d.empty() || d.size() != bounds.size() || d.back() <= 0) return NAN;
  const double total = d.back();
  const double rank = q * total;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] >= rank) {
      if (std::isinf(bounds[i])) {
        // Above the highest finite bound: report that bound, as histogram_quantile does.
        return i > 0 ? bounds[i - 1] : 0;
      }
      const double lower_bound = i > 0 ? bounds[i - 1] : 0;
      const double lower_count = i > 0 ? d[i - 1] : 0;
      const double in_bucket = d[i] - lower_count;
      if (in_bucket <= 0) return bounds[i];
      return lower_bound + (bounds[i] - lower_bound) * (rank - lower_count) / in_bucket;
    }
  }
  return bounds.back();
}

absl::Duration Backoff::Next() {
  // xorshift64*: cheap, deterministic per seed (tests), good enough for jitter.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const uint64_t r = state_ * 2685821657736338717ull;
  absl::Duration cap = initial_;
  for (int i = 0; i < attempt_ && cap < max_; ++i) cap *= 2;
  cap = std::min(cap, max_);
  ++attempt_;
  const absl::Duration floor = initial_ / 2;
  const double frac = static_cast<double>(r >> 11) / static_cast<double>(1ull << 53);
  return floor + (cap - floor) * frac;
}

}  // namespace hosting
