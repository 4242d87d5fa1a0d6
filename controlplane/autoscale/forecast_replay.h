#pragma once

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace hosting::controlplane {

// Request-rate traces the forecast is validated on, one value a second: a ramp (20 -> 200 rps
// over two minutes), a spike (50 -> 250 rps for 30 s) and a daily cycle compressed into ten
// minutes (50 +- 40 rps), each with +-10 % noise drawn from `seed`.
enum class TraceShape { kRamp, kSpike, kDailyCycle };
std::vector<double> MakeTrace(TraceShape shape, uint32_t seed);
const char* TraceName(TraceShape shape);

// How well a forecast predicted a trace, against holding the last measured rate (what a
// controller without a forecast acts on).
struct ForecastScore {
  int points = 0;
  // Mean absolute error over the actual rate, in percent.
  double forecast_mape = 0;
  double naive_mape = 0;
  // The rate the autoscaler sizes on: the forecast when it rises above the last rate, else
  // the last rate (a forecast only ever raises the size).
  double used_mape = 0;
  // Share of points predicted more than 10 % below the actual rate (capacity short), percent.
  double forecast_short = 0;
  double naive_short = 0;
  double used_short = 0;
};

// Replays `trace` as the autoscaler sees it: every `interval` the mean rate over the last
// interval is added to a HoltForecast (the autoscaler's), whose forecast `horizon` ahead is
// compared with the mean rate over the interval ending then.
ForecastScore ReplayForecast(const std::vector<double>& trace, absl::Duration interval,
                             absl::Duration horizon);

}  // namespace hosting::controlplane
