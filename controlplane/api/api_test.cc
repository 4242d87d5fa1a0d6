// The gRPC edge over the domain on fakes: a real in-process gRPC server, the fake engine, an
// in-memory store, and fake agent streams.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "controlplane/agents/agent_hub.h"
#include "controlplane/api/cluster_service.h"
#include "controlplane/api/releases_service.h"
#include "controlplane/api/service_manager_service.h"
#include "controlplane/cluster/cluster_manager.h"
#include "controlplane/release/release_manager.h"
#include "controlplane/testing/fake_agent_channel.h"
#include "controlplane/testing/fake_domain.h"
#include "controlplane/traffic/traffic_router.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::controlplane {
namespace {

using ::testing::SizeIs;

class ApiTest : public ::testing::Test {
 protected:
  ApiTest()
      : service_handlers_(cp_.services),
        cluster_handlers_(cluster_),
        release_handlers_(releases_),
        service_grpc_(service_handlers_, cp_.metrics),
        cluster_grpc_(cluster_handlers_, cp_.events, cp_.store, cp_.metrics),
        releases_grpc_(release_handlers_, cp_.events, cp_.store, cp_.metrics) {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_grpc_);
    builder.RegisterService(&cluster_grpc_);
    builder.RegisterService(&releases_grpc_);
    server_ = builder.BuildAndStart();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }

  ~ApiTest() override {
    server_->Shutdown(std::chrono::system_clock::now());
  }

  double Gauge(const std::string& name) {
    for (const auto& family : cp_.metrics.registry()->Collect()) {
      if (family.name == name && !family.metric.empty()) return family.metric[0].gauge.value;
    }
    return -1;
  }

