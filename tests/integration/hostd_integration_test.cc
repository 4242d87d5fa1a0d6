// hostd against a real dockerd and one-node Swarm. Nothing is faked: the tests drive hostd over
// gRPC (and with hostctl and an outside reflection client) and check Swarm with the docker CLI.
#include <csignal>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/runbooks.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "common/bearer_token.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kImageV1[] = "hosting/sample:v1";
constexpr char kImageV2[] = "hosting/sample:v2";
constexpr absl::Duration kConverge = absl::Seconds(60);

class HostdIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::Status docker = CheckDockerSwarm();
    ASSERT_TRUE(docker.ok()) << docker;
    for (const char* image : {kImageV1, kImageV2}) {
      ASSERT_EQ(Shell(absl::StrCat("docker image inspect ", image)).exit_code, 0)
          << image << " is missing: run deploy/images/sample/build.sh";
    }
    hostd_ = new HostdProcess(MakeTempDir("hosting-it-"));
    absl::Status started = hostd_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  static void TearDownTestSuite() {
    delete hostd_;
    hostd_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(hostd_, nullptr);
    ASSERT_TRUE(hostd_->running()) << Shell("tail -30 " + hostd_->log_path()).output;
    services_ = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    cluster_ = hosting::v1::Cluster::NewStub(hostd_->channel());
    name_ = absl::StrCat("it-", ::testing::UnitTest::GetInstance()->current_test_info()->line());
    EXPECT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }

  void TearDown() override {
    hosting::v1::DeleteServiceRequest req;
    req.set_name(name_);
    hosting::v1::DeleteServiceResponse resp;
    grpc::ClientContext ctx;
    services_->DeleteService(&ctx, req, &resp);
    EXPECT_EQ(RemoveSwarmServicesOf(name_), absl::OkStatus());
  }

  hosting::v1::ServiceSpec Spec(const std::string& image = kImageV1, int replicas = 2) {
    hosting::v1::ServiceSpec spec;
    spec.set_name(name_);
    spec.set_image(image);
    spec.set_replicas(replicas);
    spec.add_ports()->set_container_port(8080);
    spec.mutable_health()->set_http_path("/health");
    *spec.mutable_stop_grace_period() = google::protobuf::Duration();
    spec.mutable_stop_grace_period()->set_seconds(1);
    return spec;
  }

  grpc::Status Apply(const hosting::v1::ServiceSpec& spec,
                     hosting::v1::ApplyServiceResponse* resp = nullptr) {
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = spec;
    hosting::v1::ApplyServiceResponse local;
    grpc::ClientContext ctx;
    return services_->ApplyService(&ctx, req, resp ? resp : &local);
  }

  grpc::Status Get(hosting::v1::Service* out) {
    hosting::v1::GetServiceRequest req;
    req.set_name(name_);
    grpc::ClientContext ctx;
    return services_->GetService(&ctx, req, out);
  }

  // Waits until Swarm shows exactly `expected` ("name desired running" lines).
  absl::Status WaitSwarm(std::vector<std::string> expected, absl::Duration timeout = kConverge) {
    std::vector<std::string> last;
    absl::Status st = WaitFor(
        [&] {
          last = SwarmServicesOf(name_);
          return last == expected;
        },
        timeout, absl::StrCat("Swarm to show [", absl::StrJoin(expected, ", "), "]"),
        absl::Milliseconds(100));
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat(st.message(), "; last seen [",
                                                  absl::StrJoin(last, ", "), "]"));
    }
    return st;
  }

  absl::Status WaitReady() {
    return WaitFor(
        [&] {
          hosting::v1::Service s;
          return Get(&s).ok() && s.status().phase() == hosting::v1::SERVICE_PHASE_READY;
        },
        kConverge, "GetService to report READY", absl::Milliseconds(100));
  }

  static HostdProcess* hostd_;
  std::unique_ptr<hosting::v1::ServiceManager::Stub> services_;
  std::unique_ptr<hosting::v1::Cluster::Stub> cluster_;
  std::string name_;
};

