#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <curl/curl.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/bearer_token.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace hosting::testing {

CommandResult Shell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

absl::Status WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
                     const std::string& what, absl::Duration interval) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    absl::SleepFor(interval);
  }
}

absl::Status CheckDockerSwarm() {
  CommandResult r = Shell("docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'");
  if (r.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(
        "dockerd is not reachable (run scripts/start-docker.sh as root): ", r.output));
  }
  if (r.output.rfind("active true", 0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this node is not a Swarm manager (run scripts/start-docker.sh): ", r.output));
  }
  return absl::OkStatus();
}

void DeleteHostedService(const std::shared_ptr<grpc::Channel>& hostd, const std::string& name) {
  auto stub = hosting::v1::ServiceManager::NewStub(hostd);
  hosting::v1::DeleteServiceRequest req;
  req.set_name(name);
  // A hostd just (re)started answers UNAVAILABLE until it holds the leader lease: asked too
  // early, the service would stay, and its reconciler would bring back what the test removes.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    hosting::v1::DeleteServiceResponse resp;
    const grpc::Status st = stub->DeleteService(&ctx, req, &resp);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() >= deadline) return;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

int HealthyTasks(const std::shared_ptr<grpc::Channel>& hostd, const std::string& service) {
  auto stub = hosting::v1::Cluster::NewStub(hostd);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  hosting::v1::GetServiceStatusRequest req;
  req.set_name(service);
  hosting::v1::ServiceHealthStatus s;
  if (!stub->GetServiceStatus(&ctx, req, &s).ok()) return -1;
  int healthy = 0;
  for (const auto& r : s.revisions()) healthy += r.healthy();
  return healthy;
}

