#pragma once

#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace hosting::appsvc {

// A bounded in-process cache of serialized responses, in front of Redis: LRU per shard, with a
// TTL so that a replica that missed an invalidation (Redis down) is stale for at most the TTL.
// Thread-safe; shards keep the I/O threads from contending on one lock.
class LocalCache {
 public:
  LocalCache(size_t max_entries, absl::Duration ttl, Clock& clock);

  std::optional<std::string> Get(const std::string& key);
  void Put(const std::string& key, std::string value);
  void Erase(const std::string& key);
  void Clear();
  size_t size();
  bool enabled() const { return max_entries_ > 0; }

 private:
  struct Entry {
    std::string key;
    std::string value;
    absl::Time expires;
  };
  struct Shard {
    absl::Mutex mu;
    std::list<Entry> lru ABSL_GUARDED_BY(mu);  // front: most recent
    std::unordered_map<std::string, std::list<Entry>::iterator> index ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(const std::string& key);

  static constexpr size_t kShards = 16;
  const size_t max_entries_;
  const size_t per_shard_;
  const absl::Duration ttl_;
  Clock& clock_;
  std::vector<Shard> shards_;
};

}  // namespace hosting::appsvc