HostdProcess* HostdIntegrationTest::hostd_ = nullptr;

TEST_F(HostdIntegrationTest, ApplyRunsTheTasksInSwarm) {
  hosting::v1::ApplyServiceResponse resp;
  ASSERT_TRUE(Apply(Spec(), &resp).ok());
  EXPECT_TRUE(resp.created());
  EXPECT_EQ(resp.service().revision(), 1);
  ASSERT_TRUE(WaitSwarm({name_ + "-r1 2 2"}).ok()) << WaitSwarm({name_ + "-r1 2 2"});
  ASSERT_TRUE(WaitReady().ok());

  hosting::v1::Service s;
  ASSERT_TRUE(Get(&s).ok());
  EXPECT_EQ(s.status().running_tasks(), 2);
  ASSERT_EQ(s.status().revisions_size(), 1);
  EXPECT_EQ(s.status().revisions(0).swarm_service_name(), name_ + "-r1");
  EXPECT_EQ(s.status().revisions(0).image(), kImageV1);

  // Swarm carries hosting's labels, DNS round-robin endpoints and the hosting network.
  CommandResult inspect = Shell(absl::StrCat(
      "docker service inspect ", name_, "-r1 --format "
      "'{{index .Spec.Labels \"hosting.service\"}} {{index .Spec.Labels \"hosting.revision\"}} "
      "{{.Spec.EndpointSpec.Mode}}'"));
  EXPECT_EQ(inspect.output, absl::StrCat(name_, " 1 dnsrr\n"));
  // Tasks are really running containers of the image.
  CommandResult ps = Shell(absl::StrCat("docker ps --filter label=hosting.service=", name_,
                                      " --format '{{.Image}}' | sort | uniq -c"));
  EXPECT_THAT(ps.output, HasSubstr(absl::StrCat("2 ", kImageV1)));
}

// A Swarm secret reaches the tasks as a file under /run/secrets/, and its value appears in no
// Swarm spec, hostd answer, event or log; a missing secret leaves the service DEGRADED, named.
TEST_F(HostdIntegrationTest, SecretsAreFilesInTheTasksAndNeverShown) {
  const std::string secret = absl::StrCat(name_, "-db-", getpid());
  const std::string value = absl::StrCat("s3cr3t-", getpid(), "-", absl::ToUnixNanos(absl::Now()));
  Shell("docker secret rm " + secret);
  CommandResult created =
      Shell(absl::StrCat("printf %s '", value, "' | docker secret create ", secret, " -"));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  hosting::v1::ServiceSpec spec = Spec(kImageV1, 1);
  hosting::v1::SecretMount* mount = spec.add_secrets();
  mount->set_name(secret);
  mount->set_target("db_password");
  (*spec.mutable_env())["DB_PASSWORD_FILE"] = "/run/secrets/db_password";
  ASSERT_TRUE(Apply(spec).ok());
  ASSERT_TRUE(WaitSwarm({name_ + "-r1 1 1"}).ok()) << WaitSwarm({name_ + "-r1 1 1"});
  CommandResult container = Shell(absl::StrCat(
      "docker ps -q --filter label=hosting.service=", name_, " | head -1"));
  const std::string id(absl::StripAsciiWhitespace(container.output));
  ASSERT_FALSE(id.empty());
  CommandResult file = Shell(absl::StrCat("docker exec ", id, " cat /run/secrets/db_password"));
  EXPECT_EQ(file.output, value);
  // Nowhere else: the Swarm spec, the container's environment, hostd's answers, events, log.
  CommandResult inspect = Shell(absl::StrCat("docker service inspect ", name_, "-r1"));
  EXPECT_THAT(inspect.output, HasSubstr(secret));
  EXPECT_THAT(inspect.output, Not(HasSubstr(value)));
  EXPECT_THAT(Shell("docker inspect " + id).output, Not(HasSubstr(value)));
  const std::string hostctl = absl::StrCat(HostctlBinary(), " -s ", hostd_->address(), " ");
  EXPECT_THAT(Shell(hostctl + "-o json service get " + name_).output, Not(HasSubstr(value)));
  EXPECT_THAT(Shell(hostctl + "-o json events --service " + name_).output, Not(HasSubstr(value)));
  EXPECT_THAT(Shell("cat " + hostd_->log_path()).output, Not(HasSubstr(value)));

  // A secret that does not exist: the new revision cannot start, and the status says which.
  spec.mutable_secrets(0)->set_name(secret + "-missing");
  ASSERT_TRUE(Apply(spec).ok());
  absl::Status named = WaitFor(
      [&] {
        hosting::v1::Service s;
        return Get(&s).ok() && absl::StrContains(s.status().message(), secret + "-missing");
      },
      kConverge, "the status to name the missing secret", absl::Milliseconds(200));
  EXPECT_TRUE(named.ok()) << named;
  // The running revision keeps serving meanwhile.
  EXPECT_EQ(SwarmServicesOf(name_), std::vector<std::string>{name_ + "-r1 1 1"});

  TearDown();
  Shell("docker secret rm " + secret);
}