std::vector<std::string> SwarmServicesOf(const std::string& service) {
  CommandResult r = Shell(absl::StrCat(
      "docker service ls --filter label=hosting.service=", service,
      " --format '{{.Name}} {{.Replicas}}'"));
  std::vector<std::string> out;
  if (r.exit_code != 0) return out;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    // "web-r1 2/3" -> "web-r1 3 2" (name, desired, running); "(max N per node)" suffixes dropped.
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() < 2) continue;
    std::vector<std::string> rd = absl::StrSplit(parts[1], '/');
    if (rd.size() != 2) continue;
    out.push_back(absl::StrCat(parts[0], " ", rd[1], " ", rd[0]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status RemoveSwarmServicesOf(const std::string& service) {
  const std::string services =
      absl::StrCat("docker service ls -q --filter label=hosting.service=", service);
  const std::string containers =
      absl::StrCat("docker ps -aq --filter label=hosting.service=", service);
  Shell(absl::StrCat("ids=$(", services, "); [ -z \"$ids\" ] || docker service rm $ids"));
  std::string left;
  auto all_gone = [&] {
    left = Shell(services).output + Shell(containers).output;
    return left.empty();
  };
  const std::string what = absl::StrCat("Swarm to remove the services and tasks of ", service);
  if (WaitFor(all_gone, absl::Seconds(30), what).ok()) return absl::OkStatus();
  // Swarm's worker stops a removed service's tasks only after what it is busy with: an image
  // pull whose registry lookup hangs (no registry is reachable here) has held it a minute.
  // The services are gone: their containers are removed directly.
  Shell(absl::StrCat("ids=$(", containers, "); [ -z \"$ids\" ] || docker rm -f $ids >/dev/null"));
  absl::Status gone = WaitFor(all_gone, absl::Seconds(60), what);
  if (!gone.ok()) return absl::DeadlineExceededError(absl::StrCat(gone.message(), "; left: ", left));
  return absl::OkStatus();
}

std::string HostdBinary() { return HOSTING_HOSTD_BINARY; }
std::string AppsvcBinary() { return HOSTING_APPSVC_BINARY; }
std::string AgentBinary() { return HOSTING_AGENT_BINARY; }
std::string HostctlBinary() { return HOSTING_HOSTCTL_BINARY; }
std::string SourceDir() { return HOSTING_SOURCE_DIR; }

namespace {

std::string MakeUnlistedTempDir(const std::string& prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  char* dir = mkdtemp(templ.data());
  return dir ? std::string(dir) : "";
}

void RemoveTestDir(const std::string& dir) {
  if (dir.empty() || KeepTestDirs()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

absl::Mutex temp_dirs_mu(absl::kConstInit);
std::vector<std::string>* temp_dirs ABSL_GUARDED_BY(temp_dirs_mu) = nullptr;

// Removes the directories MakeTempDir made once every test suite has torn down (the suites stop
// the processes that write in them first). A run with a failure keeps them.
class TempDirEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    std::vector<std::string> dirs;
    {
      absl::MutexLock lock(&temp_dirs_mu);
      if (temp_dirs != nullptr) dirs.swap(*temp_dirs);
    }
    for (const std::string& dir : dirs) RemoveTestDir(dir);
  }
};

[[maybe_unused]] const ::testing::Environment* const kTempDirEnvironment =
    ::testing::AddGlobalTestEnvironment(new TempDirEnvironment);

}  // namespace

bool KeepTestDirs() {
  return std::getenv("HOSTING_KEEP_TEST_DIRS") != nullptr ||
         ::testing::UnitTest::GetInstance()->Failed();
}

std::string MakeTempDir(const std::string& prefix) {
  std::string dir = MakeUnlistedTempDir(prefix);
  if (!dir.empty()) {
    absl::MutexLock lock(&temp_dirs_mu);
    if (temp_dirs == nullptr) temp_dirs = new std::vector<std::string>();
    temp_dirs->push_back(dir);
  }
  return dir;
}

namespace {

// fork + exec with stdout and stderr appended to `log_path` and `env` added to the environment.
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const std::string& log_path) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  FILE* log = fopen(log_path.c_str(), "a");
  if (log != nullptr) {
    dup2(fileno(log), STDOUT_FILENO);
    dup2(fileno(log), STDERR_FILENO);
  }
  for (const auto& kv : env) putenv(strdup(kv.c_str()));
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(strdup(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

}  // namespace

const std::string& TestTokenFile() {
  static const std::string* file = [] {
    unsigned char bytes[24];
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    urandom.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
    const std::string secret = absl::StrCat(
        "hst_test_", absl::BytesToHexString(absl::string_view(
                         reinterpret_cast<const char*>(bytes), sizeof(bytes))));
    auto* path = new std::string(absl::StrCat(MakeTempDir("hosting-test-token-"), "/admin.token"));
    int fd = open(path->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const std::string line = secret + "\n";
    if (fd < 0 || write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      std::abort();
    }
    close(fd);
    setenv("HOSTCTL_TOKEN", secret.c_str(), 1);
    setenv("HOSTAGENT_TOKEN", secret.c_str(), 1);
    return path;
  }();
  return *file;
}

const std::string& TestToken() {
  static const std::string* token = [] {
    std::ifstream in(TestTokenFile());
    auto* t = new std::string;
    std::getline(in, *t);
    return t;
  }();
  return *token;
}

HostdProcess::HostdProcess(std::string data_dir, std::vector<std::string> extra_flags,
                           std::string address)
    : data_dir_(std::move(data_dir)), extra_flags_(std::move(extra_flags)), address_(std::move(address)) {
  if (address_.empty()) address_ = absl::StrCat("127.0.0.1:", FreePort());
  metrics_address_ = absl::StrCat("127.0.0.1:", FreePort());
  http_address_ = absl::StrCat("127.0.0.1:", FreePort());
  log_path_ = data_dir_ + "/hostd.log";
}

HostdProcess::~HostdProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

absl::Status HostdProcess::Start() {
  std::vector<std::string> args = {HostdBinary(),    "--listen",          address_,
                                   "--metrics-listen", metrics_address_, "--http-listen",
                                   http_address_,      "--data-dir",     data_dir_,
                                   "--resync-interval", "10s"};
  if (import_test_token_) {
    args.push_back("--admin-token-file");
    args.push_back(TestTokenFile());
  }
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  pid_ = Spawn(args, {}, log_path_);
  if (pid_ < 0) return absl::InternalError("fork failed");
  channel_ = CreateChannelWithToken(address_, TestToken());
  // hostd binds its port only once everything is set up, so an accepted TCP connection means
  // it serves (over TLS or not).
  const int port = std::stoi(address_.substr(address_.rfind(':') + 1));
  absl::Status ready = WaitFor(
      [&] {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET, address_.substr(0, address_.rfind(':')).c_str(), &addr.sin_addr) != 1) {
          addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }
        bool accepted = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
        close(fd);
        return accepted;
      },
      absl::Seconds(15), "hostd to listen on " + address_);
  if (pid_ < 0) {
    return absl::InternalError(
        absl::StrCat("hostd exited during start-up; log:\n", Shell("tail -20 " + log_path_).output));
  }
  return ready;
}

bool ChildRunning(pid_t pid) {
  if (pid <= 0) return false;
  siginfo_t info{};
  // WNOWAIT leaves an exited child to be reaped by Stop/Wait, which report its status.
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return false;
  }
  return info.si_pid == 0;
}

int HostdProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  channel_.reset();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::shared_ptr<grpc::Channel> HostdProcess::channel() {
  if (!channel_) channel_ = CreateChannelWithToken(address_, TestToken());
  return channel_;
}

namespace {
size_t AppendTo(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}
}  // namespace

HttpResult Http(const std::string& method, const std::string& url, const std::string& body,
                const std::string& content_type, const std::vector<std::string>& extra_headers) {
  HttpResult result;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");
  if (!body.empty() || method == "POST" || method == "PUT") {
    if (!content_type.empty()) headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  for (const std::string& h : extra_headers) headers = curl_slist_append(headers, h.c_str());
  if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendTo);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, AppendTo);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  } else {
    result.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

Datastores::Datastores()
    : dir_(MakeUnlistedTempDir("hosting-ds-")), pg_port_(FreePort()),
      replica_port_(FreePort()), redis_port_(FreePort()) {}

// The directory holds two PostgreSQL clusters (about 0.5 GB): it goes with the datastores, once
// they are stopped, rather than at the end of the process.
Datastores::~Datastores() {
  Stop();
  RemoveTestDir(dir_);
}

std::string DockerGatewayAddress() {
  CommandResult r = Shell(
      "docker network inspect docker_gwbridge -f '{{(index .IPAM.Config 0).Gateway}}'");
  std::string out(absl::StripAsciiWhitespace(r.output));
  return r.exit_code == 0 ? out : "";
}

absl::Status Datastores::Start(const std::string& extra_listen) {
  CommandResult r = Shell(absl::StrCat("DATASTORES_EXTRA_LISTEN=", extra_listen, " ", SourceDir(),
                                       "/scripts/datastores.sh start ", dir_, " ",
                                       pg_port_, " ", replica_port_, " ", redis_port_));
  if (r.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("datastores did not start: ", r.output));
  }
  started_ = true;
  return absl::OkStatus();
}

