#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace hosting {
namespace {

// The last `n` lines of `text`.
std::string Tail(const std::string& text, int n) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int i = 0; i < n && pos != std::string::npos && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

}  // namespace

absl::StatusOr<std::string> RunProcess(const std::vector<std::string>& argv,
                                       const ProcessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("RunProcess: no program");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string key = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& o : options.env) replaced = replaced || o.substr(0, o.find('=')) == key;
    if (!replaced) env_storage.push_back(entry);
  }
  for (const std::string& o : options.env) env_storage.push_back(o);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group: a kill reaches what it started
    // It dies with the thread that waits for it: a program hostd started (a base backup, the
    // WAL stream) never outlives a killed hostd to race the one a restarted hostd starts.
    // (A daemon it forks, such as a server pg_ctl starts, does not inherit this.)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  std::string output;
  const absl::Time deadline = absl::Now() + options.timeout;
  std::string ended_by;  // "timeout" or "cancel" once killed
  absl::Time killed_at;
  char buf[8192];
  while (true) {
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, 100);
    if (ready > 0) {
      const ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n > 0) {
        output.append(buf, static_cast<size_t>(n));
        if (output.size() > 2 * options.max_output) {
          output.erase(0, output.size() - options.max_output);
        }
        continue;
      }
      if (n == 0 || (n < 0 && errno != EINTR)) break;  // closed: the process is ending
    }
    if (ended_by.empty()) {
      if (absl::Now() >= deadline) ended_by = "timeout";
      if (options.cancelled && options.cancelled()) ended_by = "cancel";
      if (!ended_by.empty()) {
        kill(-pid, SIGTERM);
        killed_at = absl::Now();
      }
    } else if (absl::Now() - killed_at > absl::Seconds(5)) {
      kill(-pid, SIGKILL);
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output.size() > options.max_output) output.erase(0, output.size() - options.max_output);
  const std::string& program = argv[0];
  const std::string last = Tail(output, 5);
  if (ended_by == "timeout") {
    return absl::DeadlineExceededError(absl::StrCat(
        program, " ran longer than ", absl::FormatDuration(options.timeout), " and was stopped",
        last.empty() ? "" : absl::StrCat("; its last output: ", last)));
  }
  if (ended_by == "cancel") {
    return absl::CancelledError(absl::StrCat(program, " stopped: cancelled"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && output.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(program, " could not be run (not installed?)"));
  }
  return absl::InternalError(
      absl::StrCat(program,
                   WIFEXITED(status) ? absl::StrCat(" exited ", WEXITSTATUS(status))
                                     : absl::StrCat(" was killed by signal ", WTERMSIG(status)),
                   last.empty() ? "" : absl::StrCat(": ", last)));
}

}  // namespace hosting
