#include "controlplane/reconcile/swarm_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "controlplane/spec/swarm_spec.h"

namespace hosting::controlplane {

SwarmCache::SwarmCache(docker::DockerClient& docker, Clock& clock, Options options)
    : docker_(docker), clock_(clock), options_(std::move(options)) {}

SwarmCache::~SwarmCache() { Stop(); }

void SwarmCache::Start() {
  if (thread_.joinable()) return;
  (void)Relist();
  thread_ = std::thread([this] { Loop(); });
}

void SwarmCache::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::shared_ptr<const SwarmView>> SwarmCache::View() {
  absl::MutexLock lock(&mu_);
  if (!last_error_.ok() || view_ == nullptr) return last_error_;
  return view_;
}

void SwarmCache::Invalidate() {
  absl::MutexLock lock(&mu_);
  dirty_ = true;
}

int64_t SwarmCache::lists() const {
  absl::MutexLock lock(&mu_);
  return lists_;
}

absl::StatusOr<std::shared_ptr<const SwarmView>> SwarmCache::Relist() {
  {
    // A hint that arrives while this list runs asks for the next one.
    absl::MutexLock lock(&mu_);
    dirty_ = false;
  }
  const absl::Time started = clock_.Now();
  absl::StatusOr<std::vector<docker::ServiceInfo>> services = docker_.ListServices(
      {{"label", {absl::StrCat(kLabelController, "=", options_.controller_id)}}});
  absl::StatusOr<std::vector<docker::TaskInfo>> tasks =
      services.ok() ? docker_.ListTasks({{"desired-state", {"running"}}})
                    : absl::StatusOr<std::vector<docker::TaskInfo>>(services.status());
  absl::StatusOr<std::vector<docker::NodeInfo>> nodes =
      tasks.ok() ? docker_.ListNodes() : absl::StatusOr<std::vector<docker::NodeInfo>>(tasks.status());
  absl::MutexLock lock(&mu_);
  ++lists_;
  if (!nodes.ok()) {
    const char* what = !services.ok() ? "services" : !tasks.ok() ? "tasks" : "nodes";
    last_error_ = absl::Status(nodes.status().code(), absl::StrCat("cannot list Swarm ", what,
                                                                   ": ", nodes.status().message()));
    return last_error_;
  }
  last_error_ = absl::OkStatus();
  if (view_ != nullptr && view_->listed_at > started) return view_;  // a newer list won
  auto view = std::make_shared<SwarmView>();
  view->services = *std::move(services);
  view->tasks = *std::move(tasks);
  view->nodes = *std::move(nodes);
  view->listed_at = started;
  view_ = std::move(view);
  return view_;
}

void SwarmCache::Loop() {
  absl::Time last = clock_.Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return dirty_ || stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&due),
                           std::max(absl::ZeroDuration(),
                                    options_.relist_interval - (clock_.Now() - last)));
      if (stopping_) return;
    }
    // Let a burst of hints (one release step writes several services) share one list.
    absl::SleepFor(options_.coalesce);
    (void)Relist();
    last = clock_.Now();
  }
}

}  // namespace hosting::controlplane