TEST_F(HostdIntegrationTest, ScaleAndDelete) {
  ASSERT_TRUE(Apply(Spec(kImageV1, 1)).ok());
  ASSERT_TRUE(WaitSwarm({name_ + "-r1 1 1"}).ok());

  hosting::v1::ScaleServiceRequest scale;
  scale.set_name(name_);
  scale.set_replicas(3);
  hosting::v1::Service scaled;
  grpc::ClientContext ctx;
  ASSERT_TRUE(services_->ScaleService(&ctx, scale, &scaled).ok());
  EXPECT_EQ(scaled.spec().replicas(), 3);
  EXPECT_EQ(scaled.revision(), 1);  // scaling makes no revision
  absl::Status st = WaitSwarm({name_ + "-r1 3 3"});
  ASSERT_TRUE(st.ok()) << st;

  hosting::v1::DeleteServiceRequest del;
  del.set_name(name_);
  hosting::v1::DeleteServiceResponse deleted;
  grpc::ClientContext ctx2;
  ASSERT_TRUE(services_->DeleteService(&ctx2, del, &deleted).ok());
  st = WaitSwarm({});
  ASSERT_TRUE(st.ok()) << st;
  hosting::v1::Service gone;
  EXPECT_EQ(Get(&gone).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HostdIntegrationTest, RepairsOutsideScaleAndRemovalWithinFiveSeconds) {
  ASSERT_TRUE(Apply(Spec()).ok());
  ASSERT_TRUE(WaitSwarm({name_ + "-r1 2 2"}).ok());

  absl::Time t0 = absl::Now();
  ASSERT_EQ(Shell(absl::StrCat("docker service scale -d ", name_, "-r1=0")).exit_code, 0);
  absl::Status st = WaitFor(
      [&] {
        CommandResult r = Shell(absl::StrCat("docker service inspect ", name_,
                                           "-r1 --format '{{.Spec.Mode.Replicated.Replicas}}'"));
        return r.output == "2\n";
      },
      absl::Seconds(5), "hostd to restore 2 replicas after an outside scale to 0");
  EXPECT_TRUE(st.ok()) << st;
  std::cout << "[ measure ] outside scale repaired in " << absl::FormatDuration(absl::Now() - t0)
            << "\n";

  t0 = absl::Now();
  ASSERT_EQ(Shell(absl::StrCat("docker service rm ", name_, "-r1")).exit_code, 0);
  st = WaitFor(
      [&] {
        return Shell(absl::StrCat("docker service inspect ", name_, "-r1 >/dev/null")).exit_code == 0;
      },
      absl::Seconds(5), "hostd to re-create a Swarm service removed outside");
  EXPECT_TRUE(st.ok()) << st;
  std::cout << "[ measure ] outside removal repaired in " << absl::FormatDuration(absl::Now() - t0)
            << "\n";
  st = WaitSwarm({name_ + "-r1 2 2"});
  EXPECT_TRUE(st.ok()) << st;

  // Both repairs are in the event log, with their reasons.
  CommandResult events = Shell(absl::StrCat(HostctlBinary(), " --server ", hostd_->address(),
                                          " events --service ", name_, " --type reconcile.repaired"));
  EXPECT_EQ(events.exit_code, 0) << events.output;
  EXPECT_THAT(events.output, HasSubstr("scaled to 0 outside hostd"));
  EXPECT_THAT(events.output, HasSubstr("removed outside hostd"));
}

TEST_F(HostdIntegrationTest, NewRevisionReplacesTheOldOneStartFirst) {
  ASSERT_TRUE(Apply(Spec(kImageV1)).ok());
  ASSERT_TRUE(WaitSwarm({name_ + "-r1 2 2"}).ok());
  hosting::v1::ApplyServiceResponse resp;
  ASSERT_TRUE(Apply(Spec(kImageV2), &resp).ok());
  EXPECT_TRUE(resp.revision_created());
  EXPECT_EQ(resp.service().revision(), 2);
  absl::Status st = WaitSwarm({name_ + "-r2 2 2"});
  ASSERT_TRUE(st.ok()) << st;
  // r1 was removed only after r2 ran: the event log says so in order.
  CommandResult events = Shell(absl::StrCat(HostctlBinary(), " --server ", hostd_->address(),
                                          " -o json events --service ", name_,
                                          " --type reconcile."));
  size_t created = events.output.find(name_ + "-r2");
  size_t removed = events.output.find("\"reconcile.removed\"");
  ASSERT_NE(created, std::string::npos) << events.output;
  ASSERT_NE(removed, std::string::npos) << events.output;
  EXPECT_LT(created, removed);
}

TEST_F(HostdIntegrationTest, InvalidRequestsGetFieldErrorsAndHostdKeepsServing) {
  hosting::v1::ServiceSpec bad;
  bad.set_name("Not_Valid");
  bad.set_replicas(-2);
  bad.add_ports()->set_container_port(0);
  grpc::ClientContext ctx;
  hosting::v1::ApplyServiceRequest req;
  *req.mutable_spec() = bad;
  hosting::v1::ApplyServiceResponse resp;
  grpc::Status st = services_->ApplyService(&ctx, req, &resp);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(st.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(bad_request.ParseFromString(details.details(0).value()));
  std::vector<std::string> fields;
  for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ElementsAre("spec.name", "spec.image", "spec.replicas",
                                  "spec.ports[0].container_port"));

  hosting::v1::Service s;
  hosting::v1::GetServiceRequest get;
  get.set_name("no-such-service");
  grpc::ClientContext ctx2;
  st = services_->GetService(&ctx2, get, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("no-such-service"));

  // An empty release request names every missing field.
  auto releases = hosting::v1::Releases::NewStub(hostd_->channel());
  grpc::ClientContext ctx3;
  hosting::v1::Release release;
  st = releases->StartRelease(&ctx3, {}, &release);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("service"));
  EXPECT_THAT(st.error_message(), HasSubstr("image"));
  // A bad autoscaling policy names its fields; an unknown service is NOT_FOUND.
  auto autoscaling = hosting::v1::Autoscaling::NewStub(hostd_->channel());
  grpc::ClientContext ctx4;
  hosting::v1::SetPolicyRequest set;
  set.mutable_policy()->set_service(name_);
  set.mutable_policy()->set_max_replicas(3);
  hosting::v1::AutoscalingPolicy policy;
  st = autoscaling->SetPolicy(&ctx4, set, &policy);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("policy.min_replicas"));
  EXPECT_THAT(st.error_message(), HasSubstr("policy.metrics"));
  grpc::ClientContext ctx5;
  hosting::v1::GetPolicyRequest get_policy;
  get_policy.set_service("no-such-service");
  st = autoscaling->GetPolicy(&ctx5, get_policy, &policy);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("no-such-service"));
  // A runbook run with a bad parameter names it; an unknown run is NOT_FOUND.
  auto runbooks = hosting::v1::Runbooks::NewStub(hostd_->channel());
  grpc::ClientContext ctx6;
  hosting::v1::RunRunbookRequest run;
  run.set_runbook("log-analysis");
  (*run.mutable_parameters())["lines"] = "lots";
  hosting::v1::RunbookRun started;
  st = runbooks->RunRunbook(&ctx6, run, &started);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("parameters.lines: want an integer"));
  EXPECT_THAT(st.error_message(), HasSubstr("parameters.service: required"));
  grpc::ClientContext ctx7;
  hosting::v1::CancelRunRequest cancel;
  cancel.set_id("log-analysis-999");
  st = runbooks->CancelRun(&ctx7, cancel, &started);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);

  // Still serving.
  ASSERT_TRUE(Apply(Spec(kImageV1, 1)).ok());
  EXPECT_TRUE(WaitSwarm({name_ + "-r1 1 1"}).ok());
}

