#include "common/docker_client.h"

#include "absl/strings/str_cat.h"

#include "common/curl_docker_client.h"
#include "common/fake_docker_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::docker {
namespace {

using ::testing::HasSubstr;

TEST(ParseEventTest, ServiceUpdate) {
  auto e = ParseEvent(
      R"({"Type":"service","Action":"update","Actor":{"ID":"abc","Attributes":{"name":"app-r1",)"
      R"("replicas.new":"0","replicas.old":"3"}},"scope":"swarm","time":1,"timeNano":1000})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, "service");
  EXPECT_EQ(e->action, "update");
  EXPECT_EQ(e->actor_id, "abc");
  EXPECT_EQ(e->attributes.at("name"), "app-r1");
  EXPECT_EQ(e->attributes.at("replicas.new"), "0");
  EXPECT_EQ(e->time_nano, 1000);
}

TEST(ParseEventTest, MalformedIsInvalidArgument) {
  EXPECT_TRUE(absl::IsInvalidArgument(ParseEvent("{not json").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseEvent("[1,2]").status()));
}

// Found by docker_events_fuzz: converting a number no int64 holds is undefined behaviour.
TEST(ParseEventTest, NumbersNoInt64HoldsReadAsAbsent) {
  for (const char* n : {"1.7e20", "-1e300", "18446744073709551615", "1e400"}) {
    absl::StatusOr<Event> e =
        ParseEvent(absl::StrCat(R"({"Type":"service","timeNano":)", n, "}"));
    if (!e.ok()) continue;  // 1e400 is not JSON nlohmann reads
    EXPECT_EQ(e->time_nano, 0) << n;
  }
  EXPECT_EQ(ParseEvent(R"({"timeNano":1.5e3})")->time_nano, 1500);
  EXPECT_EQ(ParseTask(nlohmann::json::parse(R"({"Slot":9.9e99})")).slot, 0);
}

TEST(ParseServiceTest, ReplicatedWithStatus) {
  ServiceInfo s = ParseService(nlohmann::json::parse(R"({
    "ID": "x1", "Version": {"Index": 42},
    "Spec": {"Name": "app-r2", "Labels": {"hosting.service": "app", "hosting.revision": "2"},
             "Mode": {"Replicated": {"Replicas": 3}}},
    "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 3},
    "UpdateStatus": {"State": "updating"}})"));
  EXPECT_EQ(s.id, "x1");
  EXPECT_EQ(s.version, 42u);
  EXPECT_EQ(s.name, "app-r2");
  EXPECT_EQ(s.labels.at("hosting.revision"), "2");
  EXPECT_EQ(s.replicas, 3);
  EXPECT_EQ(s.running_tasks, 2);
  EXPECT_EQ(s.desired_tasks, 3);
  EXPECT_EQ(s.update_state, "updating");
}

TEST(ParseServiceTest, GlobalHasNoReplicas) {
  ServiceInfo s = ParseService(nlohmann::json::parse(R"({"ID":"g","Spec":{"Mode":{"Global":{}}}})"));
  EXPECT_EQ(s.replicas, -1);
  EXPECT_EQ(s.running_tasks, -1);
}

TEST(ParseEngineInfoTest, SwarmAndLabels) {
  EngineInfo info = ParseEngineInfo(nlohmann::json::parse(R"({
    "Name": "node-a", "ServerVersion": "20.10.24", "NCPU": 2, "MemTotal": 1024,
    "Labels": ["zone=eu-1", "gpu"],
    "Swarm": {"NodeID": "n1", "LocalNodeState": "active", "ControlAvailable": true}})"));
  EXPECT_EQ(info.name, "node-a");
  EXPECT_EQ(info.ncpu, 2);
  EXPECT_EQ(info.node_id, "n1");
  EXPECT_TRUE(info.control_available);
  EXPECT_EQ(info.labels.at("zone"), "eu-1");
  EXPECT_EQ(info.labels.at("gpu"), "");
}

TEST(ParseTaskTest, AddressesAndContainer) {
  TaskInfo t = ParseTask(nlohmann::json::parse(R"({
    "ID": "t1", "ServiceID": "s1", "NodeID": "n1", "Slot": 2, "DesiredState": "running",
    "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"}},
    "NetworksAttachments": [{"Addresses": ["10.0.1.7/24"]}, {"Addresses": ["10.0.2.3/24"]}]})"));
  EXPECT_EQ(t.state, "running");
  EXPECT_EQ(t.container_id, "c1");
  EXPECT_EQ(t.slot, 2);
  EXPECT_THAT(t.addresses, ::testing::ElementsAre("10.0.1.7/24", "10.0.2.3/24"));
}

