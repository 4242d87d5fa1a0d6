#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hosting {

struct ProcessOptions {
  // Added to (or replacing entries of) the inherited environment, "KEY=value".
  std::vector<std::string> env;
  // The process is killed (SIGTERM, then SIGKILL after 5 s) when it runs longer...
  absl::Duration timeout = absl::Minutes(10);
  // ...or as soon as this answers true (checked every 100 ms).
  std::function<bool()> cancelled;
  // Output kept (the end of it, when longer).
  size_t max_output = 64 * 1024;
};

// Runs argv[0] (a path, or a name looked up on PATH) with its arguments, no shell, stdin from
// /dev/null, stdout and stderr together. The output when it exits 0; otherwise an error naming
// the program, how it ended (exit code, signal, timeout: DEADLINE_EXCEEDED, cancel: CANCELLED)
// and the last lines it printed. The program is killed (SIGKILL) if the calling thread dies
// first (hostd killed): it never outlives its caller; a daemon it starts does.
absl::StatusOr<std::string> RunProcess(const std::vector<std::string>& argv,
                                       const ProcessOptions& options = {});

}  // namespace hosting
