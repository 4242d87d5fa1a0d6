// What many event streams cost hostd, and whether it gives the memory back: opens `streams`
// WatchEvents streams at once (replaying the stored events first), waits, cancels them all,
// and prints hostd's resident memory before, with the streams open, and after they closed, and
// how many streams hostd accepted or refused (it serves at most 256 watchers and answers
// RESOURCE_EXHAUSTED beyond). Not a timed test: figures for docs/performance.md.
//
//   build/tests/bench/watch_bench [streams=1500] [rounds=3] [events=2000]
//
// Before the streams, `events` events are written (service applies) so each replay has
// something to send.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace {

int64_t RssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int streams = argc > 1 ? std::atoi(argv[1]) : 1500;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const int events = argc > 3 ? std::atoi(argv[3]) : 2000;
  hosting::testing::HostdProcess hostd(hosting::testing::MakeTempDir("hosting-watchbench-"));
  if (absl::Status s = hostd.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  // Events to replay: dry-run applies write none, so apply and delete a service that never
  // runs (0 replicas), each write an event or two.
  auto services = hosting::v1::ServiceManager::NewStub(hostd.channel());
  int failed_writes = 0;
  std::string write_error;
  for (int i = 0; i < events / 2; ++i) {
    hosting::v1::ApplyServiceRequest apply;
    apply.mutable_spec()->set_name("watchbench");
    apply.mutable_spec()->set_image("hosting/sample:v1");
    apply.mutable_spec()->set_replicas(0);
    (*apply.mutable_spec()->mutable_env())["ROUND"] = std::to_string(i);
    hosting::v1::ApplyServiceResponse out;
    grpc::ClientContext ctx;
    grpc::Status st = services->ApplyService(&ctx, apply, &out);
    if (!st.ok()) {
      ++failed_writes;
      write_error = st.error_message();
    }
  }
  if (failed_writes > 0) {
    std::fprintf(stderr, "%d of %d applies failed (%s): the streams would have nothing to replay\n",
                 failed_writes, events / 2, write_error.c_str());
    return 1;
  }
  absl::SleepFor(absl::Seconds(2));
  std::printf("watch_bench: %d streams per round, %d rounds, hostd pid %d\n\n", streams, rounds,
              hostd.pid());
  std::printf("| round | RSS before MiB | RSS with streams MiB | RSS 3 s after MiB | accepted | "
              "refused |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  auto cluster = hosting::v1::Cluster::NewStub(hostd.channel());
  for (int round = 1; round <= rounds; ++round) {
    const int64_t before = RssKiB(hostd.pid());
    grpc::CompletionQueue cq;
    struct Stream {
      grpc::ClientContext ctx;
      std::unique_ptr<grpc::ClientAsyncReader<hosting::v1::Event>> reader;
      hosting::v1::Event event;
      grpc::Status status;
    };
    std::vector<std::unique_ptr<Stream>> open;
    hosting::v1::WatchEventsRequest req;
    req.set_from_start(true);
    for (int i = 0; i < streams; ++i) {
      auto s = std::make_unique<Stream>();
      s->reader = cluster->PrepareAsyncWatchEvents(&s->ctx, req, &cq);
      s->reader->StartCall(reinterpret_cast<void*>(static_cast<intptr_t>(2 * i)));
      open.push_back(std::move(s));
    }
    // Start every stream and read one message from each: refused streams fail their read.
    int started = 0, accepted = 0, refused = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (started + accepted + refused < 2 * streams && absl::Now() < deadline) {
      void* tag;
      bool ok;
      if (cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::seconds(1)) !=
          grpc::CompletionQueue::GOT_EVENT) {
        continue;
      }
      const intptr_t t = reinterpret_cast<intptr_t>(tag);
      Stream& s = *open[t / 2];
      if (t % 2 == 0) {
        ++started;
        s.reader->Read(&s.event, reinterpret_cast<void*>(t + 1));
      } else {
        ok ? ++accepted : ++refused;
      }
    }
    absl::SleepFor(absl::Seconds(2));
    const int64_t with = RssKiB(hostd.pid());
    for (auto& s : open) s->ctx.TryCancel();
    cq.Shutdown();
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
    }
    open.clear();
    absl::SleepFor(absl::Seconds(3));
    const int64_t after = RssKiB(hostd.pid());
    std::printf("| %d | %.1f | %.1f | %.1f | %d | %d |\n", round, before / 1024.0, with / 1024.0,
                after / 1024.0, accepted, refused);
  }
  hosting::v1::DeleteServiceRequest del;
  del.set_name("watchbench");
  hosting::v1::DeleteServiceResponse out;
  grpc::ClientContext ctx;
  (void)services->DeleteService(&ctx, del, &out);
  (void)hosting::testing::RemoveSwarmServicesOf("watchbench");
  return 0;
}
