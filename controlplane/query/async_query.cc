#include "controlplane/query/async_query.h"

#include "absl/strings/str_cat.h"

namespace hosting::controlplane {

AsyncMetricsQuery::AsyncMetricsQuery(MetricsQuery& source, Clock& clock, absl::Duration refresh)
    : source_(source), clock_(clock), refresh_(refresh), worker_([this] { Loop(); }) {}

AsyncMetricsQuery::~AsyncMetricsQuery() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  // A query in flight is waited for: the source has its own timeout.
  worker_.join();
}

absl::StatusOr<double> AsyncMetricsQuery::Latest(const std::string& query) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[query];
  if (e.first_asked == absl::InfinitePast()) e.first_asked = now;
  e.last_asked = now;
  if (!e.queued && (!e.answered || now - e.answered_at >= refresh_)) {
    e.queued = true;
    queue_.push_back(query);
  }
  if (e.answered) return e.result;
  return absl::UnavailableError(absl::StrCat(
      "the PromQL source has not answered yet (asked ",
      absl::FormatDuration(absl::Trunc(now - e.first_asked, absl::Milliseconds(100))), " ago)"));
}

void AsyncMetricsQuery::Forget(absl::Duration idle) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool forget = !it->second.queued && now - it->second.last_asked > idle;
    it = forget ? entries_.erase(it) : std::next(it);
  }
}

void AsyncMetricsQuery::Loop() {
  while (true) {
    std::string query;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      query = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<double> result = source_.Instant(query);
    absl::MutexLock lock(&mu_);
    Entry& e = entries_[query];
    e.answered = true;
    e.result = std::move(result);
    e.answered_at = clock_.Now();
    e.queued = false;
  }
}

}  // namespace hosting::controlplane
