// The autoscaler's forecast (Holt's linear trend) replayed on request-rate traces: a ramp, a
// spike and a daily cycle, each over several seeds of noise, sampled as the autoscaler samples
// (the mean rate over each evaluation interval) and asked for the rate one horizon ahead. Its
// error is printed beside holding the last measured rate (a controller without a forecast).
//
//   build/tests/bench/forecast_bench [SEEDS]      (default 20; figures in docs/performance.md)
#include <cstdio>
#include <cstdlib>

#include "controlplane/autoscale/forecast_replay.h"

int main(int argc, char** argv) {
  using hosting::controlplane::ForecastScore;
  using hosting::controlplane::TraceShape;
  const int seeds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  std::printf("%d seeds a trace, the forecast sampled every 5 s\n\n", seeds);
  std::printf("| trace | horizon | error (MAPE): forecast / as used / last rate held | "
              "> 10 %% short: forecast / as used / last rate held |\n| --- | --- | --- | --- |\n");
  for (TraceShape shape : {TraceShape::kRamp, TraceShape::kSpike, TraceShape::kDailyCycle}) {
    for (int horizon : {5, 15, 30}) {
      ForecastScore sum;
      for (int seed = 1; seed <= seeds; ++seed) {
        const ForecastScore s = hosting::controlplane::ReplayForecast(
            hosting::controlplane::MakeTrace(shape, static_cast<uint32_t>(seed)),
            absl::Seconds(5), absl::Seconds(horizon));
        sum.forecast_mape += s.forecast_mape / seeds;
        sum.naive_mape += s.naive_mape / seeds;
        sum.forecast_short += s.forecast_short / seeds;
        sum.naive_short += s.naive_short / seeds;
        sum.used_mape += s.used_mape / seeds;
        sum.used_short += s.used_short / seeds;
      }
      std::printf("| %s | %d s | %.1f / %.1f / %.1f %% | %.1f / %.1f / %.1f %% |\n",
                  hosting::controlplane::TraceName(shape), horizon, sum.forecast_mape,
                  sum.used_mape, sum.naive_mape, sum.forecast_short, sum.used_short,
                  sum.naive_short);
    }
  }
  return 0;
}
