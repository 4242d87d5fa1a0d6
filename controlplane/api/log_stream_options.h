#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// What a stream over the event log sends (LogStream serves it over gRPC and as Server-Sent
// Events): which events, each converted how, from where, and until when.
template <typename Out>
struct LogStreamOptions {
  // Backlog of live events beyond which a watcher is too slow and is ended (it can resume from
  // a sequence).
  static constexpr size_t kMaxBacklog = 10000;

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

}  // namespace hosting::controlplane
