#include "agent/node_access.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace hosting::agent {
namespace {

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t ReadInt(const std::string& path, int64_t fallback = -1) {
  absl::StatusOr<std::string> s = ReadFile(path);
  int64_t v;
  if (!s.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &v)) return fallback;
  return v;
}

int64_t StatField(const std::string& path, absl::string_view key) {
  absl::StatusOr<std::string> s = ReadFile(path);
  if (!s.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*s, '\n')) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    int64_t v;
    if (kv.size() == 2 && kv[0] == key && absl::SimpleAtoi(kv[1], &v)) return v;
  }
  return -1;
}

}  // namespace

namespace {

constexpr int kSocketBatch = 8;

struct SocketPools {
  absl::Mutex mu;
  // (pid, netns inode) -> unconnected sockets made in that namespace.
  std::map<std::pair<int, ino_t>, std::vector<int>> pools ABSL_GUARDED_BY(mu);
};

SocketPools& Pools() {
  static SocketPools* p = new SocketPools();
  return *p;
}

absl::StatusOr<std::vector<int>> MakeSocketsInNetns(int pid, int n);

}  // namespace

void ForgetNetns(int pid) {
  SocketPools& p = Pools();
  absl::MutexLock lock(&p.mu);
  for (auto it = p.pools.begin(); it != p.pools.end();) {
    if (it->first.first == pid) {
      for (int fd : it->second) close(fd);
      it = p.pools.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<int> TcpSocketInNetns(int pid) {
  if (pid <= 0) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(Errno("socket"));
    return fd;
  }
  struct stat st;
  if (stat(absl::StrCat("/proc/", pid, "/ns/net").c_str(), &st) != 0) {
    return absl::NotFoundError(Errno(absl::StrCat("netns of pid ", pid).c_str()));
  }
  const auto key = std::make_pair(pid, st.st_ino);
  SocketPools& p = Pools();
  {
    absl::MutexLock lock(&p.mu);
    auto it = p.pools.find(key);
    if (it != p.pools.end() && !it->second.empty()) {
      int fd = it->second.back();
      it->second.pop_back();
      return fd;
    }
  }
  absl::StatusOr<std::vector<int>> made = MakeSocketsInNetns(pid, kSocketBatch);
  if (!made.ok()) return made.status();
  int fd = made->back();
  made->pop_back();
  absl::MutexLock lock(&p.mu);
  auto& pool = p.pools[key];
  pool.insert(pool.end(), made->begin(), made->end());
  return fd;
}

namespace {

absl::StatusOr<std::vector<int>> MakeSocketsInNetns(int pid, int n) {
  Fd self(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (self.get() < 0) return absl::InternalError(Errno("open own netns"));
  Fd target(open(absl::StrCat("/proc/", pid, "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
  if (target.get() < 0) {
    return absl::NotFoundError(Errno(absl::StrCat("open netns of pid ", pid).c_str()));
  }
  if (setns(target.get(), CLONE_NEWNET) != 0) {
    return absl::PermissionDeniedError(Errno("setns (the agent needs CAP_SYS_ADMIN)"));
  }
  std::vector<int> fds;
  int socket_errno = 0;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      socket_errno = errno;
      break;
    }
    fds.push_back(fd);
  }
  // Back to our own namespace before anything else happens on this thread.
  if (setns(self.get(), CLONE_NEWNET) != 0) std::abort();  // cannot continue in a foreign netns
  if (fds.empty()) {
    errno = socket_errno;
    return absl::InternalError(Errno("socket in task netns"));
  }
  return fds;
}

}  // namespace

HttpResult HttpGetInNetns(int pid, uint16_t port, const std::string& path, absl::Duration timeout,
                          size_t max_body) {
  HttpResult r;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  auto finish = [&](std::string error) {
    r.error = std::move(error);
    r.latency = absl::Now() - start;
    return r;
  };
  absl::StatusOr<int> sock = TcpSocketInNetns(pid);
  if (!sock.ok()) {
    r.target_gone = absl::IsNotFound(sock.status());
    return finish(std::string(sock.status().message()));
  }
  Fd fd(*sock);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto wait = [&](short events) -> bool {
    while (true) {
      int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (ms <= 0) return false;
      pollfd p{fd.get(), events, 0};
      int n = poll(&p, 1, ms);
      if (n > 0) return true;
      if (n == 0) return false;
      if (errno != EINTR) return false;
    }
  };
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return finish(Errno("connect"));
    if (!wait(POLLOUT)) return finish("connect timed out");
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      return finish(Errno("connect"));
    }
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hostagent\r\n",
                                 "Connection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (errno == EAGAIN) {
      if (!wait(POLLOUT)) return finish("send timed out");
    } else {
      return finish(Errno("send"));
    }
  }
  std::string resp;
  char buf[16384];
  while (true) {
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      if (resp.size() < max_body + 16384) resp.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EAGAIN) {
      if (!wait(POLLIN)) return finish(resp.empty() ? "no response before the timeout" : "response timed out");
      continue;
    }
    return finish(Errno("recv"));
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  if (resp.size() < 12 || resp.compare(0, 5, "HTTP/") != 0) return finish("not an HTTP response");
  int status = 0;
  if (!absl::SimpleAtoi(resp.substr(9, 3), &status)) return finish("malformed status line");
  r.status = status;
  size_t body_at = resp.find("\r\n\r\n");
  if (body_at != std::string::npos) {
    std::string headers = resp.substr(0, body_at);
    r.body = resp.substr(body_at + 4, max_body);
    // A chunked body (Transfer-Encoding: chunked) is de-chunked; others are taken as they are.
    if (headers.find("chunked") != std::string::npos) {
      std::string plain;
      size_t pos = 0;
      while (pos < r.body.size()) {
        size_t eol = r.body.find("\r\n", pos);
        if (eol == std::string::npos) break;
        size_t len = std::strtoul(r.body.substr(pos, eol - pos).c_str(), nullptr, 16);
        if (len == 0) break;
        plain.append(r.body, eol + 2, len);
        pos = eol + 2 + len + 2;
      }
      r.body = std::move(plain);
    }
  }
  r.latency = absl::Now() - start;
  return r;
}

absl::StatusOr<int64_t> ReadMemAvailable(const std::string& meminfo) {
  absl::StatusOr<std::string> text = ReadFile(meminfo);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    if (!absl::ConsumePrefix(&line, "MemAvailable:")) continue;
    line = absl::StripAsciiWhitespace(line);
    int64_t kib = 0;
    if (!absl::ConsumeSuffix(&line, " kB") ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) {
      break;
    }
    return kib * 1024;
  }
  return absl::DataLossError(absl::StrCat(meminfo, " has no MemAvailable line in kB"));
}

