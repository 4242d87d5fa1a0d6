// hostd's API with its tokens, as an outsider meets it: every RPC that server reflection lists,
// called by every role and without a token; tokens limited to a service, expired and revoked;
// hostctl finding its token and saying what failed; an agent token bound to its node; the
// bootstrap files and --insecure-no-auth's limits. docs/security.md.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/bearer_token.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "hosting/v1/agent.grpc.pb.h"
#include "hosting/v1/auth.grpc.pb.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/runbooks.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace hosting::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;
namespace pb = google::protobuf;

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

// What each principal of the walk is, and what it may do.
struct Principal {
  std::string name;
  std::string token;  // empty: no authorization metadata
  std::set<std::string> permissions;
};

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(CheckDockerSwarm().ok());
    dir_ = new std::string(MakeTempDir("hosting-auth-"));
    hostd_ = new HostdProcess(*dir_);
    // This suite's hostd makes its own tokens at first start, as on a new machine.
    hostd_->set_import_test_token(false);
    absl::Status st = hostd_->Start();
    ASSERT_TRUE(st.ok()) << st;
    admin_ = new std::string(ReadLine(*dir_ + "/admin.token"));
    ASSERT_FALSE(admin_->empty());
  }
  static void TearDownTestSuite() {
    delete hostd_;
    hostd_ = nullptr;
  }

  // hostctl with exactly this token (none: empty) and no other source of one.
  static CommandResult Hostctl(const std::string& token, const std::string& args,
                               const std::string& home = "/nonexistent") {
    return Shell(absl::StrCat("env -u HOSTCTL_TOKEN_FILE HOME=", home, " HOSTCTL_TOKEN='", token,
                              "' ", HostctlBinary(), " -s ", hostd_->address(), " ", args,
                              " 2>&1"));
  }
  // A new token's secret.
  static std::string MakeToken(const std::string& args) {
    CommandResult r = Shell(absl::StrCat("env HOSTCTL_TOKEN='", *admin_, "' ", HostctlBinary(),
                                         " -s ", hostd_->address(), " token create ", args,
                                         " 2>/dev/null"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // The secret is the first line (stdout); the note after it is stderr.
    return std::string(absl::StripAsciiWhitespace(r.output.substr(0, r.output.find('\n'))));
  }

  static std::string* dir_;
  static HostdProcess* hostd_;
  static std::string* admin_;
};

std::string* AuthTest::dir_ = nullptr;
HostdProcess* AuthTest::hostd_ = nullptr;
std::string* AuthTest::admin_ = nullptr;

// One call of `method` with `request` (serialized), whatever its kind: the status it ends with.
// Streams that are allowed stay open: the deadline ends them.
grpc::Status CallGeneric(grpc::GenericStub& stub, const std::string& method,
                         const std::string& request, const std::string& token) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&ctx, method, &cq);
  auto await = [&](void* tag) {
    void* got = nullptr;
    bool ok = false;
    while (cq.Next(&got, &ok)) {
      if (got == tag) return ok;
    }
    return false;
  };
  int tags[5];
  call->StartCall(&tags[0]);
  if (await(&tags[0])) {
    grpc::Slice slice(request);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, &tags[1]);
    if (await(&tags[1])) {
      call->WritesDone(&tags[2]);
      await(&tags[2]);
      // A unary answer (or a stream's first message) is read before the status comes.
      grpc::ByteBuffer answer;
      call->Read(&answer, &tags[3]);
      await(&tags[3]);
    }
  }
  grpc::Status status;
  call->Finish(&status, &tags[4]);
  await(&tags[4]);
  cq.Shutdown();
  void* got;
  bool ok;
  while (cq.Next(&got, &ok)) {
  }
  return status;
}

// The permission a hosting.v1 method needs, from its name as the table is written: admin for
// tokens and the audit trail, read for Get/List/Watch, operate for runbooks and node and task
// commands, deploy for the rest.
// Reads: Get*, List*, Watch*, and JudgeRelease (the judge run again over stored samples).
bool IsRead(const pb::MethodDescriptor* m) {
  const std::string& name = m->name();
  return absl::StartsWith(name, "Get") || absl::StartsWith(name, "List") ||
         absl::StartsWith(name, "Watch") || name == "JudgeRelease";
}

std::string PermissionOf(const pb::MethodDescriptor* m) {
  const std::string& name = m->name();
  const std::string& svc = m->service()->name();
  if (svc == "Auth" || name == "ListAudit") return "admin";
  if (IsRead(m)) return "read";
  if (svc == "Runbooks" || name == "DrainNode" || name == "ActivateNode" ||
      name == "RestartTask" || name == "PullImage") {
    return "operate";
  }
  return "deploy";
}

