#include "controlplane/query/promql.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;

TEST(SubstituteQueryTest, NamesTheServiceAndRevision) {
  EXPECT_EQ(SubstituteQuery("rate(errors{service=\"{{service}}\",revision=\"{{revision}}\"}[30s])",
                            "web", 7),
            "rate(errors{service=\"web\",revision=\"7\"}[30s])");
}

TEST(PrometheusQueryTest, ParsesInstantAnswers) {
  EXPECT_DOUBLE_EQ(*PrometheusQuery::ParseInstant(
                       R"({"status":"success","data":{"resultType":"vector","result":[)"
                       R"({"metric":{},"value":[1700000000.1,"0.25"]}]}})"),
                   0.25);
  EXPECT_DOUBLE_EQ(*PrometheusQuery::ParseInstant(
                       R"({"status":"success","data":{"resultType":"scalar","result":[1,"3"]}})"),
                   3);
  EXPECT_TRUE(absl::IsNotFound(
      PrometheusQuery::ParseInstant(
          R"({"status":"success","data":{"resultType":"vector","result":[]}})")
          .status()));
  auto bad = PrometheusQuery::ParseInstant(
      R"({"status":"error","errorType":"bad_data","error":"parse error at char 4"})");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(bad.status().message(), HasSubstr("parse error"));
  EXPECT_FALSE(PrometheusQuery::ParseInstant("<html>").ok());
  // Nothing listening: unavailable, not a crash.
  PrometheusQuery none("http://127.0.0.1:1");
  EXPECT_TRUE(absl::IsUnavailable(none.Instant("up").status()));
}

}  // namespace
}  // namespace hosting::controlplane
