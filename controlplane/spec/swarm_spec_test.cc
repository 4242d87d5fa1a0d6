#include "controlplane/spec/swarm_spec.h"

#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using google::protobuf::util::TimeUtil;

hosting::v1::ServiceSpec Spec() {
  hosting::v1::ServiceSpec spec;
  spec.set_name("web");
  spec.set_image("hosting/sample:v1");
  spec.set_replicas(3);
  (*spec.mutable_env())["A"] = "1";
  (*spec.mutable_labels())["team"] = "platform";
  auto* p = spec.add_ports();
  p->set_container_port(8080);
  p->set_protocol("tcp");
  return spec;
}

TEST(RevisionServiceNameTest, RoundTrip) {
  EXPECT_EQ(RevisionServiceName("web", 7), "web-r7");
  auto rn = ParseRevisionServiceName("my-app-r12");
  ASSERT_TRUE(rn.has_value());
  EXPECT_EQ(rn->service, "my-app");
  EXPECT_EQ(rn->revision, 12);
  EXPECT_FALSE(ParseRevisionServiceName("web").has_value());
  EXPECT_FALSE(ParseRevisionServiceName("web-r").has_value());
  EXPECT_FALSE(ParseRevisionServiceName("web-r0").has_value());
  EXPECT_FALSE(ParseRevisionServiceName("web-r1x").has_value());
  EXPECT_FALSE(ParseRevisionServiceName("-r1").has_value());
}

TEST(TemplateHashTest, IgnoresReplicasAndReleasePolicy) {
  hosting::v1::ServiceSpec a = Spec();
  hosting::v1::ServiceSpec b = Spec();
  b.set_replicas(9);
  b.mutable_release()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  EXPECT_EQ(TemplateHash(a), TemplateHash(b));
  EXPECT_EQ(TemplateHash(a).size(), 16u);
}

TEST(TemplateHashTest, ChangesWithWhatRuns) {
  const std::string base = TemplateHash(Spec());
  hosting::v1::ServiceSpec s = Spec();
  s.set_image("hosting/sample:v2");
  EXPECT_NE(TemplateHash(s), base);
  s = Spec();
  (*s.mutable_env())["A"] = "2";
  EXPECT_NE(TemplateHash(s), base);
  s = Spec();
  s.mutable_resources()->set_cpu_limit(0.5);
  EXPECT_NE(TemplateHash(s), base);
  s = Spec();
  s.add_args("--verbose");
  EXPECT_NE(TemplateHash(s), base);
}

TEST(TemplateHashTest, StableAcrossMapOrder) {
  hosting::v1::ServiceSpec a = Spec();
  hosting::v1::ServiceSpec b = Spec();
  for (int i = 0; i < 20; ++i) (*a.mutable_env())["K" + std::to_string(i)] = "v";
  for (int i = 19; i >= 0; --i) (*b.mutable_env())["K" + std::to_string(i)] = "v";
  EXPECT_EQ(TemplateHash(a), TemplateHash(b));
}

TEST(BuildSwarmSpecTest, ReplicatedDnsrrWithOwnershipLabels) {
  nlohmann::json j = BuildSwarmSpec(Spec(), 4, 3, "hosting", "ctl1");
  EXPECT_EQ(j["Name"], "web-r4");
  EXPECT_EQ(j["Labels"]["hosting.service"], "web");
  EXPECT_EQ(j["Labels"]["hosting.revision"], "4");
  EXPECT_EQ(j["Labels"]["hosting.spec-hash"], TemplateHash(Spec()));
  EXPECT_EQ(j["Labels"]["team"], "platform");
  EXPECT_EQ(j["Labels"]["hosting.controller"], "ctl1");
  EXPECT_EQ(j["Mode"]["Replicated"]["Replicas"], 3);
  EXPECT_EQ(j["EndpointSpec"]["Mode"], "dnsrr");
  EXPECT_FALSE(j["EndpointSpec"].contains("Ports"));
  const auto& c = j["TaskTemplate"]["ContainerSpec"];
  EXPECT_EQ(c["Image"], "hosting/sample:v1");
  EXPECT_EQ(c["Labels"]["hosting.revision"], "4");
  EXPECT_THAT(c["Env"].get<std::vector<std::string>>(),
              ::testing::UnorderedElementsAre("A=1", "HOSTING_SERVICE=web", "HOSTING_REVISION=4"));
  EXPECT_EQ(j["TaskTemplate"]["Networks"][0]["Target"], "hosting");
  EXPECT_EQ(j["TaskTemplate"]["Networks"][0]["Aliases"][0], "web");
  EXPECT_FALSE(c.contains("Healthcheck"));
}

TEST(BuildSwarmSpecTest, PublishedPortsHealthcheckResources) {
  hosting::v1::ServiceSpec s = Spec();
  s.mutable_ports(0)->set_published_port(18080);
  auto* h = s.mutable_health();
  h->add_command("busybox");
  h->add_command("true");
  *h->mutable_interval() = TimeUtil::SecondsToDuration(2);
  *h->mutable_timeout() = TimeUtil::SecondsToDuration(1);
  h->set_unhealthy_threshold(3);
  s.mutable_resources()->set_cpu_limit(0.5);
  s.mutable_resources()->set_memory_limit_bytes(64 << 20);
  s.add_constraints("node.role==manager");
  s.add_networks("extra");
  nlohmann::json j = BuildSwarmSpec(s, 1, 2, "hosting", "ctl1");
  const auto& port = j["EndpointSpec"]["Ports"][0];
  EXPECT_EQ(port["PublishedPort"], 18080);
  EXPECT_EQ(port["TargetPort"], 8080);
  EXPECT_EQ(port["PublishMode"], "host");
  const auto& hc = j["TaskTemplate"]["ContainerSpec"]["Healthcheck"];
  EXPECT_EQ(hc["Test"], nlohmann::json({"CMD", "busybox", "true"}));
  EXPECT_EQ(hc["Interval"], 2'000'000'000);
  EXPECT_EQ(hc["Retries"], 3);
  EXPECT_EQ(j["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"], 500'000'000);
  EXPECT_EQ(j["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"], 64 << 20);
  EXPECT_EQ(j["TaskTemplate"]["Placement"]["Constraints"][0], "node.role==manager");
  EXPECT_EQ(j["TaskTemplate"]["Networks"].size(), 2u);
}

}  // namespace
}  // namespace hosting::controlplane
