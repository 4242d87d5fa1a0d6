#include "controlplane/store/store_conformance.h"

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"

namespace hosting::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

ServiceRecord Record(const std::string& name, int64_t revision, const std::string& image) {
  ServiceRecord r;
  r.spec.set_name(name);
  r.spec.set_image(image);
  r.spec.set_replicas(2);
  (*r.spec.mutable_env())["K"] = "V";
  r.revision = revision;
  return r;
}

RevisionRecord Revision(const std::string& name, int64_t revision, const std::string& image) {
  RevisionRecord r;
  r.service = name;
  r.revision = revision;
  r.spec = Record(name, revision, image).spec;
  return r;
}

TEST_P(StoreConformanceTest, GetUnknownIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetService("nope").status()));
}

TEST_P(StoreConformanceTest, CreateThenGetRoundTripsTheSpec) {
  ServiceRecord r = Record("web", 1, "img:1");
  RevisionRecord rev = Revision("web", 1, "img:1");
  absl::StatusOr<int64_t> gen = store_->PutService(r, 0, &rev);
  ASSERT_TRUE(gen.ok()) << gen.status();
  EXPECT_EQ(*gen, 1);
  absl::StatusOr<ServiceRecord> got = store_->GetService("web");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->spec.SerializeAsString(), r.spec.SerializeAsString());
  EXPECT_EQ(got->revision, 1);
  EXPECT_EQ(got->generation, 1);
  EXPECT_GT(got->created_at, absl::UnixEpoch());
  EXPECT_EQ(got->created_at, got->updated_at);
}

TEST_P(StoreConformanceTest, AutoscalingPolicyRoundTripsAndClears) {
  ServiceRecord r = Record("web", 1, "img:1");
  hosting::v1::AutoscalingPolicy p;
  p.set_service("web");
  p.set_min_replicas(2);
  p.set_max_replicas(9);
  p.add_metrics()->set_target(50);
  r.autoscaling = p;
  ASSERT_TRUE(store_->PutService(r, 0, nullptr).ok());
  absl::StatusOr<ServiceRecord> got = store_->GetService("web");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->autoscaling.has_value());
  EXPECT_EQ(got->autoscaling->SerializeAsString(), p.SerializeAsString());
  EXPECT_TRUE(store_->ListServices()->front().autoscaling.has_value());

  ServiceRecord cleared = *got;
  cleared.autoscaling.reset();
  ASSERT_TRUE(store_->PutService(cleared, got->generation, nullptr).ok());
  EXPECT_FALSE(store_->GetService("web")->autoscaling.has_value());
}

TEST_P(StoreConformanceTest, CompareAndSwapOnGeneration) {
  ASSERT_TRUE(store_->PutService(Record("web", 1, "a"), 0, nullptr).ok());
  // Creating again with expectation 0 fails: it exists.
  EXPECT_TRUE(absl::IsAborted(store_->PutService(Record("web", 1, "b"), 0, nullptr).status()));
  // A stale generation fails and changes nothing.
  EXPECT_TRUE(absl::IsAborted(store_->PutService(Record("web", 1, "b"), 5, nullptr).status()));
  EXPECT_EQ(store_->GetService("web")->spec.image(), "a");
  // The right generation wins and bumps it.
  absl::StatusOr<int64_t> gen = store_->PutService(Record("web", 1, "b"), 1, nullptr);
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(*gen, 2);
  EXPECT_EQ(store_->GetService("web")->spec.image(), "b");
  EXPECT_EQ(store_->GetService("web")->generation, 2);
}

TEST_P(StoreConformanceTest, ConcurrentWritersExactlyOneWinsPerGeneration) {
  ASSERT_TRUE(store_->PutService(Record("web", 1, "a"), 0, nullptr).ok());
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (store_->PutService(Record("web", 1, "w" + std::to_string(i)), 1, nullptr).ok()) ++wins;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(store_->GetService("web")->generation, 2);
}