TEST(StatusFromHttpTest, MapsCodesAndKeepsDockerMessage) {
  auto s = StatusFromHttp(404, "GET", "/services/x", R"({"message":"service x not found"})");
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_THAT(s.message(), HasSubstr("service x not found"));
  EXPECT_THAT(s.message(), HasSubstr("GET /services/x"));
  EXPECT_TRUE(absl::IsAlreadyExists(StatusFromHttp(409, "POST", "/", "{}")));
  EXPECT_TRUE(absl::IsInvalidArgument(StatusFromHttp(400, "POST", "/", "{}")));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      StatusFromHttp(503, "GET", "/services", R"({"message":"This node is not a swarm manager."})")));
  EXPECT_TRUE(absl::IsAborted(StatusFromHttp(
      500, "POST", "/services/x/update",
      R"({"message":"rpc error: code = Unknown desc = update out of sequence"})")));
  EXPECT_TRUE(absl::IsInternal(StatusFromHttp(500, "GET", "/", "oops")));
}

TEST(EncodeFiltersTest, UrlEncodedJson) {
  EXPECT_EQ(EncodeFilters({{"label", {"a=b"}}}), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
}

TEST(CurlDockerClientTest, RejectsBadHosts) {
  EXPECT_TRUE(absl::IsInvalidArgument(CurlDockerClient::Create("ftp://x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CurlDockerClient::Create("unix://relative.sock").status()));
  EXPECT_TRUE(CurlDockerClient::Create("unix:///var/run/docker.sock").ok());
  EXPECT_TRUE(CurlDockerClient::Create("tcp://127.0.0.1:2375").ok());
}

TEST(CurlDockerClientTest, MissingSocketIsUnavailable) {
  auto client = CurlDockerClient::Create("unix:///nonexistent/docker.sock");
  ASSERT_TRUE(client.ok());
  auto info = (*client)->Info();
  EXPECT_TRUE(absl::IsUnavailable(info.status())) << info.status();
}

nlohmann::json MinimalSpec(const std::string& name, int replicas) {
  return {{"Name", name},
          {"TaskTemplate", {{"ContainerSpec", {{"Image", "img"}}}}},
          {"Mode", {{"Replicated", {{"Replicas", replicas}}}}}};
}

TEST(UpdateServiceWithRetryTest, RetriesOutOfSequence) {
  FakeDockerClient docker;
  ASSERT_TRUE(docker.CreateService(MinimalSpec("a", 1)).ok());
  docker.FailNextUpdates(2);
  absl::Status s = UpdateServiceWithRetry(docker, "a", [](nlohmann::json& spec) {
    spec["Mode"]["Replicated"]["Replicas"] = 4;
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(docker.InspectService("a")->replicas, 4);
}

TEST(UpdateServiceWithRetryTest, GivesUpAfterAttempts) {
  FakeDockerClient docker;
  ASSERT_TRUE(docker.CreateService(MinimalSpec("a", 1)).ok());
  docker.FailNextUpdates(10);
  absl::Status s = UpdateServiceWithRetry(
      docker, "a", [](nlohmann::json&) { return absl::OkStatus(); }, 3);
  EXPECT_TRUE(absl::IsAborted(s)) << s;
}

TEST(UpdateServiceWithRetryTest, MutateErrorStops) {
  FakeDockerClient docker;
  ASSERT_TRUE(docker.CreateService(MinimalSpec("a", 1)).ok());
  absl::Status s = UpdateServiceWithRetry(
      docker, "a", [](nlohmann::json&) { return absl::InvalidArgumentError("no"); });
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_TRUE(absl::IsNotFound(UpdateServiceWithRetry(
      docker, "missing", [](nlohmann::json&) { return absl::OkStatus(); })));
}

}  // namespace
}  // namespace hosting::docker