void Datastores::Stop() {
  if (!started_) return;
  Shell(absl::StrCat(SourceDir(), "/scripts/datastores.sh stop ", dir_));
  started_ = false;
}

absl::Status Datastores::Do(const std::string& command) {
  CommandResult r = Shell(absl::StrCat(SourceDir(), "/scripts/datastores.sh ", command, " ", dir_));
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat(command, ": ", r.output));
  return absl::OkStatus();
}

std::vector<std::string> Datastores::Env() const {
  return {"DB_HOST=127.0.0.1", absl::StrCat("DB_PORT=", pg_port_), "DB_NAME=app", "DB_USER=app",
          "DB_PASSWORD=app", "DB_REPLICA_HOST=127.0.0.1",
          absl::StrCat("DB_REPLICA_PORT=", replica_port_), "REDIS_HOST=127.0.0.1",
          absl::StrCat("REDIS_PORT=", redis_port_)};
}

std::string Datastores::Sql(const std::string& sql, bool replica, const std::string& db) const {
  return Shell(absl::StrCat("psql -h 127.0.0.1 -p ", replica ? replica_port_ : pg_port_,
                            " -U postgres -d ", db, " -qtA -c \"", sql, "\""))
      .output;
}

absl::Status Datastores::WaitReplicaReplayed(absl::Duration timeout) const {
  const std::string lsn(absl::StripAsciiWhitespace(Sql("SELECT pg_current_wal_lsn()")));
  if (lsn.empty()) return absl::UnavailableError("the primary did not report its WAL position");
  return WaitFor(
      [&] {
        return absl::StripAsciiWhitespace(
                   Sql("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'::pg_lsn", true)) == "t";
      },
      timeout, "the replica to replay the primary's WAL up to " + lsn);
}

