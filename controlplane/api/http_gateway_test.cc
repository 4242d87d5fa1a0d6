// The HTTP/JSON gateway over the domain on fakes: a real HTTP server on loopback, real tokens
// and the real auth gate over an in-memory store, the fake Docker engine; curl as the client.
#include "controlplane/api/http_gateway.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "controlplane/agents/agent_hub.h"
#include "controlplane/autoscale/autoscale_manager.h"
#include "controlplane/cluster/cluster_manager.h"
#include "controlplane/release/release_manager.h"
#include "controlplane/runbook/engine.h"
#include "controlplane/testing/fake_domain.h"
#include "controlplane/traffic/traffic_router.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "hosting/v1/agent.pb.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

using ::testing::Contains;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

struct Reply {
  long status = 0;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request with curl: `body` POSTed when not empty (or when method is POST).
Reply Fetch(int port, const std::string& method, const std::string& path,
            const std::string& body = "", const std::vector<std::string>& headers = {}) {
  CURL* curl = curl_easy_init();
  Reply reply;
  const std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return reply;
}

// Reads a Server-Sent Events response until `events` `data:` lines came (or the stream ended
// or 30 s passed): the ids and data of each.
struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
};
struct SseRead {
  std::string buffer;
  size_t want = 0;
  std::vector<SseEvent> events;
};

size_t CollectSse(char* data, size_t size, size_t n, void* out) {
  auto* read = static_cast<SseRead*>(out);
  read->buffer.append(data, size * n);
  size_t end;
  while ((end = read->buffer.find("\n\n")) != std::string::npos) {
    SseEvent e;
    for (absl::string_view line : absl::StrSplit(read->buffer.substr(0, end), '\n')) {
      if (absl::ConsumePrefix(&line, "id: ")) e.id = std::string(line);
      if (absl::ConsumePrefix(&line, "event: ")) e.event = std::string(line);
      if (absl::ConsumePrefix(&line, "data: ")) e.data = std::string(line);
    }
    read->events.push_back(std::move(e));
    read->buffer.erase(0, end + 2);
  }
  return read->events.size() >= read->want ? 0 : size * n;  // 0: stop reading
}

std::vector<SseEvent> Stream(int port, const std::string& path, size_t events,
                             const std::vector<std::string>& headers = {}) {
  CURL* curl = curl_easy_init();
  SseRead read;
  read.want = events;
  const std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectSse);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &read);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_perform(curl);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return read.events;
}

class HttpGatewayTest : public ::testing::Test {
 protected:
  HttpGatewayTest()
      : autoscaler_(cp_.store, cp_.state, cp_.services, agents_, cp_.events, Clock::Real()),
        runbooks_(cp_.store, cp_.events, Clock::Real(), RunbookEngineOptions{}),
        tokens_(cp_.store, Clock::Real()),
        gate_(&tokens_),
        audit_(cp_.store, Clock::Real()),
        service_handlers_(cp_.services),
        cluster_handlers_(cluster_),
        release_handlers_(releases_),
        autoscaling_handlers_(autoscaler_),
        runbook_handlers_(runbooks_),
        auth_handlers_(tokens_, true) {
    cluster_handlers_.SetAuditLog(&audit_);
    admin_ = Token(hosting::v1::ROLE_ADMIN);
  }

  ~HttpGatewayTest() override {
    if (gateway_) gateway_->Shutdown();
    audit_.Stop();
  }

  void StartGateway(HttpGatewayOptions options = {}) {
    options.listen = "127.0.0.1:0";
    gateway_ = std::make_unique<HttpGateway>(
        Handlers{service_handlers_, cluster_handlers_, release_handlers_, autoscaling_handlers_,
                 runbook_handlers_, auth_handlers_},
        gate_, cp_.events, cp_.store, cp_.metrics, &audit_, options);
    ASSERT_TRUE(gateway_->Start().ok());
    port_ = gateway_->port();
  }

