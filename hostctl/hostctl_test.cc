#include "hostctl/hostctl.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "hostctl/client.h"
#include "hostctl/exit_codes.h"
#include "hostctl/output.h"
#include "hostctl/autoscale_commands.h"
#include "hostctl/release_commands.h"
#include "hostctl/spec_file.h"

namespace hosting::hostctl {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

TEST(ParseServiceSpecTest, YamlMapsOntoTheProto) {
  auto spec = ParseServiceSpec(R"(
name: web
image: hosting/sample:v1
replicas: 3
env:
  PORT: "8080"
  DEBUG: "true"
ports:
  - container_port: 8080
    published_port: 18080
health:
  http_path: /health
  interval: 2s
  timeout: 500ms
resources:
  cpu_limit: 0.5
  memoryLimitBytes: 67108864
release:
  strategy: RELEASE_STRATEGY_CANARY
  canary:
    steps:
      - set_weight: 10
      - pause: {duration: 30s}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "web");
  EXPECT_EQ(spec->replicas(), 3);
  EXPECT_EQ(spec->env().at("PORT"), "8080");
  EXPECT_EQ(spec->env().at("DEBUG"), "true");
  EXPECT_EQ(spec->ports(0).published_port(), 18080u);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(spec->health().interval()), 2000);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(spec->health().timeout()), 500);
  EXPECT_DOUBLE_EQ(spec->resources().cpu_limit(), 0.5);
  EXPECT_EQ(spec->resources().memory_limit_bytes(), 64 << 20);
  EXPECT_EQ(spec->release().strategy(), hosting::v1::RELEASE_STRATEGY_CANARY);
  ASSERT_EQ(spec->release().canary().steps_size(), 2);
  EXPECT_EQ(spec->release().canary().steps(0).set_weight(), 10u);
  EXPECT_EQ(TimeUtil::DurationToSeconds(spec->release().canary().steps(1).pause().duration()), 30);
}

