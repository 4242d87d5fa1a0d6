#include "controlplane/traffic/load_balancer.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hosting::controlplane {
namespace {

constexpr int kTimeoutMs = 3000;

absl::StatusOr<int> Connect(const std::string& address) {
  absl::string_view a = address;
  const bool is_unix = absl::ConsumePrefix(&a, "unix://") || absl::StartsWith(a, "/");
  if (is_unix) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (a.size() >= sizeof(sa.sun_path)) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat("HAProxy socket path too long: ", a));
    }
    memcpy(sa.sun_path, a.data(), a.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      int e = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("HAProxy runtime API at ", a, ": ", strerror(e)));
    }
    return fd;
  }
  std::pair<std::string, std::string> hp = absl::StrSplit(a, absl::MaxSplits(':', 1));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(hp.first.c_str(), hp.second.c_str(), &hints, &res) != 0 || res == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve HAProxy address ", a));
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
  int e = errno;
  freeaddrinfo(res);
  if (rc != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("HAProxy runtime API at ", a, ": ", strerror(e)));
  }
  return fd;
}

const char* StateWord(LbServer::State s) {
  switch (s) {
    case LbServer::State::kReady: return "ready";
    case LbServer::State::kDrain: return "drain";
    default: return "maint";
  }
}

}  // namespace

const char* LbStateName(LbServer::State s) { return StateWord(s); }

HaproxyLoadBalancer::HaproxyLoadBalancer(std::string address) : address_(std::move(address)) {}