  // A token's "Authorization" header.
  std::string Token(hosting::v1::Role role, std::vector<std::string> services = {}) {
    hosting::v1::CreateTokenRequest request;
    request.set_role(role);
    for (const std::string& s : services) request.add_services(s);
    absl::StatusOr<hosting::v1::CreateTokenResponse> made = tokens_.Create(request, "test");
    EXPECT_TRUE(made.ok()) << made.status();
    return absl::StrCat("Authorization: Bearer ", made.ok() ? made->secret() : "");
  }

  int64_t LastSequence() {
    absl::StatusOr<std::vector<hosting::v1::Event>> all = cp_.store.ListEvents(0, 1000000);
    return all.ok() && !all->empty() ? all->back().sequence() : 0;
  }

  Reply Post(const std::string& path, const std::string& body = "{}") {
    return Fetch(port_, "POST", path, body, {admin_});
  }

  FakeDomain domain_{Clock::Real()};
  FakeControlPlane& cp_ = domain_.cp;
  AgentRegistry& agents_ = domain_.agents;
  AgentHub& hub_ = domain_.hub;
  ClusterManager& cluster_ = domain_.cluster;
  ReleaseManager& releases_ = domain_.releases;
  AutoscaleManager autoscaler_;
  RunbookEngine runbooks_;
  TokenAuthority tokens_;
  AuthGate gate_;
  AuditLog audit_;
  ServiceHandlers service_handlers_;
  ClusterHandlers cluster_handlers_;
  ReleaseHandlers release_handlers_;
  AutoscalingHandlers autoscaling_handlers_;
  RunbookHandlers runbook_handlers_;
  AuthHandlers auth_handlers_;
  std::unique_ptr<HttpGateway> gateway_;
  int port_ = 0;
  std::string admin_;
};

