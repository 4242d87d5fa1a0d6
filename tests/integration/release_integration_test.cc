// Releases against the real thing: dockerd with a Swarm, HAProxy (the platform's image and
// configuration, on the services' overlay network), hostd, a hostagent, appsvc images on a real
// PostgreSQL, and load from 127.0.0.1 through HAProxy. Nothing here is faked.
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "controlplane/traffic/load_balancer.h"
#include "curl/curl.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "platform.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;

// Services the tests release; each has a frontend on HAProxy (published on a free port).
const std::vector<std::string> kServices = {"rel-rolling", "rel-canary", "rel-good",
                                            "rel-bg",      "rel-bad",    "rel-crash",
                                            "rel-restart", "rel-req",    "rel-promql",
                                            "rel-migrate", "rel-restore", "rel-judge", "rel-baseline"};

using Load = HttpLoad;

bool IsTerminalRelease(hosting::v1::ReleaseState s) {
  return s == hosting::v1::RELEASE_STATE_SUCCEEDED || s == hosting::v1::RELEASE_STATE_ROLLED_BACK ||
         s == hosting::v1::RELEASE_STATE_FAILED || s == hosting::v1::RELEASE_STATE_ABORTED ||
         s == hosting::v1::RELEASE_STATE_TIMED_OUT;
}

class ReleaseTest : public PlatformTest {
 protected:
  static void SetUpTestSuite() { StartPlatform("hosting-release-", kServices, {"rel-bg-preview"}); }
  static void TearDownTestSuite() { StopPlatform(); }

  // Swarm converges a moment after a release ends (the last old container stops, then the
  // reconciler removes the emptied revision): waits up to 30 s for exactly `want`.
  void ExpectSwarm(const std::string& service, std::vector<std::string> want) {
    std::vector<std::string> got;
    absl::Status st = WaitFor(
        [&] {
          got = SwarmServicesOf(service);
          return got == want;
        },
        absl::Seconds(30), "Swarm services of " + service, absl::Milliseconds(200));
    EXPECT_TRUE(st.ok()) << st << ": " << absl::StrJoin(got, "; ");
  }

  std::string Url(const std::string& service, const std::string& path) {
    return platform->Url(service, path);
  }
  void Deploy(const hosting::v1::ServiceSpec& spec) {
    absl::Status st = platform->Deploy(*services_, spec);
    ASSERT_TRUE(st.ok()) << st;
  }
  int ReadyServers(const std::string& backend) { return platform->ReadyServers(backend); }

  absl::StatusOr<hosting::v1::Release> Start(const hosting::v1::StartReleaseRequest& req) {
    grpc::ClientContext ctx;
    hosting::v1::Release r;
    grpc::Status st = releases_->StartRelease(&ctx, req, &r);
    if (!st.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
    }
    return r;
  }

  // A canary release of `spec`: `weight` %, then a 60 s analysis (returned, for the test to
  // fill in), then 100 %.
  static hosting::v1::StartReleaseRequest CanaryWithAnalysis(const hosting::v1::ServiceSpec& spec,
                                                             uint32_t weight,
                                                             hosting::v1::AnalysisSpec** analysis) {
    hosting::v1::StartReleaseRequest req;
    req.set_service(spec.name());
    *req.mutable_spec() = spec;
    req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
    auto* c = req.mutable_policy()->mutable_canary();
    c->add_steps()->set_set_weight(weight);
    *analysis = c->add_steps()->mutable_analysis();
    (*analysis)->mutable_duration()->set_seconds(60);
    c->add_steps()->set_set_weight(100);
    return req;
  }

  hosting::v1::Release Get(const std::string& id) { return GetRelease(*releases_, id); }

  // Promotes a release waiting at its gate (hostctl release promote); it must then succeed
  // with no failed request of `load` and leave revision 2 alone, at two tasks.
  void PromoteToTheEnd(const std::string& id, const std::string& service, Load& load) {
    CommandResult promote = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                               platform->hostd->address(), " release promote ",
                                               id));
    ASSERT_EQ(promote.exit_code, 0) << promote.output;
    hosting::v1::Release r = WaitState(id, absl::Seconds(90));
    load.Stop();
    EXPECT_EQ(r.state(), hosting::v1::RELEASE_STATE_SUCCEEDED) << r.DebugString();
    EXPECT_EQ(load.failed(), 0) << load.first_error();
    ExpectSwarm(service, {absl::StrCat(service, "-r2 2 2")});
  }

  // Waits until the release reaches a terminal state (or `state`).
  hosting::v1::Release WaitState(const std::string& id, absl::Duration timeout,
                                 hosting::v1::ReleaseState state = hosting::v1::RELEASE_STATE_UNSPECIFIED) {
    hosting::v1::Release r;
    absl::Status st = WaitFor(
        [&] {
          r = Get(id);
          return state == hosting::v1::RELEASE_STATE_UNSPECIFIED
                     ? r.state() >= hosting::v1::RELEASE_STATE_SUCCEEDED
                     : r.state() == state;
        },
        timeout, "release " + id, absl::Milliseconds(100));
    EXPECT_TRUE(st.ok()) << st << "\n" << r.DebugString();
    return r;
  }

  // The task IDs in the "tasks" attribute of every release.drain.started event of `service`
  // for `revision`, read from the event log over gRPC (bounded by a deadline).
  std::set<std::string> DrainedTasks(const std::string& service, int64_t revision) {
    auto cluster = hosting::v1::Cluster::NewStub(platform->hostd->channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    hosting::v1::WatchEventsRequest req;
    req.set_service(service);
    req.add_types("release.drain.started");
    req.set_from_start(true);
    req.set_no_follow(true);
    auto reader = cluster->WatchEvents(&ctx, req);
    std::set<std::string> out;
    for (hosting::v1::Event e; reader->Read(&e);) {
      auto rev = e.attributes().find("revision");
      auto tasks = e.attributes().find("tasks");
      if (rev == e.attributes().end() || tasks == e.attributes().end()) continue;
      if (rev->second != std::to_string(revision)) continue;
      for (absl::string_view t : absl::StrSplit(tasks->second, ',', absl::SkipEmpty())) {
        out.insert(std::string(t));
      }
    }
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }

  // Events of one type for a service, from the start.
  int CountEvents(const std::string& service, const std::string& type) {
    auto cluster = hosting::v1::Cluster::NewStub(platform->hostd->channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    hosting::v1::WatchEventsRequest req;
    req.set_service(service);
    req.add_types(type);
    req.set_from_start(true);
    req.set_no_follow(true);
    auto reader = cluster->WatchEvents(&ctx, req);
    int n = 0;
    for (hosting::v1::Event e; reader->Read(&e);) ++n;
    EXPECT_TRUE(reader->Finish().ok());
    return n;
  }

  // The release's events from the event log (hostctl events is the user's view of it).
  std::string Events(const std::string& service) {
    return Shell(absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address(),
                              " events --service ", service, " --type release."))
        .output;
  }

};