TEST_P(StoreConformanceTest, ListIsSortedByName) {
  for (const char* n : {"zeta", "alpha", "mid"}) {
    ASSERT_TRUE(store_->PutService(Record(n, 1, "x"), 0, nullptr).ok());
  }
  absl::StatusOr<std::vector<ServiceRecord>> all = store_->ListServices();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> names;
  for (const auto& r : *all) names.push_back(r.spec.name());
  EXPECT_THAT(names, ElementsAre("alpha", "mid", "zeta"));
}

TEST_P(StoreConformanceTest, RevisionsNewestFirstAndDuplicateRefused) {
  RevisionRecord r1 = Revision("web", 1, "a");
  ASSERT_TRUE(store_->PutService(Record("web", 1, "a"), 0, &r1).ok());
  RevisionRecord r2 = Revision("web", 2, "b");
  ASSERT_TRUE(store_->PutService(Record("web", 2, "b"), 1, &r2).ok());
  absl::StatusOr<std::vector<RevisionRecord>> revs = store_->ListRevisions("web");
  ASSERT_TRUE(revs.ok());
  ASSERT_EQ(revs->size(), 2u);
  EXPECT_EQ((*revs)[0].revision, 2);
  EXPECT_EQ((*revs)[0].spec.image(), "b");
  EXPECT_EQ((*revs)[1].revision, 1);
  // Same revision number again: refused, and the service write in that transaction too.
  absl::Status dup = store_->PutService(Record("web", 2, "c"), 2, &r2).status();
  EXPECT_TRUE(absl::IsAlreadyExists(dup)) << dup;
  EXPECT_EQ(store_->GetService("web")->spec.image(), "b");
  EXPECT_EQ(store_->GetService("web")->generation, 2);
}

TEST_P(StoreConformanceTest, PruneKeepsNewest) {
  int64_t gen = 0;
  for (int i = 1; i <= 5; ++i) {
    RevisionRecord r = Revision("web", i, "v" + std::to_string(i));
    absl::StatusOr<int64_t> g = store_->PutService(Record("web", i, r.spec.image()), gen, &r);
    ASSERT_TRUE(g.ok()) << g.status();
    gen = *g;
  }
  absl::StatusOr<int> pruned = store_->PruneRevisions("web", 2);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 3);
  absl::StatusOr<std::vector<RevisionRecord>> revs = store_->ListRevisions("web");
  ASSERT_EQ(revs->size(), 2u);
  EXPECT_EQ((*revs)[0].revision, 5);
  EXPECT_EQ((*revs)[1].revision, 4);
}

TEST_P(StoreConformanceTest, DeleteNeedsGenerationAndKeepsRevisionCounter) {
  RevisionRecord r3 = Revision("web", 3, "a");
  ASSERT_TRUE(store_->PutService(Record("web", 3, "a"), 0, &r3).ok());
  EXPECT_TRUE(absl::IsAborted(store_->DeleteService("web", 7)));
  EXPECT_TRUE(store_->GetService("web").ok());
  ASSERT_TRUE(store_->DeleteService("web", 1).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->GetService("web").status()));
  EXPECT_THAT(*store_->ListRevisions("web"), IsEmpty());
  EXPECT_TRUE(absl::IsNotFound(store_->DeleteService("web", 1)));
  // A re-created service continues the numbering.
  EXPECT_EQ(*store_->LastRevision("web"), 3);
  EXPECT_EQ(*store_->LastRevision("other"), 0);
}

TEST_P(StoreConformanceTest, ARevisionARolloutRunsBeyondTheRecordsIsNeverGivenOutAgain) {
  RevisionRecord r3 = Revision("web", 3, "a");
  ASSERT_TRUE(store_->PutService(Record("web", 3, "a"), 0, &r3).ok());
  // A canary's baseline: revision 4 runs the stable spec and has no stored revision.
  ServiceRecord with_baseline = Record("web", 3, "a");
  (*with_baseline.rollout.mutable_replicas())[2] = 2;
  (*with_baseline.rollout.mutable_replicas())[3] = 1;
  (*with_baseline.rollout.mutable_replicas())[4] = 1;
  ASSERT_TRUE(store_->PutService(with_baseline, 1, nullptr).ok());
  EXPECT_EQ(*store_->LastRevision("web"), 4);
  EXPECT_EQ(store_->ListRevisions("web")->size(), 1u);
  // Once the rollout ends, the number stays used.
  ASSERT_TRUE(store_->PutService(Record("web", 3, "a"), 2, nullptr).ok());
  EXPECT_EQ(*store_->LastRevision("web"), 4);
}

