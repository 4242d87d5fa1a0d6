#include "controlplane/autoscale/forecast_replay.h"

#include <cmath>
#include <random>

#include "controlplane/autoscale/autoscaler.h"

namespace hosting::controlplane {
namespace {

constexpr double kPi = 3.14159265358979323846;

// The mean of trace[from, to), clamped to the trace.
double Mean(const std::vector<double>& trace, int64_t from, int64_t to) {
  from = std::max<int64_t>(0, from);
  to = std::min<int64_t>(static_cast<int64_t>(trace.size()), to);
  if (to <= from) return NAN;
  double sum = 0;
  for (int64_t i = from; i < to; ++i) sum += trace[i];
  return sum / static_cast<double>(to - from);
}

}  // namespace

const char* TraceName(TraceShape shape) {
  switch (shape) {
    case TraceShape::kRamp: return "ramp";
    case TraceShape::kSpike: return "spike";
    case TraceShape::kDailyCycle: return "daily cycle";
  }
  return "?";
}

std::vector<double> MakeTrace(TraceShape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  std::vector<double> out;
  switch (shape) {
    case TraceShape::kRamp:
      for (int t = 0; t < 300; ++t) {
        const double x = t < 60 ? 20 : t < 180 ? 20 + 180.0 * (t - 60) / 120 : 200;
        out.push_back(x * noise(rng));
      }
      break;
    case TraceShape::kSpike:
      for (int t = 0; t < 180; ++t) out.push_back((t >= 60 && t < 90 ? 250 : 50) * noise(rng));
      break;
    case TraceShape::kDailyCycle:
      for (int t = 0; t < 1200; ++t) {
        out.push_back((50 + 40 * std::sin(2 * kPi * t / 600.0)) * noise(rng));
      }
      break;
  }
  return out;
}

ForecastScore ReplayForecast(const std::vector<double>& trace, absl::Duration interval,
                             absl::Duration horizon) {
  const int64_t step = std::max<int64_t>(1, absl::ToInt64Seconds(interval));
  const int64_t ahead = absl::ToInt64Seconds(horizon);
  const absl::Time t0 = absl::UnixEpoch();
  HoltForecast forecast;
  ForecastScore score;
  double forecast_error = 0, naive_error = 0, used_error = 0;
  int forecast_short = 0, naive_short = 0, used_short = 0;
  for (int64_t t = step; t + ahead <= static_cast<int64_t>(trace.size()); t += step) {
    const double now = Mean(trace, t - step, t);
    forecast.Add(t0 + absl::Seconds(t), now);
    const double predicted = forecast.Forecast(horizon);
    const double actual = Mean(trace, t + ahead - step, t + ahead);
    if (std::isnan(predicted) || std::isnan(actual) || actual <= 0) continue;
    const double used = forecast.trend() > 0 ? std::max(predicted, now) : now;
    ++score.points;
    forecast_error += std::abs(predicted - actual) / actual;
    naive_error += std::abs(now - actual) / actual;
    used_error += std::abs(used - actual) / actual;
    if (predicted < 0.9 * actual) ++forecast_short;
    if (now < 0.9 * actual) ++naive_short;
    if (used < 0.9 * actual) ++used_short;
  }
  if (score.points == 0) return score;
  const double n = score.points;
  score.forecast_mape = 100 * forecast_error / n;
  score.naive_mape = 100 * naive_error / n;
  score.used_mape = 100 * used_error / n;
  score.forecast_short = 100 * forecast_short / n;
  score.naive_short = 100 * naive_short / n;
  score.used_short = 100 * used_short / n;
  return score;
}

}  // namespace hosting::controlplane