TEST_F(ReleaseTest, RollingReleaseUnderLoadLosesNoRequest) {
  const std::string name = "rel-rolling";
  Deploy(platform->Spec(name, 4));
  if (HasFatalFailure()) return;
  // The old revision's tasks, each of which must be drained before it stops.
  std::vector<std::string> old_tasks = absl::StrSplit(
      Shell(absl::StrCat("docker service ps -q --no-trunc --filter desired-state=running ", name,
                         "-r1"))
          .output,
      '\n', absl::SkipWhitespace());
  ASSERT_EQ(old_tasks.size(), 4u);
  Load load(Url(name, "/api/users/1"), 4);
  absl::SleepFor(absl::Seconds(1));
  // hostctl, as a CI job would run it: the exit code is the outcome.
  CommandResult r = Shell(absl::StrCat(
      HostctlBinary(), " --server ", platform->hostd->address(), " release start ", name,
      " --image hosting/appsvc:v2 --min-healthy-time 1s --wait --wait-timeout 180"));
  absl::SleepFor(absl::Seconds(1));
  load.Stop();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("succeeded"));
  // The default surge, sized by the memory the agent reports: all four new tasks at once.
  EXPECT_THAT(r.output, HasSubstr("surge 4 task(s): the nodes have memory for"));
  EXPECT_GT(load.total(), 1000);
  EXPECT_EQ(load.failed(), 0) << load.first_error() << " of " << load.total();
  ExpectSwarm(name, {absl::StrCat(name, "-r2 4 4")});
  EXPECT_EQ(ReadyServers(name), 4);
  // Every old task was drained before it was stopped (the drain events name each of them),
  // except where Swarm stopped another task than the drained one: it chooses, and the
  // machine says so (release.drain.missed) and puts the drained survivor back.
  // A drained task that was not among the old ones replaced one that Swarm restarted by itself
  // before the release reached it (its health check missed on a loaded machine): that old task
  // ended outside the release, and its replacement was drained instead.
  const std::set<std::string> drained = DrainedTasks(name, 1);
  const int missed = CountEvents(name, "release.drain.missed");
  const auto same = [](const std::string& task, const std::string& d) {
    return absl::StartsWith(task, d) && d.size() >= 12;
  };
  int undrained = 0;
  for (const std::string& task : old_tasks) {
    bool seen = false;
    for (const std::string& d : drained) seen |= same(task, d);
    if (!seen) ++undrained;
  }
  int replacements = 0;
  for (const std::string& d : drained) {
    bool old = false;
    for (const std::string& task : old_tasks) old |= same(task, d);
    if (!old) ++replacements;
  }
  EXPECT_LE(undrained, missed + replacements)
      << "old tasks stopped without a drain and without a word; drained: "
      << absl::StrJoin(drained, ",") << "; old: " << absl::StrJoin(old_tasks, ",");
  EXPECT_GE(drained.size(), 1u) << "the old revision's tasks were drained";
}