TEST_F(HostdIntegrationTest, WatchEventsStreamsWhatHappens) {
  grpc::ClientContext ctx;
  // A missed event ends the read at the deadline instead of hanging the test.
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  hosting::v1::WatchEventsRequest req;
  req.set_service(name_);
  // The call may reach hostd after the apply below: replay this service's stored events first
  // (none before this test), then follow.
  req.set_from_start(true);
  auto reader = cluster_->WatchEvents(&ctx, req);
  ASSERT_TRUE(Apply(Spec(kImageV1, 1)).ok());
  std::vector<std::string> types;
  hosting::v1::Event e;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && reader->Read(&e)) {
    types.push_back(e.type());
    EXPECT_EQ(e.service(), name_);
    EXPECT_GT(e.sequence(), 0);
    if (e.type() == "reconcile.created") break;
  }
  ctx.TryCancel();
  reader->Finish();
  EXPECT_THAT(types, ::testing::IsSupersetOf({"service.applied", "revision.created",
                                              "reconcile.created"}));
}

TEST_F(HostdIntegrationTest, HostctlDrivesTheWholeLifecycle) {
  std::string dir = MakeTempDir("hosting-hostctl-");
  std::string file = dir + "/svc.yaml";
  Shell(absl::StrCat("printf 'name: ", name_, "\\nimage: ", kImageV1,
                   "\\nreplicas: 2\\nports:\\n  - container_port: 8080\\n' > ", file));
  std::string hostctl = absl::StrCat("HOSTING_SERVER=", hostd_->address(), " ", HostctlBinary());
  CommandResult apply = Shell(absl::StrCat(hostctl, " service apply -f ", file,
                                         " --wait --wait-timeout 60"));
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_THAT(apply.output, HasSubstr("created (revision 1"));
  CommandResult list = Shell(hostctl + " service list");
  EXPECT_THAT(list.output, HasSubstr(absl::StrCat(name_, "  1 ")));
  CommandResult get = Shell(absl::StrCat(hostctl, " -o json service get ", name_));
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_THAT(get.output, HasSubstr("\"phase\": \"SERVICE_PHASE_READY\""));
  CommandResult scale = Shell(absl::StrCat(hostctl, " service scale ", name_, " 1 --wait"));
  EXPECT_EQ(scale.exit_code, 0) << scale.output;
  EXPECT_EQ(SwarmServicesOf(name_), std::vector<std::string>{name_ + "-r1 1 1"});
  CommandResult missing = Shell(hostctl + " service get nope-nope");
  EXPECT_EQ(missing.exit_code, 4) << missing.output;
  CommandResult invalid = Shell(absl::StrCat(hostctl, " service scale ", name_, " -- -1"));
  EXPECT_EQ(invalid.exit_code, 3) << invalid.output;
  CommandResult del = Shell(absl::StrCat(hostctl, " service delete ", name_));
  EXPECT_EQ(del.exit_code, 0) << del.output;
  EXPECT_TRUE(WaitSwarm({}).ok());
}

