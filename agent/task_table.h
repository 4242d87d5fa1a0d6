#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/docker_client.h"
#include "hosting/v1/agent.pb.h"

namespace hosting::agent {

// The agent's view of the Swarm task containers on its node and of the probe configuration
// hostd sent: the one state its parts (watcher, prober, reporter, command runner) share, each
// through the methods below under one lock. No I/O happens here.
class TaskTable {
 public:
  explicit TaskTable(Clock& clock) : clock_(clock) {}

  // --- The task watcher ---
  struct SyncResult {
    std::vector<std::string> added;  // container IDs now tracked, not yet inspected
    std::vector<int> removed_pids;   // of the tasks that are gone (0 when never inspected)
    bool changed() const { return !added.empty() || !removed_pids.empty(); }
  };
  // Makes the table hold exactly the running task containers in `running`.
  SyncResult Sync(const std::vector<docker::ContainerInfo>& running);
  // What an inspect of a newly added container found.
  void SetInspected(const std::string& container_id, int pid, const std::string& docker_health,
                    const std::string& address);
  // Docker's own health verdict changed; the updated report, or nullopt for an unknown container.
  std::optional<hosting::v1::TaskReport> SetDockerHealth(const std::string& container_id,
                                                         const std::string& status);

  // --- Probe configuration (from hostd) ---
  // The whole set hostd sends (per service and revision; revision 0: every revision of the
  // service). A task whose probe did not change keeps its health and its cadence: hostd sends
  // the set again periodically, and a resend must not put healthy tasks back to "starting".
  void SetProbeConfigs(const hosting::v1::ProbeConfigs& configs);

  // --- The prober ---
  // Marks every task whose probe is due at or before now as probing and returns their container
  // IDs; *next is set to the earliest time another probe falls due (at most `horizon` away).
  std::vector<std::string> TakeDueProbes(absl::Duration horizon, absl::Time* next);
  struct ProbeJob {
    int pid = 0;
    hosting::v1::ProbeConfig config;
  };
  // The probe to run for a task taken by TakeDueProbes; nullopt (and the task no longer
  // probing) when the task or its service's probe is gone.
  std::optional<ProbeJob> ProbeJobFor(const std::string& container_id);
  // Counts a probe's outcome against the service's thresholds; returns the report when the
  // task's probe health changed (to be sent at once). `http_status` is the answer's status (0:
  // no answer; `error` says why), 2xx and 3xx pass.
  //
  // A task that has never passed is probed at the start-up cadence (kStartupProbeInterval, or
  // the interval when shorter) so that it is ready the moment it is, while its failures count
  // at most once an interval, as the threshold means. Such a task that *answers* with a failure
  // other than 503 or 429 (those say "not yet") is unhealthy at once: a release learns of a
  // version whose health never passes on its first answer, not after the retries.
  std::optional<hosting::v1::TaskReport> RecordProbe(const std::string& container_id,
                                                     int http_status, const std::string& error);

  // A probe taken by TakeDueProbes asked nothing of the task (its process is gone): the task
  // keeps its health and counts, and is due again one interval later.
  void ProbeSkipped(const std::string& container_id);

  // --- The reporter ---
  struct ScrapeTarget {
    std::string container_id, task_id, service;
    int64_t revision = 0;
    int pid = 0;
    uint32_t port = 0;  // 0: do not scrape /metrics this time
  };
  std::vector<ScrapeTarget> ScrapeTargets();
  // The task's /metrics could not be read: a healthy task is asked again only after `pause`.
  void ScrapeFailed(const std::string& container_id, absl::Duration pause);

  // --- Commands ---
  // The container running a Swarm task, or "" when it is not on this node.
  std::string ContainerOf(const std::string& task_id) const;

  // Every task's report, as a snapshot message.
  hosting::v1::AgentMessage Snapshot() const;
  size_t size() const;

 private:
  struct Task {
    hosting::v1::TaskReport report;
    int pid = 0;
    int successes = 0;
    int failures = 0;
    // It passed its healthy threshold once (it leaves the start-up cadence).
    bool ever_healthy = false;
    absl::Time last_failure_counted = absl::InfinitePast();
    absl::Time next_probe;
    bool probing = false;
    absl::Time next_scrape;  // an application without usable /metrics is asked again later
  };
  // The probe of a task of `service` at `revision`: the revision's own, else the service's.
  const hosting::v1::ProbeConfig* ConfigFor(const hosting::v1::TaskReport& task) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static absl::Duration Cadence(const Task& t, const hosting::v1::ProbeConfig& c);

  Clock& clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Task> tasks_ ABSL_GUARDED_BY(mu_);  // by container ID
  // By (service, revision).
  std::map<std::pair<std::string, int64_t>, hosting::v1::ProbeConfig> probes_ ABSL_GUARDED_BY(mu_);
};

// How often a task that has never passed its probe is asked (see RecordProbe).
inline constexpr absl::Duration kStartupProbeInterval = absl::Milliseconds(200);

// A probe config's interval (at least 100 ms) and timeout (at least 50 ms).
absl::Duration ProbeInterval(const hosting::v1::ProbeConfig& config);
absl::Duration ProbeTimeout(const hosting::v1::ProbeConfig& config);

}  // namespace hosting::agent