TEST_F(ReleaseTest, CanaryOfABadVersionRollsBackByItself) {
  const std::string name = "rel-canary";
  Deploy(platform->Spec(name, 4));
  if (HasFatalFailure()) return;
  Load load(Url(name, "/api/users/1"), 4);
  absl::SleepFor(absl::Seconds(2));  // the stable revision's window fills
  hosting::v1::StartReleaseRequest req;
  req.set_service(name);
  *req.mutable_spec() = platform->Spec(name, 4, {{"FAULT_ERROR_RATE", "0.3"}});
  auto* c = req.mutable_policy()->mutable_canary();
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  c->add_steps()->set_set_weight(20);
  auto* a = c->add_steps()->mutable_analysis();
  a->mutable_duration()->set_seconds(60);
  a->set_min_samples(100);
  c->add_steps()->set_set_weight(50);
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  hosting::v1::Release r = WaitState(started->id(), absl::Seconds(120));
  load.Stop();
  ASSERT_EQ(r.state(), hosting::v1::RELEASE_STATE_ROLLED_BACK) << r.DebugString();
  ASSERT_EQ(r.analyses_size(), 1);
  EXPECT_EQ(r.analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(r.analyses(0).reason(), HasSubstr("5xx ratio"));
  // It did not wait out the 60 s analysis.
  EXPECT_LT(google::protobuf::util::TimeUtil::DurationToSeconds(
                r.finished_at() - r.started_at()),
            60);
  // Failures stayed within the canary's share: 20 % of traffic x 30 % errors = 6 %.
  const double ratio = static_cast<double>(load.failed()) / std::max<int64_t>(load.total(), 1);
  EXPECT_LE(ratio, 0.2 * 0.3 * 1.5) << load.failed() << " of " << load.total();
  // The stable revision was never scaled down.
  const std::string events = Events(name);
  EXPECT_THAT(events, ::testing::Not(HasSubstr("revision 1 scaled")));
  EXPECT_THAT(events, HasSubstr("all traffic back on revision 1"));
  ExpectSwarm(name, {absl::StrCat(name, "-r1 4 4")});
  // The service's desired state is the stable revision again.
  grpc::ClientContext ctx;
  hosting::v1::GetServiceRequest get;
  get.set_name(name);
  hosting::v1::Service svc;
  ASSERT_TRUE(services_->GetService(&ctx, get, &svc).ok());
  EXPECT_EQ(svc.revision(), 1);
  EXPECT_EQ(svc.spec().env().count("FAULT_ERROR_RATE"), 0u);
}

// The statistical judge against the stable revision's traffic, through the real agents'
// histograms: a canary 30 % slower (13 ms against 10 ms a request), which no bound of the
// analysis catches, is judged worse by Mann-Whitney and rolled back; the same latency passes as
// soon as both sides have their samples, well before the analysis' duration.
TEST_F(ReleaseTest, TheJudgeRollsBackACanaryThirtyPercentSlowerAndPassesAGoodOneEarly) {
  const std::string name = "rel-judge";
  Deploy(platform->Spec(name, 2, {{"FAULT_LATENCY_MS", "10"}}));
  if (HasFatalFailure()) return;
  Load load(Url(name, "/api/users/1"), 4);
  absl::SleepFor(absl::Seconds(2));  // the stable revision's window fills
  auto judged = [&](const std::map<std::string, std::string>& env) {
    hosting::v1::AnalysisSpec* a = nullptr;
    hosting::v1::StartReleaseRequest req = CanaryWithAnalysis(platform->Spec(name, 2, env), 50, &a);
    a->mutable_judge()->set_min_samples(300);
    return Start(req);
  };

  absl::StatusOr<hosting::v1::Release> slow = judged({{"FAULT_LATENCY_MS", "13"}});
  ASSERT_TRUE(slow.ok()) << slow.status();
  hosting::v1::Release r = WaitState(slow->id(), absl::Seconds(120));
  ASSERT_EQ(r.state(), hosting::v1::RELEASE_STATE_ROLLED_BACK) << r.DebugString();
  ASSERT_EQ(r.analyses_size(), 1);
  const hosting::v1::AnalysisResult& failed = r.analyses(0);
  EXPECT_EQ(failed.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED);
  EXPECT_THAT(failed.reason(), HasSubstr("judge: score 50 below 75"));
  EXPECT_TRUE(failed.judged());
  for (const auto& m : failed.metrics()) {
    if (m.metric() != "latency") continue;
    EXPECT_EQ(m.verdict(), hosting::v1::ANALYSIS_VERDICT_FAILED) << m.DebugString();
    EXPECT_LT(m.p_value(), 0.05);
    EXPECT_NEAR(m.effect(), 0.3, 0.15) << m.DebugString();
  }
  EXPECT_LT(google::protobuf::util::TimeUtil::DurationToSeconds(failed.finished_at() -
                                                                failed.started_at()),
            60);
  // release status shows the judge's numbers.
  CommandResult status = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                            platform->hostd->address(), " release status ",
                                            slow->id()));
  EXPECT_THAT(status.output, HasSubstr("judge latency (mann-whitney): failed"));
  EXPECT_THAT(status.output, HasSubstr("judge score: 50"));
  // Judged again over its stored samples: the same; with a 50 % latency tolerance, a pass.
  const std::string judge_cmd = absl::StrCat(HostctlBinary(), " --server ",
                                             platform->hostd->address(), " release judge ",
                                             slow->id());
  CommandResult same = Shell(judge_cmd);
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_THAT(same.output, HasSubstr("Analysis 1 (step) (was failed): failed: judge: score 50"));
  CommandResult wider = Shell(judge_cmd + " --latency-tolerance 0.5");
  EXPECT_THAT(wider.output, HasSubstr("(was failed): passed: judge: score 100")) << wider.output;
  CommandResult bad = Shell(judge_cmd + " --confidence 2");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("confidence")) << bad.output;

  absl::StatusOr<hosting::v1::Release> good =
      judged({{"FAULT_LATENCY_MS", "10"}, {"RELEASE_NOTE", "same speed"}});
  ASSERT_TRUE(good.ok()) << good.status();
  r = WaitState(good->id(), absl::Seconds(120));
  load.Stop();
  ASSERT_EQ(r.state(), hosting::v1::RELEASE_STATE_SUCCEEDED) << r.DebugString();
  ASSERT_EQ(r.analyses_size(), 1);
  EXPECT_EQ(r.analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED);
  EXPECT_EQ(r.analyses(0).score(), 100);
  EXPECT_LT(google::protobuf::util::TimeUtil::DurationToSeconds(r.analyses(0).finished_at() -
                                                                r.analyses(0).started_at()),
            30);
  EXPECT_EQ(load.failed(), 0) << load.first_error();
}

