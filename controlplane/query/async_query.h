#pragma once

#include <deque>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/query/promql.h"

namespace hosting::controlplane {

// A MetricsQuery's instant queries run on a thread of their own, so that a caller on a hot
// loop (the release tick, which also keeps HAProxy in line) never waits on a slow or dead
// metrics source. Latest() answers at once with the newest answer it has and, when that is
// older than `refresh` (or there is none), asks again in the background; one query of each
// text in flight at a time.
class AsyncMetricsQuery {
 public:
  AsyncMetricsQuery(MetricsQuery& source, Clock& clock,
                    absl::Duration refresh = absl::Seconds(1));
  ~AsyncMetricsQuery();

  // The newest answer to `query`; UNAVAILABLE naming how long it has waited while the first
  // answer is still coming.
  absl::StatusOr<double> Latest(const std::string& query);

  // Forgets the queries nobody asked for in the last `idle` (a finished release's checks).
  void Forget(absl::Duration idle);

 private:
  struct Entry {
    bool answered = false;
    absl::StatusOr<double> result = absl::UnavailableError("not asked yet");
    absl::Time answered_at = absl::InfinitePast();
    absl::Time first_asked = absl::InfinitePast();
    absl::Time last_asked = absl::InfinitePast();
    bool queued = false;
  };
  void Loop();

  MetricsQuery& source_;
  Clock& clock_;
  const absl::Duration refresh_;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace hosting::controlplane
