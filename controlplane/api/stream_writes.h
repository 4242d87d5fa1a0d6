#pragma once

#include <utility>

#include "grpcpp/support/status.h"

namespace hosting::controlplane {

// The write side every server stream reactor of hostd shares (AgentSession, LogStream): one
// outstanding write at a time, the message kept alive until its OnWriteDone, and Finish called
// exactly once. Not thread-safe by itself: the reactor calls it under its own mutex.
template <typename Msg>
class StreamWrites {
 public:
  // A write may start: none outstanding and the stream not finished.
  bool CanWrite() const { return !writing_ && !finished_; }
  bool finished() const { return finished_; }

  // Starts writing `msg` through the reactor (its StartWrite).
  template <typename Reactor>
  void Write(Reactor* reactor, Msg msg) {
    writing_ = true;
    current_ = std::move(msg);
    reactor->StartWrite(&current_);
  }
  // From the reactor's OnWriteDone.
  void WriteDone() { writing_ = false; }

  // Finishes the stream with `status` unless it already was; true when this call finished it.
  template <typename Reactor>
  bool Finish(Reactor* reactor, grpc::Status status) {
    if (finished_) return false;
    finished_ = true;
    reactor->Finish(std::move(status));
    return true;
  }

 private:
  Msg current_;
  bool writing_ = false;
  bool finished_ = false;
};

}  // namespace hosting::controlplane