TEST(ParseServiceSpecTest, GoStyleDurationsOnlyInDurationFields) {
  auto spec = ParseServiceSpec(
      "name: web\nimage: x\nenv: {TTL: 1m30s}\nstop_grace_period: 1m30s\n"
      "health: {http_path: /h, port: 80, interval: 1500ms}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->env().at("TTL"), "1m30s");
  EXPECT_EQ(TimeUtil::DurationToSeconds(spec->stop_grace_period()), 90);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(spec->health().interval()), 1500);
  auto bad = ParseServiceSpec("name: web\nimage: x\nstop_grace_period: soon\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("stop_grace_period"));
}

TEST(ParseServiceSpecTest, JsonAndWrappedRequestWork) {
  auto spec = ParseServiceSpec(R"({"spec": {"name": "web", "image": "x", "replicas": 1}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "web");
}

TEST(ParseServiceSpecTest, UnquotedNumbersStayStringsInEnvWhenQuoted) {
  auto spec = ParseServiceSpec("name: web\nimage: x\nenv:\n  A: \"007\"\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->env().at("A"), "007");
}

TEST(ParseServiceSpecTest, UnknownFieldIsNamed) {
  auto spec = ParseServiceSpec("name: web\nimage: x\nreplica: 3\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("replica"));
}

TEST(ParseServiceSpecTest, MalformedYamlAndNonMapping) {
  EXPECT_TRUE(absl::IsInvalidArgument(ParseServiceSpec("name: [unclosed").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseServiceSpec("- a\n- b\n").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseServiceSpec("name: web\nreplicas: many\n").status()));
}

// A ten-line alias bomb: each line repeats the previous one ten times (10^9 values expanded).
// Found by spec_fuzz: a key or value that is not UTF-8 made the JSON step throw, which ended
// hostctl; now exit 2 with the byte named.
TEST(ParseServiceSpecTest, RefusesTextThatIsNotUtf8) {
  absl::StatusOr<hosting::v1::ServiceSpec> raw =
      ParseServiceSpec("name: web\nimage: a\nport\x97\x90s: 1\n");
  ASSERT_TRUE(absl::IsInvalidArgument(raw.status())) << raw.status();
  EXPECT_THAT(raw.status().message(), HasSubstr("not UTF-8 text (byte 23"));
  // Overlong forms and surrogates are not UTF-8 either.
  EXPECT_TRUE(absl::IsInvalidArgument(ParseServiceSpec("name: \xc0\xaf\n").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseServiceSpec("name: \xed\xa0\x80\n").status()));
  EXPECT_TRUE(ParseServiceSpec("name: web\nimage: caf\xc3\xa9\n").ok());
}

TEST(ParseServiceSpecTest, RefusesYamlAliasBombsAndDeepNesting) {
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    absl::StrAppend(&bomb, "a", i, ": &a", i, " [");
    for (int k = 0; k < 10; ++k) absl::StrAppend(&bomb, k ? ", " : "", "*a", i - 1);
    absl::StrAppend(&bomb, "]\n");
  }
  absl::StatusOr<hosting::v1::ServiceSpec> spec = ParseServiceSpec(bomb);
  ASSERT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("more than 100000 values"));
  std::string deep = "name: ";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  spec = ParseServiceSpec(deep);
  ASSERT_FALSE(spec.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << spec.status();
}

TEST(ReadServiceSpecFileTest, RefusesInputLargerThanOneMebibyteWithoutReadingItAll) {
  absl::StatusOr<hosting::v1::ServiceSpec> spec = ReadServiceSpecFile("/dev/zero");
  ASSERT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("/dev/zero: larger than 1024 KiB"));
}

TEST(ReadServiceSpecFileTest, MissingFileNamesThePath) {
  auto spec = ReadServiceSpecFile("/nonexistent/web.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("/nonexistent/web.yaml"));
}

TEST(OutputTest, FormatTableAlignsColumns) {
  EXPECT_EQ(FormatTable({{"NAME", "TASKS"}, {"a-long-name", "1/2"}}),
            "NAME         TASKS\na-long-name  1/2\n");
}

TEST(OutputTest, ParseFormat) {
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(*ParseFormat("yaml"), Format::kYaml);
  EXPECT_EQ(*ParseFormat("table"), Format::kTable);
  EXPECT_FALSE(ParseFormat("xml").ok());
}

TEST(OutputTest, ServiceAsJsonAndYaml) {
  hosting::v1::Service s;
  s.mutable_spec()->set_name("web");
  s.set_revision(2);
  std::ostringstream json, yaml;
  PrintService(s, Format::kJson, json);
  EXPECT_THAT(json.str(), HasSubstr("\"name\": \"web\""));
  EXPECT_THAT(json.str(), HasSubstr("\"revision\": \"2\""));
  PrintService(s, Format::kYaml, yaml);
  EXPECT_THAT(yaml.str(), HasSubstr("name: \"web\""));
}

int RunArgs(std::vector<std::string> args, std::string* out_text, std::string* err_text) {
  args.insert(args.begin(), "hostctl");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  int code = Run(static_cast<int>(argv.size()), argv.data(), out, err);
  *out_text = out.str();
  *err_text = err.str();
  return code;
}

TEST(RunTest, UsageErrorsExitTwo) {
  std::string out, err;
  EXPECT_EQ(RunArgs({}, &out, &err), kExitUsage);
  EXPECT_EQ(RunArgs({"service", "frobnicate"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunArgs({"service", "scale", "web"}, &out, &err), kExitUsage);
  EXPECT_EQ(RunArgs({"-o", "xml", "service", "list"}, &out, &err), kExitUsage);
}

TEST(RunTest, HelpExitsZero) {
  std::string out, err;
  EXPECT_EQ(RunArgs({"--help"}, &out, &err), kExitOk);
  EXPECT_THAT(out, HasSubstr("service"));
}

TEST(RunTest, BadSpecFileExitsTwoWithoutCallingHostd) {
  std::string out, err;
  EXPECT_EQ(RunArgs({"--server", "127.0.0.1:1", "service", "apply", "-f", "/nonexistent.yaml"},
                    &out, &err),
            kExitUsage);
  EXPECT_THAT(err, HasSubstr("/nonexistent.yaml"));
}

TEST(RunTest, MalformedAutoscaleFlagExitsTwoWithoutCallingHostd) {
  std::string out, err;
  EXPECT_EQ(RunArgs({"--server", "127.0.0.1:1", "autoscale", "set", "web", "--scale-up-rate", "4"},
                    &out, &err),
            kExitUsage);
  EXPECT_THAT(err, HasSubstr("--scale-up-rate"));
}

TEST(RunTest, UnreachableServerExitsSix) {
  std::string out, err;
  EXPECT_EQ(RunArgs({"--server", "127.0.0.1:1", "--timeout", "2", "service", "list"}, &out, &err),
            kExitUnavailable);
  EXPECT_THAT(err, HasSubstr("list services"));
}

TEST(ReleaseFlagsTest, CanaryStepsParse) {
  auto steps = ParseCanarySteps("10, pause:30s,analysis:1m,50%,pause,analysis,100");
  ASSERT_TRUE(steps.ok()) << steps.status();
  ASSERT_EQ(steps->size(), 7u);
  EXPECT_EQ((*steps)[0].set_weight(), 10u);
  EXPECT_EQ(TimeUtil::DurationToSeconds((*steps)[1].pause().duration()), 30);
  EXPECT_EQ(TimeUtil::DurationToSeconds((*steps)[2].analysis().duration()), 60);
  EXPECT_EQ((*steps)[3].set_weight(), 50u);
  EXPECT_TRUE((*steps)[4].has_pause());
  EXPECT_FALSE((*steps)[4].pause().has_duration());  // a manual gate
  EXPECT_TRUE((*steps)[5].has_analysis());
  EXPECT_EQ((*steps)[6].set_weight(), 100u);
  for (const char* bad : {"", "101", "banana", "pause:soon", "-5"}) {
    auto r = ParseCanarySteps(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_THAT(ParseCanarySteps("10,banana").status().message(), HasSubstr("banana"));
  // judge: an analysis with the statistical judge.
  auto judged = ParseCanarySteps("20,judge:45s,analysis");
  ASSERT_TRUE(judged.ok()) << judged.status();
  EXPECT_TRUE((*judged)[1].analysis().has_judge());
  EXPECT_EQ(TimeUtil::DurationToSeconds((*judged)[1].analysis().duration()), 45);
  EXPECT_FALSE((*judged)[2].analysis().has_judge());
  EXPECT_FALSE(ParseCanarySteps("judge:soon").ok());
}

TEST(AutoscaleFlagsTest, RateLimitsAndPromqlMetricsParse) {
  auto r = ParseRateLimit("4,100%/15s");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tasks(), 4);
  EXPECT_EQ(r->percent(), 100);
  EXPECT_EQ(TimeUtil::DurationToSeconds(r->period()), 15);
  EXPECT_EQ(ParseRateLimit("50%/1m")->percent(), 50);
  for (const char* bad : {"4", "4/", "x/15s", "0/15s", "4/soon", "/15s"}) {
    EXPECT_FALSE(ParseRateLimit(bad).ok()) << bad;
  }
  auto m = ParsePromqlMetric("sum(rate(x{a=\"b\"}[1m]))=100");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->promql(), "sum(rate(x{a=\"b\"}[1m]))");
  EXPECT_EQ(m->target(), 100);
  EXPECT_THAT(ParsePromqlMetric("up").status().message(), HasSubstr("<query>=<target>"));
}

TEST(AutoscaleFlagsTest, ExampleSpecWithAPolicyParses) {
  std::ifstream in(std::string(HOSTING_SOURCE_DIR) + "/deploy/examples/web-autoscaled.yaml");
  std::stringstream text;
  text << in.rdbuf();
  auto spec = ParseServiceSpec(text.str());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->autoscaling().min_replicas(), 2);
  EXPECT_EQ(spec->autoscaling().metrics(0).kind(), hosting::v1::METRIC_KIND_CPU_UTILIZATION);
  EXPECT_EQ(TimeUtil::DurationToSeconds(spec->autoscaling().scale_down_stabilization()), 120);
}

TEST(ServiceSpecTest, SwarmStackExampleParses) {
  std::ifstream in(std::string(HOSTING_SOURCE_DIR) + "/deploy/examples/appsvc-swarm.yaml");
  std::stringstream text;
  text << in.rdbuf();
  auto spec = ParseServiceSpec(text.str());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "web");
  EXPECT_EQ(spec->env().at("DB_REPLICA_HOST"), "postgres-replica");
  EXPECT_EQ(spec->labels().at("prometheus.job"), "appsvc");
  EXPECT_EQ(spec->ports(0).container_port(), 3000);
  EXPECT_EQ(spec->health().http_path(), "/health");
}

TEST(AutoscaleOutputTest, StatusShowsMetricsAndHistory) {
  hosting::v1::AutoscalingStatus s;
  s.set_service("web");
  s.set_current_replicas(2);
  s.set_desired_replicas(5);
  s.set_ready_replicas(2);
  *s.mutable_evaluated_at() = TimeUtil::GetCurrentTime();
  s.set_message("scale up 2 -> 5");
  auto* r = s.add_recommendations();
  r->mutable_metric()->set_kind(hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND);
  r->mutable_metric()->set_target(50);
  r->set_value(120);
  r->set_recommended_replicas(5);
  auto* d = s.add_history();
  d->set_from_replicas(2);
  d->set_to_replicas(5);
  d->set_reason("rps 120 vs target 50 -> 5");
  std::ostringstream out;
  PrintAutoscalingStatus(s, Format::kTable, out);
  EXPECT_THAT(out.str(), HasSubstr("2 (desired 5, 2 ready)"));
  EXPECT_THAT(out.str(), HasSubstr("rps/task"));
  EXPECT_THAT(out.str(), HasSubstr("120"));
  EXPECT_THAT(out.str(), HasSubstr("rps 120 vs target 50 -> 5"));
}

TEST(ReleaseFlagsTest, CountsAndPercents) {
  EXPECT_EQ(ParseIntOrPercent("3")->count(), 3);
  EXPECT_EQ(ParseIntOrPercent("25%")->percent(), 25);
  EXPECT_FALSE(ParseIntOrPercent("125%").ok());
  EXPECT_FALSE(ParseIntOrPercent("x").ok());
}

TEST(ReleaseFlagsTest, EveryOutcomeHasItsExitCode) {
  EXPECT_EQ(ExitCodeForRelease(hosting::v1::RELEASE_STATE_SUCCEEDED), 0);
  EXPECT_EQ(ExitCodeForRelease(hosting::v1::RELEASE_STATE_ROLLED_BACK), 10);
  EXPECT_EQ(ExitCodeForRelease(hosting::v1::RELEASE_STATE_FAILED), 11);
  EXPECT_EQ(ExitCodeForRelease(hosting::v1::RELEASE_STATE_ABORTED), 12);
  EXPECT_EQ(ExitCodeForRelease(hosting::v1::RELEASE_STATE_TIMED_OUT), 13);
  EXPECT_EQ(ExitCodeForRelease(hosting::v1::RELEASE_STATE_PROGRESSING), 7);
}

TEST(ReleaseOutputTest, StatusShowsAnalysisNumbers) {
  hosting::v1::Release r;
  r.set_id("web-3");
  r.set_service("web");
  r.set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  r.set_state(hosting::v1::RELEASE_STATE_ROLLED_BACK);
  r.set_weight(20);
  auto* a = r.add_analyses();
  a->set_verdict(hosting::v1::ANALYSIS_VERDICT_FAILED);
  a->set_reason("canary worse than allowed");
  auto* m = a->add_metrics();
  m->set_metric("error_ratio_increase");
  m->set_canary(0.3);
  m->set_stable(0.0);
  m->set_threshold(0.01);
  std::ostringstream out;
  PrintRelease(r, Format::kTable, out);
  EXPECT_THAT(out.str(), HasSubstr("rolled back"));
  EXPECT_THAT(out.str(), HasSubstr("Analysis 1: failed: canary worse than allowed"));
  EXPECT_THAT(out.str(), HasSubstr("canary 0.3, stable 0, threshold 0.01"));
  EXPECT_THAT(out.str(), HasSubstr("approximated by replica counts"));

  // The judge's metrics: test, numbers, verdict.
  a->set_judged(true);
  a->set_score(50);
  auto* j = a->add_metrics();
  j->set_metric("latency");
  j->set_method("mann-whitney");
  j->set_canary(0.0131);
  j->set_stable(0.0101);
  j->set_effect(0.297);
  j->set_p_value(1.2e-9);
  j->set_canary_samples(412);
  j->set_stable_samples(1650);
  j->set_verdict(hosting::v1::ANALYSIS_VERDICT_FAILED);
  std::ostringstream judged;
  PrintRelease(r, Format::kTable, judged);
  EXPECT_THAT(judged.str(), HasSubstr("judge score: 50"));
  EXPECT_THAT(judged.str(),
              HasSubstr("judge latency (mann-whitney): failed, canary median 13.10 ms, stable "
                        "10.10 ms, +29.7%, p=1.2e-09, samples 412/1650"));
  // release judge: the new verdict beside the old.
  hosting::v1::JudgeReleaseResponse again;
  again.set_id("web-3");
  auto* ja = again.add_analyses();
  ja->set_index(0);
  ja->set_kind("step");
  ja->set_original_verdict(hosting::v1::ANALYSIS_VERDICT_FAILED);
  ja->mutable_judged()->set_verdict(hosting::v1::ANALYSIS_VERDICT_PASSED);
  ja->mutable_judged()->set_reason("judge: score 100 (pass 95)");
  std::ostringstream rejudged;
  PrintJudged(again, Format::kTable, rejudged);
  EXPECT_THAT(rejudged.str(),
              HasSubstr("Analysis 1 (step) (was failed): passed: judge: score 100 (pass 95)"));
  std::ostringstream none;
  PrintJudged(hosting::v1::JudgeReleaseResponse(), Format::kTable, none);
  EXPECT_THAT(none.str(), HasSubstr("no analysis with stored samples"));
}

TEST(ReleaseOutputTest, ACanaryComparedWithItsBaselineSaysSo) {
  hosting::v1::Release r;
  r.set_id("web-4");
  r.set_from_revision(3);
  r.set_to_revision(4);
  r.set_baseline_revision(5);
  auto* a = r.add_analyses();
  a->set_verdict(hosting::v1::ANALYSIS_VERDICT_PASSED);
  a->set_baseline(true);
  a->set_compared_revision(5);
  auto* j = a->add_metrics();
  j->set_metric("latency");
  j->set_method("mann-whitney");
  j->set_canary(0.010);
  j->set_stable(0.0101);
  j->set_verdict(hosting::v1::ANALYSIS_VERDICT_PASSED);
  std::ostringstream out;
  PrintRelease(r, Format::kTable, out);
  EXPECT_THAT(out.str(), HasSubstr("Baseline:   revision 5 (revision 3's spec"));
  EXPECT_THAT(out.str(), HasSubstr("canary median 10.00 ms, baseline 10.10 ms"));
}

TEST(RunTest, BaselineWithoutStepsIsAUsageErrorBeforeAnyCall) {
  std::string out, err;
  EXPECT_EQ(RunArgs({"--server", "127.0.0.1:1", "release", "start", "web", "--image", "app:2",
                     "--baseline"},
                    &out, &err),
            kExitUsage);
  EXPECT_THAT(err, HasSubstr("--baseline runs beside the canary of --steps"));
}

}  // namespace
// hostctl's token sources, in order; each test sets the environment it needs.
class ResolveTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("HOSTCTL_TOKEN");
    unsetenv("HOSTCTL_TOKEN_FILE");
    home_ = ::testing::TempDir() + "/hostctl-home-" + std::to_string(getpid());
    std::filesystem::create_directories(home_ + "/.config/hosting");
    setenv("HOME", home_.c_str(), 1);
    g_.server = "127.0.0.1:1";  // not the default: no bootstrap fallback
  }
  void TearDown() override {
    unsetenv("HOSTCTL_TOKEN");
    unsetenv("HOSTCTL_TOKEN_FILE");
    std::filesystem::remove_all(home_);
  }
  std::string Write(const std::string& name, const std::string& text, int mode) {
    const std::string path = home_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }
  std::string home_;
  Globals g_;
};

