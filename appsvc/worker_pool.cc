#include "appsvc/worker_pool.h"

namespace hosting::appsvc {

WorkerPool::WorkerPool(int size, AppMetrics& metrics) : metrics_(metrics) {
  metrics_.SetPoolSize(size);
  for (int i = 0; i < size; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Submit(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(job));
  metrics_.SetPoolWaiting(static_cast<double>(queue_.size()));
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
      metrics_.SetPoolWaiting(static_cast<double>(queue_.size()));
      metrics_.SetPoolInUse(busy_);
    }
    job();
    absl::MutexLock lock(&mu_);
    --busy_;
    metrics_.SetPoolInUse(busy_);
  }
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace hosting::appsvc