AppsvcProcess::AppsvcProcess(std::vector<std::string> env, std::string log_path)
    : env_(std::move(env)), log_path_(std::move(log_path)), port_(FreePort()) {}

AppsvcProcess::~AppsvcProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string AppsvcProcess::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

absl::Status AppsvcProcess::Start() {
  std::vector<std::string> env = env_;
  env.push_back(absl::StrCat("PORT=", port_));
  env.push_back("BIND_ADDRESS=127.0.0.1");
  pid_ = Spawn({AppsvcBinary(), "serve"}, env, log_path_);
  if (pid_ < 0) return absl::InternalError("fork failed");
  absl::Status st = WaitFor(
      [&] {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        return Http("GET", url("/health")).status == 200;
      },
      absl::Seconds(15), "appsvc /health");
  if (pid_ < 0) {
    return absl::InternalError(absl::StrCat("appsvc exited at start; log:\n",
                                            Shell("tail -20 " + log_path_).output));
  }
  return st;
}

AgentProcess::AgentProcess(std::string controller, std::string log_path,
                           std::string report_interval)
    : controller_(std::move(controller)), log_path_(std::move(log_path)),
      report_interval_(std::move(report_interval)),
      metrics_address_(absl::StrCat("127.0.0.1:", FreePort())) {}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

absl::Status AgentProcess::Start() {
  std::vector<std::string> args = netns_.empty()
                                      ? std::vector<std::string>{}
                                      : std::vector<std::string>{"/usr/bin/nsenter", "--net=" + netns_, "--"};
  for (const std::string& a :
       {AgentBinary(), std::string("--controller"), controller_, std::string("--metrics-listen"),
        metrics_address_, std::string("--report-interval"), report_interval_}) {
    args.push_back(a);
  }
  if (!docker_host_.empty()) args.push_back("--docker-host=" + docker_host_);
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = Spawn(args, env_, log_path_);
  if (pid_ < 0) return absl::InternalError("fork failed");
  return WaitFor([&] { return Http("GET", "http://" + metrics_address_ + "/metrics").status == 200; },
                 absl::Seconds(10), "hostagent to serve its metrics");
}

int AgentProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void AppsvcProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int AppsvcProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

PrometheusProcess::PrometheusProcess(std::string dir, std::vector<std::string> targets, int port)
    : dir_(std::move(dir)), targets_(std::move(targets)), port_(port > 0 ? port : FreePort()) {}

PrometheusProcess::~PrometheusProcess() { Stop(); }

