// The operations runbooks (docs/operations/runbooks) as a test: every `sh` block of every
// document, in order, in one shell per document, against a real hostd, hostagent and Swarm.
// A document whose commands stop working fails here.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

constexpr char kService[] = "web";  // the service the documents deploy
constexpr char kApp[] = "api";      // appsvc on the datastores, running before the documents

std::string DocsDir() { return SourceDir() + "/docs/operations/runbooks"; }

std::vector<std::string> Documents() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(DocsDir())) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".md") && name != "README.md") out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class RunbookDocsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(CheckDockerSwarm().ok()) << CheckDockerSwarm();
    dir_ = MakeTempDir("hosting-docs-");
    chmod(dir_.c_str(), 0755);  // restored PostgreSQL servers run as the postgres user
    // The backup runbook's source: a real primary + replica and Redis, reachable from Swarm
    // tasks (appsvc's database).
    const std::string gateway = DockerGatewayAddress();
    ASSERT_TRUE(datastores_.Start(gateway).ok());
    hostd_ = std::make_unique<HostdProcess>(
        dir_, std::vector<std::string>{
                  "--backup-repository=" + dir_ + "/backups",
                  absl::StrCat("--backup-database=host=127.0.0.1 port=", datastores_.replica_port(),
                               " user=postgres"),
                  absl::StrCat("--backup-redis=127.0.0.1:", datastores_.redis_port()),
                  absl::StrCat("--wal-archive-source=host=127.0.0.1 port=", datastores_.pg_port(),
                               " user=postgres"),
                  "--restore-root=" + dir_ + "/restores"});
    ASSERT_TRUE(hostd_->Start().ok());
    agent_ = std::make_unique<AgentProcess>(hostd_->address(), dir_ + "/agent.log");
    ASSERT_TRUE(agent_->Start().ok());
    EXPECT_EQ(RemoveSwarmServicesOf(kService), absl::OkStatus());
    // What 04 (database migration) acts on: an application already running, as in production.
    EXPECT_EQ(RemoveSwarmServicesOf(kApp), absl::OkStatus());
    ASSERT_EQ(Shell("docker tag hosting/appsvc:dev hosting/appsvc:v2").exit_code, 0);
    auto services = hosting::v1::ServiceManager::NewStub(hostd_->channel());
    grpc::ClientContext ctx;
    hosting::v1::ApplyServiceRequest apply;
    *apply.mutable_spec() = AppsvcServiceSpec(kApp, 2, gateway, datastores_);
    hosting::v1::ApplyServiceResponse applied;
    grpc::Status st = services->ApplyService(&ctx, apply, &applied);
    ASSERT_TRUE(st.ok()) << st.error_message();
    absl::Status running = WaitFor(
        [] {
          return Shell(absl::StrCat("docker service ls --filter name=", kApp,
                                    "-r1 --format '{{.Replicas}}'"))
                     .output == "2/2\n";
        },
        absl::Seconds(120), "appsvc service api running", absl::Milliseconds(500));
    ASSERT_TRUE(running.ok()) << running;
  }
  void TearDown() override {
    DeleteHostedService(hostd_->channel(), kApp);
    EXPECT_EQ(RemoveSwarmServicesOf(kApp), absl::OkStatus());
    // Servers a document's restore started and left running.
    Shell("for d in " + dir_ + "/restores/*/; do [ -f \"$d/postmaster.pid\" ] && runuser -u "
          "postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D \"$d\" -m immediate -w stop; done; "
          "true");
    DeleteHostedService(hostd_->channel(), kService);
    EXPECT_EQ(RemoveSwarmServicesOf(kService), absl::OkStatus());
  }

  std::string dir_;
  Datastores datastores_;
  std::unique_ptr<HostdProcess> hostd_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(RunbookDocsTest, EveryDocumentsCommandsRunInOrder) {
  const std::vector<std::string> docs = Documents();
  ASSERT_FALSE(docs.empty());
  // The index lists every document.
  std::ifstream index_file(DocsDir() + "/README.md");
  std::stringstream index;
  index << index_file.rdbuf();
  for (const std::string& doc : docs) {
    SCOPED_TRACE(doc);
    EXPECT_THAT(index.str(), ::testing::HasSubstr("(" + doc + ")")) << "not in the index";
    const std::string path = DocsDir() + "/" + doc;
    if (RunbookDocumentRunsElsewhere(path)) continue;
    CommandResult r = RunRunbookDocument(path, dir_, {"HOSTING_SERVER=" + hostd_->address()});
    ASSERT_EQ(r.exit_code, 0) << "the commands of " << doc << " failed; their output:\n"
                              << r.output;
  }
}

}  // namespace
}  // namespace hosting::testing
