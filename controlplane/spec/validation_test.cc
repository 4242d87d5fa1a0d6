#include "controlplane/spec/validation.h"

#include <limits>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "controlplane/api/grpc_status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

hosting::v1::ServiceSpec ValidSpec() {
  hosting::v1::ServiceSpec spec;
  spec.set_name("web");
  spec.set_image("hosting/sample:v1");
  spec.set_replicas(3);
  (*spec.mutable_env())["GREETING"] = "hi";
  auto* port = spec.add_ports();
  port->set_container_port(8080);
  spec.mutable_health()->set_http_path("/health");
  return spec;
}

std::vector<std::string> Fields(const std::vector<FieldViolation>& v) {
  std::vector<std::string> out;
  for (const auto& fv : v) out.push_back(fv.field);
  return out;
}

TEST(ValidateServiceSpecTest, ValidSpecHasNoViolations) {
  EXPECT_THAT(ValidateServiceSpec(ValidSpec()), IsEmpty());
}

TEST(ValidateServiceSpecTest, NamesEveryBadField) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  spec.set_name("Web_1");
  spec.clear_image();
  spec.set_replicas(-1);
  (*spec.mutable_env())["1BAD"] = "x";
  (*spec.mutable_env())["BAD-DASH"] = "x";
  (*spec.mutable_env())["_GOOD_1"] = "x";
  spec.mutable_ports(0)->set_container_port(70000);
  spec.mutable_ports(0)->set_protocol("sctp");
  spec.mutable_health()->set_http_path("health");
  *spec.mutable_health()->mutable_interval() = TimeUtil::MillisecondsToDuration(50);
  spec.mutable_resources()->set_memory_limit_bytes(1024);
  (*spec.mutable_labels())["hosting.revision"] = "9";
  spec.add_constraints("node.role");
  auto fields = Fields(ValidateServiceSpec(spec));
  EXPECT_THAT(fields, Contains("spec.name"));
  EXPECT_THAT(fields, Contains("spec.image"));
  EXPECT_THAT(fields, Contains("spec.replicas"));
  EXPECT_THAT(fields, Contains("spec.env[1BAD]"));
  EXPECT_THAT(fields, Contains("spec.env[BAD-DASH]"));
  EXPECT_THAT(fields, Not(Contains("spec.env[_GOOD_1]")));
  EXPECT_THAT(fields, Contains("spec.ports[0].container_port"));
  EXPECT_THAT(fields, Contains("spec.ports[0].protocol"));
  EXPECT_THAT(fields, Contains("spec.health.http_path"));
  EXPECT_THAT(fields, Contains("spec.health.interval"));
  EXPECT_THAT(fields, Contains("spec.resources.memory_limit_bytes"));
  EXPECT_THAT(fields, Contains("spec.labels[hosting.revision]"));
  EXPECT_THAT(fields, Contains("spec.constraints[0]"));
}

TEST(ValidateServiceSpecTest, SecretsNeedSwarmNamesAndDistinctFileNames) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  spec.add_secrets()->set_name("db_password");
  EXPECT_THAT(ValidateServiceSpec(spec), IsEmpty());
  spec.add_secrets()->set_name("-bad");
  hosting::v1::SecretMount* escape = spec.add_secrets();
  escape->set_name("ok");
  escape->set_target("../etc/passwd");
  hosting::v1::SecretMount* twice = spec.add_secrets();
  twice->set_name("other");
  twice->set_target("db_password");
  EXPECT_THAT(Fields(ValidateServiceSpec(spec)),
              ::testing::ElementsAre("spec.secrets[1].name", "spec.secrets[2].target",
                                     "spec.secrets[3].target"));
}