// Every method of every hosting.v1 service but the agents' own stream, from the protos.
std::vector<std::string> ProtoPaths() {
  // Linking the generated code registers the files; name one message of each to be sure.
  const google::protobuf::FileDescriptor* files[] = {
      hosting::v1::ApplyServiceRequest::descriptor()->file(),
      hosting::v1::ListNodesRequest::descriptor()->file(),
      hosting::v1::StartReleaseRequest::descriptor()->file(),
      hosting::v1::SetPolicyRequest::descriptor()->file(),
      hosting::v1::RunRunbookRequest::descriptor()->file(),
      hosting::v1::CreateTokenRequest::descriptor()->file(),
      hosting::v1::AgentMessage::descriptor()->file(),
  };
  std::vector<std::string> out;
  for (const google::protobuf::FileDescriptor* file : files) {
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      if (service->name() == "AgentGateway") continue;
      for (int m = 0; m < service->method_count(); ++m) {
        out.push_back(absl::StrCat("/v1/", service->name(), "/", service->method(m)->name()));
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(HttpGatewayTest, EveryMethodOfEveryServiceHasAPathAndAnswersJson) {
  StartGateway();
  const std::vector<std::string> expected = ProtoPaths();
  ASSERT_GE(expected.size(), 40u);
  std::vector<std::string> paths = gateway_->Paths();
  std::sort(paths.begin(), paths.end());
  EXPECT_THAT(paths, ElementsAreArray(expected));
  // Each answers: not "no such path", not "wrong method"; streams answer as event streams.
  for (const std::string& path : expected) {
    if (absl::StrContains(path, "/Watch")) continue;
    Reply r = Post(path);
    EXPECT_NE(r.status, 0) << path;
    EXPECT_NE(r.status, 405) << path << " " << r.body;
    nlohmann::json j = r.json();
    ASSERT_FALSE(j.is_discarded()) << path << ": " << r.body;
    if (r.status == 404) {
      EXPECT_THAT(j["message"].get<std::string>(), ::testing::Not(HasSubstr("no method at")))
          << path;
    }
  }
  Reply agent = Post("/v1/AgentGateway/Connect");
  EXPECT_EQ(agent.status, 501);
  EXPECT_THAT(agent.body, HasSubstr("gRPC only"));
}

TEST_F(HttpGatewayTest, AppliesReadsAndListsAServiceAsProtoJson) {
  StartGateway();
  Reply applied = Post("/v1/ServiceManager/ApplyService",
                       R"({"spec": {"name": "web", "image": "img:1", "replicas": 2}})");
  ASSERT_EQ(applied.status, 200) << applied.body;
  EXPECT_EQ(applied.json()["service"]["spec"]["name"], "web");
  // int64 as a string, as protobuf's JSON mapping has it.
  EXPECT_EQ(applied.json()["service"]["revision"], "1");

  Reply got = Fetch(port_, "GET", "/v1/ServiceManager/GetService?name=web", "", {admin_});
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json()["spec"]["image"], "img:1");
  Reply listed = Post("/v1/ServiceManager/ListServices", "");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.json()["services"].size(), 1u);

  // What changed went to the audit trail with the HTTP peer.
  audit_.Flush();
  hosting::v1::ListAuditRequest list;
  absl::StatusOr<std::vector<hosting::v1::AuditEntry>> entries = audit_.List(list);
  ASSERT_TRUE(entries.ok());
  ASSERT_FALSE(entries->empty());
  EXPECT_EQ(entries->front().method(), "/hosting.v1.ServiceManager/ApplyService");
  EXPECT_EQ(entries->front().service(), "web");
  EXPECT_THAT(entries->front().peer(), HasSubstr("http:127.0.0.1:"));
  EXPECT_EQ(entries->front().code(), "OK");
}

// Every handler answers its response type, whatever its domain call returns (DeletePolicy's
// returns a bare status: once converted to an OK StatusOr, which aborts).
TEST_F(HttpGatewayTest, AnAutoscalingPolicyIsSetAndDeleted) {
  StartGateway();
  ASSERT_TRUE(cp_.Apply("web", "img:1").ok());
  Reply set = Post("/v1/Autoscaling/SetPolicy", R"({"policy": {"service": "web", "minReplicas": 1,
      "maxReplicas": 3, "metrics": [{"kind": "METRIC_KIND_REQUESTS_PER_SECOND", "target": 20}]}})");
  ASSERT_EQ(set.status, 200) << set.body;
  Reply deleted = Post("/v1/Autoscaling/DeletePolicy", R"({"service": "web"})");
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.body, "{}");
  Reply again = Post("/v1/Autoscaling/DeletePolicy", R"({"service": "web"})");
  EXPECT_EQ(again.status, 404) << again.body;
}

TEST_F(HttpGatewayTest, InvalidRequestsAnswerJsonErrorsWithFieldViolations) {
  StartGateway();
  Reply bad = Post("/v1/ServiceManager/ApplyService", R"({"spec": {"name": "Bad Name"}})");
  EXPECT_EQ(bad.status, 400);
  nlohmann::json j = bad.json();
  EXPECT_EQ(j["code"], 3);
  EXPECT_EQ(j["status"], "INVALID_ARGUMENT");
  ASSERT_EQ(j["details"].size(), 1u);
  EXPECT_EQ(j["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest");
  std::vector<std::string> fields;
  for (const auto& v : j["details"][0]["fieldViolations"]) fields.push_back(v["field"]);
  EXPECT_THAT(fields, Contains("spec.name"));
  EXPECT_THAT(fields, Contains("spec.image"));

  Reply unknown = Post("/v1/ServiceManager/ApplyService", R"({"spec": {"nmae": "web"}})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.json()["message"].get<std::string>(), HasSubstr("nmae"));

  Reply malformed = Post("/v1/ServiceManager/ApplyService", R"({"spec": )");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.json()["message"].get<std::string>(),
              HasSubstr("not a valid hosting.v1.ApplyServiceRequest"));

  Reply missing = Post("/v1/ServiceManager/GetService", R"({"name": "nope"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["status"], "NOT_FOUND");

  Reply get_write = Fetch(port_, "GET", "/v1/ServiceManager/DeleteService?name=x", "", {admin_});
  EXPECT_EQ(get_write.status, 405);
  Reply bad_query = Fetch(port_, "GET", "/v1/Releases/ListReleases?limit=many", "", {admin_});
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_THAT(bad_query.body, HasSubstr("limit"));
  Reply no_path = Post("/v1/ServiceManager/Nope");
  EXPECT_EQ(no_path.status, 404);
  EXPECT_THAT(no_path.json()["message"].get<std::string>(), HasSubstr("/v1/{Service}/{Method}"));

  // The daemon keeps serving.
  EXPECT_EQ(Post("/v1/ServiceManager/ListServices").status, 200);
}

TEST_F(HttpGatewayTest, AHugeBodyIsRefusedWithoutHarm) {
  HttpGatewayOptions options;
  options.body_limit = 64 * 1024;
  StartGateway(options);
  const std::string huge = absl::StrCat(R"({"spec": {"name": "web", "image": ")",
                                        std::string(200 * 1024, 'x'), R"("}})");
  Reply r = Post("/v1/ServiceManager/ApplyService", huge);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(Post("/v1/ServiceManager/ListServices").status, 200);
}

