#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hosting::controlplane {

// A rate-limited work queue of keys, as in client-go: a key is never handed to two workers at
// once, a key added while it is being processed is processed again afterwards, and duplicates
// collapse. Failed keys come back after an exponential per-key backoff.
class WorkQueue {
 public:
  explicit WorkQueue(absl::Duration base_backoff = absl::Milliseconds(100),
                     absl::Duration max_backoff = absl::Seconds(10))
      : base_backoff_(base_backoff), max_backoff_(max_backoff) {}

  void Add(const std::string& key);
  // Adds the key once `delay` has passed.
  void AddAfter(const std::string& key, absl::Duration delay);
  // Adds the key after its backoff, which doubles with every call until Forget.
  void AddRateLimited(const std::string& key);
  // Resets the key's backoff (call after a successful sync).
  void Forget(const std::string& key);
  // Blocks until a key is ready or the queue shuts down (nullopt).
  std::optional<std::string> Get();
  // Marks a key from Get as processed.
  void Done(const std::string& key);
  void ShutDown();
  // Keys waiting (ready or delayed).
  size_t Depth();

 private:
  void PromoteDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration base_backoff_;
  const absl::Duration max_backoff_;
  absl::Mutex mu_;
  std::set<std::string> queued_ ABSL_GUARDED_BY(mu_);  // ready, in `order_`
  std::multimap<int64_t, std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion sequence
  int64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> processing_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);  // re-added while processing
  std::multimap<absl::Time, std::string> delayed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace hosting::controlplane