TEST_P(StoreConformanceTest, InstanceIdIsStableAndNonEmpty) {
  absl::StatusOr<std::string> a = store_->InstanceId();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_GE(a->size(), 8u);
  EXPECT_EQ(*store_->InstanceId(), *a);
  std::unique_ptr<Store> other = GetParam().make();
  EXPECT_NE(*other->InstanceId(), *a) << "two stores must not share an identity";
}

TEST_P(StoreConformanceTest, EventsGetIncreasingSequences) {
  for (int i = 0; i < 5; ++i) {
    hosting::v1::Event e;
    e.set_type("t" + std::to_string(i));
    e.set_service(i % 2 ? "a" : "b");
    e.mutable_time()->set_seconds(1000 + i);
    absl::StatusOr<int64_t> seq = store_->AppendEvent(e);
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, i + 1);
  }
  absl::StatusOr<std::vector<hosting::v1::Event>> after2 = store_->ListEvents(2, 100);
  ASSERT_TRUE(after2.ok());
  ASSERT_EQ(after2->size(), 3u);
  EXPECT_EQ((*after2)[0].sequence(), 3);
  EXPECT_EQ((*after2)[0].type(), "t2");
  EXPECT_EQ((*after2)[2].sequence(), 5);
  EXPECT_EQ(store_->ListEvents(0, 2)->size(), 2u);
  EXPECT_THAT(*store_->ListEvents(5, 10), IsEmpty());
}

hosting::internal::ReleaseRecord NewRelease(int64_t from, int64_t to) {
  hosting::internal::ReleaseRecord r;
  r.mutable_release()->set_from_revision(from);
  r.mutable_release()->set_to_revision(to);
  r.mutable_release()->set_state(hosting::v1::RELEASE_STATE_PROGRESSING);
  return r;
}