absl::Status PrometheusProcess::Start() {
  Shell("mkdir -p " + dir_ + "/data");
  std::string list;
  for (const auto& t : targets_) absl::StrAppend(&list, list.empty() ? "" : ", ", "'", t, "'");
  std::ofstream(dir_ + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: hosting\n    static_configs:\n      - targets: [" << list
      << "]\n";
  pid_ = fork();
  if (pid_ == 0) {
    const std::string log = dir_ + "/prometheus.log";
    FILE* f = freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    const std::string config = "--config.file=" + dir_ + "/prometheus.yml";
    const std::string data = "--storage.tsdb.path=" + dir_ + "/data";
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    execlp("prometheus", "prometheus", config.c_str(), data.c_str(), listen.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid_ < 0) return absl::InternalError("fork failed");
  return WaitFor(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        return Http("GET", url() + "/-/ready").status == 200;
      },
      absl::Seconds(30), "Prometheus ready")
      .ok() && pid_ > 0
             ? absl::OkStatus()
             : absl::UnavailableError(absl::StrCat(
                   "Prometheus did not start (is the prometheus package installed?); see ", dir_,
                   "/prometheus.log"));
}

void PrometheusProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

hosting::v1::Release GetRelease(hosting::v1::Releases::Stub& releases, const std::string& id) {
  grpc::ClientContext ctx;
  hosting::v1::GetReleaseRequest req;
  req.set_id(id);
  hosting::v1::Release r;
  (void)releases.GetRelease(&ctx, req, &r);
  return r;
}

absl::StatusOr<LoadedRelease> RollingReleaseUnderLoad(const std::shared_ptr<grpc::Channel>& hostd,
                                                      hosting::v1::ServiceSpec spec,
                                                      const std::string& app_env,
                                                      const std::string& url,
                                                      absl::Duration timeout) {
  HttpLoad load(url, 4, 100);
  RETURN_IF_ERROR(WaitFor([&] { return load.ok() > 50; }, absl::Seconds(20), "load flowing"));
  auto releases = hosting::v1::Releases::NewStub(hostd);
  hosting::v1::StartReleaseRequest req;
  req.set_service(spec.name());
  (*spec.mutable_env())["APP_ENV"] = app_env;
  *req.mutable_spec() = spec;
  req.mutable_policy()->set_strategy(hosting::v1::RELEASE_STRATEGY_ROLLING);
  hosting::v1::Release started;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = releases->StartRelease(&ctx, req, &started);
    if (!s.ok()) return absl::UnavailableError("StartRelease: " + s.error_message());
  }
  LoadedRelease out;
  RETURN_IF_ERROR(WaitFor(
      [&] {
        out.release = GetRelease(*releases, started.id());
        return out.release.state() >= hosting::v1::RELEASE_STATE_SUCCEEDED;
      },
      timeout, "the release", absl::Milliseconds(200)));
  const int64_t before = load.total();
  RETURN_IF_ERROR(WaitFor([&] { return load.total() > before + 100; }, absl::Seconds(20),
                          "load after the release"));
  load.Stop();
  out.requests = load.total();
  out.failed = load.failed();
  out.first_error = load.first_error();
  return out;
}

hosting::v1::ServiceSpec AppsvcSpec(const std::string& name, int replicas,
                                    const std::map<std::string, std::string>& env) {
  hosting::v1::ServiceSpec spec;
  spec.set_name(name);
  spec.set_image("hosting/appsvc:dev");
  spec.set_replicas(replicas);
  auto& e = *spec.mutable_env();
  e["MIGRATE_ON_START"] = "true";
  e["DRAIN_DELAY_MS"] = "2000";
  e["DB_POOL_SIZE"] = "2";
  for (const auto& [k, v] : env) e[k] = v;
  spec.add_ports()->set_container_port(3000);
  auto* h = spec.mutable_health();
  h->set_http_path("/health");
  h->mutable_interval()->set_seconds(1);
  // Docker runs the command check by exec: on a busy 2-core machine one can take most of a
  // second, so three misses in a row make a task unhealthy.
  h->mutable_timeout()->set_seconds(1);
  h->set_unhealthy_threshold(3);
  h->add_command("appsvc");
  h->add_command("healthcheck");
  spec.mutable_stop_grace_period()->set_seconds(10);
  return spec;
}

hosting::v1::ServiceSpec AppsvcServiceSpec(const std::string& name, int replicas,
                                           const std::string& gateway,
                                           const Datastores& datastores,
                                           const std::map<std::string, std::string>& extra_env) {
  std::map<std::string, std::string> env = {
      {"DB_HOST", gateway},
      {"DB_PORT", std::to_string(datastores.pg_port())},
      {"DB_NAME", "app"},
      {"DB_USER", "app"},
      {"DB_PASSWORD", "app"},
      {"REDIS_HOST", gateway},
      {"REDIS_PORT", std::to_string(datastores.redis_port())},
  };
  for (const auto& [k, v] : extra_env) env[k] = v;
  return AppsvcSpec(name, replicas, env);
}

std::string PrometheusQuery(const std::string& url, const std::string& promql) {
  char* e = curl_easy_escape(nullptr, promql.data(), static_cast<int>(promql.size()));
  HttpResult r = Http("GET", absl::StrCat(url, "/api/v1/query?query=", e));
  curl_free(e);
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("data")) return "[]";
  return j["data"]["result"].dump();
}