  // Waits (bounded) for the gauge to read `value`.
  bool AwaitGauge(const std::string& name, double value) {
    for (int i = 0; i < 500; ++i) {
      if (Gauge(name) == value) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  void ApplyWeb() { ASSERT_TRUE(cp_.Apply("web", "img:1").ok()); }

  FakeDomain domain_{Clock::Real()};
  FakeControlPlane& cp_ = domain_.cp;
  AgentRegistry& agents_ = domain_.agents;
  AgentHub& hub_ = domain_.hub;
  ClusterManager& cluster_ = domain_.cluster;
  ReleaseManager& releases_ = domain_.releases;
  ServiceHandlers service_handlers_;
  ClusterHandlers cluster_handlers_;
  ReleaseHandlers release_handlers_;
  ServiceManagerGrpc service_grpc_;
  ClusterGrpc cluster_grpc_;
  ReleasesGrpc releases_grpc_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The gauge counts every open stream, whichever RPC opened it (it once lived in a static of
// the stream template, one per instantiation, so the two RPCs overwrote each other's count).
TEST_F(ApiTest, TheWatchersGaugeCountsEveryOpenStream) {
  ApplyWeb();
  hosting::v1::StartReleaseRequest start;
  start.set_service("web");
  start.set_image("img:2");
  absl::StatusOr<hosting::v1::Release> release = releases_.Start(start);
  ASSERT_TRUE(release.ok()) << release.status();

  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  auto releases = hosting::v1::Releases::NewStub(channel_);
  grpc::ClientContext events_ctx, release_ctx, events_ctx2;
  hosting::v1::WatchEventsRequest watch;
  auto events_stream = cluster->WatchEvents(&events_ctx, watch);
  hosting::v1::WatchReleaseRequest watch_release;
  watch_release.set_id(release->id());
  auto release_stream = releases->WatchRelease(&release_ctx, watch_release);
  hosting::v1::ReleaseEvent first;
  ASSERT_TRUE(release_stream->Read(&first));  // the stream is open and replaying
  EXPECT_TRUE(AwaitGauge("hostd_event_watchers", 2)) << Gauge("hostd_event_watchers");
  auto events_stream2 = cluster->WatchEvents(&events_ctx2, watch);
  EXPECT_TRUE(AwaitGauge("hostd_event_watchers", 3)) << Gauge("hostd_event_watchers");

  release_ctx.TryCancel();
  EXPECT_TRUE(AwaitGauge("hostd_event_watchers", 2)) << Gauge("hostd_event_watchers");
  events_ctx.TryCancel();
  events_ctx2.TryCancel();
  EXPECT_TRUE(AwaitGauge("hostd_event_watchers", 0)) << Gauge("hostd_event_watchers");
  events_stream->Finish().ok();
  events_stream2->Finish().ok();
  release_stream->Finish().ok();
}

// A node command holds no callback thread: the pull reaches every node before any answers.
TEST_F(ApiTest, PullImageAsksEveryNodeAtOnceAndFinishesFromTheirAnswers) {
  FakeAgentChannel n1("n1"), n2("n2");
  hub_.Add(&n1);
  hub_.Add(&n2);
  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  hosting::v1::PullImageRequest req;
  req.set_image("img:2");
  req.add_nodes("n1");
  req.add_nodes("n2");
  hosting::v1::PullImageResponse resp;
  grpc::Status status;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::thread call([&] { status = cluster->PullImage(&ctx, req, &resp); });
  ASSERT_TRUE(n1.AwaitCommands(1, absl::Seconds(10)));
  ASSERT_TRUE(n2.AwaitCommands(1, absl::Seconds(10)));  // n1 has not answered yet
  hosting::v1::CommandResult ok;
  ok.set_command_id(n1.commands()[0].command_id());
  ok.set_ok(true);
  hub_.CommandDone(ok);
  hosting::v1::CommandResult failed;
  failed.set_command_id(n2.commands()[0].command_id());
  failed.set_error("manifest unknown");
  hub_.CommandDone(failed);
  call.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(resp.results(), SizeIs(2));
  EXPECT_TRUE(resp.results(0).ok());
  EXPECT_FALSE(resp.results(1).ok());
  EXPECT_EQ(resp.results(1).error(), "pull: manifest unknown");
  hub_.Remove(&n1);
  hub_.Remove(&n2);
}

// Watch streams are bounded: past the limit one is refused at once, naming it, and a slot freed
// by a closed stream is taken again.
TEST_F(ApiTest, WatchersBeyondTheLimitAreRefusedAndSlotsComeBack) {
  cp_.events.set_max_watchers(2);
  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  hosting::v1::WatchEventsRequest watch;
  grpc::ClientContext a, b, c, d;
  auto first = cluster->WatchEvents(&a, watch);
  auto second = cluster->WatchEvents(&b, watch);
  ASSERT_TRUE(AwaitGauge("hostd_event_watchers", 2));
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto third = cluster->WatchEvents(&c, watch);
  hosting::v1::Event e;
  EXPECT_FALSE(third->Read(&e));
  grpc::Status refused = third->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("at most 2 event and release watchers"));
  a.TryCancel();
  first->Finish().ok();
  ASSERT_TRUE(AwaitGauge("hostd_event_watchers", 1));
  // The freed slot: a new watcher follows live events.
  auto fourth = cluster->WatchEvents(&d, watch);
  ASSERT_TRUE(AwaitGauge("hostd_event_watchers", 2));
  cp_.events.Publish("test.after", "web", 0, "after");
  ASSERT_TRUE(fourth->Read(&e));
  EXPECT_EQ(e.type(), "test.after");
  b.TryCancel();
  d.TryCancel();
  second->Finish().ok();
  fourth->Finish().ok();
}

TEST_F(ApiTest, WatchEventsReplaysFromASequenceThenEnds) {
  for (int i = 1; i <= 5; ++i) cp_.events.Publish("test.tick", "web", 0, absl::StrCat("tick ", i));
  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  hosting::v1::WatchEventsRequest req;
  req.set_since_sequence(2);
  req.set_no_follow(true);
  auto reader = cluster->WatchEvents(&ctx, req);
  std::vector<int64_t> seen;
  for (hosting::v1::Event e; reader->Read(&e);) seen.push_back(e.sequence());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(seen, (std::vector<int64_t>{3, 4, 5}));
}

// A watcher that reads nothing while events pile up is ended, naming where to resume; the
// publishers are not held up by it.
TEST_F(ApiTest, ASlowWatcherIsEndedWithTheSequenceToResumeFrom) {
  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  hosting::v1::WatchEventsRequest req;
  auto reader = cluster->WatchEvents(&ctx, req);
  ASSERT_TRUE(AwaitGauge("hostd_event_watchers", 1));
  // More than the backlog bound, with large messages so gRPC's buffers fill first.
  const std::string big(4096, 'x');
  for (int i = 0; i < 12000; ++i) cp_.events.Publish("test.flood", "web", 0, big);
  hosting::v1::Event e;
  int read = 0;
  while (reader->Read(&e)) ++read;
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("since_sequence="));
  EXPECT_LT(read, 12000);
}

// A replay longer than the live backlog's bound is paged from the store, not held at once: a
// live event that arrives while it runs neither ends the stream nor gets lost.
TEST_F(ApiTest, AReplayLongerThanTheBacklogBoundThenFollowsLiveEvents) {
  constexpr int kStored = 12000;
  for (int i = 0; i < kStored; ++i) cp_.events.Publish("test.old", "web", 0, "stored");
  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  hosting::v1::WatchEventsRequest req;
  req.set_from_start(true);
  auto reader = cluster->WatchEvents(&ctx, req);
  ASSERT_TRUE(AwaitGauge("hostd_event_watchers", 1));
  cp_.events.Publish("test.live", "web", 0, "live");  // before the caller read anything
  int stored = 0;
  bool live = false;
  std::vector<int64_t> sequences;
  for (hosting::v1::Event e; !live && reader->Read(&e);) {
    sequences.push_back(e.sequence());
    if (e.type() == "test.old") ++stored;
    live = e.type() == "test.live";
  }
  EXPECT_EQ(stored, kStored);
  EXPECT_TRUE(live) << "the live event after the replay";
  EXPECT_TRUE(std::is_sorted(sequences.begin(), sequences.end()));
  EXPECT_EQ(std::adjacent_find(sequences.begin(), sequences.end()), sequences.end())
      << "no event twice";
  ctx.TryCancel();
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
}

TEST_F(ApiTest, ErrorsKeepTheirCodesAcrossTheEdge) {
  auto services = hosting::v1::ServiceManager::NewStub(channel_);
  grpc::ClientContext ctx;
  hosting::v1::GetServiceRequest get;
  get.set_name("ghost");
  hosting::v1::Service out;
  EXPECT_EQ(services->GetService(&ctx, get, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext bad_ctx;
  hosting::v1::ApplyServiceRequest bad;
  hosting::v1::ApplyServiceResponse bad_out;
  grpc::Status st = services->ApplyService(&bad_ctx, bad, &bad_out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(st.error_details().empty());  // google.rpc.BadRequest naming the field
  auto cluster = hosting::v1::Cluster::NewStub(channel_);
  grpc::ClientContext logs_ctx;
  hosting::v1::GetTaskLogsRequest logs;
  logs.set_task_id("nosuchtask");
  hosting::v1::GetTaskLogsResponse logs_out;
  EXPECT_EQ(cluster->GetTaskLogs(&logs_ctx, logs, &logs_out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace hosting::controlplane
