#pragma once

#include <functional>
#include <string>
#include "absl/strings/string_view.h"

namespace hosting {

// Reassembles newline-delimited records from a byte stream whose chunk boundaries do not follow
// lines (Docker's /events). Empty lines are dropped; a trailing '\r' is stripped.
class LineSplitter {
 public:
  using LineCallback = std::function<void(absl::string_view line)>;

  // `max_line_bytes` bounds the buffer: a longer partial line is discarded (and counted) rather
  // than growing without limit.
  explicit LineSplitter(LineCallback on_line, size_t max_line_bytes = 1 << 20)
      : on_line_(std::move(on_line)), max_line_bytes_(max_line_bytes) {}

  // Feeds a chunk; calls on_line for every complete line in it.
  void Feed(absl::string_view chunk);

  // Bytes held for an incomplete line.
  size_t pending_bytes() const { return buffer_.size(); }
  size_t discarded_lines() const { return discarded_; }

 private:
  LineCallback on_line_;
  size_t max_line_bytes_;
  std::string buffer_;
  bool discarding_ = false;
  size_t discarded_ = 0;
};

}  // namespace hosting
