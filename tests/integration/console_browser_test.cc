// The web console in a real browser against a real platform: hostd serving the built console
// (scripts/build-console.sh) on its HTTP gateway, HAProxy, PostgreSQL, Redis, an agent. The
// browser steps live in tests/console/console_test.mjs (playwright-core driving Debian's
// chromium, headless); this test starts the platform, keeps traffic on the service for the
// canary analyses, hands the script what it needs, and fails with its output.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "tests/integration/platform.h"

namespace hosting::testing {
namespace {

constexpr char kService[] = "con-web";

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &out).ok());
  return out;
}

// The single quotes of a shell word.
std::string Quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

class ConsoleTest : public PlatformTest {
 protected:
  static void SetUpTestSuite() {
    StartPlatform("hosting-console-", {kService}, {},
                  {"--console-dir", SourceDir() + "/console/dist"});
  }
  static void TearDownTestSuite() { StopPlatform(); }
};

TEST_F(ConsoleTest, ACanaryPromotedFromThePageABadOneRolledBackLiveAndAutoscaling) {
  // What the page applies: two replicas; its releases are canaries that stop at 20 % until
  // promoted from the page.
  hosting::v1::ServiceSpec spec = platform->Spec(kService, 2);
  auto* release = spec.mutable_release();
  release->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  release->mutable_canary()->add_steps()->set_set_weight(20);
  release->mutable_canary()->add_steps()->mutable_pause();
  release->mutable_canary()->add_steps()->set_set_weight(100);

  // The bad canary: its tasks answer 30 % of requests with a 500; the analysis, against a
  // baseline started beside it, rolls it back.
  hosting::v1::StartReleaseRequest bad;
  bad.set_service(kService);
  *bad.mutable_spec() = platform->Spec(kService, 2, {{"FAULT_ERROR_RATE", "0.3"}});
  auto* canary = bad.mutable_policy()->mutable_canary();
  bad.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_CANARY);
  canary->set_baseline(true);
  canary->add_steps()->set_set_weight(20);
  auto* analysis = canary->add_steps()->mutable_analysis();
  analysis->mutable_duration()->set_seconds(60);
  analysis->set_min_samples(60);
  canary->add_steps()->set_set_weight(100);

  // Autoscaling on requests per second: 2..4 tasks at 20 rps each, evaluated every 2 s.
  hosting::v1::SetPolicyRequest autoscale;
  auto* policy = autoscale.mutable_policy();
  policy->set_service(kService);
  policy->set_min_replicas(2);
  policy->set_max_replicas(4);
  auto* metric = policy->add_metrics();
  metric->set_kind(hosting::v1::METRIC_KIND_REQUESTS_PER_SECOND);
  metric->set_target(20);
  policy->mutable_evaluation_interval()->set_seconds(2);

  // Traffic all along (about 40 requests/s), so that canaries have samples.
  HttpLoad load(platform->Url(kService, "/api/users?limit=1"), 4, 40);

  const std::string shots = absl::StrCat(SourceDir(), "/build/console-screenshots");
  const std::string command = absl::StrCat(
      "cd ", SourceDir(), " && URL=http://", platform->hostd->http_address(), "/",
      " TOKEN=", Quoted(TestToken()), " SERVICE=", kService, " SPEC=", Quoted(Json(spec)),
      " V2_IMAGE=hosting/appsvc:v2 BAD_RELEASE=", Quoted(Json(bad)),
      " AUTOSCALE=", Quoted(Json(autoscale)),
      " SERVICE_URL=", Quoted(platform->Url(kService, "/api/users?limit=1")),
      " METRICS=", platform->hostd->metrics_address(), " SHOTS=", shots,
      " PLAYWRIGHT=", SourceDir(), "/console/node_modules/playwright-core",
      " timeout 600 node tests/console/console_test.mjs 2>&1");
  CommandResult run = Shell(command);
  load.Stop();
  std::cout << run.output;
  EXPECT_EQ(run.exit_code, 0) << "screenshots in " << shots << "\n" << run.output;
  EXPECT_TRUE(absl::StrContains(run.output, "all console checks passed"));
}

}  // namespace
}  // namespace hosting::testing