TEST_P(StoreConformanceTest, ReleasesGetIdsAndOnlyOneRunsPerService) {
  ServiceRecord web = Record("web", 1, "a");
  ASSERT_TRUE(store_->PutService(web, 0, nullptr).ok());
  web = Record("web", 2, "b");
  (*web.rollout.mutable_replicas())[1] = 2;
  (*web.rollout.mutable_replicas())[2] = 1;
  RevisionRecord rev = Revision("web", 2, "b");
  auto created = store_->CreateRelease(web, 1, &rev, NewRelease(1, 2));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->release().id(), "web-1");
  EXPECT_EQ(created->version(), 1);
  // The service, its rollout and the revision were written with it.
  auto got = store_->GetService("web");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->revision, 2);
  EXPECT_EQ(got->generation, 2);
  EXPECT_EQ(got->rollout.replicas().at(2), 1);
  EXPECT_EQ(store_->ListRevisions("web")->size(), 1u);

  // A second release of the same service is refused and names the running one.
  absl::StatusOr<hosting::internal::ReleaseRecord> second =
      store_->CreateRelease(*got, 2, nullptr, NewRelease(2, 3));
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status()));
  EXPECT_THAT(second.status().message(), ::testing::HasSubstr("web-1"));
  EXPECT_EQ(store_->GetService("web")->generation, 2);  // nothing written

  // Updates are compare-and-swap on the version, and may carry the service.
  hosting::internal::ReleaseRecord r = *created;
  r.mutable_release()->set_state(hosting::v1::RELEASE_STATE_SUCCEEDED);
  ServiceRecord done = *got;
  done.rollout.Clear();
  auto w = store_->UpdateRelease(r, &done, 2);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->release_version, 2);
  EXPECT_EQ(w->service_generation, 3);
  EXPECT_TRUE(absl::IsAborted(store_->UpdateRelease(r, nullptr, 0).status()));  // stale
  EXPECT_TRUE(store_->GetService("web")->rollout.replicas().empty());
  EXPECT_TRUE(store_->ListActiveReleases()->empty());

  // Finished: the next one may start, with the next sequence.
  auto next = store_->CreateRelease(*store_->GetService("web"), 3, nullptr, NewRelease(2, 1));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->release().id(), "web-2");
  auto list = store_->ListReleases("web", 10);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].release().id(), "web-2");
  EXPECT_EQ(store_->ListActiveReleases()->size(), 1u);
  EXPECT_EQ(store_->GetRelease("web-1")->release().state(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  EXPECT_TRUE(absl::IsNotFound(store_->GetRelease("web-9").status()));
}

hosting::v1::RunbookRun NewRun(const std::string& runbook, const std::string& target) {
  hosting::v1::RunbookRun run;
  run.set_runbook(runbook);
  run.set_target(target);
  run.set_state(hosting::v1::RUN_STATE_RUNNING);
  run.add_steps()->set_name("first");
  return run;
}

TEST_P(StoreConformanceTest, RunsGetIdsAndOnlyOnePerRunbookAndTarget) {
  absl::StatusOr<RunRecord> a = store_->CreateRun(NewRun("node-maintenance", "node-1"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->version, 1);
  EXPECT_TRUE(absl::StartsWith(a->run.id(), "node-maintenance-")) << a->run.id();
  // Another target runs beside it; the same one is refused, naming the run in progress.
  absl::StatusOr<RunRecord> b = store_->CreateRun(NewRun("node-maintenance", "node-2"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->run.id(), b->run.id());
  absl::Status clash = store_->CreateRun(NewRun("node-maintenance", "node-1")).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(clash)) << clash;
  EXPECT_THAT(std::string(clash.message()), ::testing::HasSubstr(a->run.id()));
  // Compare-and-swap on the version.
  RunRecord done = *a;
  done.run.set_state(hosting::v1::RUN_STATE_SUCCEEDED);
  done.run.mutable_steps(0)->set_output("ok");
  absl::StatusOr<int64_t> v = store_->UpdateRun(done);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 2);
  EXPECT_TRUE(absl::IsAborted(store_->UpdateRun(done).status())) << "stale version";
  RunRecord ghost = done;
  ghost.run.set_id("nope-1");
  EXPECT_TRUE(absl::IsNotFound(store_->UpdateRun(ghost).status()));
  absl::StatusOr<RunRecord> got = store_->GetRun(a->run.id());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->run.steps(0).output(), "ok");
  EXPECT_TRUE(absl::IsNotFound(store_->GetRun("nope-1").status()));
  // Ended: the target is free again; IDs are never reused.
  absl::StatusOr<RunRecord> c = store_->CreateRun(NewRun("node-maintenance", "node-1"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(c->run.id(), a->run.id());
  ASSERT_TRUE(store_->CreateRun(NewRun("backup", "")).ok());
  // Lists: newest first, by runbook, active only.
  auto all = store_->ListRuns("", false, 10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].run.runbook(), "backup");
  EXPECT_EQ((*all)[3].run.id(), a->run.id());
  auto maintenance = store_->ListRuns("node-maintenance", false, 2);
  ASSERT_TRUE(maintenance.ok());
  EXPECT_EQ(maintenance->size(), 2u);
  auto active = store_->ListRuns("node-maintenance", true, 10);
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->size(), 2u);
  for (const RunRecord& r : *active) EXPECT_NE(r.run.id(), a->run.id());
}

TEST_P(StoreConformanceTest, ReleaseUpdateWithStaleServiceChangesNothing) {
  ASSERT_TRUE(store_->PutService(Record("web", 1, "a"), 0, nullptr).ok());
  auto created = store_->CreateRelease(*store_->GetService("web"), 1, nullptr, NewRelease(1, 1));
  ASSERT_TRUE(created.ok());
  hosting::internal::ReleaseRecord r = *created;
  r.mutable_release()->set_weight(50);
  ServiceRecord svc = *store_->GetService("web");
  EXPECT_TRUE(absl::IsAborted(store_->UpdateRelease(r, &svc, 1).status()));
  EXPECT_EQ(store_->GetRelease(r.release().id())->version(), 1);
  EXPECT_EQ(store_->GetRelease(r.release().id())->release().weight(), 0);
}

