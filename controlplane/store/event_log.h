#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "controlplane/store/store.h"
#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// The event log: every event is appended to the store (so watchers can replay it with
// since_sequence) and handed to live subscribers.
class EventLog {
 public:
  using Subscriber = std::function<void(const hosting::v1::Event&)>;

  EventLog(Store& store, Clock& clock) : store_(store), clock_(clock) {}

  // Stamps time and source (when unset), stores, and fans out. A store failure is logged and
  // the event is still delivered live (with sequence 0): observability must not block actions.
  void Publish(hosting::v1::Event event);

  // Convenience for the common shape.
  void Publish(std::string type, std::string service, int64_t revision, std::string message,
               std::map<std::string, std::string> attributes = {});

  // Subscribers are called in sequence order on a publishing thread (the first of concurrent
  // publishers hands out the others' events too), under no lock; they must not block (queue
  // and return). When Unsubscribe returns, no call of that subscriber runs or will run.
  int64_t Subscribe(Subscriber subscriber);
  void Unsubscribe(int64_t id);

  // Watch streams (WatchEvents, WatchRelease) each hold a slot while open: at most
  // max_watchers() at once, so opening streams cannot take hostd's memory. False when every
  // slot is taken. When the last slot is released, freed memory goes back to the system.
  static constexpr int kMaxWatchers = 256;
  bool AcquireWatcherSlot();
  void ReleaseWatcherSlot();
  int max_watchers() const { return max_watchers_.load(); }
  void set_max_watchers(int n) { max_watchers_ = n; }

  // Whether an event passes a watch filter (service name, type prefixes).
  static bool Matches(const hosting::v1::Event& event, const std::string& service,
                      const std::vector<std::string>& types);

 private:
  Store& store_;
  Clock& clock_;
  absl::Mutex mu_;
  // Hands the queued events out, in order, until the queue is empty.
  void Deliver();

  // Serializes the store append with the queueing, so the queue is in sequence order.
  absl::Mutex publish_mu_;
  std::deque<hosting::v1::Event> queue_ ABSL_GUARDED_BY(publish_mu_);
  // The thread handing events out, if one is.
  std::optional<std::thread::id> deliverer_ ABSL_GUARDED_BY(publish_mu_);
  int64_t fanouts_started_ ABSL_GUARDED_BY(publish_mu_) = 0;
  int64_t fanouts_done_ ABSL_GUARDED_BY(publish_mu_) = 0;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> max_watchers_{kMaxWatchers};
  int watchers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hosting::controlplane
