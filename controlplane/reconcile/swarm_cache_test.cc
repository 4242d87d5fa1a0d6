#include "controlplane/reconcile/swarm_cache.h"

#include "common/clock.h"
#include "common/fake_docker_client.h"
#include "controlplane/spec/swarm_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

nlohmann::json Service(const std::string& name, const std::string& controller) {
  return {{"Name", name},
          {"Labels", {{kLabelController, controller}, {kLabelService, "web"}}},
          {"Mode", {{"Replicated", {{"Replicas", 2}}}}},
          {"TaskTemplate", {{"ContainerSpec", {{"Image", "img:1"}}}}}};
}

class SwarmCacheTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  docker::FakeDockerClient docker_;
  SwarmCache cache_{docker_, clock_, SwarmCache::Options{"me"}};
};

TEST_F(SwarmCacheTest, NothingListedIsUnavailableNotEmpty) {
  absl::Status st = cache_.View().status();
  EXPECT_TRUE(absl::IsUnavailable(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("not been listed"));
}

TEST_F(SwarmCacheTest, ListsOnlyThisControllersServicesAndSaysWhen) {
  ASSERT_TRUE(docker_.CreateService(Service("web-r1", "me")).ok());
  ASSERT_TRUE(docker_.CreateService(Service("other-r1", "someone-else")).ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(cache_.Relist().ok());
  auto view = cache_.View();
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_THAT((*view)->services, SizeIs(1));
  EXPECT_EQ((*view)->services[0].name, "web-r1");
  EXPECT_EQ((*view)->listed_at, clock_.Now());
  // Reads do not list: the view is the same object until the next relist.
  auto again = cache_.View();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), view->get());
  EXPECT_EQ(cache_.lists(), 1);
}

TEST_F(SwarmCacheTest, AFailedListMakesReadsUnavailableUntilTheEngineAnswers) {
  ASSERT_TRUE(cache_.Relist().ok());
  docker_.SetUnavailable(true);
  EXPECT_FALSE(cache_.Relist().ok());
  absl::Status st = cache_.View().status();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("cannot list Swarm services"));
  docker_.SetUnavailable(false);
  EXPECT_TRUE(cache_.Relist().ok());
  EXPECT_TRUE(cache_.View().ok());
}

TEST_F(SwarmCacheTest, AHintIsPickedUpByTheBackgroundRelist) {
  cache_.Start();
  const int64_t before = cache_.lists();
  ASSERT_TRUE(docker_.CreateService(Service("web-r1", "me")).ok());
  cache_.Invalidate();
  // Bounded wait for the background loop (it relists within its coalescing delay).
  for (int i = 0; i < 500; ++i) {
    auto view = cache_.View();
    if (view.ok() && (*view)->services.size() == 1) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  auto view = cache_.View();
  ASSERT_TRUE(view.ok());
  EXPECT_THAT((*view)->services, SizeIs(1));
  EXPECT_GT(cache_.lists(), before);
  cache_.Stop();
}

}  // namespace
}  // namespace hosting::controlplane
