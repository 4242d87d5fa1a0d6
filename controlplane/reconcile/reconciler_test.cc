// The reconciler's decisions over a fake Docker engine: Sync is called directly and the recorded
// Docker actions are compared, as in Kubernetes' sample-controller tests.
#include "controlplane/reconcile/reconciler.h"

#include "common/fake_docker_client.h"
#include "controlplane/service/service_manager.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/spec/swarm_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest()
      : store_(SqliteStore::Open(":memory:").value()),
        events_(*store_, clock_),
        reconciler_(std::make_unique<Reconciler>(*store_, docker_, events_, metrics_, clock_,
                                                 ReconcilerOptions{})),
        state_(*store_, *reconciler_, events_, clock_),
        manager_(*store_, state_, *reconciler_, clock_) {}

  hosting::v1::ServiceSpec Spec(const std::string& image = "img:1", int replicas = 2) {
    hosting::v1::ServiceSpec spec;
    spec.set_name("web");
    spec.set_image(image);
    spec.set_replicas(replicas);
    return spec;
  }

  hosting::v1::ApplyServiceResponse Apply(const hosting::v1::ServiceSpec& spec) {
    hosting::v1::ApplyServiceRequest req;
    *req.mutable_spec() = spec;
    absl::StatusOr<hosting::v1::ApplyServiceResponse> r = manager_.Apply(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(hosting::v1::ApplyServiceResponse());
  }

  // Syncs and expects success; returns whether a requeue was asked for.
  bool SyncOk() {
    absl::StatusOr<std::optional<absl::Duration>> r = reconciler_->Sync("web");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->has_value();
  }

  std::vector<std::string> EventTypes() {
    std::vector<std::string> out;
    std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
    for (const auto& e : events) out.push_back(e.type());
    return out;
  }

  FakeClock clock_;
  docker::FakeDockerClient docker_;
  HostdMetrics metrics_;
  std::unique_ptr<Store> store_;
  EventLog events_;
  std::unique_ptr<Reconciler> reconciler_;
  DesiredState state_;
  ServiceManager manager_;
};

TEST_F(ReconcilerTest, CreatesTheRevisionServiceOnce) {
  Apply(Spec());
  EXPECT_TRUE(SyncOk());  // created: look again to see its tasks
  EXPECT_THAT(docker_.actions(), ElementsAre("create web-r1"));
  auto svc = docker_.InspectService("web-r1");
  ASSERT_TRUE(svc.ok());
  EXPECT_EQ(svc->replicas, 2);
  EXPECT_EQ(svc->labels.at(kLabelService), "web");
  // Level-triggered and idempotent: nothing more to do.
  docker_.ClearActions();
  EXPECT_FALSE(SyncOk());
  EXPECT_THAT(docker_.actions(), IsEmpty());
}

TEST_F(ReconcilerTest, SecretsAreMountedByIdAndAMissingOneIsNamed) {
  hosting::v1::ServiceSpec spec = Spec();
  hosting::v1::SecretMount* db = spec.add_secrets();
  db->set_name("db_password");
  db->set_target("db");
  spec.add_secrets()->set_name("redis_password");
  Apply(spec);
  // Neither secret exists yet: the service cannot be created, and the reason names the first.
  absl::StatusOr<std::optional<absl::Duration>> r = reconciler_->Sync("web");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("secret 'db_password' does not exist"));
  EXPECT_THAT(docker_.actions(), IsEmpty());
  docker_.AddSecret("db_password", "sec1");
  docker_.AddSecret("redis_password", "sec2");
  EXPECT_TRUE(SyncOk());
  auto svc = docker_.InspectService("web-r1");
  ASSERT_TRUE(svc.ok());
  const nlohmann::json& secrets = svc->spec["TaskTemplate"]["ContainerSpec"]["Secrets"];
  ASSERT_EQ(secrets.size(), 2u);
  EXPECT_EQ(secrets[0]["SecretID"], "sec1");
  EXPECT_EQ(secrets[0]["SecretName"], "db_password");
  EXPECT_EQ(secrets[0]["File"]["Name"], "db");
  EXPECT_EQ(secrets[0]["File"]["Mode"], 0444);
  EXPECT_EQ(secrets[1]["File"]["Name"], "redis_password");
  // The names are all the spec holds: nothing of a value reaches the environment.
  EXPECT_FALSE(svc->spec["TaskTemplate"]["ContainerSpec"]["Env"].dump().find("password") !=
               std::string::npos);
}

