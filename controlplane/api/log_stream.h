#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/api/grpc_status.h"
#include "controlplane/api/log_stream_options.h"
#include "controlplane/api/stream_writes.h"
#include "controlplane/api/unary.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "controlplane/telemetry/metrics.h"
#include "grpcpp/support/server_callback.h"
#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// Streams event-log entries to one caller: replays stored events after a sequence, then
// follows live ones, converting each for the stream. Writes are queued (one outstanding write
// per stream). Serves WatchEvents (events as they are), WatchRelease (one release's events)
// and WatchRun, over gRPC and as the HTTP gateway's Server-Sent Events.
//
// `Sink` is the transport: grpc::ServerWriteReactor<Out>, or anything with its shape —
// StartWrite(const Out*) and Finish(grpc::Status) called by the stream, OnWriteDone(bool),
// OnCancel() and OnDone() called back by the transport, OnDone last. A sink with
// NoteSequence(int64_t) hears each event's sequence before its message is written (SSE ids).
//
// The replay reads the store a page at a time on its own thread (never on a gRPC callback
// thread), a page ahead of the writes at most, so a replay of any length takes bounded memory
// and never counts against the live backlog's bound.
template <typename Out, typename Sink = grpc::ServerWriteReactor<Out>>
class LogStream final : public Sink {
 public:
  using Options = LogStreamOptions<Out>;
  static constexpr size_t kMaxBacklog = Options::kMaxBacklog;
  // Events read from the store at once during a replay.
  static constexpr int kReplayPage = 250;

  // Opens a stream in a watcher slot of `log` (EventLog::AcquireWatcherSlot); the transport
  // owns it from here on (it ends in OnDone). RESOURCE_EXHAUSTED when every slot is taken.
  template <typename... SinkArgs>
  static absl::StatusOr<LogStream*> TryOpen(EventLog& log, Store& store, HostdMetrics& metrics,
                                            Options options, SinkArgs&&... sink_args) {
    if (!log.AcquireWatcherSlot()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("hostd serves at most ", log.max_watchers(),
                       " event and release watchers at once; close one or retry later"));
    }
    return new LogStream(log, store, metrics, std::move(options),
                         std::forward<SinkArgs>(sink_args)...);
  }

  // The gRPC form: a reactor that streams, or one that ends at once with the error.
  static grpc::ServerWriteReactor<Out>* Open(EventLog& log, Store& store, HostdMetrics& metrics,
                                             Options options) {
    absl::StatusOr<LogStream*> stream = TryOpen(log, store, metrics, std::move(options));
    if (!stream.ok()) return new FinishedWriter<Out>(ToGrpcStatus(stream.status()));
    return *stream;
  }

 private:
  // Subscribes first and replays after, so no event falls between the two; live events that
  // arrive during the replay wait in `early_` and join behind it (duplicates dropped by
  // sequence). The store is read with no lock held that a publisher could wait on.
  template <typename... SinkArgs>
  LogStream(EventLog& log, Store& store, HostdMetrics& metrics, Options options,
            SinkArgs&&... sink_args)
      : Sink(std::forward<SinkArgs>(sink_args)...),
        log_(log),
        store_(store),
        metrics_(metrics),
        options_(std::move(options)) {
    metrics_.WatcherOpened();
    const bool replay = options_.replay_after >= 0;
    {
      absl::MutexLock lock(&mu_);
      replaying_ = replay;
      replay_after_ = options_.replay_after;
    }
    subscription_ = log_.Subscribe([this](const hosting::v1::Event& e) { OnLiveEvent(e); });
    if (replay) {
      replayer_ = std::thread([this] { Replay(); });
      return;
    }
    absl::MutexLock lock(&mu_);
    MaybeWriteLocked();
  }

 public:
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
    // The replayer sees the stream finished (or its store read returns) and ends.
    if (replayer_.joinable()) replayer_.join();
    metrics_.WatcherClosed();
    EventLog& log = log_;
    delete this;
    log.ReleaseWatcherSlot();
  }

 private:
  void Replay() {
    while (true) {
      int64_t after;
      {
        absl::MutexLock lock(&mu_);
        // A page ahead of the writes at most.
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return writes_.finished() || backlog_.size() < static_cast<size_t>(kReplayPage);
        };
        mu_.Await(absl::Condition(&room));
        if (writes_.finished()) return;
        after = replay_after_;
      }
      absl::StatusOr<std::vector<hosting::v1::Event>> batch =
          store_.ListEvents(after, kReplayPage);
      absl::MutexLock lock(&mu_);
      if (writes_.finished()) return;
      if (!batch.ok()) {
        replaying_ = false;
        FinishLocked(ToGrpcStatus(batch.status()));
        return;
      }
      for (auto& e : *batch) {
        replay_after_ = e.sequence();
        if (options_.match(e)) backlog_.push_back(std::move(e));
      }
      if (batch->size() < static_cast<size_t>(kReplayPage)) {
        // Caught up with the store: live events from here on.
        replaying_ = false;
        replayed_through_ = replay_after_;
        for (auto& e : early_) {
          if (e.sequence() == 0 || e.sequence() > replayed_through_) backlog_.push_back(std::move(e));
        }
        early_.clear();
        MaybeWriteLocked();
        return;
      }
      MaybeWriteLocked();
    }
  }

  void OnLiveEvent(const hosting::v1::Event& e) {
    absl::MutexLock lock(&mu_);
    if (writes_.finished() || options_.no_follow || ended_) return;
    if (!options_.match(e)) return;
    if (replaying_) {
      // Stored events are read again by the replay's later pages: past the bound, the ones
      // held here are dropped and come from the store instead.
      if (early_.size() >= options_.max_backlog) early_.clear();
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
    if (!writes_.CanWrite() || ended_) return;
    if (backlog_.empty()) {
      if (options_.no_follow && !replaying_) FinishLocked(grpc::Status::OK);
      return;
    }
    const hosting::v1::Event e = std::move(backlog_.front());
    backlog_.pop_front();
    last_sent_ = e.sequence();
    ended_ = options_.last && options_.last(e);
    if constexpr (requires(Sink& sink) { sink.NoteSequence(int64_t{0}); }) {
      this->NoteSequence(e.sequence());
    }
    writes_.Write(this, options_.convert(e));
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writes_.Finish(this, std::move(status));
  }

  EventLog& log_;
  Store& store_;
  HostdMetrics& metrics_;
  const Options options_;
  int64_t subscription_ = 0;
  std::thread replayer_;
  absl::Mutex mu_;
  std::deque<hosting::v1::Event> backlog_ ABSL_GUARDED_BY(mu_);
  std::vector<hosting::v1::Event> early_ ABSL_GUARDED_BY(mu_);
  StreamWrites<Out> writes_ ABSL_GUARDED_BY(mu_);
  int64_t replay_after_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t replayed_through_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_sent_ ABSL_GUARDED_BY(mu_) = 0;
  bool replaying_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves a gRPC stream over the event log from a handler's answer (handlers.h): the stream, or
// the handler's error at once; counted under `method`.
template <typename Out>
grpc::ServerWriteReactor<Out>* OpenLogStream(EventLog& log, Store& store, HostdMetrics& metrics,
                                             const char* method,
                                             absl::StatusOr<LogStreamOptions<Out>> options) {
  const grpc::Status status = ToGrpcStatus(options.status());
  metrics.CountGrpc(method, GrpcCodeName(status.error_code()));
  if (!options.ok()) return new FinishedWriter<Out>(status);
  return LogStream<Out>::Open(log, store, metrics, *std::move(options));
}

}  // namespace hosting::controlplane