// Kayenta's practice: a fresh copy of the stable revision (the baseline) starts with the
// canary, with as many tasks and the same share of the traffic, and the judge compares the two.
// A good version passes against its baseline; the baseline is gone when the release ends.
TEST_F(ReleaseTest, AGoodCanaryPassesAgainstItsBaselineWhichGoesWhenTheReleaseEnds) {
  const std::string name = "rel-baseline";
  Deploy(platform->Spec(name, 2, {{"FAULT_LATENCY_MS", "10"}}));
  if (HasFatalFailure()) return;
  Load load(Url(name, "/api/users/1"), 4);
  hosting::v1::AnalysisSpec* a = nullptr;
  hosting::v1::StartReleaseRequest req = CanaryWithAnalysis(
      platform->Spec(name, 2, {{"FAULT_LATENCY_MS", "10"}, {"RELEASE_NOTE", "good"}}), 25, &a);
  a->mutable_judge()->set_min_samples(200);
  auto* c = req.mutable_policy()->mutable_canary();
  c->set_baseline(true);
  c->mutable_steps()->RemoveLast();  // weight 100 goes: a gate instead, to look at the baseline
  c->add_steps()->mutable_pause();
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->to_revision(), 2);
  EXPECT_EQ(started->baseline_revision(), 3);
  hosting::v1::Release r = WaitState(started->id(), absl::Seconds(120),
                                     hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  ASSERT_EQ(r.state(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION) << r.DebugString();
  ASSERT_EQ(r.analyses_size(), 1);
  const hosting::v1::AnalysisResult& passed = r.analyses(0);
  EXPECT_EQ(passed.verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED) << passed.DebugString();
  EXPECT_TRUE(passed.baseline());
  EXPECT_EQ(passed.compared_revision(), 3);
  EXPECT_EQ(passed.score(), 100);
  EXPECT_THAT(passed.reason(), HasSubstr("against baseline revision 3"));
  // Both sides were judged on the baseline's and the canary's requests, not the stable tasks'.
  EXPECT_GE(passed.samples().stable().requests(), 200);
  EXPECT_GE(passed.samples().canary().requests(), 200);

  // The baseline is a real Swarm service: revision 1's image and spec under its own number.
  ExpectSwarm(name, {absl::StrCat(name, "-r1 2 2"), absl::StrCat(name, "-r2 1 1"),
                     absl::StrCat(name, "-r3 1 1")});
  CommandResult labels = Shell(absl::StrCat(
      "docker service inspect -f '{{index .Spec.Labels \"hosting.baseline-of\"}} "
      "{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{.}} {{end}}' ",
      name, "-r3"));
  EXPECT_THAT(labels.output, ::testing::StartsWith("1 ")) << labels.output;
  EXPECT_THAT(labels.output, HasSubstr("HOSTING_REVISION=3")) << labels.output;
  EXPECT_THAT(labels.output, ::testing::Not(HasSubstr("RELEASE_NOTE"))) << labels.output;  // stable's env
  // It takes the canary's share of the requests, through the real HAProxy.
  std::map<std::string, int> by_revision;
  for (int i = 0; i < 400; ++i) {
    HttpResult v = Http("GET", Url(name, "/api/version"));
    const size_t at = v.body.find("\"hosting_revision\":\"");
    if (v.status == 200 && at != std::string::npos) ++by_revision[v.body.substr(at + 20, 1)];
  }
  EXPECT_NEAR(by_revision["2"], 100, 40) << "canary";
  EXPECT_NEAR(by_revision["3"], 100, 40) << "baseline";
  EXPECT_NEAR(by_revision["1"], 200, 50) << "stable";
  CommandResult status = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                            platform->hostd->address(), " release status ",
                                            started->id()));
  EXPECT_THAT(status.output, HasSubstr("Baseline:   revision 3 (revision 1's spec"));
  EXPECT_THAT(status.output, HasSubstr("baseline")) << status.output;

  PromoteToTheEnd(started->id(), name, load);
  if (HasFatalFailure()) return;
  // Revision 3 stays taken: the next release is revision 4.
  hosting::v1::StartReleaseRequest next;
  next.set_service(name);
  next.set_image("hosting/appsvc:v2");
  absl::StatusOr<hosting::v1::Release> again = Start(next);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->to_revision(), 4);
  EXPECT_EQ(WaitState(again->id(), absl::Seconds(90)).state(),
            hosting::v1::RELEASE_STATE_SUCCEEDED);
}