TEST_F(ReconcilerTest, WaitsForTasksBeforeReportingReady) {
  Apply(Spec());
  ASSERT_TRUE(SyncOk());
  ASSERT_FALSE(SyncOk());
  docker_.SetRunningTasks("web-r1", 1);
  EXPECT_TRUE(SyncOk());  // converging: look again soon
  auto status = reconciler_->Observe(*store_->GetService("web"));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->phase(), hosting::v1::SERVICE_PHASE_PROGRESSING);
  EXPECT_THAT(status->message(), HasSubstr("1/2 tasks running"));
  docker_.SetRunningTasks("web-r1", 2);
  EXPECT_FALSE(SyncOk());
  status = reconciler_->Observe(*store_->GetService("web"));
  EXPECT_EQ(status->phase(), hosting::v1::SERVICE_PHASE_READY);
  EXPECT_EQ(status->running_tasks(), 2);
  ASSERT_EQ(status->revisions_size(), 1);
  EXPECT_TRUE(status->revisions(0).current());
}

TEST_F(ReconcilerTest, ScaleUpdatesReplicasWithoutNewRevision) {
  Apply(Spec());
  SyncOk();
  docker_.ClearActions();
  hosting::v1::ScaleServiceRequest req;
  req.set_name("web");
  req.set_replicas(5);
  ASSERT_TRUE(manager_.Scale(req).ok());
  SyncOk();
  EXPECT_THAT(docker_.actions(), ElementsAre("update web-r1 replicas=5"));
  EXPECT_EQ(store_->GetService("web")->revision, 1);
  EXPECT_THAT(EventTypes(), ::testing::Contains("reconcile.scaled"));
}

TEST_F(ReconcilerTest, ScaleDownIsCompleteOnlyWhenSurplusTasksStopped) {
  Apply(Spec("img:1", 2));
  SyncOk();
  SyncOk();
  hosting::v1::ScaleServiceRequest req;
  req.set_name("web");
  req.set_replicas(1);
  ASSERT_TRUE(manager_.Scale(req).ok());
  docker_.SetRunningTasks("web-r1", 2);  // the surplus task is still stopping
  EXPECT_TRUE(SyncOk());
  EXPECT_EQ(reconciler_->Observe(*store_->GetService("web"))->phase(),
            hosting::v1::SERVICE_PHASE_PROGRESSING);
  docker_.SetRunningTasks("web-r1", 1);
  EXPECT_FALSE(SyncOk());
  EXPECT_EQ(reconciler_->Observe(*store_->GetService("web"))->phase(),
            hosting::v1::SERVICE_PHASE_READY);
}

TEST_F(ReconcilerTest, RepairsOutsideScale) {
  Apply(Spec());
  SyncOk();
  docker_.ClearActions();
  docker_.ScaleOutside("web-r1", 0);
  SyncOk();
  EXPECT_THAT(docker_.actions(), ElementsAre("update web-r1 replicas=2"));
  auto events = *store_->ListEvents(0, 100);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type(), "reconcile.repaired");
  EXPECT_THAT(events.back().message(), HasSubstr("scaled to 0 outside hostd"));
}

TEST_F(ReconcilerTest, RepairsOutsideRemoval) {
  Apply(Spec());
  SyncOk();
  docker_.ClearActions();
  docker_.RemoveOutside("web-r1");
  SyncOk();
  EXPECT_THAT(docker_.actions(), ElementsAre("create web-r1"));
  EXPECT_EQ(store_->ListEvents(0, 100)->back().type(), "reconcile.repaired");
}