TEST(ValidateServiceNameTest, Rules) {
  EXPECT_THAT(ValidateServiceName("api", "name"), IsEmpty());
  EXPECT_THAT(ValidateServiceName("api-2", "name"), IsEmpty());
  EXPECT_THAT(ValidateServiceName("", "name"), Contains(Field(&FieldViolation::description, "required")));
  EXPECT_THAT(ValidateServiceName("2api", "name"), ::testing::SizeIs(1));
  EXPECT_THAT(ValidateServiceName("api-", "name"), ::testing::SizeIs(1));
  EXPECT_THAT(ValidateServiceName(std::string(41, 'a'), "name"), ::testing::SizeIs(1));
  // Reserved for revision services: "app-r3" would collide with revision 3 of "app".
  auto v = ValidateServiceName("app-r3", "name");
  ASSERT_THAT(v, ::testing::SizeIs(1));
  EXPECT_THAT(v[0].description, HasSubstr("revision suffix"));
  EXPECT_THAT(ValidateServiceName("a-r-r12", "name"), ::testing::SizeIs(1));
  EXPECT_THAT(ValidateServiceName("app-r", "name"), IsEmpty());
  EXPECT_THAT(ValidateServiceName("app-rx1", "name"), IsEmpty());
  EXPECT_THAT(ValidateServiceName("appr3", "name"), IsEmpty());
}

TEST(ValidateServiceSpecTest, HealthPortNeededWithoutPorts) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  spec.clear_ports();
  EXPECT_THAT(Fields(ValidateServiceSpec(spec)), Contains("spec.health.port"));
  spec.mutable_health()->set_port(8080);
  EXPECT_THAT(ValidateServiceSpec(spec), IsEmpty());
}

TEST(ValidateServiceSpecTest, TimeoutMustNotExceedInterval) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  *spec.mutable_health()->mutable_interval() = TimeUtil::SecondsToDuration(1);
  *spec.mutable_health()->mutable_timeout() = TimeUtil::SecondsToDuration(2);
  EXPECT_THAT(Fields(ValidateServiceSpec(spec)), Contains("spec.health.timeout"));
}

TEST(ValidateServiceSpecTest, CanaryWeightsAndDuplicatePorts) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  spec.mutable_release()->mutable_canary()->add_steps()->set_set_weight(150);
  spec.mutable_release()->mutable_canary()->add_steps();
  auto* p = spec.add_ports();
  p->set_container_port(9090);
  spec.mutable_ports(0)->set_published_port(80);
  p->set_published_port(80);
  auto fields = Fields(ValidateServiceSpec(spec));
  EXPECT_THAT(fields, Contains("spec.release.canary.steps[0].set_weight"));
  EXPECT_THAT(fields, Contains("spec.release.canary.steps[1]"));
  EXPECT_THAT(fields, Contains("spec.ports[1].published_port"));
}

// Hostile values found by trying them on a running hostd: each was accepted before.
TEST(ValidateServiceSpecTest, RefusesNonFiniteNumbersNulBytesAndBadDurations) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  spec.mutable_resources()->set_cpu_limit(std::numeric_limits<double>::quiet_NaN());
  spec.mutable_resources()->set_cpu_reservation(std::numeric_limits<double>::infinity());
  spec.set_image(std::string("hosting/sample:v1\0evil", 22));
  (*spec.mutable_env())["GREETING"] = std::string("a\0b", 3);
  // Out-of-range nanos, and seconds that overflow milliseconds.
  spec.mutable_health()->mutable_interval()->set_seconds(1);
  spec.mutable_health()->mutable_interval()->set_nanos(2000000000);
  spec.mutable_stop_grace_period()->set_seconds(std::numeric_limits<int64_t>::max());
  auto* analysis = spec.mutable_release()->mutable_canary()->add_steps()->mutable_analysis();
  analysis->set_max_error_ratio(std::numeric_limits<double>::quiet_NaN());
  spec.mutable_autoscaling()->set_min_replicas(1);
  spec.mutable_autoscaling()->set_max_replicas(2);
  spec.mutable_autoscaling()->add_metrics()->set_kind(hosting::v1::METRIC_KIND_CPU_UTILIZATION);
  spec.mutable_autoscaling()->mutable_metrics(0)->set_target(0.5);
  spec.mutable_autoscaling()->set_tolerance(std::numeric_limits<double>::quiet_NaN());
  std::vector<FieldViolation> v = ValidateServiceSpec(spec);
  const std::vector<std::string> fields = Fields(v);
  for (const char* f : {"spec.resources.cpu_limit", "spec.resources.cpu_reservation", "spec.image",
                        "spec.env[GREETING]", "spec.health.interval", "spec.stop_grace_period",
                        "spec.release.canary.steps[0].analysis.max_error_ratio",
                        "spec.autoscaling.tolerance"}) {
    EXPECT_THAT(fields, Contains(f)) << f;
  }
  EXPECT_THAT(v, Contains(Field(&FieldViolation::description, HasSubstr("must be a finite number, got nan"))));
  EXPECT_THAT(v, Contains(Field(&FieldViolation::description, HasSubstr("must not contain NUL"))));
  EXPECT_THAT(v, Contains(Field(&FieldViolation::description, HasSubstr("not a valid duration"))));
  EXPECT_THAT(v, Contains(Field(&FieldViolation::description, HasSubstr("at most 30 days"))));
  // The overflowing grace period is not called negative.
  EXPECT_THAT(v, Not(Contains(FieldViolation{"spec.stop_grace_period", "must not be negative"})));
  // A finite CPU count Docker's int64 nanos cannot hold.
  hosting::v1::ServiceSpec big = ValidSpec();
  big.mutable_resources()->set_cpu_limit(1e300);
  EXPECT_THAT(Fields(ValidateServiceSpec(big)), Contains("spec.resources.cpu_limit"));
}

