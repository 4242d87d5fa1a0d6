#include "controlplane/telemetry/metrics.h"

#include <string>

#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

// The value of `name`'s series whose labels include `label`=`value`; -1 when absent.
double Value(HostdMetrics& m, const std::string& name, const std::string& label,
             const std::string& value) {
  for (const auto& family : m.registry()->Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& l : metric.label) {
        if (l.name == label && l.value == value) return metric.counter.value;
      }
    }
  }
  return -1;
}

TEST(HostdMetricsTest, EventsCountByTypeAndFinishedReleasesByFinalState) {
  HostdMetrics m;
  m.CountEvent("agent.lost", "");
  m.CountEvent("agent.lost", "");
  m.CountEvent("release.finished", "rolled back");
  m.CountEvent("release.finished", "succeeded");
  m.CountEvent("release.finished", "");
  m.CountEvent("release.step", "progressing");
  EXPECT_EQ(Value(m, "hostd_events_total", "type", "agent.lost"), 2);
  EXPECT_EQ(Value(m, "hostd_events_total", "type", "release.finished"), 3);
  EXPECT_EQ(Value(m, "hostd_releases_finished_total", "state", "rolled_back"), 1);
  EXPECT_EQ(Value(m, "hostd_releases_finished_total", "state", "succeeded"), 1);
  EXPECT_EQ(Value(m, "hostd_releases_finished_total", "state", "unknown"), 1);
  // Only finished releases count there: a step's state is no outcome.
  EXPECT_EQ(Value(m, "hostd_releases_finished_total", "state", "progressing"), -1);
}

}  // namespace
}  // namespace hosting::controlplane