TEST_F(ReconcilerTest, RestoresSpecChangedOutside) {
  Apply(Spec());
  SyncOk();
  docker_.ClearActions();
  ASSERT_TRUE(docker::UpdateServiceWithRetry(docker_, "web-r1", [](nlohmann::json& s) {
                s["TaskTemplate"]["ContainerSpec"]["Image"] = "evil:1";
                s["Labels"][kLabelSpecHash] = "0000";
                return absl::OkStatus();
              }).ok());
  docker_.ClearActions();
  SyncOk();
  EXPECT_THAT(docker_.actions(), ElementsAre("update web-r1 replicas=2"));
  EXPECT_EQ(docker_.InspectService("web-r1")->spec["TaskTemplate"]["ContainerSpec"]["Image"],
            "img:1");
}

TEST_F(ReconcilerTest, NewRevisionReplacesOldOnlyOnceComplete) {
  Apply(Spec("img:1"));
  SyncOk();
  docker_.ClearActions();
  hosting::v1::ApplyServiceResponse r = Apply(Spec("img:2"));
  EXPECT_TRUE(r.revision_created());
  EXPECT_EQ(r.service().revision(), 2);
  EXPECT_TRUE(SyncOk());  // the fake reports tasks only after the create: the first pass waits
  // Pretend r2 is not running yet on the next pass: r1 must stay.
  docker_.SetRunningTasks("web-r2", 0);
  EXPECT_TRUE(SyncOk());
  EXPECT_THAT(docker_.actions(), ElementsAre("create web-r2"));
  EXPECT_TRUE(docker_.InspectService("web-r1").ok());
  docker_.SetRunningTasks("web-r2", 2);
  EXPECT_FALSE(SyncOk());
  EXPECT_THAT(docker_.actions(), ElementsAre("create web-r2", "remove web-r1"));
  EXPECT_EQ(docker_.service_count(), 1);
}

TEST_F(ReconcilerTest, ReplicasOnlyChangeIsNotANewRevision) {
  Apply(Spec("img:1", 2));
  hosting::v1::ApplyServiceResponse r = Apply(Spec("img:1", 4));
  EXPECT_TRUE(r.changed());
  EXPECT_FALSE(r.revision_created());
  EXPECT_EQ(r.service().revision(), 1);
  hosting::v1::ApplyServiceResponse same = Apply(Spec("img:1", 4));
  EXPECT_FALSE(same.changed());
  EXPECT_EQ(same.service().generation(), r.service().generation());
}

TEST_F(ReconcilerTest, DeleteRemovesEverySwarmService) {
  Apply(Spec());
  SyncOk();
  ASSERT_TRUE(manager_.Delete("web").ok());
  docker_.ClearActions();
  EXPECT_FALSE(SyncOk());
  EXPECT_THAT(docker_.actions(), ElementsAre("remove web-r1"));
  EXPECT_EQ(docker_.service_count(), 0);
  EXPECT_TRUE(absl::IsNotFound(manager_.Get("web").status()));
}

TEST_F(ReconcilerTest, RecreatedServiceContinuesRevisionNumbers) {
  Apply(Spec());
  SyncOk();
  ASSERT_TRUE(manager_.Delete("web").ok());
  SyncOk();
  hosting::v1::ApplyServiceResponse r = Apply(Spec());
  EXPECT_TRUE(r.created());
  EXPECT_EQ(r.service().revision(), 2);
}

TEST_F(ReconcilerTest, RestartedReconcilerCreatesNoDuplicates) {
  Apply(Spec());
  SyncOk();
  docker_.ClearActions();
  // A new reconciler (hostd restarted) knows nothing in memory; Docker's lists are the truth.
  Reconciler fresh(*store_, docker_, events_, metrics_, clock_, ReconcilerOptions{});
  auto r = fresh.Sync("web");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(docker_.actions(), IsEmpty());
  EXPECT_EQ(docker_.service_count(), 1);
}