TEST_F(HostdIntegrationTest, OutsideReflectionClientDrivesTheApi) {
  const std::string client = absl::StrCat("node ", SourceDir(),
                                          "/tests/reflection/reflection_client.mjs ",
                                          hostd_->address());
  CommandResult services = Shell(client + " services");
  ASSERT_EQ(services.exit_code, 0) << services.output
                                   << "\n(run: npm ci --prefix tests/reflection)";
  for (const char* svc : {"hosting.v1.ServiceManager", "hosting.v1.Releases",
                          "hosting.v1.Autoscaling", "hosting.v1.Cluster", "hosting.v1.Runbooks",
                          "hosting.v1.AgentGateway", "grpc.health.v1.Health"}) {
    EXPECT_THAT(services.output, HasSubstr(svc));
  }
  auto call = [&](const std::string& method, const std::string& body) {
    return Shell(absl::StrCat(client, " call hosting.v1.ServiceManager ", method, " '", body, "'"));
  };
  CommandResult apply = call("ApplyService", absl::StrCat(R"({"spec":{"name":")", name_,
                                                          R"(","image":")", kImageV1,
                                                          R"(","replicas":1}})"));
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_THAT(apply.output, HasSubstr("\"created\":true"));
  EXPECT_TRUE(WaitSwarm({name_ + "-r1 1 1"}).ok());
  CommandResult get = call("GetService", absl::StrCat(R"({"name":")", name_, R"("})"));
  EXPECT_THAT(get.output, HasSubstr(name_ + "-r1"));
  CommandResult list = call("ListServices", "{}");
  EXPECT_THAT(list.output, HasSubstr(absl::StrCat("\"name\":\"", name_, "\"")));
  CommandResult scale = call("ScaleService", absl::StrCat(R"({"name":")", name_, R"(","replicas":2})"));
  ASSERT_EQ(scale.exit_code, 0) << scale.output;
  absl::Status st = WaitSwarm({name_ + "-r1 2 2"});
  EXPECT_TRUE(st.ok()) << st;
  CommandResult del = call("DeleteService", absl::StrCat(R"({"name":")", name_, R"("})"));
  ASSERT_EQ(del.exit_code, 0) << del.output;
  st = WaitSwarm({});
  EXPECT_TRUE(st.ok()) << st;
  CommandResult bad = call("ApplyService", R"({"spec":{"name":"x"}})");
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_THAT(bad.output, HasSubstr("\"code\":3"));
}