TEST_F(HttpGatewayTest, TokensAndRolesAreTheSameAsGrpcs) {
  StartGateway();
  Reply none = Fetch(port_, "POST", "/v1/ServiceManager/ListServices", "{}");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["status"], "UNAUTHENTICATED");
  Reply wrong = Fetch(port_, "POST", "/v1/ServiceManager/ListServices", "{}",
                      {"Authorization: Bearer hst_not-a-token"});
  EXPECT_EQ(wrong.status, 401);

  const std::string viewer = Token(hosting::v1::ROLE_VIEWER);
  EXPECT_EQ(Fetch(port_, "POST", "/v1/ServiceManager/ListServices", "{}", {viewer}).status, 200);
  Reply denied = Fetch(port_, "POST", "/v1/ServiceManager/ApplyService",
                       R"({"spec": {"name": "web", "image": "img:1"}})", {viewer});
  EXPECT_EQ(denied.status, 403);
  EXPECT_THAT(denied.json()["message"].get<std::string>(), HasSubstr("deploy"));

  // A deployer limited to one service may change only that one.
  const std::string limited = Token(hosting::v1::ROLE_DEPLOYER, {"api"});
  EXPECT_EQ(Fetch(port_, "POST", "/v1/ServiceManager/ApplyService",
                  R"({"spec": {"name": "api", "image": "img:1"}})", {limited})
                .status,
            200);
  Reply other = Fetch(port_, "POST", "/v1/ServiceManager/ApplyService",
                      R"({"spec": {"name": "web", "image": "img:1"}})", {limited});
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.json()["message"].get<std::string>(), HasSubstr("may change only api"));

  Reply who = Fetch(port_, "GET", "/v1/Auth/WhoAmI", "", {limited});
  ASSERT_EQ(who.status, 200);
  EXPECT_EQ(who.json()["role"], "ROLE_DEPLOYER");
}