TEST_P(StoreConformanceTest, LeaseIsHeldByOneRenewedInPlaceAndTakenOverOnlyOnceLapsed) {
  absl::StatusOr<Store::Lease> a = store_->AcquireLease("a", absl::Seconds(30));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->holder, "a");
  EXPECT_EQ(a->epoch, 1);
  EXPECT_GT(a->expires_at, a->now);
  // A renewal keeps the epoch and moves the expiry.
  absl::StatusOr<Store::Lease> renewed = store_->AcquireLease("a", absl::Seconds(60));
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->epoch, 1);
  EXPECT_GT(renewed->expires_at, a->expires_at);
  // Another candidate sees the holder and does not take it.
  absl::StatusOr<Store::Lease> b = store_->AcquireLease("b", absl::Seconds(30));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->holder, "a");
  EXPECT_EQ(b->epoch, 1);
  // A clean step-down frees it at once; the next holder gets a new epoch.
  ASSERT_TRUE(store_->ReleaseLease("a", 1).ok());
  b = store_->AcquireLease("b", absl::Milliseconds(300));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->holder, "b");
  EXPECT_EQ(b->epoch, 2);
  // A lapsed lease is taken over (this waits out the 300 ms lease above).
  absl::SleepFor(absl::Milliseconds(400));
  a = store_->AcquireLease("a", absl::Seconds(30));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->holder, "a");
  EXPECT_EQ(a->epoch, 3);
  // A stale step-down (an old epoch) changes nothing.
  ASSERT_TRUE(store_->ReleaseLease("b", 2).ok());
  EXPECT_EQ(store_->AcquireLease("b", absl::Seconds(30))->holder, "a");
}

TEST_P(StoreConformanceTest, FencedWritesCommitOnlyUnderTheirOwnLease) {
  ASSERT_TRUE(store_->PutService(Record("web", 1, "a"), 0, nullptr).ok());
  ASSERT_EQ(store_->AcquireLease("a", absl::Milliseconds(300))->epoch, 1);
  store_->SetFence("a", 1);
  ASSERT_EQ(*store_->PutService(Record("web", 1, "b"), 1, nullptr), 2);
  auto created = store_->CreateRelease(*store_->GetService("web"), 2, nullptr, NewRelease(1, 1));
  ASSERT_TRUE(created.ok()) << created.status();
  // "a" pauses past its lease; "b" takes over. Every kind of desired-state write by "a" fails,
  // names the new holder, and changes nothing.
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_EQ(store_->AcquireLease("b", absl::Seconds(30))->epoch, 2);
  absl::StatusOr<int64_t> put = store_->PutService(Record("web", 1, "c"), 3, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(put.status())) << put.status();
  EXPECT_THAT(std::string(put.status().message()), ::testing::HasSubstr("held by b"));
  EXPECT_TRUE(absl::IsUnavailable(store_->DeleteService("web", 3)));
  hosting::internal::ReleaseRecord r = *created;
  r.mutable_release()->set_weight(50);
  EXPECT_TRUE(absl::IsUnavailable(store_->UpdateRelease(r, nullptr, 0).status()));
  EXPECT_TRUE(absl::IsUnavailable(store_->PruneRevisions("web", 0).status()));
  EXPECT_EQ(store_->GetService("web")->spec.image(), "b");
  EXPECT_EQ(store_->GetService("web")->generation, 3);
  EXPECT_EQ(store_->GetRelease(r.release().id())->release().weight(), 0);
  // Events are facts any hostd may report: not fenced.
  EXPECT_TRUE(store_->AppendEvent(hosting::v1::Event()).ok());
  // Under the new lease the same writes go through.
  store_->SetFence("b", 2);
  EXPECT_TRUE(store_->UpdateRelease(r, nullptr, 0).ok());
  EXPECT_EQ(*store_->PutService(Record("web", 1, "c"), 3, nullptr), 4);
  store_->SetFence("", 0);
}