std::vector<std::string> DashboardQueriesWithoutData(const std::string& url,
                                                     const std::string& dashboard, int* checked) {
  std::ifstream in(SourceDir() + "/deploy/grafana/dashboards/" + dashboard + ".json");
  nlohmann::json d = nlohmann::json::parse(in, nullptr, false);
  if (d.is_discarded() || !d.contains("panels")) return {dashboard + ": not a dashboard"};
  std::vector<std::string> empty;
  for (const auto& p : d["panels"]) {
    for (const auto& t : p.value("targets", nlohmann::json::array())) {
      const std::string expr = absl::StrReplaceAll(
          t.value("expr", ""), {{"$__rate_interval", "1m"}, {"$__interval", "15s"}, {"$__range", "5m"}});
      ++*checked;
      if (PrometheusQuery(url, expr) == "[]") {
        empty.push_back(absl::StrCat(p.value("title", "?"), ": ", expr));
      }
    }
  }
  return empty;
}

HttpLoad::HttpLoad(std::string url, int threads, double requests_per_second,
                   std::string post_json, absl::Duration timeout)
    : url_(std::move(url)),
      post_json_(std::move(post_json)),
      timeout_(timeout),
      thread_count_(threads),
      rate_(requests_per_second) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

HttpLoad::~HttpLoad() { Stop(); }

void HttpLoad::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int64_t HttpLoad::TotalBetween(absl::Time a, absl::Time b) {
  std::lock_guard<std::mutex> lock(mu_);
  return std::count_if(all_.begin(), all_.end(), [&](absl::Time t) { return t >= a && t <= b; });
}

int64_t HttpLoad::FailedBetween(absl::Time a, absl::Time b) {
  std::lock_guard<std::mutex> lock(mu_);
  return std::count_if(failures_.begin(), failures_.end(),
                       [&](absl::Time t) { return t >= a && t <= b; });
}

std::string HttpLoad::first_error() {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

absl::Duration HttpLoad::max_latency() {
  std::lock_guard<std::mutex> lock(mu_);
  return max_latency_;
}

void HttpLoad::Run() {
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
                   +[](char*, size_t size, size_t n, void*) -> size_t { return size * n; });
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_slist* headers = nullptr;
  if (!post_json_.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_json_.c_str());
  }
  absl::Time next = absl::Now();
  while (!stop_) {
    if (const double rate = rate_; rate > 0) {
      // Each client sends its share at even intervals; a client that fell behind by more
      // than a second does not burst to catch up.
      const absl::Time now = absl::Now();
      if (next < now - absl::Seconds(1)) next = now;
      if (next > now) absl::SleepFor(std::min(next - now, absl::Milliseconds(200)));
      if (absl::Now() < next) continue;  // re-reads the rate (and stop) at least every 200 ms
      next += absl::Seconds(thread_count_ / rate);
    }
    const absl::Time sent = absl::Now();
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    const absl::Time now = absl::Now();
    const bool good = rc == CURLE_OK && status >= 200 && status < 400;
    (good ? ok_ : failed_)++;
    std::lock_guard<std::mutex> lock(mu_);
    max_latency_ = std::max(max_latency_, now - sent);
    all_.push_back(now);
    if (!good) {
      failures_.push_back(now);
      if (first_error_.empty()) {
        first_error_ = rc != CURLE_OK ? curl_easy_strerror(rc) : absl::StrCat("HTTP ", status);
      }
    }
  }
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
}

