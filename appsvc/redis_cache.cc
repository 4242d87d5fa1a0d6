#include "appsvc/redis_cache.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace hosting::appsvc {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

std::atomic<uint64_t> next_instance{1};


}  // namespace

struct RedisCache::Conn {
  redisContext* ctx = nullptr;
  ~Conn() { Reset(); }
  void Reset() {
    if (ctx != nullptr) redisFree(ctx);
    ctx = nullptr;
  }
};

RedisCache::RedisCache(const Config& config, std::function<void(const std::string&)> on_invalidate,
                       std::function<void()> on_resubscribe)
    : config_(config), on_invalidate_(std::move(on_invalidate)),
      on_resubscribe_(std::move(on_resubscribe)), instance_(next_instance++) {}

RedisCache::~RedisCache() { Stop(); }

bool RedisCache::available() { return absl::GetCurrentTimeNanos() >= retry_after_ns_.load(); }

void RedisCache::MarkDown(const std::string& why) {
  int64_t until = absl::GetCurrentTimeNanos() + absl::ToInt64Nanoseconds(absl::Seconds(1));
  int64_t prev = retry_after_ns_.exchange(until);
  if (prev < absl::GetCurrentTimeNanos()) LogWarning("redis unavailable", {{"error", why}});
}

absl::StatusOr<redisContext*> RedisCache::Connect(bool honor_backoff) {
  if (honor_backoff && !available()) return absl::UnavailableError("redis unavailable (retrying)");
  timeval tv = absl::ToTimeval(config_.redis_timeout);
  redisContext* c = redisConnectWithTimeout(config_.redis_host.c_str(), config_.redis_port, tv);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    MarkDown(err);
    return absl::UnavailableError(absl::StrCat("redis ", config_.redis_host, ":", config_.redis_port,
                                               ": ", err));
  }
  redisSetTimeout(c, tv);
  if (!config_.redis_password.empty()) {
    Reply r(static_cast<redisReply*>(redisCommand(c, "AUTH %s", config_.redis_password.c_str())));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      std::string err = r ? std::string(r->str, r->len) : std::string(c->errstr);
      redisFree(c);
      MarkDown(err);
      return absl::UnavailableError(absl::StrCat("redis AUTH: ", err));
    }
  }
  return c;
}

RedisCache::Conn& RedisCache::ThreadConn() {
  thread_local std::unordered_map<uint64_t, Conn> conns;
  return conns[instance_];
}

absl::StatusOr<redisReply*> RedisCache::Run(
    const std::function<redisReply*(redisContext*)>& command, bool honor_backoff,
    const char* what) {
  Conn& conn = ThreadConn();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = conn.ctx == nullptr;
    if (fresh) {
      absl::StatusOr<redisContext*> c = Connect(honor_backoff);
      if (!c.ok()) return c.status();
      conn.ctx = *c;
    }
    redisReply* reply = command(conn.ctx);
    if (reply != nullptr) return reply;
    std::string err = conn.ctx->errstr;
    conn.Reset();
    if (fresh) {
      MarkDown(err);
      return absl::UnavailableError(absl::StrCat("redis ", what, ": ", err));
    }
  }
  return absl::UnavailableError(absl::StrCat("redis ", what, ": connection lost"));
}

