#include "controlplane/spec/validation.h"

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