HaproxyContainer::HaproxyContainer(std::string dir, std::vector<Backend> backends,
                                   std::string prelude)
    : dir_(std::move(dir)), backends_(std::move(backends)), prelude_(std::move(prelude)) {}

HaproxyContainer::~HaproxyContainer() { Stop(); }

absl::Status HaproxyContainer::Start() {
  Shell("docker network inspect hosting >/dev/null 2>&1 || docker network create -d overlay "
        "--attachable --label hosting.managed=true hosting");
  std::ifstream in(SourceDir() + "/deploy/haproxy/haproxy.cfg");
  std::stringstream cfg;
  std::string line;
  while (std::getline(in, line) && !absl::StartsWith(line, "# The demo service")) {
    cfg << line << "\n";
  }
  cfg << prelude_ << "\n";
  std::string publish;
  int container_port = 9001;
  for (const auto& b : backends_) {
    const int host_port = FreePort();
    cfg << "frontend fe-" << b.name << "\n  bind :" << container_port << "\n";
    if (b.hold) {
      const std::string none = absl::StrCat(" if { nbsrv(", b.name, ") eq 0 }\n");
      cfg << "  http-request track-sc2 str(" << b.name << ") table holds" << none
          << "  http-request sc-inc-gpc0(2)" << none << "  http-request lua.hold_for_servers "
          << b.name << none;
    }
    cfg << "  default_backend " << b.name << "\nbackend " << b.name << "\n  balance roundrobin\n"
        << b.extra << "\n";
    absl::StrAppend(&publish, " -p ", publish_address_, ":", host_port, ":", container_port);
    ports_[b.name] = host_port;
    ++container_port;
  }
  const std::string cfg_path = dir_ + "/haproxy.cfg";
  std::ofstream(cfg_path) << cfg.str();
  Shell("mkdir -p " + dir_ + "/haproxy");
  socket_ = dir_ + "/haproxy/admin.sock";
  container_ = absl::StrCat("hosting-test-haproxy-", getpid(), "-", FreePort());
  const std::string run = absl::StrCat("docker run -d --name ", container_, " --network hosting",
                                       " -e HOSTING_HOLD_FOR_SERVERS_MS=", hold_ms_,
                                       publish, " -v ", dir_, "/haproxy:/run/haproxy -v ",
                                       cfg_path, ":/etc/haproxy/haproxy.cfg:ro hosting/haproxy:dev");
  CommandResult r = Shell(run);
  // dockerd 20.10 sometimes answers "network ... not found" for an attachable overlay network
  // that exists (its local copy not made yet); the same run a moment later works.
  for (int attempt = 1; r.exit_code != 0 && absl::StrContains(r.output, "not found") && attempt < 4;
       ++attempt) {
    Shell("docker rm -f " + container_ + " >/dev/null 2>&1");
    absl::SleepFor(absl::Seconds(attempt));
    r = Shell(run);
  }
  if (r.exit_code != 0) return absl::UnavailableError("haproxy container: " + r.output);
  return WaitFor([&] { return Shell("test -S " + socket_).exit_code == 0; }, absl::Seconds(20),
                 "the HAProxy runtime API socket");
}

void HaproxyContainer::Stop() {
  if (container_.empty()) return;
  Shell("docker rm -f " + container_);
  container_.clear();
}

std::string HaproxyContainer::Logs(int lines) const {
  if (container_.empty()) return "";
  return Shell(absl::StrCat("docker logs --tail ", lines, " ", container_, " 2>&1")).output;
}

int HaproxyContainer::port(const std::string& backend) const {
  auto it = ports_.find(backend);
  return it == ports_.end() ? 0 : it->second;
}

