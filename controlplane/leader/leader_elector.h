#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"

namespace hosting::controlplane {

struct LeaderOptions {
  // Where clients reach this hostd (host:port), shown to them by standbys.
  std::string address;
  // How long a lease lasts without renewal: the longest a dead leader holds up its standby.
  // With `retry` it bounds a failover (kill -> a standby takes writes: at most lease + retry,
  // under a second), and it must outlast a leader's pause plus a slow renewal: 750 ms less
  // one renewal period leaves 600 ms for both (a 300 ms stop of the leader and a slowed
  // database are measured not to fail over: docs/performance.md).
  absl::Duration lease = absl::Milliseconds(750);
  // How often the leader renews and a standby tries to take over (rounds start on this
  // cadence whatever a round takes).
  absl::Duration retry = absl::Milliseconds(150);
};

// One hostd's part in electing the control plane's leader through the store's lease (as
// client-go's leaderelection does through a Lease object, with the store's clock and a fencing
// epoch). The leader renews well inside the lease; a standby takes over once it lapses.
//
// The leader acts (IsLeader) only until its own deadline: the lease's duration counted from
// when its last successful renewal was *sent*, less a fifth for clock-rate drift, so it stops
// acting before any standby can take over, even when the store cannot be reached. Writes of
// desired state are fenced in the store with the epoch (Store::SetFence), so a leader that was
// paused past its lease and wakes up can write nothing.
class LeaderElector {
 public:
  LeaderElector(Store& store, EventLog& events, HostdMetrics& metrics, Clock& clock,
                LeaderOptions options);
  ~LeaderElector();

  // One round: take or renew the lease, or see who holds it. Start() runs rounds every
  // `retry`; hostd runs one first so that a lone hostd leads before its loops start.
  void Step();
  void Start();
  // Stops the rounds and, when leading, gives the lease up at once (a clean step-down).
  void Stop();

  bool IsLeader();
  // OK while leading; UNAVAILABLE naming the leader otherwise.
  absl::Status CheckLeader();
  // The leader's address as last seen (empty: none known), and its epoch.
  std::string leader_address();
  int64_t epoch();
  const std::string& holder() const { return holder_; }
  const std::string& address() const { return options_.address; }

  // Runs (on the election thread) each time this hostd becomes the leader.
  void OnElected(std::function<void()> fn);
  // Runs (on the election thread) each time this hostd stops leading while it keeps running.
  void OnSteppedDown(std::function<void()> fn);
  // Runs (on the election thread) after every round with how the store answered the lease:
  // while the store is down no hostd leads and nothing else reads it, so this is what tells.
  void OnStoreAnswer(std::function<void(const absl::Status&)> fn);

  // "host:port" from a holder string "host:port#nonce".
  static std::string AddressOf(const std::string& holder);

 private:
  void Transition(bool leader, int64_t epoch, const std::string& why);
  std::vector<std::function<void(const absl::Status&)>> on_store_answer_ ABSL_GUARDED_BY(mu_);

  Store& store_;
  EventLog& events_;
  HostdMetrics& metrics_;
  Clock& clock_;
  const LeaderOptions options_;
  const std::string holder_;

  absl::Mutex mu_;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string seen_holder_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> on_elected_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> on_stepped_down_ ABSL_GUARDED_BY(mu_);

  absl::Mutex step_mu_;  // one round at a time
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace hosting::controlplane
