#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/api/grpc_status.h"
#include "controlplane/api/stream_writes.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "grpcpp/support/server_callback.h"
#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// Streams event-log entries to one caller: replays stored events after a sequence, then
// follows live ones, converting each for the stream. Writes are queued (one outstanding write
// per stream). Serves WatchEvents (events as they are) and WatchRelease (one release's events).
template <typename Out>
class LogStream final : public grpc::ServerWriteReactor<Out> {
 public:
  // Backlog beyond which a watcher is too slow and is ended (it can resume from a sequence).
  static constexpr size_t kMaxBacklog = 10000;

  struct Options {
    std::function<bool(const hosting::v1::Event&)> match;
    std::function<Out(const hosting::v1::Event&)> convert;
    // Ends the stream after writing an event for which it is true (may be empty).
    std::function<bool(const hosting::v1::Event&)> last;
    // Replays stored events with a greater sequence; -1: live events only.
    int64_t replay_after = -1;
    // Ends after the replay.
    bool no_follow = false;
    // Backlog bound (kMaxBacklog unless a test sets a smaller one).
    size_t max_backlog = kMaxBacklog;
  };

  // Subscribes first and replays after, so no event falls between the two; live events that
  // arrive during the replay wait in `early_` and join behind it (duplicates dropped by
  // sequence). The store is read with no lock held that a publisher could wait on.
  LogStream(EventLog& log, Store& store, HostdMetrics& metrics, Options options)
      : log_(log), metrics_(metrics), options_(std::move(options)) {
    metrics_.WatcherOpened();
    const bool replay = options_.replay_after >= 0;
    {
      absl::MutexLock lock(&mu_);
      replaying_ = replay;
    }
    subscription_ = log_.Subscribe([this](const hosting::v1::Event& e) { OnLiveEvent(e); });
    if (!replay) {
      absl::MutexLock lock(&mu_);
      MaybeWriteLocked();
      return;
    }
    std::deque<hosting::v1::Event> replayed;
    int64_t after = options_.replay_after;
    absl::Status status;
    while (true) {
      absl::StatusOr<std::vector<hosting::v1::Event>> batch = store.ListEvents(after, 1000);
      if (!batch.ok()) {
        status = batch.status();
        break;
      }
      for (auto& e : *batch) {
        after = e.sequence();
        if (options_.match(e)) replayed.push_back(std::move(e));
      }
      if (batch->size() < 1000) break;
    }
    absl::MutexLock lock(&mu_);
    replaying_ = false;
    if (!status.ok()) {
      FinishLocked(ToGrpcStatus(status));
      return;
    }
    replayed_through_ = after;
    backlog_ = std::move(replayed);
    for (auto& e : early_) {
      if (e.sequence() == 0 || e.sequence() > replayed_through_) backlog_.push_back(std::move(e));
    }
    early_.clear();
    MaybeWriteLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writes_.WriteDone();
    if (!ok) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (ended_) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    log_.Unsubscribe(subscription_);
    metrics_.WatcherClosed();
    delete this;
  }

 private:
  void OnLiveEvent(const hosting::v1::Event& e) {
    absl::MutexLock lock(&mu_);
    if (writes_.finished() || options_.no_follow || ended_) return;
    if (!options_.match(e)) return;
    if (replaying_) {
      early_.push_back(e);
      return;
    }
    if (e.sequence() != 0 && e.sequence() <= replayed_through_) return;
    if (backlog_.size() >= options_.max_backlog) {
      FinishLocked(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("event watcher fell ", options_.max_backlog,
                       " events behind; resume with since_sequence=", last_sent_)));
      return;
    }
    backlog_.push_back(e);
    MaybeWriteLocked();
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!writes_.CanWrite() || ended_ || replaying_) return;
    if (backlog_.empty()) {
      if (options_.no_follow) FinishLocked(grpc::Status::OK);
      return;
    }
    const hosting::v1::Event e = std::move(backlog_.front());
    backlog_.pop_front();
    last_sent_ = e.sequence();
    ended_ = options_.last && options_.last(e);
    writes_.Write(this, options_.convert(e));
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writes_.Finish(this, std::move(status));
  }

  EventLog& log_;
  HostdMetrics& metrics_;
  const Options options_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::deque<hosting::v1::Event> backlog_ ABSL_GUARDED_BY(mu_);
  std::vector<hosting::v1::Event> early_ ABSL_GUARDED_BY(mu_);
  StreamWrites<Out> writes_ ABSL_GUARDED_BY(mu_);
  int64_t replayed_through_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_sent_ ABSL_GUARDED_BY(mu_) = 0;
  bool replaying_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace hosting::controlplane
