#include "controlplane/service/service_manager.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

#include "common/clock.h"
#include "controlplane/testing/fake_control_plane.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Op = FaultStore::Op;

// The service layer over a store that fails and races on command; the reconciler (never
// started) shows in its status whether it was told of a change.
class ServiceManagerTest : public ::testing::Test {
 protected:
  static hosting::v1::ApplyServiceRequest Apply(const std::string& image, int replicas = 2) {
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name("web");
    req.mutable_spec()->set_image(image);
    req.mutable_spec()->set_replicas(replicas);
    return req;
  }

  std::vector<std::string> EventTypes() { return cp_.EventTypes(); }

  // What the reconciler says of the service (its message names an accepted change).
  std::string ReconcilerMessage() {
    ServiceRecord record = store_.base().GetService("web").value();
    return cp_.reconciler.Observe(record).value().message();
  }

  FakeClock clock_;
  FakeControlPlane cp_{clock_};
  FaultStore& store_ = cp_.store;
  ServiceManager& manager_ = cp_.services;
};

TEST_F(ServiceManagerTest, ApplyThatCommittedSucceedsWhenPruningFails) {
  ASSERT_TRUE(manager_.Apply(Apply("img:1")).ok());
  // The write of revision 2 commits; pruning old revisions afterwards fails. The change is
  // made, so the call must say so, publish its events and tell the reconciler.
  store_.FailNext(Op::kPruneRevisions, absl::InternalError("disk I/O error"));
  absl::StatusOr<hosting::v1::ApplyServiceResponse> r = manager_.Apply(Apply("img:2"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->revision_created());
  EXPECT_EQ(r->service().revision(), 2);
  EXPECT_EQ(r->service().generation(), 2);
  EXPECT_EQ(store_.calls(Op::kPruneRevisions), 2);
  EXPECT_THAT(EventTypes(), ElementsAre("service.applied", "revision.created", "service.applied",
                                        "revision.created"));
  EXPECT_THAT(ReconcilerMessage(), HasSubstr("revision 2: change accepted"));
}

TEST_F(ServiceManagerTest, ApplyRetriesWhenAnotherWriterWins) {
  ASSERT_TRUE(manager_.Apply(Apply("img:1")).ok());
  // Someone scales the service between this apply's read and its write.
  store_.InterleaveBeforeNext(Op::kPutService, [](Store& s) {
    ServiceRecord r = s.GetService("web").value();
    r.spec.mutable_env()->insert({"FROM", "other"});
    ASSERT_TRUE(s.PutService(r, r.generation, nullptr).ok());
  });
  absl::StatusOr<hosting::v1::ApplyServiceResponse> r = manager_.Apply(Apply("img:2", 3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->service().generation(), 3);  // 1, the other writer's 2, then ours
  EXPECT_EQ(r->service().spec().image(), "img:2");
  EXPECT_EQ(store_.calls(Op::kPutService), 3);  // first apply, lost race, retry
  EXPECT_EQ(store_.base().GetService("web")->spec.replicas(), 3);
}

// Many callers applying different specs of one service at once: each answer is the caller's
// own write (or an error), never another caller's.
TEST_F(ServiceManagerTest, ConcurrentAppliesEachAnswerWithTheirOwnWrite) {
  ASSERT_TRUE(manager_.Apply(Apply("img:0")).ok());
  constexpr int kCallers = 64;
  std::atomic<int> foreign{0}, failed{0};
  std::vector<std::thread> callers;
  for (int i = 1; i <= kCallers; ++i) {
    callers.emplace_back([&, i] {
      absl::StatusOr<hosting::v1::ApplyServiceResponse> r =
          manager_.Apply(Apply(absl::StrCat("img:", i), 1 + i % 5));
      if (!r.ok()) {
        ++failed;
      } else if (r->service().spec().image() != absl::StrCat("img:", i) ||
                 r->service().spec().replicas() != 1 + i % 5) {
        ++foreign;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(foreign.load(), 0);
  EXPECT_LT(failed.load(), kCallers);
}

TEST_F(ServiceManagerTest, ExpectedGenerationIsNeverRetried) {
  ASSERT_TRUE(manager_.Apply(Apply("img:1")).ok());
  store_.InterleaveBeforeNext(Op::kPutService, [](Store& s) {
    ServiceRecord r = s.GetService("web").value();
    ASSERT_TRUE(s.PutService(r, r.generation, nullptr).ok());
  });
  hosting::v1::ApplyServiceRequest req = Apply("img:2");
  req.set_expected_generation(1);
  absl::Status st = manager_.Apply(req).status();
  EXPECT_TRUE(absl::IsAborted(st)) << st;
  EXPECT_EQ(store_.base().GetService("web")->spec.image(), "img:1");
}

TEST_F(ServiceManagerTest, EndlessRacesEndInAborted) {
  ASSERT_TRUE(manager_.Apply(Apply("img:1")).ok());
  store_.InterleaveBeforeNext(
      Op::kPutService,
      [](Store& s) {
        ServiceRecord r = s.GetService("web").value();
        ASSERT_TRUE(s.PutService(r, r.generation, nullptr).ok());
      },
      100);
  absl::Status st = manager_.Scale([] {
                              hosting::v1::ScaleServiceRequest r;
                              r.set_name("web");
                              r.set_replicas(5);
                              return r;
                            }())
                        .status();
  EXPECT_TRUE(absl::IsAborted(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("changed concurrently"));
  EXPECT_EQ(store_.calls(Op::kGetService), 1 + DesiredState::kAttempts);
  EXPECT_THAT(EventTypes(), ElementsAre("service.applied", "revision.created"));
}

TEST_F(ServiceManagerTest, AnUnavailableStoreIsReportedAndNothingIsPublished) {
  store_.SetUnavailable(true);
  absl::Status st = manager_.Apply(Apply("img:1")).status();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_TRUE(absl::IsUnavailable(manager_.Get("web").status()));
  EXPECT_TRUE(absl::IsUnavailable(manager_.Delete("web").status()));
  store_.SetUnavailable(false);
  EXPECT_TRUE(EventTypes().empty());
}

TEST_F(ServiceManagerTest, AFailedWriteChangesNothingAndPublishesNothing) {
  store_.FailNext(Op::kPutService, absl::InternalError("disk full"));
  absl::Status st = manager_.Apply(Apply("img:1")).status();
  EXPECT_TRUE(absl::IsInternal(st)) << st;
  EXPECT_TRUE(absl::IsNotFound(store_.base().GetService("web").status()));
  EXPECT_TRUE(EventTypes().empty());
}

TEST_F(ServiceManagerTest, ScaleKeepsAConcurrentChangeAndPublishesOnce) {
  ASSERT_TRUE(manager_.Apply(Apply("img:1")).ok());
  store_.InterleaveBeforeNext(Op::kPutService, [](Store& s) {
    ServiceRecord r = s.GetService("web").value();
    r.spec.mutable_env()->insert({"K", "V"});
    ASSERT_TRUE(s.PutService(r, r.generation, nullptr).ok());
  });
  hosting::v1::ScaleServiceRequest req;
  req.set_name("web");
  req.set_replicas(4);
  absl::StatusOr<hosting::v1::Service> s = manager_.Scale(req);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->spec().replicas(), 4);
  EXPECT_EQ(s->spec().env().at("K"), "V");
  EXPECT_THAT(EventTypes(), ElementsAre("service.applied", "revision.created", "service.scaled"));
}

}  // namespace
}  // namespace hosting::controlplane
