#include "appsvc/local_cache.h"

#include <functional>

namespace hosting::appsvc {

LocalCache::LocalCache(size_t max_entries, absl::Duration ttl, Clock& clock)
    : max_entries_(max_entries),
      per_shard_(max_entries == 0 ? 0 : std::max<size_t>(1, max_entries / kShards)),
      ttl_(ttl),
      clock_(clock),
      shards_(kShards) {}

LocalCache::Shard& LocalCache::ShardFor(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

std::optional<std::string> LocalCache::Get(const std::string& key) {
  if (max_entries_ == 0) return std::nullopt;
  Shard& s = ShardFor(key);
  absl::MutexLock lock(&s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return std::nullopt;
  if (it->second->expires <= clock_.Now()) {
    s.lru.erase(it->second);
    s.index.erase(it);
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->value;
}

void LocalCache::Put(const std::string& key, std::string value) {
  if (max_entries_ == 0) return;
  Shard& s = ShardFor(key);
  absl::MutexLock lock(&s.mu);
  absl::Time expires = clock_.Now() + ttl_;
  if (auto it = s.index.find(key); it != s.index.end()) {
    it->second->value = std::move(value);
    it->second->expires = expires;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  s.lru.push_front(Entry{key, std::move(value), expires});
  s.index[key] = s.lru.begin();
  while (s.lru.size() > per_shard_) {
    s.index.erase(s.lru.back().key);
    s.lru.pop_back();
  }
}

void LocalCache::Erase(const std::string& key) {
  if (max_entries_ == 0) return;
  Shard& s = ShardFor(key);
  absl::MutexLock lock(&s.mu);
  if (auto it = s.index.find(key); it != s.index.end()) {
    s.lru.erase(it->second);
    s.index.erase(it);
  }
}

void LocalCache::Clear() {
  for (Shard& s : shards_) {
    absl::MutexLock lock(&s.mu);
    s.lru.clear();
    s.index.clear();
  }
}

size_t LocalCache::size() {
  size_t n = 0;
  for (Shard& s : shards_) {
    absl::MutexLock lock(&s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace hosting::appsvc
