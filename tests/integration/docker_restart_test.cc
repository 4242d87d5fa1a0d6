// dockerd stopped and started again under a running hostd: hostd keeps serving, answers
// UNAVAILABLE where it needs Docker, keeps accepting desired state, and converges by itself when
// the engine returns. Disruptive (it restarts the machine's dockerd), so it runs last and alone.
#include <csignal>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

TEST(DockerRestartTest, HostdSurvivesAndConvergesWhenDockerReturns) {
  ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
  const std::string name = "it-dockerd";
  RemoveSwarmServicesOf(name);
  HostdProcess hostd(MakeTempDir("hosting-dockerd-"));
  ASSERT_TRUE(hostd.Start().ok());
  auto stub = hosting::v1::ServiceManager::NewStub(hostd.channel());
  auto apply = [&](int replicas) {
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_image("hosting/sample:v1");
    req.mutable_spec()->set_replicas(replicas);
    req.mutable_spec()->mutable_stop_grace_period()->set_seconds(1);
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceResponse resp;
    return stub->ApplyService(&ctx, req, &resp);
  };
  ASSERT_TRUE(apply(1).ok());
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name) == std::vector<std::string>{name + "-r1 1 1"}; },
                      absl::Seconds(60), "r1 running")
                  .ok());

  // Stop dockerd (as a crash or a package upgrade would).
  CommandResult stop = Shell("kill -TERM $(pidof dockerd)");
  ASSERT_EQ(stop.exit_code, 0) << stop.output;
  ASSERT_TRUE(WaitFor([] { return Shell("pidof dockerd").exit_code != 0; }, absl::Seconds(60),
                      "dockerd to exit")
                  .ok());

  // hostd keeps serving: reads that need Docker say UNAVAILABLE and name the desired state.
  grpc::Status st;
  ASSERT_TRUE(WaitFor(
                  [&] {
                    grpc::ClientContext ctx;
                    hosting::v1::GetServiceRequest req;
                    req.set_name(name);
                    hosting::v1::Service s;
                    st = stub->GetService(&ctx, req, &s);
                    return st.error_code() == grpc::StatusCode::UNAVAILABLE;
                  },
                  absl::Seconds(10), "GetService to answer UNAVAILABLE")
                  .ok())
      << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("desired: revision 1"));
  // Desired state is still accepted.
  ASSERT_TRUE(apply(2).ok());
  EXPECT_TRUE(hostd.running());

  // The event log tells the operator.
  auto cluster = hosting::v1::Cluster::NewStub(hostd.channel());
  {
    grpc::ClientContext ctx;
    hosting::v1::WatchEventsRequest req;
    req.set_from_start(true);
    req.set_no_follow(true);
    req.add_types("docker.");
    auto reader = cluster->WatchEvents(&ctx, req);
    hosting::v1::Event e;
    std::vector<std::string> types;
    while (reader->Read(&e)) types.push_back(e.type());
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_THAT(types, ::testing::Contains("docker.unreachable"));
  }

  // Bring dockerd back; hostd converges on the change made while it was away.
  CommandResult start = Shell(SourceDir() + "/scripts/start-docker.sh");
  ASSERT_EQ(start.exit_code, 0) << start.output;
  absl::Status converged = WaitFor(
      [&] { return SwarmServicesOf(name) == std::vector<std::string>{name + "-r1 2 2"}; },
      absl::Seconds(90), "r1 at 2 replicas after dockerd returned", absl::Milliseconds(250));
  EXPECT_TRUE(converged.ok()) << converged << "\n" << Shell("docker service ls").output;
  grpc::ClientContext ctx;
  hosting::v1::GetServiceRequest req;
  req.set_name(name);
  hosting::v1::Service s;
  EXPECT_TRUE(stub->GetService(&ctx, req, &s).ok());

  grpc::ClientContext del_ctx;
  hosting::v1::DeleteServiceRequest del;
  del.set_name(name);
  hosting::v1::DeleteServiceResponse resp;
  EXPECT_TRUE(stub->DeleteService(&del_ctx, del, &resp).ok());
  EXPECT_TRUE(WaitFor([&] { return SwarmServicesOf(name).empty(); }, absl::Seconds(60), "removal").ok());
}

}  // namespace
}  // namespace hosting::testing