hosting::internal::TokenRecord TokenNamed(const std::string& accessor, const std::string& hash) {
  hosting::internal::TokenRecord t;
  t.mutable_token()->set_accessor(accessor);
  t.mutable_token()->set_role(hosting::v1::ROLE_DEPLOYER);
  t.mutable_token()->add_services("web");
  t.set_secret_sha256(hash);
  return t;
}

TEST_P(StoreConformanceTest, TokensAreFoundByHashListedInOrderAndRevokedOnce) {
  // Unique per run: a PostgreSQL store under test may hold earlier runs' tokens.
  const std::string run = std::to_string(absl::ToUnixNanos(absl::Now()));
  ASSERT_TRUE(store_->CreateToken(TokenNamed("a" + run, "ha" + run)).ok());
  ASSERT_TRUE(store_->CreateToken(TokenNamed("b" + run, "hb" + run)).ok());
  // Neither the accessor nor the hash may be taken twice.
  EXPECT_TRUE(absl::IsAlreadyExists(store_->CreateToken(TokenNamed("a" + run, "hc" + run))));
  EXPECT_TRUE(absl::IsAlreadyExists(store_->CreateToken(TokenNamed("c" + run, "hb" + run))));

  absl::StatusOr<hosting::internal::TokenRecord> found = store_->FindToken("hb" + run);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->token().accessor(), "b" + run);
  EXPECT_EQ(found->token().role(), hosting::v1::ROLE_DEPLOYER);
  EXPECT_THAT(found->token().services(), ElementsAre("web"));
  EXPECT_TRUE(absl::IsNotFound(store_->FindToken("nope" + run).status()));

  absl::StatusOr<std::vector<hosting::internal::TokenRecord>> all = store_->ListTokens();
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> mine;
  for (const auto& t : *all) {
    if (absl::EndsWith(t.token().accessor(), run)) mine.push_back(t.token().accessor());
  }
  EXPECT_THAT(mine, ElementsAre("a" + run, "b" + run));

  const absl::Time first = absl::FromUnixSeconds(1'800'000'000);
  absl::StatusOr<hosting::internal::TokenRecord> revoked = store_->RevokeToken("a" + run, first);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->token().revoked_at().seconds(), 1'800'000'000);
  // A second revocation keeps the first time; the revocation is what FindToken reads.
  revoked = store_->RevokeToken("a" + run, first + absl::Hours(1));
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->token().revoked_at().seconds(), 1'800'000'000);
  found = store_->FindToken("ha" + run);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->token().has_revoked_at());
  EXPECT_TRUE(absl::IsNotFound(store_->RevokeToken("nope" + run, first).status()));
}

TEST_P(StoreConformanceTest, AuditEntriesAreListedNewestFirstBySinceAndService) {
  // Unique per run: a PostgreSQL store under test may hold earlier runs' entries.
  const std::string run = std::to_string(absl::ToUnixNanos(absl::Now()));
  const absl::Time t0 = absl::Now() + absl::Hours(24 * 365);  // after anything stored before
  for (int i = 0; i < 4; ++i) {
    hosting::v1::AuditEntry e;
    *e.mutable_time() = ToTimestamp(t0 + absl::Seconds(i));
    e.set_method("/hosting.v1.ServiceManager/ScaleService");
    e.set_service(i % 2 == 0 ? "web" + run : "api" + run);
    e.set_principal(absl::StrCat("token:", i));
    absl::StatusOr<int64_t> seq = store_->AppendAudit(e);
    ASSERT_TRUE(seq.ok()) << seq.status();
  }
  absl::StatusOr<std::vector<hosting::v1::AuditEntry>> all =
      store_->ListAudit(t0, "", 10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].principal(), "token:3");
  EXPECT_GT((*all)[0].sequence(), (*all)[1].sequence());
  absl::StatusOr<std::vector<hosting::v1::AuditEntry>> web =
      store_->ListAudit(t0 + absl::Seconds(1), "web" + run, 10);
  ASSERT_TRUE(web.ok()) << web.status();
  ASSERT_EQ(web->size(), 1u);
  EXPECT_EQ((*web)[0].principal(), "token:2");
  EXPECT_EQ(store_->ListAudit(t0, "", 2)->size(), 2u);
}

}  // namespace
}  // namespace hosting::controlplane
