#include "common/line_splitter.h"

namespace hosting {

void LineSplitter::Feed(absl::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    if (nl == absl::string_view::npos) {
      if (!discarding_) buffer_.append(chunk.data(), chunk.size());
      if (buffer_.size() > max_line_bytes_) {
        buffer_.clear();
        discarding_ = true;
        ++discarded_;
      }
      return;
    }
    if (discarding_) {
      discarding_ = false;
    } else {
      buffer_.append(chunk.data(), nl);
      absl::string_view line = buffer_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.size() > max_line_bytes_) {
        ++discarded_;
      } else if (!line.empty()) {
        on_line_(line);
      }
    }
    buffer_.clear();
    chunk.remove_prefix(nl + 1);
  }
}

}  // namespace hosting