TEST_F(ReleaseTest, PromQLCheckFromARealPrometheusRollsBackABadCanary) {
  const std::string name = "rel-promql";
  Deploy(platform->Spec(name, 2));
  if (HasFatalFailure()) return;
  Load load(Url(name, "/api/users/1"), 2);
  hosting::v1::AnalysisSpec* a = nullptr;
  hosting::v1::StartReleaseRequest req =
      CanaryWithAnalysis(platform->Spec(name, 2, {{"FAULT_ERROR_RATE", "0.3"}}), 50, &a);
  a->set_min_samples(20);
  a->set_max_error_ratio_increase(1);  // the agents' comparison allows anything: PromQL decides
  auto* q = a->add_promql();
  q->set_name("canary-5xx");
  q->set_query(R"(max(hostd_revision_error_ratio{service="{{service}}",revision="{{revision}}"}))");
  q->set_max_value(0.1);
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  hosting::v1::Release r = WaitState(started->id(), absl::Seconds(120));
  load.Stop();
  EXPECT_EQ(r.state(), hosting::v1::RELEASE_STATE_ROLLED_BACK) << r.DebugString();
  ASSERT_GE(r.analyses_size(), 1);
  EXPECT_THAT(r.analyses(0).reason(), HasSubstr("PromQL canary-5xx"));
  ExpectSwarm(name, {absl::StrCat(name, "-r1 2 2")});
}

TEST_F(ReleaseTest, CanaryOfAGoodVersionPromotesThroughEveryStepAndTheManualGate) {
  const std::string name = "rel-good";
  Deploy(platform->Spec(name, 2));
  if (HasFatalFailure()) return;
  Load load(Url(name, "/api/users/1"), 2);
  hosting::v1::StartReleaseRequest req;
  req.set_service(name);
  req.set_image("hosting/appsvc:v2");
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  auto* c = req.mutable_policy()->mutable_canary();
  c->add_steps()->set_set_weight(50);
  auto* a = c->add_steps()->mutable_analysis();
  a->mutable_duration()->set_seconds(5);
  a->set_min_samples(20);
  c->add_steps()->mutable_pause();  // manual gate
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  hosting::v1::Release r = WaitState(started->id(), absl::Seconds(90),
                                     hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  EXPECT_EQ(r.weight(), 50);
  EXPECT_TRUE(r.exact_weights());
  ASSERT_EQ(r.analyses_size(), 1) << r.DebugString();
  EXPECT_EQ(r.analyses(0).verdict(), hosting::v1::ANALYSIS_VERDICT_PASSED) << r.DebugString();
  // Half the requests reach the canary, measured through the real HAProxy: 2,000 requests
  // from this client (the load's requests interleave, so the share is statistical: the
  // binomial spread at n = 2000 is about 1.1 %, the bound below about 4.5 of it).
  int answered = 0, canary = 0;
  for (int i = 0; i < 2000; ++i) {
    HttpResult v = Http("GET", Url(name, "/api/version"));
    if (v.status != 200) continue;
    size_t at = v.body.find("\"hosting_revision\":\"");
    if (at == std::string::npos) continue;
    ++answered;
    canary += v.body.substr(at + 20, 1) == "2" ? 1 : 0;
  }
  EXPECT_EQ(answered, 2000);
  const double share = 100.0 * canary / std::max(answered, 1);
  EXPECT_NEAR(share, 50.0, 5.0) << canary << " of " << answered << " reached the canary";
  // The gate waits for a person.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(Get(started->id()).state(), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  PromoteToTheEnd(started->id(), name, load);
  if (HasFatalFailure()) return;
  // Promoting a finished release is refused, naming its state.
  CommandResult again = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                           platform->hostd->address(), " release promote ",
                                           started->id()));
  EXPECT_EQ(again.exit_code, 5) << again.output;
  EXPECT_THAT(again.output, HasSubstr("succeeded"));
}

TEST_F(ReleaseTest, BlueGreenSwitchesAtOnceThenRollsBackInstantlyToTheWarmRevision) {
  const std::string name = "rel-bg";
  Deploy(platform->Spec(name, 2));
  if (HasFatalFailure()) return;
  Load load(Url(name, "/api/users/1"), 2);
  hosting::v1::StartReleaseRequest req;
  req.set_service(name);
  req.set_image("hosting/appsvc:v2");
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_BLUE_GREEN);
  req.mutable_policy()->mutable_blue_green()->set_manual_promotion(true);
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  WaitState(started->id(), absl::Seconds(90), hosting::v1::RELEASE_STATE_WAITING_FOR_PROMOTION);
  // Green is reachable on the preview backend while blue serves everyone.
  HttpResult preview =
      Http("GET", absl::StrCat("http://127.0.0.1:", platform->ports.at("rel-bg-preview"), "/api/version"));
  EXPECT_THAT(preview.body, HasSubstr("\"hosting_revision\":\"2\""));
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(Http("GET", Url(name, "/api/version")).body, HasSubstr("\"hosting_revision\":\"1\""));
  }
  grpc::ClientContext pctx;
  hosting::v1::PromoteReleaseRequest promote;
  promote.set_id(started->id());
  hosting::v1::Release r;
  ASSERT_TRUE(releases_->PromoteRelease(&pctx, promote, &r).ok());
  r = WaitState(started->id(), absl::Seconds(30));
  EXPECT_EQ(r.state(), hosting::v1::RELEASE_STATE_SUCCEEDED);
  // The step is persisted before HAProxy is programmed (a restart resumes from the record), so
  // the switch reaches the front door moments after SUCCEEDED shows: wait for it, bounded.
  EXPECT_TRUE(WaitFor(
                  [&] {
                    return absl::StrContains(Http("GET", Url(name, "/api/version")).body,
                                             "\"hosting_revision\":\"2\"");
                  },
                  absl::Seconds(5), "the switch at the front door", absl::Milliseconds(10))
                  .ok());
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(Http("GET", Url(name, "/api/version")).body, HasSubstr("\"hosting_revision\":\"2\""))
        << controlplane::HaproxyLoadBalancer(platform->socket)
               .Execute("show servers state " + name)
               .value_or("?")
        << Events(name);
  }
  // Blue stays warm: the rollback moves traffic without starting a task.
  ExpectSwarm(name, {absl::StrCat(name, "-r1 2 2"),
                                                            absl::StrCat(name, "-r2 2 2")});
  const absl::Time t0 = absl::Now();
  CommandResult rb = Shell(absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address(),
                                        " rollback ", name, " --wait --wait-timeout 60"));
  const absl::Duration took = absl::Now() - t0;
  load.Stop();
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_LT(took, absl::Seconds(10)) << rb.output;
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(Http("GET", Url(name, "/api/version")).body, HasSubstr("\"hosting_revision\":\"1\""));
  }
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  ExpectSwarm(name, {absl::StrCat(name, "-r1 2 2")});
}

