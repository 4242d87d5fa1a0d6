// dockerd stopped and started again under a running hostd and hostagent: hostd keeps serving,
// answers UNAVAILABLE where it needs Docker, keeps accepting desired state, and converges by
// itself when the engine returns; the agent keeps running and reports the new tasks healthy.
// Disruptive (it restarts the machine's dockerd), so it runs last and alone.
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
  EXPECT_EQ(RemoveSwarmServicesOf(name), absl::OkStatus());
  const std::string dir = MakeTempDir("hosting-dockerd-");
  HostdProcess hostd(dir);
  ASSERT_TRUE(hostd.Start().ok());
  AgentProcess agent(hostd.address(), dir + "/agent.log");
  ASSERT_TRUE(agent.Start().ok());
  auto stub = hosting::v1::ServiceManager::NewStub(hostd.channel());
  auto apply = [&](int replicas) {
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_image("hosting/sample:v1");
    req.mutable_spec()->set_replicas(replicas);
    req.mutable_spec()->mutable_stop_grace_period()->set_seconds(1);
    req.mutable_spec()->add_ports()->set_container_port(8080);
    req.mutable_spec()->mutable_health()->set_http_path("/health");
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

  // The event log tells the operator (the reconciler notices on its next Docker call).
  auto cluster = hosting::v1::Cluster::NewStub(hostd.channel());
  absl::Status told = WaitFor(
      [&] {
        grpc::ClientContext ctx;
        hosting::v1::WatchEventsRequest req;
        req.set_from_start(true);
        req.set_no_follow(true);
        req.add_types("docker.unreachable");
        auto reader = cluster->WatchEvents(&ctx, req);
        hosting::v1::Event e;
        bool seen = false;
        while (reader->Read(&e)) seen = true;
        return reader->Finish().ok() && seen;
      },
      absl::Seconds(10), "a docker.unreachable event");
  EXPECT_TRUE(told.ok()) << told;

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
  // The agent lived through it and reports the new tasks.
  EXPECT_TRUE(agent.running());
  absl::Status healthy = WaitFor(
      [&] {
        grpc::ClientContext sctx;
        hosting::v1::GetServiceStatusRequest sreq;
        sreq.set_name(name);
        hosting::v1::ServiceHealthStatus status;
        return cluster->GetServiceStatus(&sctx, sreq, &status).ok() && status.revisions_size() == 1 &&
               status.revisions(0).healthy() == 2;
      },
      absl::Seconds(60), "the agent to report both new tasks healthy");
  EXPECT_TRUE(healthy.ok()) << healthy << "\n" << Shell("tail -5 " + dir + "/agent.log").output;

  grpc::ClientContext del_ctx;
  hosting::v1::DeleteServiceRequest del;
  del.set_name(name);
  hosting::v1::DeleteServiceResponse resp;
  EXPECT_TRUE(stub->DeleteService(&del_ctx, del, &resp).ok());
  EXPECT_TRUE(WaitFor([&] { return SwarmServicesOf(name).empty(); }, absl::Seconds(60), "removal").ok());
}

}  // namespace
}  // namespace hosting::testing
