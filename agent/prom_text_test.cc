#include "agent/prom_text.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::agent {
namespace {

using ::testing::HasSubstr;

constexpr char kAppsvcMetrics[] = R"(# HELP http_requests_total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/users/:id",status="200"} 90
http_requests_total{method="GET",route="/api/users/:id",status="503"} 7
http_requests_total{method="POST",route="/api/users",status="500"} 3
http_requests_total{method="GET",route="/health",status="200"} 500
http_requests_total{method="GET",route="/metrics",status="200"} 50
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/api/users/:id",le="0.001"} 80
http_request_duration_seconds_bucket{method="GET",route="/api/users/:id",le="0.01"} 95
http_request_duration_seconds_bucket{method="GET",route="/api/users/:id",le="+Inf"} 97
http_request_duration_seconds_bucket{method="POST",route="/api/users",le="0.001"} 0
http_request_duration_seconds_bucket{method="POST",route="/api/users",le="0.01"} 2
http_request_duration_seconds_bucket{method="POST",route="/api/users",le="+Inf"} 3
http_request_duration_seconds_bucket{method="GET",route="/health",le="0.001"} 500
http_request_duration_seconds_bucket{method="GET",route="/health",le="0.01"} 500
http_request_duration_seconds_bucket{method="GET",route="/health",le="+Inf"} 500
http_request_duration_seconds_sum{method="GET",route="/api/users/:id"} 0.2
http_request_duration_seconds_count{method="GET",route="/api/users/:id"} 97
http_requests_in_flight 4
)";

TEST(ParsePrometheusTextTest, SamplesWithLabelsAndSpecialValues) {
  auto samples = ParsePrometheusText(
      "a 1\nb{x=\"y\",z=\"w\\\"q\"} 2.5 1700000000000\nc{} +Inf\nd NaN\n\n# comment\n");
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 4u);
  EXPECT_EQ((*samples)[1].labels.at("z"), "w\"q");
  EXPECT_DOUBLE_EQ((*samples)[1].value, 2.5);
  EXPECT_TRUE(std::isinf((*samples)[2].value));
  EXPECT_TRUE(std::isnan((*samples)[3].value));
}

TEST(ParsePrometheusTextTest, MalformedInputNamesTheLine) {
  for (const char* bad : {"ok 1\n{x=\"1\"} 2\n", "ok 1\nm{x=1} 2\n", "ok 1\nm{x=\"1\" 2\n",
                          "ok 1\nm notanumber\n", "ok 1\nm 1 2 3\n", "ok 1\nm\n"}) {
    auto s = ParsePrometheusText(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("line 2")) << bad;
  }
}

// Probes of /health and scrapes of /metrics are left out: only application traffic counts.
TEST(ExtractAppMetricsTest, SumsRoutesAndCountsFiveHundreds) {
  auto samples = ParsePrometheusText(kAppsvcMetrics);
  ASSERT_TRUE(samples.ok());
  AppMetrics m = ExtractAppMetrics(*samples);
  EXPECT_TRUE(m.has_requests);
  EXPECT_TRUE(m.has_histogram);
  EXPECT_DOUBLE_EQ(m.requests_total, 100);
  EXPECT_DOUBLE_EQ(m.errors_total, 10);
  EXPECT_DOUBLE_EQ(m.in_flight, 4);
  ASSERT_EQ(m.bucket_bounds.size(), 3u);
  EXPECT_DOUBLE_EQ(m.bucket_bounds[0], 0.001);
  EXPECT_TRUE(std::isinf(m.bucket_bounds[2]));
  EXPECT_DOUBLE_EQ(m.bucket_counts[0], 80);
  EXPECT_DOUBLE_EQ(m.bucket_counts[1], 97);
  EXPECT_DOUBLE_EQ(m.bucket_counts[2], 100);
}

TEST(ExtractAppMetricsTest, ReferenceStatusCodeLabelAndMissingMetrics) {
  auto samples = ParsePrometheusText(
      "http_requests_total{method=\"GET\",route=\"/\",status_code=\"502\"} 2\nother 1\n");
  ASSERT_TRUE(samples.ok());
  AppMetrics m = ExtractAppMetrics(*samples);
  EXPECT_DOUBLE_EQ(m.errors_total, 2);
  EXPECT_FALSE(m.has_histogram);
  AppMetrics none = ExtractAppMetrics({});
  EXPECT_FALSE(none.has_requests);
}

}  // namespace
}  // namespace hosting::agent