TEST_F(ReconcilerTest, DockerUnavailableIsAnErrorAndRecovers) {
  Apply(Spec());
  docker_.SetUnavailable(true);
  auto r = reconciler_->Sync("web");
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_TRUE(absl::IsUnavailable(manager_.Get("web").status()));
  EXPECT_THAT(std::string(manager_.Get("web").status().message()),
              HasSubstr("desired: revision 1, img:1 x2"));
  // Desired state is still accepted while Docker is down.
  hosting::v1::ApplyServiceResponse applied = Apply(Spec("img:1", 3));
  EXPECT_TRUE(applied.changed());
  docker_.SetUnavailable(false);
  EXPECT_TRUE(SyncOk());
  EXPECT_FALSE(SyncOk());
  EXPECT_EQ(docker_.InspectService("web-r1")->replicas, 3);
}

TEST_F(ReconcilerTest, RetriesOutOfSequenceUpdates) {
  Apply(Spec());
  SyncOk();
  docker_.FailNextUpdates(2);
  hosting::v1::ScaleServiceRequest req;
  req.set_name("web");
  req.set_replicas(3);
  ASSERT_TRUE(manager_.Scale(req).ok());
  SyncOk();
  EXPECT_EQ(docker_.InspectService("web-r1")->replicas, 3);
}

TEST_F(ReconcilerTest, RemovesOrphansWithoutDesiredState) {
  // A Swarm service labelled for a service hostd has no record of (deleted while hostd was down).
  nlohmann::json orphan = BuildSwarmSpec(Spec(), 7, 1, "hosting", "test");
  ASSERT_TRUE(docker_.CreateService(orphan).ok());
  docker_.ClearActions();
  EXPECT_FALSE(SyncOk());
  EXPECT_THAT(docker_.actions(), ElementsAre("remove web-r7"));
}

TEST_F(ReconcilerTest, NeverTouchesAnotherControllersServices) {
  // Another hostd (another store) runs "web" on the same Swarm.
  ASSERT_TRUE(docker_.CreateService(BuildSwarmSpec(Spec(), 1, 1, "hosting", "other")).ok());
  docker_.ClearActions();
  // With no desired state here, it is not an orphan of ours.
  EXPECT_FALSE(SyncOk());
  EXPECT_THAT(docker_.actions(), IsEmpty());
  // Our own "web" collides on the Swarm name: a clear error, and their service is untouched.
  Apply(Spec());
  auto r = reconciler_->Sync("web");
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("hosting.controller=other"));
  EXPECT_THAT(docker_.actions(), IsEmpty());
  EXPECT_EQ(docker_.InspectService("web-r1")->replicas, 1);
}

TEST_F(ReconcilerTest, ApplyRejectsInvalidSpecWithFieldNames) {
  hosting::v1::ApplyServiceRequest req;
  req.mutable_spec()->set_name("Bad Name");
  absl::StatusOr<hosting::v1::ApplyServiceResponse> r = manager_.Apply(req);
  ASSERT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("spec.name"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("spec.image: required"));
  EXPECT_TRUE(absl::IsNotFound(store_->GetService("Bad Name").status()));
}

TEST_F(ReconcilerTest, ExpectedGenerationGuardsApply) {
  hosting::v1::ApplyServiceResponse first = Apply(Spec());
  hosting::v1::ApplyServiceRequest req;
  *req.mutable_spec() = Spec("img:9");
  req.set_expected_generation(first.service().generation() + 1);
  EXPECT_TRUE(absl::IsAborted(manager_.Apply(req).status()));
  req.set_expected_generation(first.service().generation());
  EXPECT_TRUE(manager_.Apply(req).ok());
}

TEST_F(ReconcilerTest, DryRunStoresNothing) {
  hosting::v1::ApplyServiceRequest req;
  *req.mutable_spec() = Spec();
  req.set_dry_run(true);
  auto r = manager_.Apply(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->created());
  EXPECT_TRUE(absl::IsNotFound(store_->GetService("web").status()));
}

