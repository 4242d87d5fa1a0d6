#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/docker_client.h"

namespace hosting::controlplane {

// A Swarm node label hostd sets while it drains a node: the tasks there get no new traffic
// (the router takes them out of the load balancer) before Swarm stops them. Kept in Swarm so
// that every hostd, and a new leader, sees it.
inline constexpr char kTrafficOffLabel[] = "hosting.traffic-off";
inline bool TrafficOff(const docker::NodeInfo& node) {
  auto it = node.labels.find(kTrafficOffLabel);
  return it != node.labels.end() && it->second == "true";
}

// What Swarm runs, as last listed: the Swarm services this hostd owns with their running-task
// counts, every task Swarm wants running, and the nodes. Immutable once published.
struct SwarmView {
  std::vector<docker::ServiceInfo> services;
  std::vector<docker::TaskInfo> tasks;  // desired state "running"
  std::vector<docker::NodeInfo> nodes;
  // When the list that made this view began: the view is at least this fresh.
  absl::Time listed_at = absl::InfinitePast();
};

// An informer-style cache of Swarm's services, tasks and nodes (client-go's reflector in
// small): one list, then a relist on every hint (a Docker event, a write hostd made) and at
// least every `relist_interval`, since task states change without service events. API reads
// (GetService, ListServices, nodes, service health) and the release loop's idle route sync are
// served from it, with `listed_at` telling how fresh they are. Decisions that must not act on a
// stale view take a fresh list instead (Relist, which publishes it to every reader): the
// reconciler's sync, a release step, a node's availability write. docs/architecture.md lists
// which reads are which.
class SwarmCache {
 public:
  struct Options {
    // hosting.controller label value: only this hostd's Swarm services are listed.
    std::string controller_id = "test";
    absl::Duration relist_interval = absl::Seconds(1);
    // Hints closer together than this share one relist.
    absl::Duration coalesce = absl::Milliseconds(20);
  };

  SwarmCache(docker::DockerClient& docker, Clock& clock, Options options);
  ~SwarmCache();

  // Lists once (so the first reads have a view when the engine answers), then relists in the
  // background until Stop.
  void Start();
  void Stop();

  // The newest view. UNAVAILABLE, naming the engine's error, while the last list failed (or
  // none was made): a read must not pass off an old view as the engine's present.
  absl::StatusOr<std::shared_ptr<const SwarmView>> View();
  // Something changed: relist soon.
  void Invalidate();
  // Lists now and publishes the result (unless a newer list was published meanwhile); the view,
  // or the engine's error.
  absl::StatusOr<std::shared_ptr<const SwarmView>> Relist();

  // Lists done so far (for tests and the benchmark's report).
  int64_t lists() const;

 private:
  void Loop();

  docker::DockerClient& docker_;
  Clock& clock_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const SwarmView> view_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("Swarm has not been listed yet");
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lists_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace hosting::controlplane