// Map fields are checked by name, not by the reflection pass: a map added to a request must be
// added to ValidateServiceSpec's CheckMapEntries calls, and this test says so.
void CollectMaps(const google::protobuf::Descriptor* d, std::set<std::string>& seen,
                 std::set<std::string>& maps) {
  if (!seen.insert(d->full_name()).second) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->is_map()) {
      maps.insert(f->full_name());
    } else if (f->message_type() != nullptr) {
      CollectMaps(f->message_type(), seen, maps);
    }
  }
}

TEST(ValidateServiceSpecTest, EveryMapOfARequestIsCheckedByName) {
  std::set<std::string> seen, maps;
  CollectMaps(hosting::v1::ServiceSpec::descriptor(), seen, maps);
  CollectMaps(hosting::v1::ReleasePolicy::descriptor(), seen, maps);
  CollectMaps(hosting::v1::AutoscalingPolicy::descriptor(), seen, maps);
  EXPECT_EQ(maps, (std::set<std::string>{"hosting.v1.ServiceSpec.env", "hosting.v1.ServiceSpec.labels"}));
  hosting::v1::ServiceSpec spec = ValidSpec();
  (*spec.mutable_labels())["team"] = std::string("a\0b", 3);
  EXPECT_THAT(ValidateServiceSpec(spec),
              Contains(FieldViolation{"spec.labels[team]", "must not contain NUL (U+0000)"}));
}

TEST(ValidateReleasePolicyTest, BoundsCanaryStepsAndChecksScalars) {
  hosting::v1::ReleasePolicy policy;
  for (int i = 0; i < 10000; ++i) policy.mutable_canary()->add_steps()->set_set_weight(10);
  std::vector<FieldViolation> v = ValidateReleasePolicy(policy, "policy");
  EXPECT_THAT(v, Contains(FieldViolation{"policy.canary.steps", "at most 100 steps, got 10000"}));
  hosting::v1::ReleasePolicy nan;
  nan.mutable_canary()->mutable_background_analysis()->set_max_p95_latency_ratio(
      std::numeric_limits<double>::infinity());
  EXPECT_THAT(Fields(ValidateReleasePolicy(nan, "policy")),
              Contains("policy.canary.background_analysis.max_p95_latency_ratio"));
}

TEST(ValidateReleasePolicyTest, TheJudgeNamesItsMetricsAndNeedsStableTraffic) {
  hosting::v1::ReleasePolicy policy;
  auto* judge = policy.mutable_canary()->add_steps()->mutable_analysis()->mutable_judge();
  judge->set_confidence(0.3);
  judge->add_critical("latency");
  judge->add_dry_run("cpu");
  judge->set_pass_score(60);
  judge->set_marginal_score(80);
  policy.mutable_blue_green()->mutable_pre_switch_analysis()->mutable_judge();
  const std::vector<FieldViolation> v = ValidateReleasePolicy(policy, "policy");
  const std::string j = "policy.canary.steps[0].analysis.judge";
  EXPECT_THAT(Fields(v), Contains(j + ".confidence"));
  EXPECT_THAT(v, Contains(FieldViolation{j + ".dry_run[0]",
                                         "unknown metric 'cpu' (the judge has latency, errors)"}));
  EXPECT_THAT(v, Contains(FieldViolation{j + ".marginal_score", "must not be above pass_score"}));
  EXPECT_THAT(Fields(v), Contains("policy.blue_green.pre_switch_analysis.judge"));
  EXPECT_THAT(Fields(v), ::testing::Not(Contains(j + ".critical[0]")));
}