TEST_F(ReconcilerTest, AnAutoscaledServiceKeepsTheAutoscalersCount) {
  hosting::v1::ServiceSpec spec = Spec("img:1", 1);
  auto* policy = spec.mutable_autoscaling();
  policy->set_min_replicas(2);
  policy->set_max_replicas(6);
  auto* m = policy->add_metrics();
  m->set_kind(hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND);
  m->set_target(50);
  hosting::v1::ApplyServiceResponse created = Apply(spec);
  // The policy is stored beside the spec, defaults filled in; replicas start within its bounds.
  ServiceRecord record = *store_->GetService("web");
  ASSERT_TRUE(record.autoscaling.has_value());
  EXPECT_EQ(record.autoscaling->service(), "web");
  EXPECT_DOUBLE_EQ(record.autoscaling->tolerance(), 0.1);
  EXPECT_FALSE(record.spec.has_autoscaling());
  EXPECT_EQ(record.spec.replicas(), 2);
  EXPECT_TRUE(created.service().spec().has_autoscaling());  // shown with the spec

  // The autoscaler resizes; the same spec applied again changes nothing.
  ASSERT_TRUE(manager_.Resize("web", 2, 5, "autoscale.scaled", "test", {}).ok());
  hosting::v1::ApplyServiceResponse again = Apply(spec);
  EXPECT_FALSE(again.changed());
  EXPECT_EQ(store_->GetService("web")->spec.replicas(), 5);
  // A new image is a new revision at the autoscaler's size.
  hosting::v1::ApplyServiceResponse next = Apply(
      [&] { auto s2 = spec; s2.set_image("img:2"); return s2; }());
  EXPECT_TRUE(next.revision_created());
  EXPECT_EQ(store_->GetService("web")->spec.replicas(), 5);
  // A stale expectation loses.
  EXPECT_TRUE(absl::IsAborted(manager_.Resize("web", 2, 3, "autoscale.scaled", "test", {}).status()));

  // Manual scaling is refused unless forced.
  hosting::v1::ScaleServiceRequest req;
  req.set_name("web");
  req.set_replicas(3);
  absl::StatusOr<hosting::v1::Service> refused = manager_.Scale(req);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("is autoscaled (2..6"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--force"));
  req.set_force(true);
  ASSERT_TRUE(manager_.Scale(req).ok());
  EXPECT_EQ(store_->GetService("web")->spec.replicas(), 3);
  std::vector<hosting::v1::Event> events = store_->ListEvents(0, 1000).value();
  EXPECT_EQ(events.back().type(), "service.scaled");
  EXPECT_EQ(events.back().attributes().at("forced"), "true");
}

TEST_F(ReconcilerTest, UnknownServiceErrorsNameIt) {
  auto g = manager_.Get("ghost");
  EXPECT_TRUE(absl::IsNotFound(g.status()));
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("'ghost'"));
  hosting::v1::ScaleServiceRequest req;
  req.set_name("ghost");
  req.set_replicas(1);
  EXPECT_TRUE(absl::IsNotFound(manager_.Scale(req).status()));
  EXPECT_TRUE(absl::IsNotFound(manager_.Delete("ghost").status()));
  req.set_replicas(-3);
  EXPECT_TRUE(absl::IsInvalidArgument(manager_.Scale(req).status()));
}

TEST(EventLogTest, MatchesServiceAndTypePrefixes) {
  hosting::v1::Event e;
  e.set_type("reconcile.created");
  e.set_service("web");
  EXPECT_TRUE(EventLog::Matches(e, "", {}));
  EXPECT_TRUE(EventLog::Matches(e, "web", {}));
  EXPECT_FALSE(EventLog::Matches(e, "api", {}));
  EXPECT_TRUE(EventLog::Matches(e, "", {"reconcile."}));
  EXPECT_TRUE(EventLog::Matches(e, "", {"reconcile.created"}));
  EXPECT_FALSE(EventLog::Matches(e, "", {"reconcile"}));
  EXPECT_FALSE(EventLog::Matches(e, "", {"service."}));
}

TEST(EventLogTest, SubscribersSeeStoredSequence) {
  FakeClock clock;
  auto store = SqliteStore::Open(":memory:").value();
  EventLog log(*store, clock);
  std::vector<int64_t> seen;
  int64_t id = log.Subscribe([&](const hosting::v1::Event& e) { seen.push_back(e.sequence()); });
  log.Publish("a", "web", 1, "one");
  log.Publish("b", "web", 1, "two");
  log.Unsubscribe(id);
  log.Publish("c", "web", 1, "three");
  EXPECT_THAT(seen, ElementsAre(1, 2));
  auto stored = store->ListEvents(0, 10);
  ASSERT_EQ(stored->size(), 3u);
  EXPECT_EQ((*stored)[0].source(), "hostd");
  EXPECT_EQ((*stored)[0].time().seconds(), absl::ToUnixSeconds(clock.Now()));
}