absl::StatusOr<std::string> HaproxyLoadBalancer::Execute(absl::string_view command) {
  absl::StatusOr<int> fd = Connect(address_);
  if (!fd.ok()) return fd.status();
  std::string line = absl::StrCat(command, "\n");
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = write(*fd, line.data() + off, line.size() - off);
    if (n <= 0) {
      close(*fd);
      return absl::UnavailableError(absl::StrCat("writing to HAProxy: ", strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  // The end of the request: the stats socket answers one command and closes anyway, but the
  // master CLI (haproxy -W -S) keeps the connection open until the client is done.
  shutdown(*fd, SHUT_WR);
  std::string out;
  char buf[8192];
  while (true) {
    pollfd p{*fd, POLLIN, 0};
    if (poll(&p, 1, kTimeoutMs) <= 0) {
      close(*fd);
      return absl::DeadlineExceededError(absl::StrCat("HAProxy did not answer '", command, "'"));
    }
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n < 0) {
      close(*fd);
      return absl::UnavailableError(absl::StrCat("reading from HAProxy: ", strerror(errno)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(*fd);
  return out;
}

std::vector<LbServer> HaproxyLoadBalancer::ParseServersState(const std::string& backend,
                                                             absl::string_view text) {
  std::vector<LbServer> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#' || line == "1") continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 19 || f[1] != backend) continue;
    LbServer s;
    s.name = std::string(f[3]);
    s.address = std::string(f[4]);
    int admin = 0;
    int operational = 2;
    (void)absl::SimpleAtoi(f[5], &operational);
    (void)absl::SimpleAtoi(f[6], &admin);
    (void)absl::SimpleAtoi(f[7], &s.weight);
    (void)absl::SimpleAtoi(f[18], &s.port);
    // srv_admin_state (haproxy/server-t.h): maintenance 0x01 forced, 0x02 inherited, 0x04
    // from a resolver, 0x20 resolution, 0x40 hostname; drain 0x08 forced (the runtime API's
    // "set server state drain"), 0x10 inherited.
    s.state = (admin & 0x67) ? LbServer::State::kMaint
              : (admin & 0x18) ? LbServer::State::kDrain
                               : LbServer::State::kReady;
    // srv_op_state (haproxy/server-t.h): 0 stopped, 1 starting, 2 running, 3 stopping. A
    // server without a check is always running unless in maintenance.
    s.up = operational != 0;
    out.push_back(std::move(s));
  }
  return out;
}

void HaproxyLoadBalancer::AddStats(const std::string& backend, absl::string_view stat_csv,
                                   std::vector<LbServer>& servers) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < servers.size(); ++i) index[servers[i].name] = i;
  for (absl::string_view line : absl::StrSplit(stat_csv, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ',');
    if (f.size() < 5 || f[0] != backend) continue;
    auto it = index.find(std::string(f[1]));
    if (it == index.end()) continue;
    (void)absl::SimpleAtoi(f[4], &servers[it->second].sessions);
    // Field 36 is check_status ("show stat" CSV layout, HAProxy 2.x); "INI" before the first.
    if (f.size() > 36) {
      LbServer& s = servers[it->second];
      s.check_status = std::string(f[36]);
      s.check.enabled = !s.check_status.empty();
    }
  }
}

absl::StatusOr<std::vector<LbServer>> HaproxyLoadBalancer::Servers(const std::string& backend) {
  absl::StatusOr<std::string> state = Execute(absl::StrCat("show servers state ", backend));
  if (!state.ok()) return state.status();
  if (absl::StrContains(*state, "Can't find backend")) {
    return absl::NotFoundError(absl::StrCat("HAProxy has no backend '", backend, "'"));
  }
  std::vector<LbServer> out = ParseServersState(backend, *state);
  absl::StatusOr<std::string> stat = Execute(absl::StrCat("show stat ", backend, " 4 -1"));
  if (!stat.ok()) return stat.status();
  AddStats(backend, *stat, out);
  return out;
}

absl::Status HaproxyLoadBalancer::CheckAnswer(absl::string_view answer,
                                              absl::string_view command) {
  absl::string_view a = absl::StripAsciiWhitespace(answer);
  if (a.empty() || absl::StartsWith(a, "New server registered") ||
      absl::StartsWith(a, "Server deleted")) {
    return absl::OkStatus();
  }
  if (absl::StrContains(a, "No such server") || absl::StrContains(a, "No such backend") ||
      absl::StrContains(a, "Can't find")) {
    return absl::NotFoundError(absl::StrCat("HAProxy: '", command, "': ", a));
  }
  if (absl::StrContains(a, "Already exists")) {
    return absl::AlreadyExistsError(absl::StrCat("HAProxy: '", command, "': ", a));
  }
  if (absl::StrContains(a, "still has") || absl::StrContains(a, "in maintenance")) {
    return absl::FailedPreconditionError(absl::StrCat("HAProxy: '", command, "': ", a));
  }
  return absl::InternalError(absl::StrCat("HAProxy: '", command, "': ", a));
}

namespace {
absl::Status Check(const absl::StatusOr<std::string>& answer, absl::string_view command) {
  if (!answer.ok()) return answer.status();
  return HaproxyLoadBalancer::CheckAnswer(*answer, command);
}
}  // namespace

std::string HaproxyLoadBalancer::AddServerCommand(const std::string& backend,
                                                  const LbServer& s) {
  std::string add = absl::StrCat("add server ", backend, "/", s.name, " ", s.address, ":", s.port,
                                 " weight ", s.weight);
  if (s.check.enabled) {
    // The backend's "option httpchk" (if any) makes it an HTTP check; without one it is a TCP
    // connect. Passive observation marks a server down after failed connections between
    // checks (the requests themselves are retried on another server).
    absl::StrAppend(&add, " check inter ",
                    std::max<int64_t>(100, absl::ToInt64Milliseconds(s.check.interval)), "ms",
                    " fall ", std::max(1, s.check.fall), " rise ", std::max(1, s.check.rise),
                    " observe layer4 error-limit 2 on-error mark-down");
    if (s.check.port > 0 && s.check.port != s.port) absl::StrAppend(&add, " port ", s.check.port);
  }
  return add;
}

absl::Status HaproxyLoadBalancer::AddServer(const std::string& backend, const LbServer& s) {
  std::string add = AddServerCommand(backend, s);
  if (absl::Status st = Check(Execute(add), add); !st.ok()) return st;
  if (s.check.enabled) {
    // Checks of a dynamic server start disabled.
    std::string health = absl::StrCat("enable health ", backend, "/", s.name);
    if (absl::Status st = Check(Execute(health), health); !st.ok()) return st;
  }
  std::string enable = absl::StrCat("enable server ", backend, "/", s.name);
  return Check(Execute(enable), enable);
}

absl::Status HaproxyLoadBalancer::SetWeight(const std::string& backend, const std::string& name,
                                            int weight) {
  std::string cmd = absl::StrCat("set server ", backend, "/", name, " weight ", weight);
  return Check(Execute(cmd), cmd);
}

absl::Status HaproxyLoadBalancer::SetState(const std::string& backend, const std::string& name,
                                           LbServer::State state) {
  std::string cmd = absl::StrCat("set server ", backend, "/", name, " state ", StateWord(state));
  return Check(Execute(cmd), cmd);
}

std::map<std::string, HeldRequests> HaproxyLoadBalancer::ParseHolds(absl::string_view table) {
  std::map<std::string, HeldRequests> out;
  for (absl::string_view line : absl::StrSplit(table, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    std::string key;
    HeldRequests h;
    for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      if (absl::ConsumePrefix(&field, "key=")) {
        key = std::string(field);
      } else if (absl::ConsumePrefix(&field, "use=")) {
        (void)absl::SimpleAtoi(field, &h.waiting);
      } else if (absl::ConsumePrefix(&field, "gpc0=")) {
        (void)absl::SimpleAtoi(field, &h.total);
      }
    }
    if (!key.empty()) out[key] = h;
  }
  return out;
}

absl::StatusOr<std::map<std::string, HeldRequests>> HaproxyLoadBalancer::Held() {
  absl::StatusOr<std::string> table = Execute("show table holds");
  if (!table.ok()) return table.status();
  if (!absl::StartsWith(*table, "# table: holds")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "HAProxy counts no held requests (no 'holds' stick table in its configuration): ",
        absl::StripAsciiWhitespace(table->substr(0, 200))));
  }
  return ParseHolds(*table);
}

absl::Status HaproxyLoadBalancer::DeleteServer(const std::string& backend,
                                               const std::string& name) {
  std::string cmd = absl::StrCat("del server ", backend, "/", name);
  return Check(Execute(cmd), cmd);
}

std::unique_ptr<LoadBalancer> OpenLoadBalancer(const std::string& address) {
  if (address.empty()) return nullptr;
  return std::make_unique<HaproxyLoadBalancer>(address);
}

}  // namespace hosting::controlplane