TEST_F(ResolveTokenTest, FlagThenEnvironmentThenFilesInOrder) {
  const std::string file = Write("t", "hst_from_file\n", 0600);
  Write(".config/hosting/token", "hst_from_config\n", 0600);
  EXPECT_EQ(*ResolveToken(g_), "hst_from_config");
  setenv("HOSTCTL_TOKEN_FILE", file.c_str(), 1);
  EXPECT_EQ(*ResolveToken(g_), "hst_from_file");
  setenv("HOSTCTL_TOKEN", "hst_from_env", 1);
  EXPECT_EQ(*ResolveToken(g_), "hst_from_env");
  g_.token_flag = "hst_from_flag";
  EXPECT_EQ(*ResolveToken(g_), "hst_from_flag");
}

TEST_F(ResolveTokenTest, AConfigFileOthersMayReadIsRefused) {
  Write(".config/hosting/token", "hst_x\n", 0644);
  absl::StatusOr<std::string> token = ResolveToken(g_);
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(std::string(token.status().message()), HasSubstr("chmod 600"));
}

TEST_F(ResolveTokenTest, NoTokenAnywhereIsEmptyAndAMalformedOneIsRefused) {
  EXPECT_EQ(*ResolveToken(g_), "");
  g_.token_flag = "hst with space";
  EXPECT_FALSE(ResolveToken(g_).ok());
  g_.token_flag.clear();
  g_.token_file_flag = Write("multi", "\n", 0600);
  EXPECT_FALSE(ResolveToken(g_).ok());
  g_.token_file_flag = home_ + "/missing";
  EXPECT_FALSE(ResolveToken(g_).ok());
}

TEST(ExitCodeTest, AuthFailuresHaveTheirOwnCodes) {
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAUTHENTICATED), kExitUnauthenticated);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::PERMISSION_DENIED), kExitPermissionDenied);
  EXPECT_EQ(kExitUnauthenticated, 9);
  EXPECT_EQ(kExitPermissionDenied, 14);
}

TEST(RunTest, AnUnusableTokenFileIsAUsageErrorBeforeAnyCall) {
  std::string out, err;
  EXPECT_EQ(RunArgs({"--token-file", "/nonexistent/token", "service", "list"}, &out, &err),
            kExitUsage);
  EXPECT_THAT(err, HasSubstr("/nonexistent/token"));
}

}  // namespace hosting::hostctl