TEST_F(ReconcilerTest, RolloutKeepsEveryListedRevisionAtItsCountAndRemovesTheRest) {
  Apply(Spec("img:1", 3));
  SyncOk();
  docker_.SetRunningTasks("web-r1", 3);
  Apply(Spec("img:2", 3));  // revision 2
  Apply(Spec("img:3", 3));  // revision 3
  SyncOk();                 // creates r3 while r1 still runs
  // A release now shares the service between r1 (2 tasks) and r2 (1 task): r3 goes.
  ServiceRecord record = store_->GetService("web").value();
  record.revision = 2;
  record.spec = Spec("img:2", 3);
  (*record.rollout.mutable_replicas())[1] = 2;
  (*record.rollout.mutable_replicas())[2] = 1;
  record.rollout.set_release_id("web-1");
  ASSERT_TRUE(store_->PutService(record, record.generation, nullptr).ok());
  docker_.ClearActions();
  EXPECT_TRUE(SyncOk());
  EXPECT_THAT(docker_.actions(), ElementsAre("update web-r1 replicas=2", "create web-r2", "remove web-r3"));
  EXPECT_EQ(docker_.InspectService("web-r1")->replicas, 2);
  EXPECT_EQ(docker_.InspectService("web-r2")->replicas, 1);
  docker_.SetRunningTasks("web-r1", 2);
  docker_.SetRunningTasks("web-r2", 1);
  docker_.ClearActions();
  EXPECT_FALSE(SyncOk());  // converged
  EXPECT_THAT(docker_.actions(), IsEmpty());
  auto status = reconciler_->Observe(store_->GetService("web").value());
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->phase(), hosting::v1::SERVICE_PHASE_READY);
  EXPECT_THAT(status->message(), HasSubstr("release web-1"));
}

TEST_F(ReconcilerTest, ACanarysBaselineRunsTheStableSpecUnderItsOwnRevision) {
  Apply(Spec("img:1", 3));
  SyncOk();
  docker_.SetRunningTasks("web-r1", 3);
  Apply(Spec("img:2", 3));  // revision 2, the canary
  ServiceRecord record = store_->GetService("web").value();
  (*record.rollout.mutable_replicas())[1] = 3;
  (*record.rollout.mutable_replicas())[2] = 1;
  (*record.rollout.mutable_replicas())[3] = 1;  // the baseline: no stored revision 3
  (*record.rollout.mutable_baseline_of())[3] = 1;
  record.rollout.set_release_id("web-1");
  ASSERT_TRUE(store_->PutService(record, record.generation, nullptr).ok());
  docker_.ClearActions();
  SyncOk();
  EXPECT_THAT(docker_.actions(), Contains("create web-r3"));
  absl::StatusOr<docker::ServiceInfo> baseline = docker_.InspectService("web-r3");
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  EXPECT_EQ(baseline->labels.at(kLabelRevision), "3");
  EXPECT_EQ(baseline->labels.at(kLabelBaselineOf), "1");
  EXPECT_THAT(baseline->spec.dump(), HasSubstr("img:1"));
  EXPECT_THAT(docker_.InspectService("web-r2")->spec.dump(), HasSubstr("img:2"));
  // Revision 3 is taken for good: the next revision is 4.
  EXPECT_EQ(store_->LastRevision("web").value(), 3);
}

TEST_F(ReconcilerTest, RolloutNamingAPrunedRevisionIsAnError) {
  Apply(Spec("img:1", 1));
  ServiceRecord record = store_->GetService("web").value();
  (*record.rollout.mutable_replicas())[7] = 1;
  record.rollout.set_release_id("web-3");
  ASSERT_TRUE(store_->PutService(record, record.generation, nullptr).ok());
  auto r = reconciler_->Sync("web");
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("revision 7"));
}

}  // namespace
}  // namespace hosting::controlplane