TEST_F(HostdIntegrationTest, PrometheusMetricsAreExported) {
  ASSERT_TRUE(Apply(Spec(kImageV1, 1)).ok());
  ASSERT_TRUE(WaitSwarm({name_ + "-r1 1 1"}).ok());
  CommandResult metrics = Shell(absl::StrCat("curl -sf http://", hostd_->metrics_address(), "/metrics"));
  ASSERT_EQ(metrics.exit_code, 0) << metrics.output;
  for (const char* family :
       {"hostd_reconcile_total{result=\"ok\"}", "hostd_reconcile_duration_seconds_bucket",
        "hostd_reconcile_actions_total{action=\"created\"}", "hostd_workqueue_depth",
        "hostd_docker_reachable 1", "hostd_grpc_requests_total{code=\"OK\",method=\"ApplyService\"}"}) {
    EXPECT_THAT(metrics.output, HasSubstr(family));
  }
}

TEST_F(HostdIntegrationTest, NodesAreListed) {
  grpc::ClientContext ctx;
  hosting::v1::ListNodesResponse nodes;
  ASSERT_TRUE(cluster_->ListNodes(&ctx, {}, &nodes).ok());
  ASSERT_GE(nodes.nodes_size(), 1);
  CommandResult self = Shell("docker info --format '{{.Swarm.NodeID}}'");
  EXPECT_EQ(nodes.nodes(0).id() + "\n", self.output);
  EXPECT_EQ(nodes.nodes(0).role(), "manager");
}