TEST(ValidateReleasePolicyTest, OnlyACanaryRunsABaseline) {
  hosting::v1::ReleasePolicy policy;
  policy.mutable_canary()->set_baseline(true);
  EXPECT_THAT(Fields(ValidateReleasePolicy(policy, "policy")),
              ::testing::Not(Contains("policy.canary.baseline")));
  policy.set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  EXPECT_THAT(Fields(ValidateReleasePolicy(policy, "policy")),
              ::testing::Not(Contains("policy.canary.baseline")));
  policy.set_strategy(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN);
  EXPECT_THAT(ValidateReleasePolicy(policy, "policy"),
              Contains(FieldViolation{"policy.canary.baseline",
                                      "only a canary release runs a baseline beside its canary; "
                                      "the strategy is RELEASE_STRATEGY_BLUE_GREEN"}));
}

TEST(InvalidArgumentWithViolationsTest, ListsAtMostTwentyAndCountsTheRest) {
  std::vector<FieldViolation> many;
  for (int i = 0; i < 1000; ++i) {
    many.push_back({absl::StrCat("spec.env[K", i, "]"), std::string(1000, 'x')});
  }
  absl::Status st = InvalidArgumentWithViolations(many);
  EXPECT_THAT(st.message(), HasSubstr("and 980 more violations"));
  EXPECT_LT(st.message().size(), 6000u);
  google::rpc::BadRequest br;
  ASSERT_TRUE(br.ParseFromString(std::string(*st.GetPayload(kBadRequestTypeUrl))));
  EXPECT_EQ(br.field_violations_size(), 20);
  EXPECT_LE(br.field_violations(0).description().size(), 203u);
}

TEST(InvalidArgumentWithViolationsTest, OkWhenEmpty) {
  EXPECT_TRUE(InvalidArgumentWithViolations({}).ok());
}

TEST(InvalidArgumentWithViolationsTest, CarriesBadRequestToGrpcDetails) {
  absl::Status s = InvalidArgumentWithViolations(
      {{"spec.image", "required"}, {"spec.replicas", "must be between 0 and 1000, got -1"}});
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("spec.image: required"));
  EXPECT_THAT(s.message(), HasSubstr("spec.replicas"));

  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(g.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.BadRequest");
  google::rpc::BadRequest bad;
  ASSERT_TRUE(bad.ParseFromString(details.details(0).value()));
  ASSERT_EQ(bad.field_violations_size(), 2);
  EXPECT_EQ(bad.field_violations(0).field(), "spec.image");
  EXPECT_EQ(bad.field_violations(1).field(), "spec.replicas");
}

TEST(ToGrpcStatusTest, MapsCodesWithoutDetails) {
  grpc::Status g = ToGrpcStatus(absl::UnavailableError("docker down"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(g.error_message(), "docker down");
  EXPECT_TRUE(g.error_details().empty());
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(ToGrpcStatus(absl::AbortedError("x")).error_code(), grpc::StatusCode::ABORTED);
}

TEST(ApplySpecDefaultsTest, FillsHealthAndGrace) {
  hosting::v1::ServiceSpec spec = ValidSpec();
  ApplySpecDefaults(spec);
  EXPECT_EQ(spec.ports(0).protocol(), "tcp");
  EXPECT_EQ(TimeUtil::DurationToSeconds(spec.health().interval()), 5);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(spec.health().timeout()), 2000);
  EXPECT_EQ(spec.health().healthy_threshold(), 1u);
  EXPECT_EQ(spec.health().unhealthy_threshold(), 3u);
  EXPECT_EQ(spec.health().port(), 8080u);
  EXPECT_EQ(TimeUtil::DurationToSeconds(spec.stop_grace_period()), 10);
  EXPECT_EQ(spec.release().revision_history_limit(), 10u);
  // Idempotent: defaults applied twice change nothing.
  hosting::v1::ServiceSpec again = spec;
  ApplySpecDefaults(again);
  EXPECT_EQ(again.SerializeAsString(), spec.SerializeAsString());
}

}  // namespace
}  // namespace hosting::controlplane