TEST_F(ReleaseTest, UnhealthyOrNeverRunningVersionsRollBackWithDistinctExitCodes) {
  // Tasks that fail their health check: rolled back as soon as the agents say so (exit 10).
  Deploy(platform->Spec("rel-bad", 2));
  if (HasFatalFailure()) return;
  Load load(Url("rel-bad", "/api/users/1"), 2);
  hosting::v1::ServiceSpec bad = platform->Spec("rel-bad", 2, {{"FAULT_HEALTH_FAIL", "true"}});
  const std::string spec_path = platform->dir + "/bad.json";
  {
    std::string json;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(bad, &json, o).ok());
    std::ofstream(spec_path) << json;
  }
  CommandResult r = Shell(absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address(),
                                       " release start rel-bad -f ", spec_path,
                                       " --wait --wait-timeout 120"));
  load.Stop();
  EXPECT_EQ(r.exit_code, 10) << r.output;
  EXPECT_THAT(r.output, HasSubstr("failed their health check"));
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  ExpectSwarm("rel-bad", {"rel-bad-r1 2 2"});

  // Tasks that never run: the progress deadline ends it (exit 13), stable untouched.
  Deploy(platform->Spec("rel-crash", 2));
  if (HasFatalFailure()) return;
  hosting::v1::ServiceSpec crash = platform->Spec("rel-crash", 2);
  crash.add_command("/bin/false");
  hosting::v1::StartReleaseRequest req;
  req.set_service("rel-crash");
  *req.mutable_spec() = crash;
  req.mutable_policy()->mutable_rolling()->mutable_progress_deadline()->set_seconds(8);
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  hosting::v1::Release done = WaitState(started->id(), absl::Seconds(60));
  EXPECT_EQ(done.state(), hosting::v1::RELEASE_STATE_TIMED_OUT) << done.DebugString();
  EXPECT_THAT(Events("rel-crash"), HasSubstr("progress deadline"));
  ExpectSwarm("rel-crash", {"rel-crash-r1 2 2"});
  CommandResult watch = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                           platform->hostd->address(), " release watch ",
                                           started->id()));
  EXPECT_EQ(watch.exit_code, 13) << watch.output;
}

TEST_F(ReleaseTest, HostdKilledMidReleaseResumesAndFinishes) {
  const std::string name = "rel-restart";
  Deploy(platform->Spec(name, 3));
  if (HasFatalFailure()) return;
  hosting::v1::StartReleaseRequest req;
  req.set_service(name);
  req.set_image("hosting/appsvc:v2");
  req.mutable_policy()->mutable_rolling()->mutable_min_healthy_time()->set_seconds(2);
  // One task at a time (the default surge may start all three at once), so that there is a
  // middle to kill hostd in.
  req.mutable_policy()->mutable_rolling()->mutable_max_surge()->set_count(1);
  absl::StatusOr<hosting::v1::Release> started = Start(req);
  ASSERT_TRUE(started.ok()) << started.status();
  // Kill hostd (no goodbye) once the first new task is up.
  absl::Status st = WaitFor([&] { return Get(started->id()).new_replicas() >= 1; },
                            absl::Seconds(30), "the first batch");
  ASSERT_TRUE(st.ok()) << st;
  absl::SleepFor(absl::Seconds(2));
  // The kill must land mid-release, or the test proves nothing about resuming.
  const hosting::v1::Release before = Get(started->id());
  ASSERT_FALSE(IsTerminalRelease(before.state())) << before.DebugString();
  ASSERT_LT(before.new_replicas(), 3) << before.DebugString();
  platform->hostd->Stop(9);
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(platform->hostd->Start().ok());
  channel_ = platform->hostd->channel();
  releases_ = hosting::v1::Releases::NewStub(channel_);
  services_ = hosting::v1::ServiceManager::NewStub(channel_);
  // The restarted hostd finds it where it was: the same release, not started over.
  const hosting::v1::Release resumed = Get(started->id());
  EXPECT_EQ(resumed.to_revision(), before.to_revision());
  EXPECT_GE(resumed.new_replicas(), before.new_replicas()) << resumed.DebugString();
  hosting::v1::Release r = WaitState(started->id(), absl::Seconds(120));
  EXPECT_EQ(r.state(), hosting::v1::RELEASE_STATE_SUCCEEDED) << r.DebugString();
  // No duplicate and no orphan: exactly the new revision, at its count.
  ExpectSwarm(name, {absl::StrCat(name, "-r2 3 3")});
  EXPECT_EQ(ReadyServers(name), 3);
}