// A hostd restarted on the same store changes nothing that was right: no Swarm writes, no
// duplicates, the same desired state.
// Applies a service, restarts hostd on the same store, and checks the restarted one finds it
// right and writes nothing to Swarm.
void RestartChangesNothingThatWasRight(const std::string& name,
                                       const std::vector<std::string>& flags) {
  ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
  EXPECT_EQ(RemoveSwarmServicesOf(name), absl::OkStatus());
  std::string dir = MakeTempDir("hosting-restart-");
  auto hostd = std::make_unique<HostdProcess>(dir, flags);
  ASSERT_TRUE(hostd->Start().ok());
  {
    auto stub = hosting::v1::ServiceManager::NewStub(hostd->channel());
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_image(kImageV1);
    req.mutable_spec()->set_replicas(2);
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceResponse resp;
    ASSERT_TRUE(stub->ApplyService(&ctx, req, &resp).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return SwarmServicesOf(name) == std::vector<std::string>{name + "-r1 2 2"}; },
                      kConverge, "r1 running")
                  .ok());
  const std::string before = Shell(absl::StrCat("docker service inspect ", name,
                                               "-r1 --format '{{.ID}} {{.Version.Index}}'")).output;
  EXPECT_EQ(hostd->Stop(SIGTERM), 0);
  // Same store, new process and ports.
  hostd = std::make_unique<HostdProcess>(dir, flags);
  ASSERT_TRUE(hostd->Start().ok());
  auto stub = hosting::v1::ServiceManager::NewStub(hostd->channel());
  hosting::v1::Service s;
  ASSERT_TRUE(WaitFor(
                  [&] {
                    grpc::ClientContext ctx;
                    hosting::v1::GetServiceRequest req;
                    req.set_name(name);
                    // last_reconciled is set once the restarted reconciler has synced this
                    // service (READY alone is the live comparison, true before any sync).
                    return stub->GetService(&ctx, req, &s).ok() &&
                           s.status().phase() == hosting::v1::SERVICE_PHASE_READY &&
                           s.status().has_last_reconciled();
                  },
                  kConverge, "READY and synced after restart")
                  .ok());
  EXPECT_EQ(s.revision(), 1);
  EXPECT_EQ(s.generation(), 1);
  EXPECT_EQ(SwarmServicesOf(name), std::vector<std::string>{name + "-r1 2 2"});
  const std::string after = Shell(absl::StrCat("docker service inspect ", name,
                                              "-r1 --format '{{.ID}} {{.Version.Index}}'")).output;
  EXPECT_EQ(before, after) << "the restarted hostd wrote to a service that was already right";
  // Clean up through hostd.
  grpc::ClientContext ctx;
  hosting::v1::DeleteServiceRequest del;
  del.set_name(name);
  hosting::v1::DeleteServiceResponse resp;
  EXPECT_TRUE(stub->DeleteService(&ctx, del, &resp).ok());
  EXPECT_TRUE(WaitFor([&] { return SwarmServicesOf(name).empty(); }, kConverge, "removal").ok());
}

TEST(HostdRestartTest, RestartChangesNothingThatWasRight) {
  RestartChangesNothingThatWasRight("it-restart", {});
}

TEST(HostdRestartTest, RestartOnPostgresChangesNothingThatWasRight) {
  Datastores ds;
  ASSERT_EQ(ds.Start(), absl::OkStatus());
  ds.Sql("CREATE DATABASE hostd", false, "postgres");
  RestartChangesNothingThatWasRight(
      "it-restart-pg",
      {absl::StrCat("--store=postgresql://postgres@127.0.0.1:", ds.pg_port(), "/hostd")});
  // The state was on PostgreSQL, not in a file.
  int events = 0;
  EXPECT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ds.Sql("SELECT count(*) FROM hosting.events", false, "hostd")),
      &events));
  EXPECT_GT(events, 0);
}

