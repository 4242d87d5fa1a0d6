#include "controlplane/reconcile/work_queue.h"

#include <algorithm>


namespace hosting::controlplane {

void WorkQueue::Add(const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return;
  if (processing_.count(key)) {
    dirty_.insert(key);
    return;
  }
  if (queued_.insert(key).second) order_.emplace(seq_++, key);
}

void WorkQueue::AddAfter(const std::string& key, absl::Duration delay) {
  if (delay <= absl::ZeroDuration()) {
    Add(key);
    return;
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return;
  const absl::Time at = clock_.Now() + delay;
  if (auto it = delayed_keys_.find(key); it != delayed_keys_.end()) {
    if (it->second->first <= at) return;
    delayed_.erase(it->second);
    it->second = delayed_.emplace(at, key);
    return;
  }
  delayed_keys_.emplace(key, delayed_.emplace(at, key));
}

void WorkQueue::AddRateLimited(const std::string& key) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    int n = failures_[key]++;
    delay = std::min(max_backoff_, base_backoff_ * (1 << std::min(n, 20)));
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  absl::MutexLock lock(&mu_);
  failures_.erase(key);
}

void WorkQueue::PromoteDueLocked() {
  absl::Time now = clock_.Now();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayed_keys_.erase(key);
    if (processing_.count(key)) {
      dirty_.insert(key);
    } else if (queued_.insert(key).second) {
      order_.emplace(seq_++, key);
    }
  }
}

std::optional<std::string> WorkQueue::Get() {
  absl::MutexLock lock(&mu_);
  while (true) {
    PromoteDueLocked();
    if (shutdown_) return std::nullopt;
    if (!order_.empty()) break;
    absl::Duration wait = absl::Milliseconds(500);
    if (!delayed_.empty()) {
      wait = std::max(absl::ZeroDuration(),
                      std::min(wait, delayed_.begin()->first - clock_.Now()));
    }
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shutdown_ || !order_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
  }
  return TakeLocked();
}

std::optional<std::string> WorkQueue::TryGet() {
  absl::MutexLock lock(&mu_);
  PromoteDueLocked();
  if (shutdown_ || order_.empty()) return std::nullopt;
  return TakeLocked();
}

std::string WorkQueue::TakeLocked() {
  std::string key = order_.begin()->second;
  order_.erase(order_.begin());
  queued_.erase(key);
  processing_.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  absl::MutexLock lock(&mu_);
  processing_.erase(key);
  if (dirty_.erase(key) && !shutdown_) {
    if (queued_.insert(key).second) order_.emplace(seq_++, key);
  }
}

void WorkQueue::ShutDown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

size_t WorkQueue::Depth() {
  absl::MutexLock lock(&mu_);
  std::set<std::string> keys = queued_;
  keys.insert(dirty_.begin(), dirty_.end());
  for (const auto& [key, unused] : delayed_keys_) keys.insert(key);
  return keys.size();
}

}  // namespace hosting::controlplane
