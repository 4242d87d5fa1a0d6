#include "controlplane/agents/agent_hub.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/testing/fake_agent_channel.h"
#include "controlplane/testing/fault_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class AgentHubTest : public ::testing::Test {
 protected:
  AgentHubTest()
      : store_(std::make_unique<FaultStore>(SqliteStore::Open(":memory:").value())),
        events_(*store_, clock_),
        registry_(AgentRegistry::Options{}, events_, clock_),
        hub_(registry_, *store_, events_, clock_) {}

  // Stores service "web" at `revision` checking `path`, with a rollout over `running`.
  void PutWeb(int64_t revision, const std::string& path, std::map<int64_t, int> running = {}) {
    ServiceRecord web;
    web.spec.set_name("web");
    web.spec.set_image(absl::StrCat("img:", revision));
    web.spec.mutable_health()->set_http_path(path);
    web.spec.mutable_health()->set_port(8080);
    web.revision = revision;
    for (const auto& [rev, n] : running) (*web.rollout.mutable_replicas())[rev] = n;
    const RevisionRecord rev{"web", revision, web.spec, clock_.Now()};
    int64_t generation = 0;
    if (auto stored = store_->GetService("web"); stored.ok()) generation = stored->generation;
    ASSERT_TRUE(store_->PutService(web, generation, &rev).ok());
  }

  static std::vector<std::string> Probes(const hosting::v1::ControllerMessage& m) {
    std::vector<std::string> out;
    for (const auto& p : m.probes().probes()) {
      out.push_back(absl::StrCat(p.service(), "@", p.revision(), " ", p.http_path()));
    }
    return out;
  }

  static hosting::v1::Command Logs(const std::string& task) {
    hosting::v1::Command c;
    c.mutable_task_logs()->set_task_id(task);
    return c;
  }

  FakeClock clock_;
  std::unique_ptr<FaultStore> store_;
  EventLog events_;
  AgentRegistry registry_;
  AgentHub hub_;
};

TEST_F(AgentHubTest, ACommandGoesToItsNodeAndItsAnswerComesBack) {
  FakeAgentChannel n1("n1"), n2("n2");
  hub_.Add(&n1);
  hub_.Add(&n2);
  std::optional<absl::StatusOr<hosting::v1::CommandResult>> got;
  hub_.RunCommandAsync("n2", Logs("t1"), absl::Seconds(30),
                       [&](absl::StatusOr<hosting::v1::CommandResult> r) { got = std::move(r); });
  EXPECT_FALSE(got.has_value());  // not before the agent answers
  EXPECT_TRUE(n1.commands().empty());
  ASSERT_THAT(n2.commands(), SizeIs(1));
  hosting::v1::CommandResult answer;
  answer.set_command_id(n2.commands()[0].command_id());
  answer.set_ok(true);
  answer.set_output("hello");
  hub_.CommandDone(answer);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ((*got)->output(), "hello");
  hub_.CommandDone(answer);  // a repeated answer is dropped
}

TEST_F(AgentHubTest, AnUnknownNodeIsUnavailableAtOnce) {
  std::optional<absl::Status> got;
  hub_.RunCommandAsync("ghost", Logs("t1"), absl::Seconds(30),
                       [&](absl::StatusOr<hosting::v1::CommandResult> r) { got = r.status(); });
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*got));
  EXPECT_THAT(std::string(got->message()), HasSubstr("ghost"));
  EXPECT_TRUE(absl::IsUnavailable(hub_.RunCommand("ghost", Logs("t1"), absl::Seconds(1)).status()));
}

TEST_F(AgentHubTest, AnUnansweredCommandExpiresAtItsDeadlineAndALateAnswerIsDropped) {
  FakeAgentChannel n1("n1");
  hub_.Add(&n1);
  std::optional<absl::Status> got;
  hub_.RunCommandAsync("n1", Logs("t1"), absl::Seconds(30),
                       [&](absl::StatusOr<hosting::v1::CommandResult> r) { got = r.status(); });
  clock_.Advance(absl::Seconds(29));
  hub_.ExpireCommands();
  EXPECT_FALSE(got.has_value());
  clock_.Advance(absl::Seconds(2));
  hub_.ExpireCommands();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(absl::IsDeadlineExceeded(*got));
  EXPECT_THAT(std::string(got->message()), HasSubstr("n1"));
  hosting::v1::CommandResult late;
  late.set_command_id(n1.commands()[0].command_id());
  hub_.CommandDone(late);  // nobody waits for it any more: no second call
}

TEST_F(AgentHubTest, StopEndsEveryWaitingCommandAndRefusesNewOnes) {
  FakeAgentChannel n1("n1");
  hub_.Add(&n1);
  int calls = 0;
  absl::Status last;
  auto done = [&](absl::StatusOr<hosting::v1::CommandResult> r) {
    ++calls;
    last = r.status();
  };
  hub_.RunCommandAsync("n1", Logs("t1"), absl::Minutes(10), done);
  hub_.Stop();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(absl::IsUnavailable(last));
  EXPECT_THAT(std::string(last.message()), HasSubstr("shutting down"));
  hub_.RunCommandAsync("n1", Logs("t2"), absl::Minutes(10), done);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(absl::IsUnavailable(last));
}