// A request for a scoped method that names `service` (in whichever field the method reads).
std::string RequestNaming(const pb::MethodDescriptor* method, const std::string& service) {
  pb::DynamicMessageFactory factory;
  std::unique_ptr<pb::Message> msg(factory.GetPrototype(method->input_type())->New());
  const pb::Reflection* r = msg->GetReflection();
  const pb::Descriptor* d = msg->GetDescriptor();
  auto set_string = [&](pb::Message* m, const char* field, const std::string& value) {
    const pb::FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(field);
    if (f == nullptr || f->type() != pb::FieldDescriptor::TYPE_STRING) return false;
    m->GetReflection()->SetString(m, f, value);
    return true;
  };
  if (const pb::FieldDescriptor* spec = d->FindFieldByName("spec"); spec != nullptr) {
    set_string(r->MutableMessage(msg.get(), spec, &factory), "name", service);
  }
  if (const pb::FieldDescriptor* policy = d->FindFieldByName("policy"); policy != nullptr) {
    set_string(r->MutableMessage(msg.get(), policy, &factory), "service", service);
  }
  set_string(msg.get(), "service", service);
  set_string(msg.get(), "name", service);
  set_string(msg.get(), "id", service + "-1");
  return msg->SerializeAsString();
}

TEST_F(AuthTest, EveryRpcOfTheReflectionListingAnswersEachRoleAsTheTableSays) {
  // The listing, as an outside client sees it (server reflection, with a token).
  CommandResult listed = Shell(absl::StrCat("HOSTCTL_TOKEN='", *admin_, "' node ", SourceDir(),
                                            "/tests/reflection/reflection_client.mjs ",
                                            hostd_->address(), " services"));
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  json services = json::parse(listed.output, nullptr, false);
  ASSERT_TRUE(services.is_array()) << listed.output;
  // Reflection itself needs a token.
  CommandResult anonymous = Shell(absl::StrCat("env -u HOSTCTL_TOKEN node ", SourceDir(),
                                               "/tests/reflection/reflection_client.mjs ",
                                               hostd_->address(), " services"));
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.output;
  EXPECT_THAT(anonymous.output, HasSubstr("needs a token"));

  const std::vector<Principal> principals = {
      {"nobody", "", {"public"}},
      {"viewer", MakeToken("--role viewer"), {"public", "authenticated", "read"}},
      {"deployer", MakeToken("--role deployer"), {"public", "authenticated", "read", "deploy"}},
      {"operator", MakeToken("--role operator"),
       {"public", "authenticated", "read", "deploy", "operate"}},
      {"admin", *admin_,
       {"public", "authenticated", "read", "deploy", "operate", "admin", "agent"}},
      {"agent", MakeToken("--role agent"), {"public", "authenticated", "agent"}},
      {"revoked", MakeToken("--role admin --description revoked"), {}},
  };
  // The revoked admin token is refused everything but the public health check.
  const std::string& revoked_token = principals.back().token;
  CommandResult who = Hostctl(revoked_token, "-o json whoami");
  ASSERT_EQ(who.exit_code, 0) << who.output;
  const std::string principal = json::parse(who.output)["principal"];
  CommandResult revoke = Hostctl(*admin_, "token revoke " + principal.substr(6));
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  // Permissions of each method, from WhoAmI-independent knowledge: the denial names it.
  const std::map<std::string, std::string> kNeeds = {
      {"/grpc.health.v1.Health/Check", "public"},
      {"/grpc.health.v1.Health/Watch", "public"},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "authenticated"},
      {"/hosting.v1.Auth/WhoAmI", "authenticated"},
      {"/hosting.v1.AgentGateway/Connect", "agent"},
  };
  auto need_of = [&](const pb::MethodDescriptor* m, const std::string& path) -> std::string {
    if (auto it = kNeeds.find(path); it != kNeeds.end()) return it->second;
    return PermissionOf(m);
  };

  grpc::GenericStub stub(grpc::CreateChannel(hostd_->address(), grpc::InsecureChannelCredentials()));
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  // Pull every hosting.v1 file into the generated pool.
  for (const pb::Descriptor* d :
       {hosting::v1::ApplyServiceRequest::descriptor(), hosting::v1::ListNodesRequest::descriptor(),
        hosting::v1::StartReleaseRequest::descriptor(), hosting::v1::SetPolicyRequest::descriptor(),
        hosting::v1::RunRunbookRequest::descriptor(), hosting::v1::AgentMessage::descriptor(),
        hosting::v1::CreateTokenRequest::descriptor()}) {
    ASSERT_NE(d, nullptr);
  }
  int checked = 0;
  for (const auto& name : services) {
    const std::string service = name.get<std::string>();
    if (absl::StartsWith(service, "grpc.")) continue;  // checked by name below
    const pb::ServiceDescriptor* svc = pool->FindServiceByName(service);
    ASSERT_NE(svc, nullptr) << "reflection lists " << service << ", unknown to this test";
    for (int i = 0; i < svc->method_count(); ++i) {
      const pb::MethodDescriptor* m = svc->method(i);
      const std::string path = absl::StrCat("/", service, "/", m->name());
      const std::string need = need_of(m, path);
      for (const Principal& p : principals) {
        grpc::Status st = CallGeneric(stub, path, "", p.token);
        SCOPED_TRACE(absl::StrCat(path, " as ", p.name, ": ", st.error_code(), " ",
                                  st.error_message()));
        if (p.permissions.count(need) > 0) {
          EXPECT_NE(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
          EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
        } else if (p.token.empty() || p.name == "revoked") {
          EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
        } else {
          EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
          EXPECT_THAT(st.error_message(), HasSubstr(absl::StrCat("'", need, "' permission")));
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 30 * static_cast<int>(principals.size()));
  // The health check answers without a token; reflection does not.
  EXPECT_TRUE(CallGeneric(stub, "/grpc.health.v1.Health/Check", "", "").ok());
  // A method hostd does not serve is refused before anything else.
  EXPECT_EQ(CallGeneric(stub, "/hosting.v1.Secret/Backdoor", "", *admin_).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// The HTTP/JSON gateway of the same hostd: every hosting.v1 method at /v1/{Service}/{Method},
// each role answered as over gRPC (the same table, the same tokens), errors as JSON.
TEST_F(AuthTest, TheHttpGatewayAnswersEveryRoleAsGrpcDoes) {
  const std::string base = absl::StrCat("http://", hostd_->http_address());
  const std::vector<Principal> principals = {
      {"nobody", "", {}},
      {"viewer", MakeToken("--role viewer"), {"read"}},
      {"deployer", MakeToken("--role deployer"), {"read", "deploy"}},
      {"operator", MakeToken("--role operator"), {"read", "deploy", "operate"}},
      {"admin", *admin_, {"read", "deploy", "operate", "admin"}},
  };
  auto need_of = [](const pb::MethodDescriptor* m) -> std::string {
    return m->name() == "WhoAmI" ? "authenticated" : PermissionOf(m);
  };
  int checked = 0;
  for (const pb::Descriptor* d :
       {hosting::v1::ApplyServiceRequest::descriptor(), hosting::v1::ListNodesRequest::descriptor(),
        hosting::v1::StartReleaseRequest::descriptor(), hosting::v1::SetPolicyRequest::descriptor(),
        hosting::v1::RunRunbookRequest::descriptor(),
        hosting::v1::CreateTokenRequest::descriptor()}) {
    const pb::FileDescriptor* file = d->file();
    for (int s = 0; s < file->service_count(); ++s) {
      const pb::ServiceDescriptor* svc = file->service(s);
      for (int i = 0; i < svc->method_count(); ++i) {
        const pb::MethodDescriptor* m = svc->method(i);
        const std::string url = absl::StrCat(base, "/v1/", svc->name(), "/", m->name());
        const std::string need = need_of(m);
        // A stream that is allowed ends at once: no_follow, or no ID (400).
        const std::string body = m->name() == "WatchEvents" ? R"({"no_follow": true})" : "{}";
        for (const Principal& p : principals) {
          std::vector<std::string> headers;
          if (!p.token.empty()) headers.push_back("Authorization: Bearer " + p.token);
          HttpResult r = Http("POST", url, body, "application/json", headers);
          SCOPED_TRACE(absl::StrCat(url, " as ", p.name, ": ", r.status, " ", r.body));
          ASSERT_NE(r.status, 0) << r.error;
          if (p.permissions.count(need) > 0 || (need == "authenticated" && !p.token.empty())) {
            EXPECT_NE(r.status, 401);
            EXPECT_NE(r.status, 403);
            // The path exists (a handler's NOT_FOUND names what it did not find).
            EXPECT_THAT(r.body, Not(HasSubstr("no method at")));
          } else if (p.token.empty()) {
            EXPECT_EQ(r.status, 401);
            EXPECT_THAT(r.body, HasSubstr("\"status\":\"UNAUTHENTICATED\""));
          } else {
            EXPECT_EQ(r.status, 403);
            EXPECT_THAT(r.body, HasSubstr(absl::StrCat("'", need, "' permission")));
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 35 * static_cast<int>(principals.size()));

  // End to end: a bad spec's field violations, the event log as Server-Sent Events, and the
  // gateway's calls in the audit trail with their HTTP peer.
  const std::string admin = "Authorization: Bearer " + *admin_;
  HttpResult bad = Http("POST", base + "/v1/ServiceManager/ApplyService",
                        R"({"spec": {"name": "Bad Name"}})", "application/json", {admin});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("\"field\":\"spec.name\""));
  HttpResult events = Http("GET", base + "/v1/Cluster/WatchEvents?from_start&no_follow", "", "",
                           {admin});
  EXPECT_EQ(events.status, 200);
  EXPECT_THAT(events.headers, HasSubstr("text/event-stream"));
  EXPECT_TRUE(absl::StartsWith(events.body, "id: 1\ndata: {")) << events.body.substr(0, 200);
  EXPECT_THAT(events.body, HasSubstr("event: end"));
  CommandResult audit = Hostctl(*admin_, "-o json audit --limit 200");
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_THAT(audit.output, HasSubstr("http:127.0.0.1:"));
}

TEST_F(AuthTest, ATokenLimitedToAServiceCannotTouchAnother) {
  const std::string web_only = MakeToken("--role deployer --service web");
  grpc::GenericStub stub(grpc::CreateChannel(hostd_->address(), grpc::InsecureChannelCredentials()));
  int scoped = 0;
  for (const pb::Descriptor* d :
       {hosting::v1::ApplyServiceRequest::descriptor(), hosting::v1::StartReleaseRequest::descriptor(),
        hosting::v1::SetPolicyRequest::descriptor()}) {
    const pb::FileDescriptor* file = d->file();
    for (int s = 0; s < file->service_count(); ++s) {
      const pb::ServiceDescriptor* svc = file->service(s);
      for (int i = 0; i < svc->method_count(); ++i) {
        const pb::MethodDescriptor* m = svc->method(i);
        const std::string path = absl::StrCat("/", svc->full_name(), "/", m->name());
        if (m->server_streaming() || IsRead(m)) continue;
        grpc::Status other = CallGeneric(stub, path, RequestNaming(m, "api"), web_only);
        EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << path << ": " << other.error_message();
        EXPECT_THAT(other.error_message(), HasSubstr("may change only web"));
        grpc::Status own = CallGeneric(stub, path, RequestNaming(m, "web"), web_only);
        EXPECT_NE(own.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << path << ": " << own.error_message();
        ++scoped;
      }
    }
  }
  // Every method the permission table marks service_scoped: ServiceManager's 3, Releases' 6,
  // Autoscaling's 2.
  EXPECT_EQ(scoped, 11);
  // Reads are not limited.
  EXPECT_EQ(Hostctl(web_only, "service list").exit_code, 0);
}

// One connection, two callers: an admin's call first, then a token limited to web. gRPC hands
// the auth processor the connection's AuthContext, shared by its calls: the caller a handler
// judges must be its own call's, never whoever called first on the connection.
TEST_F(AuthTest, CallersSharingAConnectionAreEachJudgedByTheirOwnToken) {
  const std::string web_only = MakeToken("--role deployer --service web");
  grpc::GenericStub stub(grpc::CreateChannel(hostd_->address(), grpc::InsecureChannelCredentials()));
  const pb::MethodDescriptor* apply =
      hosting::v1::ApplyServiceRequest::descriptor()->file()->FindServiceByName("ServiceManager")
          ->FindMethodByName("ApplyService");
  ASSERT_NE(apply, nullptr);
  const std::string path = "/hosting.v1.ServiceManager/ApplyService";
  for (int i = 0; i < 3; ++i) {
    grpc::Status admin = CallGeneric(stub, "/hosting.v1.ServiceManager/ListServices", "", *admin_);
    ASSERT_TRUE(admin.ok()) << admin.error_message();
    grpc::Status other = CallGeneric(stub, path, RequestNaming(apply, "api"), web_only);
    EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.error_message();
    EXPECT_THAT(other.error_message(), HasSubstr("may change only web"));
  }
}

TEST_F(AuthTest, ExpiredAndRevokedTokensAreRefusedAndHostctlSaysWhy) {
  const std::string brief = MakeToken("--role viewer --ttl 2s");
  const std::string doomed = MakeToken("--role operator");
  EXPECT_EQ(Hostctl(brief, "service list").exit_code, 0);
  EXPECT_EQ(Hostctl(doomed, "service list").exit_code, 0);
  CommandResult who = Hostctl(doomed, "-o json whoami");
  ASSERT_EQ(who.exit_code, 0) << who.output;
  const std::string principal = json::parse(who.output)["principal"];
  ASSERT_EQ(Hostctl(*admin_, "token revoke " + principal.substr(6)).exit_code, 0);
  CommandResult revoked = Hostctl(doomed, "service list");
  EXPECT_EQ(revoked.exit_code, 9) << revoked.output;
  EXPECT_THAT(revoked.output, HasSubstr("revoked"));
  absl::SleepFor(absl::Seconds(3));
  CommandResult expired = Hostctl(brief, "service list");
  EXPECT_EQ(expired.exit_code, 9) << expired.output;
  EXPECT_THAT(expired.output, HasSubstr("expired"));
  // token list shows both states.
  CommandResult list = Hostctl(*admin_, "token list");
  EXPECT_THAT(list.output, HasSubstr("revoked"));
  EXPECT_THAT(list.output, HasSubstr("expired"));
}

TEST_F(AuthTest, HostctlFindsItsTokenAndItsExitCodesSayWhatFailed) {
  // None: 9 (UNAUTHENTICATED), saying how to give one.
  CommandResult none = Hostctl("", "service list");
  EXPECT_EQ(none.exit_code, 9) << none.output;
  EXPECT_THAT(none.output, HasSubstr("needs a token"));
  // A viewer asking to change: 14 (PERMISSION_DENIED), naming the permission.
  const std::string viewer = MakeToken("--role viewer");
  CommandResult denied = Hostctl(viewer, "service scale web 2");
  EXPECT_EQ(denied.exit_code, 14) << denied.output;
  EXPECT_THAT(denied.output, HasSubstr("'deploy' permission"));
  // The config file is used only when private: 0644 is a usage error (2), 0600 works.
  const std::string home = MakeTempDir("hosting-home-");
  Shell("mkdir -p " + home + "/.config/hosting");
  {
    std::ofstream f(home + "/.config/hosting/token");
    f << viewer << "\n";
  }
  chmod((home + "/.config/hosting/token").c_str(), 0644);
  CommandResult open_file = Hostctl("", "service list", home);
  EXPECT_EQ(open_file.exit_code, 2) << open_file.output;
  EXPECT_THAT(open_file.output, HasSubstr("chmod 600"));
  chmod((home + "/.config/hosting/token").c_str(), 0600);
  EXPECT_EQ(Hostctl("", "service list", home).exit_code, 0);
  // --token-file names the file; a missing one is a usage error.
  EXPECT_EQ(Hostctl("", "--token-file " + *dir_ + "/admin.token whoami").exit_code, 0);
  EXPECT_EQ(Hostctl("", "--token-file /nonexistent/token whoami").exit_code, 2);
}

TEST_F(AuthTest, AnAgentTokenJoinsOnlyAsItsOwnNode) {
  const std::string bound = MakeToken("--role agent --node node-a");
  auto join = [&](const std::string& token, const std::string& node) {
    auto stub = hosting::v1::AgentGateway::NewStub(
        CreateChannelWithToken(hostd_->address(), token));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto stream = stub->Connect(&ctx);
    hosting::v1::AgentMessage hello;
    hello.mutable_register_()->set_node_id(node);
    hello.mutable_register_()->set_hostname(node);
    stream->Write(hello);
    hosting::v1::ControllerMessage answer;
    const bool registered = stream->Read(&answer) && answer.has_registered();
    if (registered) {
      ctx.TryCancel();
      stream->Finish();
      return grpc::Status::OK;
    }
    return stream->Finish();
  };
  grpc::Status other = join(bound, "node-b");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.error_message();
  EXPECT_THAT(other.error_message(), HasSubstr("may join only as node node-a"));
  grpc::Status own = join(bound, "node-a");
  EXPECT_TRUE(own.ok()) << own.error_message();
  // The bootstrap join token names no node; a viewer's token joins nowhere.
  EXPECT_TRUE(join(ReadLine(*dir_ + "/agent.token"), "node-c").ok());
  EXPECT_EQ(join(MakeToken("--role viewer"), "node-d").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, AnAgentsReportsOfTasksSwarmDoesNotRunAreNotBelieved) {
  // An agent with a valid join token reports 500 tasks of a service that runs none.
  const std::string service = absl::StrCat("ghostly-", getpid());
  const std::string spec = *dir_ + "/ghostly.yaml";
  {
    std::ofstream f(spec);
    f << "name: " << service << "\nimage: hosting/sample:v1\nreplicas: 0\n";
  }
  ASSERT_EQ(Hostctl(*admin_, "service apply -f " + spec).exit_code, 0);
  auto stub = hosting::v1::AgentGateway::NewStub(
      CreateChannelWithToken(hostd_->address(), ReadLine(*dir_ + "/agent.token")));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->Connect(&ctx);
  hosting::v1::AgentMessage hello;
  hello.mutable_register_()->set_node_id(absl::StrCat("forger-", getpid()));
  ASSERT_TRUE(stream->Write(hello));
  hosting::v1::ControllerMessage answer;
  ASSERT_TRUE(stream->Read(&answer) && answer.has_registered());
  hosting::v1::AgentMessage flood;
  for (int i = 0; i < 500; ++i) {
    hosting::v1::TaskReport* t = flood.mutable_snapshot()->add_tasks();
    t->set_task_id(absl::StrCat("forged", i));
    t->set_service(service);
    t->set_revision(1);
    t->set_probe_health(hosting::v1::TASK_HEALTH_HEALTHY);
  }
  ASSERT_TRUE(stream->Write(flood));
  // Once Swarm has been listed after the report (every second), none of them is believed:
  // neither the status (what health gating and analysis read) nor /metrics counts them.
  auto cluster = hosting::v1::Cluster::NewStub(CreateChannelWithToken(hostd_->address(), *admin_));
  std::string metrics;
  int healthy = -1;
  for (int i = 0; i < 100; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    hosting::v1::AgentMessage beat;
    beat.mutable_heartbeat();
    stream->Write(beat);
    metrics = Http("GET", "http://" + hostd_->metrics_address() + "/metrics").body;
    if (!absl::StrContains(metrics, "hostd_agent_unconfirmed_tasks 500")) continue;
    grpc::ClientContext c;
    hosting::v1::GetServiceStatusRequest req;
    req.set_name(service);
    hosting::v1::ServiceHealthStatus status;
    grpc::Status st = cluster->GetServiceStatus(&c, req, &status);
    ASSERT_TRUE(st.ok()) << st.error_message();
    healthy = 0;
    for (const auto& r : status.revisions()) healthy += r.healthy() + r.starting() + r.unknown();
    break;
  }
  EXPECT_THAT(metrics, HasSubstr("hostd_agent_unconfirmed_tasks 500"));
  EXPECT_EQ(healthy, 0);
  EXPECT_THAT(metrics, Not(HasSubstr("service=\"" + service)));
  ctx.TryCancel();
  stream->Finish();
  EXPECT_EQ(Hostctl(*admin_, "service delete " + service).exit_code, 0);
}

// mTLS: hostd --tls-client-ca; a client certificate with OU=hosting-agent is an agent whose
// node is its CN, with no token; any other certificate still needs a token. hostctl and
// hostagent speak TLS with --tls-ca/--tls-cert/--tls-key.
TEST_F(AuthTest, AnAgentCertificateJoinsAsItsNodeOverMutualTls) {
  const std::string dir = MakeTempDir("hosting-mtls-");
  const std::string node = std::string(absl::StripAsciiWhitespace(
      Shell("docker info --format '{{.Swarm.NodeID}}'").output));
  ASSERT_FALSE(node.empty());
  auto sign = [&](const std::string& name, const std::string& subject) {
    return absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj '", subject, "' -keyout ",
                        name, ".key -out ", name, ".csr && openssl x509 -req -in ", name,
                        ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out ", name,
                        ".pem");
  };
  CommandResult gen = Shell(absl::StrCat(
      "(cd ", dir, " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=hosting-ca",
      " -keyout ca.key -out ca.pem && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san",
      " && openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key",
      " -out server.csr && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key",
      " -CAcreateserial -days 1 -extfile san -out server.pem && ",
      sign("agent", "/OU=hosting-agent/CN=" + node), " && ", sign("alice", "/CN=alice"),
      ") 2>&1"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  HostdProcess hostd(dir,
                     {"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key",
                      "--tls-client-ca", dir + "/ca.pem"},
                     absl::StrCat("0.0.0.0:", FreePort()));
  ASSERT_TRUE(hostd.Start().ok());
  const std::string target =
      "localhost:" + hostd.address().substr(hostd.address().find(':') + 1);
  auto creds = [&](const std::string& who) {
    return ChannelCredentialsFor({dir + "/ca.pem", dir + "/" + who + ".pem",
                                  dir + "/" + who + ".key"})
        .value();
  };
  auto join = [&](const std::string& who, const std::string& as) {
    auto stub = hosting::v1::AgentGateway::NewStub(
        CreateChannelWithToken(target, creds(who), {}, /*token=*/""));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Connect(&ctx);
    hosting::v1::AgentMessage hello;
    hello.mutable_register_()->set_node_id(as);
    stream->Write(hello);
    hosting::v1::ControllerMessage answer;
    if (stream->Read(&answer) && answer.has_registered()) {
      ctx.TryCancel();
      stream->Finish();
      return grpc::Status::OK;
    }
    return stream->Finish();
  };
  // The agent certificate joins as its node only, and reads nothing else.
  grpc::Status other = join("agent", "someone-else");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.error_message();
  EXPECT_THAT(other.error_message(), HasSubstr("cert:" + node + " may join only as node"));
  grpc::Status own = join("agent", node);
  EXPECT_TRUE(own.ok()) << own.error_message();
  {
    auto services = hosting::v1::ServiceManager::NewStub(
        CreateChannelWithToken(target, creds("agent"), {}, ""));
    grpc::ClientContext ctx;
    hosting::v1::ListServicesResponse out;
    EXPECT_EQ(services->ListServices(&ctx, {}, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // A certificate without the agent unit is no identity: a token is still needed.
  EXPECT_EQ(join("alice", "alice").error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // hostctl over mTLS with a token; without --tls-ca it cannot talk to hostd; a certificate
  // without its key is a usage error.
  const std::string tls = absl::StrCat(" --tls-ca ", dir, "/ca.pem --tls-cert ", dir,
                                       "/alice.pem --tls-key ", dir, "/alice.key");
  CommandResult who = Shell(absl::StrCat("HOSTCTL_TOKEN=", TestToken(), " ", HostctlBinary(),
                                         " -s ", target, tls, " whoami 2>&1"));
  EXPECT_EQ(who.exit_code, 0) << who.output;
  EXPECT_NE(Shell(absl::StrCat("HOSTCTL_TOKEN=", TestToken(), " ", HostctlBinary(), " -s ",
                               target, " --timeout 3 whoami 2>&1")).exit_code, 0);
  CommandResult half = Shell(absl::StrCat(HostctlBinary(), " -s ", target, " --tls-ca ", dir,
                                          "/ca.pem --tls-cert ", dir, "/alice.pem whoami 2>&1"));
  EXPECT_EQ(half.exit_code, 2) << half.output;
  EXPECT_THAT(half.output, HasSubstr("--tls-cert and --tls-key go together"));

  // A real hostagent with the agent certificate and no token is this node's agent.
  AgentProcess agent(target, dir + "/agent.log");
  agent.AddArgs({"--tls-ca", dir + "/ca.pem", "--tls-cert", dir + "/agent.pem", "--tls-key",
                 dir + "/agent.key"},
                {"HOSTAGENT_TOKEN="});
  ASSERT_TRUE(agent.Start().ok());
  auto cluster = hosting::v1::Cluster::NewStub(
      CreateChannelWithToken(target, creds("alice"), {}, TestToken()));
  absl::Status connected = WaitFor(
      [&] {
        grpc::ClientContext ctx;
        hosting::v1::ListNodesResponse nodes;
        if (!cluster->ListNodes(&ctx, {}, &nodes).ok()) return false;
        for (const auto& n : nodes.nodes()) {
          if (n.id() == node && n.agent_state() == hosting::v1::AGENT_STATE_CONNECTED) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(15), "the certificate agent to be connected");
  EXPECT_TRUE(connected.ok()) << connected << "\n" << Shell("cat " + dir + "/agent.log").output;
}

TEST_F(AuthTest, BootstrapTokensAreRootOnlyAndAuthOffIsForLoopbackOnly) {
  for (const char* file : {"/admin.token", "/agent.token"}) {
    struct stat st {};
    ASSERT_EQ(stat((*dir_ + file).c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
  // Off loopback, --insecure-no-auth is refused at start, naming why.
  const std::string dir = MakeTempDir("hosting-noauth-");
  HostdProcess remote(dir, {"--insecure-no-auth", "--allow-insecure-remote"},
                      absl::StrCat("0.0.0.0:", FreePort()));
  EXPECT_FALSE(remote.Start().ok());
  EXPECT_THAT(Shell("cat " + remote.log_path()).output, HasSubstr("needs a loopback --listen"));
  // On loopback it serves everyone as admin, and says so loudly.
  HostdProcess local(dir, {"--insecure-no-auth"});
  ASSERT_TRUE(local.Start().ok());
  CommandResult who = Shell(absl::StrCat("env -u HOSTCTL_TOKEN -u HOSTCTL_TOKEN_FILE HOME=/nonexistent ",
                                         HostctlBinary(), " -s ", local.address(), " whoami"));
  EXPECT_EQ(who.exit_code, 0) << who.output;
  EXPECT_THAT(who.output, HasSubstr("anonymous"));
  EXPECT_THAT(who.output, HasSubstr("--insecure-no-auth"));
  EXPECT_THAT(Shell("cat " + local.log_path()).output, HasSubstr("AUTH IS OFF"));
}

TEST_F(AuthTest, EveryChangeAndRefusalIsAuditedWithSecretsRedacted) {
  const std::string name = absl::StrCat("audited-", getpid());
  const std::string spec = *dir_ + "/audited.yaml";
  {
    std::ofstream f(spec);
    f << "name: " << name << "\nimage: hosting/sample:v1\nreplicas: 1\nenv:\n"
      << "  DB_PASSWORD: hunter2-" << getpid() << "\n  MODE: audited\n";
  }
  ASSERT_EQ(Hostctl(*admin_, "service apply -f " + spec).exit_code, 0);
  ASSERT_EQ(Hostctl(*admin_, "service scale " + name + " 0").exit_code, 0);
  const std::string viewer = MakeToken("--role viewer --description audit-viewer");
  EXPECT_EQ(Hostctl(viewer, "service delete " + name).exit_code, 14);
  ASSERT_EQ(Hostctl(*admin_, "service delete " + name).exit_code, 0);
  EXPECT_EQ(Hostctl("hst_not_a_token", "service delete " + name).exit_code, 9);

  std::vector<json> entries;
  absl::Status seen = WaitFor(
      [&] {
        CommandResult r = Hostctl(*admin_, "-o json audit --service " + name);
        json j = json::parse(r.output, nullptr, false);
        if (j.is_discarded() || !j.contains("entries")) return false;
        entries.assign(j["entries"].begin(), j["entries"].end());
        return entries.size() >= 3;
      },
      absl::Seconds(10), "the service's audit entries");
  ASSERT_TRUE(seen.ok()) << seen;
  // Newest first: delete, scale, apply. (Refusals come before the request is read, so they
  // name no service: they are in the unfiltered trail, below.)
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0]["method"], "/hosting.v1.ServiceManager/DeleteService");
  EXPECT_EQ(entries[0]["code"], "OK");
  EXPECT_EQ(entries[1]["method"], "/hosting.v1.ServiceManager/ScaleService");
  EXPECT_EQ(entries[2]["method"], "/hosting.v1.ServiceManager/ApplyService");
  for (const json& e : entries) {
    EXPECT_TRUE(absl::StartsWith(e.value("principal", ""), "token:")) << e.dump();
    EXPECT_TRUE(absl::StartsWith(e.value("peer", ""), "ipv4:127.0.0.1:")) << e.dump();
  }
  EXPECT_THAT(entries[2].value("request", ""), HasSubstr("\"DB_PASSWORD\":\"[redacted]\""));
  EXPECT_THAT(entries[2].value("request", ""), HasSubstr("audited"));
  CommandResult who = Hostctl(viewer, "-o json whoami");
  const std::string viewer_principal = json::parse(who.output)["principal"];
  bool refusal = false;
  CommandResult trail = Hostctl(*admin_, "-o json audit --limit 1000");
  const json trail_json = json::parse(trail.output, nullptr, false);
  ASSERT_TRUE(trail_json.contains("entries")) << trail.output;
  for (const auto& e : trail_json["entries"]) {
    refusal |= e.value("principal", "") == viewer_principal &&
               e.value("code", "") == "PERMISSION_DENIED" &&
               e.value("method", "") == "/hosting.v1.ServiceManager/DeleteService";
  }
  EXPECT_TRUE(refusal) << viewer_principal << "\n" << trail.output;
  // The refusal without a valid token is there too (its request unread: no service).
  CommandResult recent = Hostctl(*admin_, "-o json audit --since 1m --limit 1000");
  EXPECT_THAT(recent.output, HasSubstr("unauthenticated"));
  // Token changes are audited; the secret never is anywhere: audit, hostd's log, service get.
  EXPECT_THAT(recent.output, HasSubstr("/hosting.v1.Auth/CreateToken"));
  const std::string secret = absl::StrCat("hunter2-", getpid());
  EXPECT_THAT(recent.output, Not(HasSubstr(secret)));
  EXPECT_THAT(Shell("cat " + hostd_->log_path()).output, Not(HasSubstr(secret)));
  EXPECT_THAT(Shell("cat " + hostd_->log_path()).output, HasSubstr("\"msg\":\"audit\""));
  // Only an admin reads the trail.
  EXPECT_EQ(Hostctl(viewer, "audit").exit_code, 14);
}

}  // namespace
}  // namespace hosting::testing
