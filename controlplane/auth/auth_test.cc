#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/auth/permissions.h"
#include "controlplane/auth/token_authority.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/testing/fault_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "hosting/v1/agent.grpc.pb.h"
#include "hosting/v1/auth.grpc.pb.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/runbooks.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::controlplane {
namespace {

using ::hosting::v1::Role;
using ::testing::HasSubstr;

std::string TempDir() {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() /
             absl::StrCat("hosting_auth_test_", getpid(), "_", n++);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// Every method of every hosting.v1 service linked into this binary has a rule: a new RPC
// without one fails here (and is refused by the gate until it has one).
TEST(PermissionsTest, EveryMethodOfTheApiHasARule) {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  int methods = 0;
  // A message of each file pulls its descriptors into the binary.
  for (const google::protobuf::FileDescriptor* fd :
       {hosting::v1::ApplyServiceRequest::descriptor()->file(),
        hosting::v1::ListNodesRequest::descriptor()->file(),
        hosting::v1::StartReleaseRequest::descriptor()->file(),
        hosting::v1::SetPolicyRequest::descriptor()->file(),
        hosting::v1::RunRunbookRequest::descriptor()->file(),
        hosting::v1::AgentMessage::descriptor()->file(),
        hosting::v1::CreateTokenRequest::descriptor()->file()}) {
    for (int s = 0; s < fd->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* svc = fd->service(s);
      for (int m = 0; m < svc->method_count(); ++m) {
        const std::string path = absl::StrCat("/", svc->full_name(), "/", svc->method(m)->name());
        EXPECT_NE(FindMethodRule(path), nullptr) << path << " has no permission rule";
        ++methods;
      }
    }
  }
  EXPECT_GT(methods, 30);
  // And the table names no method that does not exist.
  for (const MethodRule& rule : MethodRules()) {
    if (absl::StartsWith(rule.method, "/grpc.")) continue;
    std::string name(rule.method.substr(1));
    name[name.rfind('/')] = '.';
    EXPECT_NE(pool->FindMethodByName(name), nullptr) << rule.method;
  }
}

TEST(PermissionsTest, RolesAreALadderAndAgentStandsApart) {
  using P = Permission;
  EXPECT_TRUE(RoleHas(Role::ROLE_VIEWER, P::kRead));
  EXPECT_FALSE(RoleHas(Role::ROLE_VIEWER, P::kDeploy));
  EXPECT_TRUE(RoleHas(Role::ROLE_DEPLOYER, P::kDeploy));
  EXPECT_FALSE(RoleHas(Role::ROLE_DEPLOYER, P::kOperate));
  EXPECT_TRUE(RoleHas(Role::ROLE_OPERATOR, P::kOperate));
  EXPECT_FALSE(RoleHas(Role::ROLE_OPERATOR, P::kAdmin));
  EXPECT_FALSE(RoleHas(Role::ROLE_OPERATOR, P::kAgent));
  for (P p : {P::kRead, P::kDeploy, P::kOperate, P::kAdmin, P::kAgent}) {
    EXPECT_TRUE(RoleHas(Role::ROLE_ADMIN, p));
  }
  EXPECT_TRUE(RoleHas(Role::ROLE_AGENT, P::kAgent));
  EXPECT_FALSE(RoleHas(Role::ROLE_AGENT, P::kRead));
  EXPECT_FALSE(RoleHas(Role::ROLE_UNSPECIFIED, P::kAuthenticated));
  Role r;
  EXPECT_TRUE(ParseRole("operator", &r));
  EXPECT_EQ(r, Role::ROLE_OPERATOR);
  EXPECT_FALSE(ParseRole("root", &r));
}

class TokenAuthorityTest : public ::testing::Test {
 protected:
  TokenAuthorityTest()
      : store_(std::make_unique<FaultStore>(
            std::unique_ptr<Store>(SqliteStore::Open(TempDir() + "/hostd.db").value()))),
        tokens_(*store_, clock_) {}

  hosting::v1::CreateTokenResponse Make(Role role, absl::Duration ttl = absl::ZeroDuration(),
                                        std::vector<std::string> services = {}) {
    hosting::v1::CreateTokenRequest req;
    req.set_role(role);
    for (auto& s : services) req.add_services(s);
    if (ttl > absl::ZeroDuration()) req.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    absl::StatusOr<hosting::v1::CreateTokenResponse> made = tokens_.Create(req, "test");
    EXPECT_TRUE(made.ok()) << made.status();
    return *made;
  }

  FakeClock clock_;
  std::unique_ptr<FaultStore> store_;
  TokenAuthority tokens_;
};

TEST(AgentCertificateTest, TheAgentUnitMakesTheCommonNameTheNode) {
  std::optional<Caller> agent =
      AuthGate::AgentCertificate("CN=node-1,OU=hosting-agent,O=Example", "node-1");
  ASSERT_TRUE(agent.has_value());
  EXPECT_EQ(agent->principal, "cert:node-1");
  EXPECT_EQ(agent->role, hosting::v1::ROLE_AGENT);
  EXPECT_EQ(agent->node, "node-1");
  EXPECT_TRUE(AuthGate::AgentCertificate("OU=hosting-agent, CN=n2", "n2").has_value());
  // No agent unit, one only inside another value (escaped comma), or no common name.
  EXPECT_FALSE(AuthGate::AgentCertificate("CN=alice,O=Example", "alice").has_value());
  EXPECT_FALSE(
      AuthGate::AgentCertificate("CN=x\\,OU=hosting-agent,O=Example", "x,OU=hosting-agent"));
  EXPECT_FALSE(AuthGate::AgentCertificate("OU=hosting-agents,CN=n", "n").has_value());
  EXPECT_FALSE(AuthGate::AgentCertificate("OU=hosting-agent", "").has_value());
}

TEST(TokenHashTest, IsSha256) {
  // FIPS 180-2's test vectors.
  EXPECT_EQ(TokenAuthority::HashSecret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(TokenAuthority::HashSecret(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(TokenAuthorityTest, ASecretIsShownOnceAndOnlyItsHashIsStored) {
  hosting::v1::CreateTokenResponse made = Make(Role::ROLE_DEPLOYER, absl::ZeroDuration(), {"web"});
  EXPECT_TRUE(absl::StartsWith(made.secret(), "hst_")) << made.secret();
  EXPECT_EQ(made.secret().size(), 4u + 43u);
  EXPECT_EQ(made.token().accessor().size(), 16u);
  auto stored = store_->ListTokens();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].secret_sha256(), TokenAuthority::HashSecret(made.secret()));
  EXPECT_FALSE(absl::StrContains((*stored)[0].SerializeAsString(), made.secret()));

  absl::StatusOr<Caller> caller = tokens_.Authenticate(made.secret());
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "token:" + made.token().accessor());
  EXPECT_EQ(caller->role, Role::ROLE_DEPLOYER);
  EXPECT_THAT(caller->services, ::testing::ElementsAre("web"));
  absl::Status wrong = tokens_.Authenticate(made.secret() + "x").status();
  EXPECT_TRUE(absl::IsUnauthenticated(wrong)) << wrong;
}

TEST_F(TokenAuthorityTest, ExpiredAndRevokedTokensAreRefusedSayingWhy) {
  hosting::v1::CreateTokenResponse brief = Make(Role::ROLE_VIEWER, absl::Minutes(10));
  hosting::v1::CreateTokenResponse revoked = Make(Role::ROLE_ADMIN);
  ASSERT_TRUE(tokens_.Authenticate(brief.secret()).ok());
  ASSERT_TRUE(tokens_.Authenticate(revoked.secret()).ok());
  // Revoked here: at once, though the valid answer is cached.
  ASSERT_TRUE(tokens_.Revoke(revoked.token().accessor()).ok());
  absl::Status st = tokens_.Authenticate(revoked.secret()).status();
  EXPECT_TRUE(absl::IsUnauthenticated(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("revoked"));
  // Expiry needs no store read: a cached token expires on time.
  clock_.Advance(absl::Minutes(10));
  st = tokens_.Authenticate(brief.secret()).status();
  EXPECT_TRUE(absl::IsUnauthenticated(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("expired"));
  EXPECT_TRUE(absl::IsNotFound(tokens_.Revoke("nope").status()));
}

TEST_F(TokenAuthorityTest, ARevocationElsewhereIsSeenOnceTheCacheLapses) {
  hosting::v1::CreateTokenResponse made = Make(Role::ROLE_OPERATOR);
  ASSERT_TRUE(tokens_.Authenticate(made.secret()).ok());
  // Another hostd on the same store revokes it.
  TokenAuthority other(*store_, clock_);
  ASSERT_TRUE(other.Revoke(made.token().accessor()).ok());
  EXPECT_TRUE(tokens_.Authenticate(made.secret()).ok()) << "cached for the TTL";
  clock_.Advance(absl::Seconds(6));
  EXPECT_TRUE(absl::IsUnauthenticated(tokens_.Authenticate(made.secret()).status()));
}

TEST_F(TokenAuthorityTest, OneCallerRefreshesAheadOfTheLapseAndTheOthersKeepTheCachedAnswer) {
  hosting::v1::CreateTokenResponse made = Make(Role::ROLE_OPERATOR);
  ASSERT_TRUE(tokens_.Authenticate(made.secret()).ok());
  bool due = true;
  ASSERT_TRUE(tokens_.AuthenticateCached(made.secret(), &due).has_value());
  EXPECT_FALSE(due) << "fresh: nothing to refresh";
  // Within the last second of the TTL: the first caller is asked to refresh, no other.
  clock_.Advance(absl::Milliseconds(4500));
  ASSERT_TRUE(tokens_.AuthenticateCached(made.secret(), &due).has_value());
  EXPECT_TRUE(due);
  ASSERT_TRUE(tokens_.AuthenticateCached(made.secret(), &due).has_value());
  EXPECT_FALSE(due);
  // Revoked elsewhere before the refresh: the refresh sees it, and the cache is fresh again.
  TokenAuthority other(*store_, clock_);
  ASSERT_TRUE(other.Revoke(made.token().accessor()).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(tokens_.Refresh(made.secret()).status()));
  clock_.Advance(absl::Seconds(3));
  std::optional<absl::StatusOr<Caller>> cached = tokens_.AuthenticateCached(made.secret(), &due);
  ASSERT_TRUE(cached.has_value()) << "the refresh restarted the TTL";
  EXPECT_TRUE(absl::IsUnauthenticated(cached->status()));
  EXPECT_FALSE(due);
  // Once refreshed, the claim is released: the next lapse asks again.
  clock_.Advance(absl::Milliseconds(1200));
  ASSERT_TRUE(tokens_.AuthenticateCached(made.secret(), &due).has_value());
  EXPECT_TRUE(due);
}

TEST_F(TokenAuthorityTest, AKnownTokenOutlivesAStoreOutageAndAnUnknownOneIsUnavailable) {
  hosting::v1::CreateTokenResponse known = Make(Role::ROLE_VIEWER);
  hosting::v1::CreateTokenResponse unseen = Make(Role::ROLE_VIEWER);
  ASSERT_TRUE(tokens_.Authenticate(known.secret()).ok());
  clock_.Advance(absl::Minutes(1));
  store_->SetUnavailable(true);
  EXPECT_TRUE(tokens_.Authenticate(known.secret()).ok());
  EXPECT_TRUE(absl::IsUnavailable(tokens_.Authenticate(unseen.secret()).status()));
  store_->SetUnavailable(false);
  EXPECT_TRUE(tokens_.Authenticate(unseen.secret()).ok());
}

TEST_F(TokenAuthorityTest, CreateNamesEveryBadField) {
  hosting::v1::CreateTokenRequest req;
  req.add_services("web");
  req.set_node("n1");
  req.mutable_ttl()->set_seconds(-5);
  req.set_description(std::string(300, 'x'));
  absl::Status st = tokens_.Create(req, "test").status();
  ASSERT_TRUE(absl::IsInvalidArgument(st));
  for (const char* field : {"role", "services", "node", "ttl", "description"}) {
    EXPECT_THAT(st.ToString(), HasSubstr(field));
  }
  req.Clear();
  req.set_role(Role::ROLE_DEPLOYER);
  req.add_services("Not A Name");
  EXPECT_TRUE(absl::IsInvalidArgument(tokens_.Create(req, "test").status()));
}

TEST_F(TokenAuthorityTest, BootstrapWritesRootOnlyTokensOnceAndRecoversOnRequest) {
  const std::string dir = TempDir();
  ASSERT_TRUE(tokens_.Bootstrap(dir, false).ok());
  struct stat st{};
  ASSERT_EQ(stat((dir + "/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir + "/agent.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = [&](const std::string& name) {
    std::ifstream in(dir + "/" + name);
    std::string s;
    std::getline(in, s);
    return s;
  };
  const std::string admin = read("admin.token");
  absl::StatusOr<Caller> caller = tokens_.Authenticate(admin);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->role, Role::ROLE_ADMIN);
  EXPECT_EQ(tokens_.Authenticate(read("agent.token"))->role, Role::ROLE_AGENT);
  // A second start changes nothing.
  ASSERT_TRUE(tokens_.Bootstrap(dir, false).ok());
  EXPECT_EQ(read("admin.token"), admin);
  EXPECT_EQ(store_->ListTokens()->size(), 2u);
  // --recover-admin-token: a new admin token, the old one still valid until revoked.
  ASSERT_TRUE(tokens_.Bootstrap(dir, true).ok());
  EXPECT_NE(read("admin.token"), admin);
  EXPECT_EQ(tokens_.Authenticate(read("admin.token"))->role, Role::ROLE_ADMIN);
  EXPECT_EQ(store_->ListTokens()->size(), 3u);
}

TEST_F(TokenAuthorityTest, TheGateRefusesWithTheRightCodeAndNamesWhatIsMissing) {
  hosting::v1::CreateTokenResponse viewer = Make(Role::ROLE_VIEWER);
  AuthGate gate(&tokens_);
  const std::string bearer = "Bearer " + viewer.secret();
  EXPECT_TRUE(gate.Decide("/hosting.v1.ServiceManager/ListServices", bearer).ok());
  // Cached from here on: no store read.
  EXPECT_TRUE(gate.DecideCached("/hosting.v1.ServiceManager/GetService", bearer).has_value());

  absl::Status st = gate.Decide("/hosting.v1.ServiceManager/ApplyService", bearer).status();
  EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("'deploy' permission"));
  EXPECT_THAT(std::string(st.message()), HasSubstr(viewer.token().accessor()));

  st = gate.Decide("/hosting.v1.ServiceManager/ListServices", "").status();
  EXPECT_TRUE(absl::IsUnauthenticated(st)) << st;
  st = gate.Decide("/hosting.v1.ServiceManager/ListServices", "Basic abc").status();
  EXPECT_TRUE(absl::IsUnauthenticated(st)) << st;
  st = gate.Decide("/hosting.v1.ServiceManager/ListServices", "Bearer hst_nope").status();
  EXPECT_TRUE(absl::IsUnauthenticated(st)) << st;
  st = gate.Decide("/hosting.v1.Secret/Backdoor", bearer).status();
  EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("permission table"));
  // Health is public; with auth off everything else passes as anonymous, but not a method
  // the table lacks.
  EXPECT_TRUE(gate.Decide("/grpc.health.v1.Health/Check", "").ok());
  AuthGate off(nullptr);
  EXPECT_EQ(off.Decide("/hosting.v1.Auth/CreateToken", "")->principal, "anonymous");
  EXPECT_TRUE(absl::IsPermissionDenied(off.Decide("/hosting.v1.Secret/Backdoor", "").status()));
}

}  // namespace
}  // namespace hosting::controlplane