// Off loopback, hostd serves only over TLS; a client that trusts the certificate gets in, a
// plaintext client does not.
TEST(HostdStartupTest, ServesTlsWhenGivenACertificate) {
  ASSERT_TRUE(CheckDockerSwarm().ok());
  std::string dir = MakeTempDir("hosting-tls-");
  CommandResult gen = Shell(absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ", dir, "/key.pem -out ", dir,
      "/cert.pem"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  HostdProcess hostd(dir, {"--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem"},
                     absl::StrCat("0.0.0.0:", FreePort()));
  ASSERT_TRUE(hostd.Start().ok());
  const std::string port = hostd.address().substr(hostd.address().find(':') + 1);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Shell("cat " + dir + "/cert.pem").output;
  auto secure = hosting::v1::ServiceManager::NewStub(
      CreateChannelWithToken("localhost:" + port, grpc::SslCredentials(ssl), {}, TestToken()));
  grpc::Status st;
  absl::Status up = WaitFor(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
        hosting::v1::ListServicesResponse resp;
        st = secure->ListServices(&ctx, {}, &resp);
        return st.ok();
      },
      absl::Seconds(10), "a TLS call to succeed");
  EXPECT_TRUE(up.ok()) << up << ": " << st.error_message();
  auto plain = hosting::v1::ServiceManager::NewStub(
      CreateChannelWithToken("127.0.0.1:" + port, grpc::InsecureChannelCredentials(), {},
                             TestToken()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  hosting::v1::ListServicesResponse resp;
  EXPECT_FALSE(plain->ListServices(&ctx, {}, &resp).ok());
  hostd.Stop();

  // mTLS: with --tls-client-ca, only clients with a certificate from that CA get in (the
  // self-signed certificate is its own CA here).
  HostdProcess mtls(dir, {"--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem",
                          "--tls-client-ca", dir + "/cert.pem"},
                    absl::StrCat("0.0.0.0:", FreePort()));
  ASSERT_TRUE(mtls.Start().ok());
  const std::string mport = mtls.address().substr(mtls.address().find(':') + 1);
  auto no_client_cert = hosting::v1::ServiceManager::NewStub(
      CreateChannelWithToken("localhost:" + mport, grpc::SslCredentials(ssl), {}, TestToken()));
  grpc::SslCredentialsOptions with_cert = ssl;
  with_cert.pem_cert_chain = ssl.pem_root_certs;
  with_cert.pem_private_key = Shell("cat " + dir + "/key.pem").output;
  auto client_cert = hosting::v1::ServiceManager::NewStub(
      CreateChannelWithToken("localhost:" + mport, grpc::SslCredentials(with_cert), {},
                             TestToken()));
  up = WaitFor(
      [&] {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
        hosting::v1::ListServicesResponse r;
        st = client_cert->ListServices(&c, {}, &r);
        return st.ok();
      },
      absl::Seconds(10), "an mTLS call to succeed");
  EXPECT_TRUE(up.ok()) << up << ": " << st.error_message();
  grpc::ClientContext c2;
  c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(no_client_cert->ListServices(&c2, {}, &resp).ok());
}

TEST(HostdStartupTest, BadFlagsFailFastWithAReason) {
  std::string dir = MakeTempDir("hosting-flags-");
  CommandResult r = Shell(absl::StrCat(HostdBinary(), " --store sqlite://relative.db"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("absolute path"));
  r = Shell(absl::StrCat(HostdBinary(), " --data-dir ", dir, " --listen 0.0.0.0:0"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("not a loopback address"));
  r = Shell(absl::StrCat(HostdBinary(), " --data-dir ", dir, " --docker-host ftp://x"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("--docker-host"));
}

}  // namespace
}  // namespace hosting::testing