absl::StatusOr<std::optional<std::string>> RedisCache::Get(const std::string& key) {
  absl::StatusOr<redisReply*> raw = Run(
      [&](redisContext* c) {
        return static_cast<redisReply*>(redisCommand(c, "GET %b", key.data(), key.size()));
      },
      true, "GET");
  if (!raw.ok()) return raw.status();
  Reply r(*raw);
  if (r->type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if (r->type == REDIS_REPLY_STRING) return std::optional<std::string>(std::string(r->str, r->len));
  return absl::InternalError(absl::StrCat("redis GET ", key, ": unexpected reply type ", r->type));
}

absl::Status RedisCache::Set(const std::string& key, const std::string& value, absl::Duration ttl) {
  absl::StatusOr<redisReply*> raw = Run(
      [&](redisContext* c) {
        return static_cast<redisReply*>(
            redisCommand(c, "SET %b %b EX %lld", key.data(), key.size(), value.data(), value.size(),
                         static_cast<long long>(std::max<int64_t>(1, absl::ToInt64Seconds(ttl)))));
      },
      true, "SET");
  if (!raw.ok()) return raw.status();
  Reply r(*raw);
  if (r->type == REDIS_REPLY_ERROR) return absl::InternalError(std::string(r->str, r->len));
  return absl::OkStatus();
}

absl::Status RedisCache::Invalidate(const std::vector<std::string>& keys) {
  if (keys.empty()) return absl::OkStatus();
  // One transaction, one round trip: DEL every key and publish each for the other replicas'
  // in-process layers. Invalidations are worth a connection attempt inside the skip window.
  std::vector<const char*> argv = {"DEL"};
  std::vector<size_t> lens = {3};
  for (const auto& k : keys) {
    argv.push_back(k.data());
    lens.push_back(k.size());
  }
  absl::StatusOr<redisReply*> raw = Run(
      [&](redisContext* c) -> redisReply* {
        redisAppendCommand(c, "MULTI");
        redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
        for (const auto& k : keys) redisAppendCommand(c, "PUBLISH %s %b", kChannel, k.data(), k.size());
        redisAppendCommand(c, "EXEC");
        redisReply* last = nullptr;
        for (size_t i = 0; i < keys.size() + 3; ++i) {
          void* reply = nullptr;
          if (redisGetReply(c, &reply) != REDIS_OK) {
            if (last) freeReplyObject(last);
            return nullptr;
          }
          if (last) freeReplyObject(last);
          last = static_cast<redisReply*>(reply);
        }
        return last;  // EXEC's reply
      },
      false, "invalidate");
  if (!raw.ok()) return raw.status();
  Reply r(*raw);
  if (r->type != REDIS_REPLY_ARRAY) return absl::InternalError("redis invalidate: transaction failed");
  return absl::OkStatus();
}

DependencyHealth RedisCache::Check() {
  DependencyHealth h;
  absl::StatusOr<redisReply*> raw = Run(
      [](redisContext* c) { return static_cast<redisReply*>(redisCommand(c, "PING")); }, false,
      "PING");
  if (!raw.ok()) {
    h.detail = std::string(raw.status().message());
    return h;
  }
  Reply r(*raw);
  if (r->type == REDIS_REPLY_ERROR) {
    h.detail = std::string(r->str, r->len);
    return h;
  }
  h.up = true;
  if (!subscribed_.load()) h.detail = "invalidation channel not subscribed yet";
  // Redis answers again: let the workers use it without waiting out the skip window.
  retry_after_ns_ = 0;
  return h;
}

void RedisCache::SubscriberLoop() {
  absl::Duration backoff = absl::Milliseconds(200);
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<redisContext*> c = Connect(false);
    if (!c.ok()) {
      stop_.WaitForNotificationWithTimeout(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(1));
      continue;
    }
    redisContext* ctx = *c;
    // No read timeout: the subscription waits for messages; Stop() shuts the socket down.
    timeval none = {0, 0};
    redisSetTimeout(ctx, none);
    Reply sub(static_cast<redisReply*>(redisCommand(ctx, "SUBSCRIBE %s", kChannel)));
    if (!sub) {
      redisFree(ctx);
      continue;
    }
    subscriber_fd_ = ctx->fd;
    backoff = absl::Milliseconds(200);
    // Anything published while unsubscribed was missed: start the local layer afresh.
    on_resubscribe_();
    subscribed_ = true;
    while (!stop_.HasBeenNotified()) {
      void* raw = nullptr;
      if (redisGetReply(ctx, &raw) != REDIS_OK) break;
      Reply msg(static_cast<redisReply*>(raw));
      if (msg && msg->type == REDIS_REPLY_ARRAY && msg->elements == 3 &&
          msg->element[2]->type == REDIS_REPLY_STRING) {
        on_invalidate_(std::string(msg->element[2]->str, msg->element[2]->len));
      }
    }
    subscribed_ = false;
    subscriber_fd_ = -1;
    redisFree(ctx);
  }
}

void RedisCache::StartSubscriber() {
  subscriber_ = std::thread([this] {
    SubscriberLoop();
    subscriber_done_ = true;
  });
}

void RedisCache::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (!subscriber_.joinable()) return;
  // The subscriber may be between connecting and publishing its socket: keep shutting the
  // socket down until the thread has noticed.
  while (!subscriber_done_.load()) {
    int fd = subscriber_fd_.load();
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    absl::SleepFor(absl::Milliseconds(10));
  }
  subscriber_.join();
}

}  // namespace hosting::appsvc
