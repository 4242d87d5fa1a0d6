#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "appsvc/cache.h"
#include "appsvc/config.h"
#include "appsvc/readiness.h"

struct redisContext;
struct redisReply;

namespace hosting::appsvc {

// RemoteCache on Redis through hiredis (synchronous, one connection per calling thread, every
// call bounded by REDIS_TIMEOUT_MS). After a failure, calls are skipped for a second (the
// service answers from PostgreSQL meanwhile) and then retried, so a dead Redis costs little
// and a returning one is used again by itself.
//
// Invalidations are published on the channel "appsvc:invalidate"; a subscriber thread hands
// each key to `on_invalidate` (drop it from the in-process layer). When the subscription is
// (re)established, `on_resubscribe` runs: messages may have been missed, so the in-process
// layer must be cleared.
class RedisCache final : public RemoteCache {
 public:
  RedisCache(const Config& config, std::function<void(const std::string&)> on_invalidate,
             std::function<void()> on_resubscribe);
  ~RedisCache() override;

  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override;
  absl::Status Set(const std::string& key, const std::string& value, absl::Duration ttl) override;
  absl::Status Invalidate(const std::vector<std::string>& keys) override;
  bool available() override;
  bool invalidations_live() override { return subscribed_.load(); }

  void StartSubscriber();
  void Stop();
  // Readiness probe (PING on the calling thread's connection, ignoring the skip window).
  DependencyHealth Check();

  static constexpr char kChannel[] = "appsvc:invalidate";

 private:
  struct Conn;
  Conn& ThreadConn();
  // Runs one command on the calling thread's connection. A reused connection that fails
  // (Redis restarted since) is replaced and the command retried once.
  absl::StatusOr<redisReply*> Run(const std::function<redisReply*(redisContext*)>& command,
                                  bool honor_backoff, const char* what);
  absl::StatusOr<redisContext*> Connect(bool honor_backoff);
  void MarkDown(const std::string& why);
  void SubscriberLoop();

  const Config config_;
  std::function<void(const std::string&)> on_invalidate_;
  std::function<void()> on_resubscribe_;
  std::atomic<int64_t> retry_after_ns_{0};
  const uint64_t instance_;
  absl::Notification stop_;
  std::thread subscriber_;
  std::atomic<int> subscriber_fd_{-1};
  std::atomic<bool> subscriber_done_{false};
  std::atomic<bool> subscribed_{false};
};

}  // namespace hosting::appsvc
