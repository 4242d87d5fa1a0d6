#pragma once

#include <atomic>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/docker_client.h"
#include "controlplane/store/event_log.h"
#include "controlplane/telemetry/metrics.h"
#include "controlplane/store/store.h"
#include "controlplane/reconcile/swarm_cache.h"
#include "controlplane/reconcile/work_queue.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

struct ReconcilerOptions {
  // Overlay network every revision service joins (created when missing).
  std::string network = "hosting";
  // This hostd's identity (Store::InstanceId): only Swarm services labelled with it are
  // changed or removed.
  std::string controller_id = "test";
  int workers = 2;
  // Full pass over every service, catching anything the event stream missed.
  absl::Duration resync_interval = absl::Seconds(30);
  // How soon a converging service is looked at again.
  absl::Duration progress_poll = absl::Seconds(1);
  // Whether this hostd may act on Swarm now (the leader); unset: always. A standby keeps its
  // watch cache (it serves reads) but syncs nothing; EnqueueAll on election catches up.
  std::function<bool()> acting;
};

// Level-triggered reconciliation of Swarm against the desired state (brief, decision 6).
// Docker events and API writes only enqueue a service name; a worker then compares the store
// with what the Docker API lists right now and acts idempotently:
//  - the current revision's Swarm service "<name>-r<N>" exists, with the spec hostd computes
//    (checked through the hosting.spec-hash label) and the desired replicas;
//  - other revisions' services are removed once the current one runs all its tasks;
//  - a service with no desired state has all its Swarm services removed.
class Reconciler {
 public:
  Reconciler(Store& store, docker::DockerClient& docker, EventLog& events, HostdMetrics& metrics,
             Clock& clock, ReconcilerOptions options);
  ~Reconciler();

  // One pass over one service. Returns when it should be looked at again (nullopt: only on the
  // next hint or resync), or the error that stopped it (retried with backoff by the workers).
  absl::StatusOr<std::optional<absl::Duration>> Sync(const std::string& service);

  // Starts the workers, the Docker event watcher and the periodic resync.
  void Start();
  // Stops and joins them. Idempotent.
  void Stop();

  void Enqueue(const std::string& service);
  // The desired state of `service` changed: its status reads "progressing" until a sync has
  // looked at the new state (so no reader sees the verdict on the old one), and it is enqueued.
  void DesiredStateChanged(const std::string& service, int64_t revision);
  // Every service in the store and every Swarm service labelled hosting.service.
  void EnqueueAll();

  // The observed state of a service, with the phase of its last sync: from the watch cache
  // once started (status.observed_at says when Swarm was listed), from a fresh list before.
  // UNAVAILABLE when Docker cannot be reached.
  absl::StatusOr<hosting::v1::ServiceStatus> Observe(const ServiceRecord& record);
  // The watch cache's newest view while the reconciler runs; a fresh list before (unit tests).
  absl::StatusOr<std::shared_ptr<const SwarmView>> View();
  // A fresh list, for a decision that must not act on a stale view; published to every reader.
  absl::StatusOr<std::shared_ptr<const SwarmView>> FreshView() { return cache_.Relist(); }
  // The same for many services from one view.
  absl::StatusOr<std::map<std::string, hosting::v1::ServiceStatus>> ObserveAll(
      const std::vector<ServiceRecord>& records);

  // What another reader of the store saw (the elector's lease rounds): OK marks it reachable,
  // an unreachable status unreachable; other errors say nothing about reachability.
  void ObserveStore(const absl::Status& status);

  // The Swarm ID of every secret the spec mounts; FAILED_PRECONDITION naming a missing one.
  absl::StatusOr<std::map<std::string, std::string>> SecretIds(
      const hosting::v1::ServiceSpec& spec);
  const ReconcilerOptions& options() const { return options_; }

 private:
  struct Applied {
    int64_t replicas;
    std::string hash;
  };
  struct SyncState {
    hosting::v1::ServicePhase phase = hosting::v1::SERVICE_PHASE_PROGRESSING;
    std::string message;
    absl::Time last;
  };

  // Makes the revision's Swarm service exist with `spec` and `replicas`. Returns its running
  // tasks, or -1 when it was just created (or is being created) and needs another look.
  absl::StatusOr<int64_t> EnsureRevision(const std::string& name,
                                         const hosting::v1::ServiceSpec& spec, int64_t revision,
                                         int64_t replicas, const docker::ServiceInfo* current);
  // Sync of a service whose revisions share it (ServiceRecord::rollout): every listed revision
  // at its count, every other revision removed.
  absl::StatusOr<std::optional<absl::Duration>> SyncRollout(
      const ServiceRecord& record, const std::vector<docker::ServiceInfo>& swarm);
  void WorkerLoop();
  void EventLoop();
  void ResyncLoop();
  void SetDockerReachable(bool reachable, const std::string& detail);
  // The store answered (or did not) a sync's read; announced on transitions only.
  void SetStoreReachable(bool reachable, const std::string& detail);
  // A failed sync: the service's status, and what it says about Docker and the store.
  void SyncFailed(const std::string& service, const absl::Status& status);
  // Counts a change made to Swarm and marks the watch cache for a relist.
  void Acted(const std::string& action);
  void SetState(const std::string& service, hosting::v1::ServicePhase phase, std::string message);
  absl::Status EnsureNetwork();
  // Filters for the Swarm services this hostd owns (of one hosted service, or all when empty).
  docker::Filters OwnedBy(const std::string& service) const;
  hosting::v1::ServiceStatus BuildStatus(const ServiceRecord& record,
                                         const std::vector<docker::ServiceInfo>& swarm);

  Store& store_;
  docker::DockerClient& docker_;
  EventLog& events_;
  HostdMetrics& metrics_;
  Clock& clock_;
  const ReconcilerOptions options_;
  WorkQueue queue_;
  SwarmCache cache_;
  std::atomic<bool> cache_running_{false};

  std::atomic<bool> docker_reachable_{true};
  std::atomic<bool> store_reachable_{true};
  std::atomic<bool> network_ready_{false};
  absl::Notification stop_;
  std::vector<std::thread> threads_;

  absl::Mutex mu_;
  // What hostd last wrote to each Swarm service (by Swarm service name): a later difference
  // that hostd did not write is drift made outside hostd.
  std::map<std::string, Applied> applied_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, SyncState> state_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool docker_state_announced_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace hosting::controlplane