TEST_F(HttpGatewayTest, EventsStreamInOrderAndResumeAfterTheLastIdSeen) {
  StartGateway();
  cp_.events.Publish("test.mark", "", 0, "before the ticks");
  const int64_t before = LastSequence();
  ASSERT_GT(before, 0);
  for (int i = 0; i < 5; ++i) cp_.events.Publish("test.tick", "web", 0, absl::StrCat("tick ", i));
  const std::string from =
      absl::StrCat("/v1/Cluster/WatchEvents?service=web&since_sequence=", before);
  std::vector<SseEvent> first = Stream(port_, from, 3, {admin_});
  ASSERT_EQ(first.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    nlohmann::json e = nlohmann::json::parse(first[i].data);
    EXPECT_EQ(e["message"], absl::StrCat("tick ", i));
    EXPECT_EQ(first[i].id, e["sequence"].get<std::string>());
  }
  // Reconnecting with the last id seen resumes right after it.
  std::vector<SseEvent> rest = Stream(port_, "/v1/Cluster/WatchEvents?service=web", 2,
                                      {admin_, absl::StrCat("Last-Event-ID: ", first[2].id)});
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(rest[0].data)["message"], "tick 3");
  EXPECT_EQ(nlohmann::json::parse(rest[1].data)["message"], "tick 4");

  // A stream that ends says so.
  std::vector<SseEvent> ended = Stream(port_, from + "&no_follow=true", 100, {admin_});
  ASSERT_EQ(ended.size(), 6u);
  EXPECT_EQ(ended.back().event, "end");

  // Errors before the stream starts are JSON with a status.
  Reply bad = Fetch(port_, "GET", "/v1/Releases/WatchRelease", "", {admin_});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("\"field\":\"id\""));
  Reply none = Fetch(port_, "GET", "/v1/Cluster/WatchEvents", "");
  EXPECT_EQ(none.status, 401);
}

TEST_F(HttpGatewayTest, LiveEventsArriveOnAnOpenStream) {
  StartGateway();
  std::vector<SseEvent> got;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    got = Stream(port_, "/v1/Cluster/WatchEvents?types=test.live", 3, {admin_});
    done = true;
  });
  // Published until the reader has its three (it subscribes at some point during these).
  for (int i = 0; i < 1000 && !done; ++i) {
    cp_.events.Publish("test.live", "", 0, absl::StrCat("live ", i));
    absl::SleepFor(absl::Milliseconds(10));
  }
  reader.join();
  ASSERT_EQ(got.size(), 3u);
  int64_t previous = 0;
  for (const SseEvent& e : got) {
    int64_t id = 0;
    ASSERT_TRUE(absl::SimpleAtoi(e.id, &id));
    EXPECT_GT(id, previous);
    previous = id;
    EXPECT_THAT(e.data, HasSubstr("live "));
  }
}

TEST_F(HttpGatewayTest, AClientThatStopsReadingBlocksNoOtherClient) {
  StartGateway();
  // A raw connection opens a stream from the start and never reads.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = absl::StrCat(
      "GET /v1/Cluster/WatchEvents?from_start=true HTTP/1.1\r\nHost: x\r\n", admin_, "\r\n\r\n");
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  // Far more than the socket buffers hold.
  const std::string padding(2000, 'p');
  for (int i = 0; i < 3000; ++i) cp_.events.Publish("test.flood", "", 0, padding);
  // Others are served meanwhile.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Post("/v1/ServiceManager/ListServices").status, 200);
  }
  std::vector<SseEvent> other =
      Stream(port_, "/v1/Cluster/WatchEvents?types=test.flood&from_start=true", 10, {admin_});
  EXPECT_EQ(other.size(), 10u);
  close(fd);
}

TEST(MessageFromQueryTest, SetsScalarAndRepeatedFieldsByEitherName) {
  hosting::v1::WatchEventsRequest r;
  ASSERT_TRUE(MessageFromQuery("service=web&types=a&types=b&sinceSequence=7&no_follow", &r).ok());
  EXPECT_EQ(r.service(), "web");
  EXPECT_THAT(r.types(), ElementsAreArray({"a", "b"}));
  EXPECT_EQ(r.since_sequence(), 7);
  EXPECT_TRUE(r.no_follow());

  absl::Status unknown = MessageFromQuery("servce=web", &r);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("servce"));
  absl::Status not_int = MessageFromQuery("since_sequence=x", &r);
  EXPECT_THAT(std::string(not_int.message()), HasSubstr("since_sequence"));
}

TEST(HttpStatusOfTest, MapsGrpcCodesAsGrpcGatewayDoes) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kFailedPrecondition), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInternal), 500);
}

}  // namespace
}  // namespace hosting::controlplane
