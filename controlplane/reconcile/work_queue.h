#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace hosting::controlplane {

// A rate-limited work queue of keys, as in client-go: a key is never handed to two workers at
// once, a key added while it is being processed is processed again afterwards, and duplicates
// collapse. Failed keys come back after an exponential per-key backoff. Delays are measured on
// the given Clock (tests move a FakeClock; Get then notices within its poll).
class WorkQueue {
 public:
  explicit WorkQueue(Clock& clock = Clock::Real(),
                     absl::Duration base_backoff = absl::Milliseconds(100),
                     absl::Duration max_backoff = absl::Seconds(10))
      : clock_(clock), base_backoff_(base_backoff), max_backoff_(max_backoff) {}

  void Add(const std::string& key);
  // Adds the key once `delay` has passed. A key waits at most once: a second delay for a key
  // already waiting keeps the sooner of the two (as client-go's delaying queue), so repeated
  // hints during a long convergence do not multiply its polls.
  void AddAfter(const std::string& key, absl::Duration delay);
  // Adds the key after its backoff, which doubles with every call until Forget.
  void AddRateLimited(const std::string& key);
  // Resets the key's backoff (call after a successful sync).
  void Forget(const std::string& key);
  // Blocks until a key is ready or the queue shuts down (nullopt).
  std::optional<std::string> Get();
  // A ready key, or nullopt at once.
  std::optional<std::string> TryGet();
  // Marks a key from Get as processed.
  void Done(const std::string& key);
  void ShutDown();
  // Keys waiting (ready or delayed), each counted once.
  size_t Depth();

 private:
  void PromoteDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string TakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock& clock_;
  const absl::Duration base_backoff_;
  const absl::Duration max_backoff_;
  absl::Mutex mu_;
  std::set<std::string> queued_ ABSL_GUARDED_BY(mu_);  // ready, in `order_`
  std::multimap<int64_t, std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion sequence
  int64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> processing_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);  // re-added while processing
  std::multimap<absl::Time, std::string> delayed_ ABSL_GUARDED_BY(mu_);
  // Each delayed key's entry in `delayed_`.
  std::map<std::string, std::multimap<absl::Time, std::string>::iterator> delayed_keys_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace hosting::controlplane