// An image of appsvc that ships one more migration (MIGRATIONS_DIR's default).
std::string AppsvcImageWithMigration(const std::string& tag, const std::string& sql) {
  const std::string dir = MakeTempDir("hosting-migration-image-");
  std::ofstream(dir + "/2_nickname.sql") << sql;
  std::ofstream(dir + "/Dockerfile")
      << "FROM hosting/appsvc:dev\nCOPY 2_nickname.sql /etc/appsvc/migrations/\n";
  CommandResult built = Shell("docker build -q -t " + tag + " " + dir);
  EXPECT_EQ(built.exit_code, 0) << built.output;
  return tag;
}

TEST_F(ReleaseTest, MigrateRunbookReleasesOnlyAfterItsMigrationAndAFailingOneChangesNothing) {
  const std::string name = "rel-migrate";
  // A database of its own: the migration must not reach the other tests' schema.
  platform->datastores->Sql("DROP DATABASE IF EXISTS migtest", false, "postgres");
  platform->datastores->Sql("CREATE DATABASE migtest OWNER app", false, "postgres");
  Deploy(platform->Spec(name, 2, {{"DB_NAME", "migtest"}}));
  if (HasFatalFailure()) return;
  const std::string bad = AppsvcImageWithMigration(
      "hosting/appsvc:migrate-bad",
      "ALTER TABLE users ADD COLUMN nickname text;\nSELECT 1 / 0;\n");
  const std::string good = AppsvcImageWithMigration(
      "hosting/appsvc:migrate-good", "ALTER TABLE users ADD COLUMN nickname text;\n");
  auto nickname_columns = [] {
    return platform->datastores->Sql(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND "
        "column_name = 'nickname'",
        false, "migtest");
  };
  const std::string hostctl =
      absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address());
  Load load(Url(name, "/api/users/1"), 4);
  absl::SleepFor(absl::Seconds(1));

  // The failing migration: the run fails naming the error, nothing is released, the schema
  // is as it was, the old version serves every request.
  CommandResult failed = Shell(hostctl + " runbook run migrate -p service=" + name +
                               " -p image=" + bad + " --wait --wait-timeout 300");
  EXPECT_EQ(failed.exit_code, 15) << failed.output;
  EXPECT_THAT(failed.output, HasSubstr("division by zero"));
  EXPECT_THAT(failed.output, HasSubstr("nothing was released: rel-migrate still runs hosting/appsvc:dev"));
  EXPECT_THAT(failed.output, HasSubstr("step 1/3 backup: succeeded"));
  EXPECT_EQ(nickname_columns(), "0\n");
  EXPECT_EQ(platform->datastores->Sql("SELECT max(version) FROM schema_migrations", false, "migtest"),
            "1\n");
  ExpectSwarm(name, {absl::StrCat(name, "-r1 2 2")});  // the job is gone too

  // The good one: migrated, then released.
  CommandResult ok = Shell(hostctl + " runbook run migrate -p service=" + name + " -p image=" +
                           good + " --wait --wait-timeout 300");
  absl::SleepFor(absl::Seconds(1));
  load.Stop();
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("migration applied"));
  EXPECT_EQ(nickname_columns(), "1\n");
  ExpectSwarm(name, {absl::StrCat(name, "-r2 2 2")});
  EXPECT_GT(load.total(), 500);
  EXPECT_EQ(load.failed(), 0) << load.first_error() << " of " << load.total();
  std::cout << "migrate runbook under load: " << load.total() << " requests, " << load.failed()
            << " failed\n";
}