absl::StatusOr<CgroupStats> ReadCgroupStats(int pid, const std::string& cgroup_root) {
  absl::StatusOr<std::string> cg = ReadFile(absl::StrCat("/proc/", pid, "/cgroup"));
  if (!cg.ok()) return cg.status();
  std::string v2_path, cpu_path, mem_path;
  for (absl::string_view line : absl::StrSplit(*cg, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) v2_path = parts[2];
    for (absl::string_view c : absl::StrSplit(parts[1], ',')) {
      if (c == "cpuacct") cpu_path = parts[2];
      if (c == "memory") mem_path = parts[2];
    }
  }
  CgroupStats s;
  if (!cpu_path.empty() || !mem_path.empty()) {  // cgroup v1
    int64_t usage = ReadInt(absl::StrCat(cgroup_root, "/cpu,cpuacct", cpu_path, "/cpuacct.usage"));
    if (usage < 0) usage = ReadInt(absl::StrCat(cgroup_root, "/cpuacct", cpu_path, "/cpuacct.usage"));
    const std::string mem = absl::StrCat(cgroup_root, "/memory", mem_path);
    const int64_t used = ReadInt(mem + "/memory.usage_in_bytes");
    const int64_t inactive = StatField(mem + "/memory.stat", "total_inactive_file");
    const int64_t limit = ReadInt(mem + "/memory.limit_in_bytes");
    if (usage < 0 && used < 0) return absl::NotFoundError("no cgroup v1 accounting for the task");
    s.cpu_usage_ns = static_cast<uint64_t>(std::max<int64_t>(usage, 0));
    s.memory_bytes = std::max<int64_t>(0, used - std::max<int64_t>(inactive, 0));
    s.memory_limit_bytes = (limit > 0 && limit < (int64_t{1} << 60)) ? limit : 0;
    return s;
  }
  if (v2_path.empty()) return absl::NotFoundError("task cgroup not found");
  const std::string base = absl::StrCat(cgroup_root, v2_path);
  const int64_t usec = StatField(base + "/cpu.stat", "usage_usec");
  const int64_t used = ReadInt(base + "/memory.current");
  const int64_t inactive = StatField(base + "/memory.stat", "inactive_file");
  if (usec < 0 && used < 0) return absl::NotFoundError("no cgroup v2 accounting for the task");
  s.cpu_usage_ns = static_cast<uint64_t>(std::max<int64_t>(usec, 0)) * 1000;
  s.memory_bytes = std::max<int64_t>(0, used - std::max<int64_t>(inactive, 0));
  s.memory_limit_bytes = std::max<int64_t>(0, ReadInt(base + "/memory.max", 0));
  return s;
}

}  // namespace hosting::agent