TEST_F(AgentHubTest, ProbeSettingsFollowTheDesiredState) {
  FakeAgentChannel n1("n1");
  hub_.Add(&n1);
  ServiceRecord web;
  web.spec.set_name("web");
  web.spec.set_image("img:1");
  web.spec.mutable_health()->set_http_path("/health");
  web.spec.mutable_health()->set_port(8080);
  ASSERT_TRUE(store_->PutService(web, 0, nullptr).ok());
  events_.Publish("service.applied", "web", 1, "applied");
  ASSERT_FALSE(n1.sent().empty());
  const hosting::v1::ControllerMessage last = n1.sent().back();
  ASSERT_TRUE(last.has_probes());
  ASSERT_EQ(last.probes().probes_size(), 1);
  EXPECT_EQ(last.probes().probes(0).http_path(), "/health");
  hub_.Remove(&n1);
}

// A store that cannot be read must never reach the agents as "no probes": each would stop
// probing, and every HTTP-checked task would read unready and leave the balancer.
TEST_F(AgentHubTest, AStoreThatCannotBeReadNeverEmptiesTheAgentsProbes) {
  FakeAgentChannel n1("n1");
  hub_.Add(&n1);
  // Before anything was read, a failed read sends nothing (the agent keeps its own).
  store_->FailNext(FaultStore::Op::kListServices, absl::UnavailableError("store down"));
  hub_.BroadcastProbeConfigs();
  EXPECT_TRUE(n1.sent().empty());
  PutWeb(1, "/health");
  hub_.BroadcastProbeConfigs();
  ASSERT_EQ(n1.sent().size(), 1u);
  store_->FailNext(FaultStore::Op::kListServices, absl::UnavailableError("store down"));
  hub_.BroadcastProbeConfigs();  // the periodic resend, with the store down
  ASSERT_EQ(n1.sent().size(), 2u);
  EXPECT_THAT(Probes(n1.sent().back()), ::testing::ElementsAre("web@1 /health"))
      << "the last good settings, not an empty set";
  // A newly connected agent gets the last good settings too.
  store_->FailNext(FaultStore::Op::kListServices, absl::UnavailableError("store down"));
  std::optional<hosting::v1::ControllerMessage> current = hub_.CurrentProbeConfigs();
  ASSERT_TRUE(current.has_value());
  EXPECT_THAT(Probes(*current), ::testing::ElementsAre("web@1 /health"));
  hub_.Remove(&n1);
}

// A release that changes the health check: the old revision keeps its probe, the new one gets
// its own, from the moment the release is created.
TEST_F(AgentHubTest, EveryRunningRevisionGetsItsOwnProbe) {
  FakeAgentChannel n1("n1");
  hub_.Add(&n1);
  PutWeb(1, "/health");
  PutWeb(2, "/v2/health", {{1, 3}, {2, 1}});
  events_.Publish("release.created", "web", 2, "release");
  ASSERT_FALSE(n1.sent().empty());
  EXPECT_THAT(Probes(n1.sent().back()),
              ::testing::UnorderedElementsAre("web@2 /v2/health", "web@1 /health"));
  hub_.Remove(&n1);
}

// A canary's baseline (revision 3, no stored revision of its own) is probed as the stable
// revision whose spec it runs.
TEST_F(AgentHubTest, ACanarysBaselineIsProbedAsTheRevisionItCopies) {
  FakeAgentChannel n1("n1");
  hub_.Add(&n1);
  PutWeb(1, "/health");
  PutWeb(2, "/v2/health", {{1, 3}, {2, 1}, {3, 1}});
  ServiceRecord web = store_->GetService("web").value();
  (*web.rollout.mutable_baseline_of())[3] = 1;
  ASSERT_TRUE(store_->PutService(web, web.generation, nullptr).ok());
  events_.Publish("release.created", "web", 2, "release");
  ASSERT_FALSE(n1.sent().empty());
  EXPECT_THAT(Probes(n1.sent().back()),
              ::testing::UnorderedElementsAre("web@2 /v2/health", "web@1 /health",
                                              "web@3 /health"));
  hub_.Remove(&n1);
}

TEST_F(AgentHubTest, ACommandGoesToTheNewestStreamOfANode) {
  FakeAgentChannel old_stream("n1"), new_stream("n1");
  hub_.Add(&old_stream);
  hub_.Add(&new_stream);  // the agent reconnected before the old stream was cleaned up
  hub_.RunCommandAsync("n1", Logs("t1"), absl::Seconds(30),
                       [](absl::StatusOr<hosting::v1::CommandResult>) {});
  EXPECT_TRUE(old_stream.commands().empty());
  EXPECT_THAT(new_stream.commands(), SizeIs(1));
  hub_.Remove(&new_stream);
  hub_.RunCommandAsync("n1", Logs("t2"), absl::Seconds(30),
                       [](absl::StatusOr<hosting::v1::CommandResult>) {});
  EXPECT_THAT(old_stream.commands(), SizeIs(1)) << "the one left";
  hub_.Remove(&old_stream);
  hub_.Stop();
}

TEST_F(AgentHubTest, CloseAllEndsEveryStreamWithTheReason) {
  FakeAgentChannel n1("n1"), n2("n2");
  hub_.Add(&n1);
  hub_.Add(&n2);
  const absl::Status why = absl::UnavailableError("the leader is b:1");
  EXPECT_EQ(hub_.CloseAll(why), 2);
  EXPECT_EQ(n1.closed(), why);
  EXPECT_EQ(n2.closed(), why);
  hub_.Remove(&n1);
  hub_.Remove(&n2);
  EXPECT_EQ(hub_.CloseAll(why), 0);
}

}  // namespace
}  // namespace hosting::controlplane