TEST_F(ReleaseTest, RestoreSwitchesAServiceToTheRestoredDatabaseOnlyOnceApproved) {
  const std::string name = "rel-restore";
  platform->datastores->Sql("DROP DATABASE IF EXISTS restoretest", false, "postgres");
  platform->datastores->Sql("CREATE DATABASE restoretest OWNER app", false, "postgres");
  Deploy(platform->Spec(name, 2, {{"DB_NAME", "restoretest"}}));  // writes user 1
  if (HasFatalFailure()) return;
  const std::string hostctl =
      absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address());
  CommandResult backup = Shell(hostctl + " runbook run backup --wait --wait-timeout 300");
  ASSERT_EQ(backup.exit_code, 0) << backup.output;
  // A write after the backup: the restore (to the backup's end: no WAL archive on this
  // platform) does not have it.
  HttpResult later = Http("POST", Url(name, "/api/users"),
                          R"({"name":"later","email":"later@restore.test"})");
  ASSERT_EQ(later.status, 201) << later.body << later.error;
  auto users = [](int port) {
    return Shell(absl::StrCat("psql -h 127.0.0.1 -p ", port,
                              " -U postgres -d restoretest -Atc 'SELECT count(*) FROM users'"))
        .output;
  };
  EXPECT_EQ(users(platform->datastores->pg_port()), "2\n");

  Load load(Url(name, "/api/users/1"), 4);
  const int port = FreePort();
  CommandResult started = Shell(absl::StrCat(
      hostctl, " -o json runbook run restore -p target_time=latest -p service=", name,
      " -p host=", platform->gateway, " -p port=", port));
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const size_t id_at = started.output.find("\"id\": \"");
  ASSERT_NE(id_at, std::string::npos) << started.output;
  const std::string run =
      started.output.substr(id_at + 7, started.output.find('"', id_at + 7) - (id_at + 7));
  CommandResult status;
  absl::Status st = WaitFor(
      [&] {
        status = Shell(hostctl + " runbook status " + run);
        return absl::StrContains(status.output, "waiting for approval") ||
               absl::StrContains(status.output, "  failed");
      },
      absl::Seconds(180), "the restore at its approval gate", absl::Milliseconds(500));
  ASSERT_TRUE(st.ok()) << st << "\n" << status.output;
  EXPECT_EQ(users(port), "1\n") << status.output;
  // Nothing switched yet: the service still runs its first revision on the original.
  ExpectSwarm(name, {absl::StrCat(name, "-r1 2 2")});

  CommandResult approve = Shell(hostctl + " runbook approve " + run + " --comment checked");
  ASSERT_EQ(approve.exit_code, 0) << approve.output;
  CommandResult watch = Shell(hostctl + " runbook watch " + run + " --wait-timeout 300");
  ASSERT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_THAT(watch.output, HasSubstr("uses the restored database at " + platform->gateway));
  ExpectSwarm(name, {absl::StrCat(name, "-r2 2 2")});
  absl::SleepFor(absl::Seconds(1));
  load.Stop();
  EXPECT_GT(load.total(), 100);
  EXPECT_EQ(load.failed(), 0) << load.first_error() << " of " << load.total();
  // A write now lands in the restored instance, not in the original.
  HttpResult after = Http("POST", Url(name, "/api/users"),
                          R"({"name":"after","email":"after@restore.test"})");
  ASSERT_EQ(after.status, 201) << after.body << after.error;
  EXPECT_EQ(users(port), "2\n");
  EXPECT_EQ(users(platform->datastores->pg_port()), "2\n");
}

TEST_F(ReleaseTest, BadRequestsGetClearErrors) {
  const std::string name = "rel-req";
  Deploy(platform->Spec(name, 1));
  if (HasFatalFailure()) return;
  hosting::v1::StartReleaseRequest req;
  req.set_service("no-such-service");
  req.set_image("hosting/appsvc:v2");
  absl::StatusOr<hosting::v1::Release> r = Start(req);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("no-such-service"));

  req.set_service(name);
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  req.mutable_policy()->mutable_canary()->add_steps()->set_set_weight(150);
  req.mutable_policy()->mutable_canary()->add_steps();
  r = Start(req);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("policy.canary.steps[0].set_weight"));
  EXPECT_THAT(r.status().message(), HasSubstr("policy.canary.steps[1]"));

  hosting::v1::StartReleaseRequest same;
  same.set_service(name);
  same.set_image("hosting/appsvc:dev");
  r = Start(same);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("already runs"));

  // A second release while one runs names the running one.
  hosting::v1::StartReleaseRequest gated;
  gated.set_service(name);
  gated.set_image("hosting/appsvc:v2");
  gated.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  gated.mutable_policy()->mutable_canary()->add_steps()->mutable_pause();
  absl::StatusOr<hosting::v1::Release> first = Start(gated);
  ASSERT_TRUE(first.ok()) << first.status();
  hosting::v1::StartReleaseRequest second;
  second.set_service(name);
  second.set_image("hosting/sample:v1");
  r = Start(second);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(first->id()));
  // ApplyService with a new image is refused too while the release runs.
  grpc::ClientContext actx;
  hosting::v1::ApplyServiceRequest apply;
  *apply.mutable_spec() = platform->Spec(name, 1);
  apply.mutable_spec()->set_image("hosting/sample:v2");
  hosting::v1::ApplyServiceResponse aresp;
  grpc::Status ast = services_->ApplyService(&actx, apply, &aresp);
  EXPECT_EQ(ast.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(ast.error_message(), HasSubstr(first->id()));

  // hostctl names the problem and exits with the documented codes.
  CommandResult usage = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                           platform->hostd->address(), " release start ", name,
                                           " --image x --steps 10,banana"));
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  EXPECT_THAT(usage.output, HasSubstr("banana"));
  CommandResult abort = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                           platform->hostd->address(), " release abort ",
                                           first->id(), " --reason test"));
  EXPECT_EQ(abort.exit_code, 0) << abort.output;
  hosting::v1::Release ended = WaitState(first->id(), absl::Seconds(60));
  EXPECT_EQ(ended.state(), hosting::v1::RELEASE_STATE_ABORTED);
  CommandResult rb = Shell(absl::StrCat(HostctlBinary(), " --server ", platform->hostd->address(),
                                        " rollback ", name, " --to-revision 99"));
  EXPECT_EQ(rb.exit_code, 4) << rb.output;
  EXPECT_THAT(rb.output, HasSubstr("not kept"));
  CommandResult unknown = Shell(absl::StrCat(HostctlBinary(), " --server ",
                                             platform->hostd->address(),
                                             " release status no-such-1"));
  EXPECT_EQ(unknown.exit_code, 4) << unknown.output;
}

}  // namespace
}  // namespace hosting::testing