namespace {

// One HAProxy runtime command over the stats socket, answered until HAProxy closes.
absl::StatusOr<std::string> HaproxyRuntime(const std::string& socket_path,
                                           const std::string& command) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return absl::UnavailableError("socket()");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", socket_path));
  }
  const std::string line = command + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    return absl::UnavailableError("write to the HAProxy socket");
  }
  std::string out;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace

// Read independently of the production parser (HaproxyLoadBalancer): `show stat` as CSV,
// columns found by the header's names; a server counts when its status is UP (or "no check")
// and its weight is above 0. DRAIN, MAINT, DOWN and weight 0 do not count.
int HaproxyReadyServers(const std::string& socket, const std::string& backend) {
  absl::StatusOr<std::string> csv = HaproxyRuntime(socket, "show stat");
  if (!csv.ok()) return -1;
  std::vector<std::string> lines = absl::StrSplit(*csv, '\n', absl::SkipEmpty());
  if (lines.empty() || !absl::StartsWith(lines[0], "# ")) return -1;
  std::vector<std::string> header = absl::StrSplit(lines[0].substr(2), ',');
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  };
  const int px = column("pxname"), sv = column("svname"), status = column("status"),
            weight = column("weight");
  if (px < 0 || sv < 0 || status < 0 || weight < 0) return -1;
  int n = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    if (static_cast<int>(f.size()) <= std::max({px, sv, status, weight})) continue;
    if (f[px] != backend || f[sv] == "BACKEND" || f[sv] == "FRONTEND") continue;
    int w = 0;
    const bool up = f[status] == "UP" || absl::StartsWith(f[status], "UP ") ||
                    f[status] == "no check";
    if (up && absl::SimpleAtoi(f[weight], &w) && w > 0) ++n;
  }
  return n;
}


double MetricValue(const std::string& text, const std::string& series) {
  for (size_t pos = text.find(series); pos != std::string::npos; pos = text.find(series, pos + 1)) {
    if (pos > 0 && text[pos - 1] != '\n') continue;
    size_t sp = text.find(' ', pos + series.size() - 1);
    if (text.compare(pos, series.size(), series) == 0 &&
        (text[pos + series.size()] == ' ')) {
      return std::strtod(text.c_str() + sp + 1, nullptr);
    }
  }
  return -1;
}

std::vector<std::string> RunbookDocumentBlocks(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> blocks;
  std::string line, current;
  bool in_sh = false, in_other = false;
  while (std::getline(in, line)) {
    if (!in_sh && !in_other && absl::StartsWith(line, "```")) {
      (absl::StripPrefix(line, "```") == "sh" ? in_sh : in_other) = true;
      continue;
    }
    if ((in_sh || in_other) && line == "```") {
      if (in_sh) blocks.push_back(current);
      current.clear();
      in_sh = in_other = false;
      continue;
    }
    if (in_sh) absl::StrAppend(&current, line, "\n");
  }
  return blocks;
}

bool RunbookDocumentRunsElsewhere(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "<!-- run by: ")) return true;
  }
  return false;
}

CommandResult RunRunbookDocument(const std::string& path, const std::string& dir,
                                 const std::vector<std::string>& env) {
  const std::vector<std::string> blocks = RunbookDocumentBlocks(path);
  const std::string name = path.substr(path.rfind('/') + 1);
  if (blocks.empty()) return {1, name + " has no ```sh block: no command to run"};
  const std::string script = absl::StrCat(dir, "/", name, ".sh");
  {
    std::ofstream out(script);
    out << "set -euxo pipefail\ncd " << SourceDir() << "\n";
    for (const std::string& b : blocks) out << b;
  }
  const std::string hostctl_dir = HostctlBinary().substr(0, HostctlBinary().rfind('/'));
  // The output is kept beside the script (HOSTING_KEEP_TEST_DIRS=1 keeps both).
  return Shell(absl::StrCat("env PATH=", hostctl_dir, ":$PATH ", absl::StrJoin(env, " "),
                            " bash ", script, " >", script, ".out 2>&1; rc=$?; cat ", script,
                            ".out; exit $rc"));
}

}  // namespace hosting::testing
