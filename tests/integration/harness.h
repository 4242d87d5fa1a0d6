#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.pb.h"

// Helpers for tests against the real thing: a real dockerd with a real Swarm and hostd run as a
// subprocess. Nothing here fakes a component.
namespace hosting::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command and captures its output.
CommandResult Shell(const std::string& command);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Servers of an HAProxy backend that are UP (or unchecked) with a weight above 0, read from
// `show stat` on the admin socket at `socket`, independently of the production parser; -1 when
// HAProxy cannot tell.
int HaproxyReadyServers(const std::string& socket, const std::string& backend);

// The value of an unlabelled series in a Prometheus text exposition; -1 when absent.
double MetricValue(const std::string& text, const std::string& series);

// Polls `condition` every `interval` until it holds or `timeout` passes. The error names `what`.
absl::Status WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
                     const std::string& what, absl::Duration interval = absl::Milliseconds(50));

// OK when dockerd answers and this node is a Swarm manager; otherwise an error saying how to
// get there. Integration tests fail (never skip) on it.
absl::Status CheckDockerSwarm();

// Swarm services labelled hosting.service=<service>: "name replicas running" per line, sorted.
std::vector<std::string> SwarmServicesOf(const std::string& service);

// Deletes a hosted service through hostd's API (a test's clean-up; errors are ignored: the
// Swarm services are removed by RemoveSwarmServicesOf in any case).
void DeleteHostedService(const std::shared_ptr<grpc::Channel>& hostd, const std::string& name);

// Tasks of a hosted service its agents probed healthy, over every revision, as hostd reports
// them (Cluster.GetServiceStatus); -1 when hostd does not answer.
int HealthyTasks(const std::shared_ptr<grpc::Channel>& hostd, const std::string& service);

// The docker_gwbridge gateway: the address at which Swarm tasks reach this machine.
std::string DockerGatewayAddress();

// Removes every Swarm service labelled hosting.service=<service> and waits (up to a minute)
// until Swarm has removed them and their task containers, so the next test starts clean;
// the error says what was still there.
absl::Status RemoveSwarmServicesOf(const std::string& service);

// The binaries under test, from the build.
std::string HostdBinary();
std::string HostctlBinary();
std::string SourceDir();

// Whether child `pid` (of this process) has not exited, without reaping it: a check of
// "still alive" that can fail.
bool ChildRunning(pid_t pid);

// hostd as a child process on free loopback ports, with its own data directory.
class HostdProcess {
 public:
  // `address` empty: a free loopback port.
  explicit HostdProcess(std::string data_dir, std::vector<std::string> extra_flags = {},
                        std::string address = "");
  ~HostdProcess();

  // Starts hostd and waits until its gRPC API answers.
  absl::Status Start();
  // Sends `signal` and waits for the process to exit; returns its exit status.
  int Stop(int signal = 15);
  // Whether the process has not exited (asks the kernel: a crashed child reads false).
  bool running() const { return ChildRunning(pid_); }
  pid_t pid() const { return pid_; }

  const std::string& address() const { return address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  // The HTTP/JSON gateway's address (a free loopback port).
  const std::string& http_address() const { return http_address_; }
  const std::string& log_path() const { return log_path_; }
  // A channel that sends the suite's admin token (TestToken) on every call.
  std::shared_ptr<grpc::Channel> channel();
  // Whether Start gives hostd the suite's admin token (--admin-token-file); default yes.
  // Without it hostd bootstraps its own tokens (admin.token, agent.token in the data dir).
  void set_import_test_token(bool on) { import_test_token_ = on; }

 private:
  std::string data_dir_;
  std::vector<std::string> extra_flags_;
  std::string address_;
  std::string metrics_address_;
  std::string http_address_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool import_test_token_ = true;
  std::shared_ptr<grpc::Channel> channel_;
};

// The admin token every hostd of this test process accepts (a random secret made once, given
// to each hostd with --admin-token-file). Also exported as HOSTCTL_TOKEN and HOSTAGENT_TOKEN,
// so the hostctl and hostagent processes a test starts send it.
const std::string& TestToken();
// The file holding it (mode 0600).
const std::string& TestTokenFile();

// A fresh temporary directory, removed when the test process ends with every test passed
// (see KeepTestDirs).
std::string MakeTempDir(const std::string& prefix);

// Whether this process leaves its temporary directories behind: HOSTING_KEEP_TEST_DIRS is set,
// or a test has failed (its logs and data are what the failure is read from).
bool KeepTestDirs();

// An HTTP exchange with a server on this machine (libcurl).
struct HttpResult {
  long status = 0;  // 0: no response (connection failed)
  std::string body;
  std::string headers;
  std::string error;
};
// `extra_headers`: "Name: value" lines sent as they are (no decoding of the response: a
// gzip-encoded body stays encoded).
HttpResult Http(const std::string& method, const std::string& url, const std::string& body = "",
                const std::string& content_type = "application/json",
                const std::vector<std::string>& extra_headers = {});

// PostgreSQL primary + streaming replica + Redis on free loopback ports, run by
// scripts/datastores.sh in a temporary directory.
class Datastores {
 public:
  Datastores();
  ~Datastores();
  // `extra_listen`: an address to listen on besides loopback (see DockerGatewayAddress).
  absl::Status Start(const std::string& extra_listen = "");
  void Stop();
  // "stop-replica", "start-replica", "stop-redis", "start-redis", "stop-primary",
  // "start-primary", "promote-replica".
  absl::Status Do(const std::string& command);
  // Environment for appsvc: DB_*, DB_REPLICA_*, REDIS_*.
  std::vector<std::string> Env() const;
  // Runs SQL on the primary or the replica as the postgres superuser, in database `db`;
  // returns the output.
  std::string Sql(const std::string& sql, bool replica = false,
                  const std::string& db = "app") const;
  // Waits until the replica has replayed everything the primary has written so far (a
  // migration just run, say): until then a client of the replica may not see it.
  absl::Status WaitReplicaReplayed(absl::Duration timeout = absl::Seconds(15)) const;
  int pg_port() const { return pg_port_; }
  int replica_port() const { return replica_port_; }
  int redis_port() const { return redis_port_; }

 private:
  std::string dir_;
  int pg_port_, replica_port_, redis_port_;
  bool started_ = false;
};

// appsvc as a child process.
class AppsvcProcess {
 public:
  AppsvcProcess(std::vector<std::string> env, std::string log_path);
  ~AppsvcProcess();
  // Starts and waits until /health answers.
  absl::Status Start();
  void Signal(int signal);
  // Waits for the process to exit; returns its exit code (128+N for signal N).
  int Wait();
  int port() const { return port_; }
  std::string url(const std::string& path) const;
  // Whether the process has not exited (asks the kernel: a crashed child reads false).
  bool running() const { return ChildRunning(pid_); }

 private:
  std::vector<std::string> env_;
  std::string log_path_;
  int port_;
  pid_t pid_ = -1;
};

std::string AppsvcBinary();
std::string AgentBinary();

// hostagent as a child process, reporting to `controller`.
class AgentProcess {
 public:
  AgentProcess(std::string controller, std::string log_path,
               std::string report_interval = "1s");
  ~AgentProcess();
  // Runs it in a network namespace (a node of the local cluster: /run/netns/hc-nI) on that
  // node's engine, serving /metrics at `metrics_address` (an address of the namespace).
  // Before Start.
  void InNode(std::string netns, std::string docker_host, std::string metrics_address) {
    netns_ = std::move(netns);
    docker_host_ = std::move(docker_host);
    metrics_address_ = std::move(metrics_address);
  }
  // More flags, and "NAME=value" environment settings. Before Start.
  void AddArgs(std::vector<std::string> args, std::vector<std::string> env = {}) {
    extra_args_.insert(extra_args_.end(), args.begin(), args.end());
    env_.insert(env_.end(), env.begin(), env.end());
  }
  absl::Status Start();
  int Stop(int signal = 15);
  // Whether the process has not exited (asks the kernel: a crashed child reads false).
  bool running() const { return ChildRunning(pid_); }
  pid_t pid() const { return pid_; }
  const std::string& metrics_address() const { return metrics_address_; }

 private:
  std::vector<std::string> extra_args_;
  std::vector<std::string> env_;
  std::string netns_;
  std::string docker_host_;
  std::string controller_;
  std::string log_path_;
  std::string report_interval_;
  std::string metrics_address_;
  pid_t pid_ = -1;
};

// Prometheus (Debian's package) as a child process scraping `targets` ("host:port" of
// /metrics endpoints) every second, with its data in `dir`.
class PrometheusProcess {
 public:
  // `port` 0: a free one.
  PrometheusProcess(std::string dir, std::vector<std::string> targets, int port = 0);
  ~PrometheusProcess();
  // Starts it and waits until it is ready.
  absl::Status Start();
  void Stop();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string dir_;
  std::vector<std::string> targets_;
  int port_;
  pid_t pid_ = -1;
};

// The result vector of an instant PromQL query against the Prometheus at `url` (JSON text of
// an array; "[]" when it returns nothing or does not answer).
std::string PrometheusQuery(const std::string& url, const std::string& promql);

// Every query of the Grafana dashboard deploy/grafana/dashboards/`dashboard`.json (Grafana's
// interval variables put in as 1m/15s/5m) that returns no data from the Prometheus at `url`,
// as "panel title: expression"; `checked` counts the queries run. An unreadable dashboard is
// one entry naming it.
std::vector<std::string> DashboardQueriesWithoutData(const std::string& url,
                                                     const std::string& dashboard, int* checked);

// A release by ID through the Releases API (an empty Release when the call fails).
hosting::v1::Release GetRelease(hosting::v1::Releases::Stub& releases, const std::string& id);

// What RollingReleaseUnderLoad saw.
struct LoadedRelease {
  hosting::v1::Release release;  // its last state
  int64_t requests = 0;
  int64_t failed = 0;
  std::string first_error;
};

// Starts a rolling release of `spec` with env APP_ENV=`app_env` while an HttpLoad (4 clients,
// 100 requests/s) runs on `url`, waits up to `timeout` for the release to end, then for 100 more
// requests, and stops the load. An error when the release could not start or never ended.
absl::StatusOr<LoadedRelease> RollingReleaseUnderLoad(const std::shared_ptr<grpc::Channel>& hostd,
                                                      hosting::v1::ServiceSpec spec,
                                                      const std::string& app_env,
                                                      const std::string& url,
                                                      absl::Duration timeout);

// appsvc as a hosted service: image hosting/appsvc:dev on port 3000, 1 s health checks (the
// agents' probe and Docker's, three misses make a task unhealthy), migrations on start, a 2 s
// drain, a pool of 2, and `env` (where its database and Redis are) on top.
hosting::v1::ServiceSpec AppsvcSpec(const std::string& name, int replicas,
                                    const std::map<std::string, std::string>& env);

// AppsvcSpec for release tests and benchmarks: the database and Redis of `datastores` reached
// at `gateway` (DockerGatewayAddress).
hosting::v1::ServiceSpec AppsvcServiceSpec(const std::string& name, int replicas,
                                           const std::string& gateway,
                                           const Datastores& datastores,
                                           const std::map<std::string, std::string>& extra_env = {});

// Continuous HTTP load from this machine: `threads` keep-alive clients requesting `url` in a
// loop until Stop. Counts responses by outcome and keeps the time of each.
class HttpLoad {
 public:
  // `requests_per_second` > 0 paces the clients from the first request (see SetRate).
  // `post_json`: each request is a POST of this JSON body (a GET without it). A request not
  // answered within `timeout` counts as failed.
  HttpLoad(std::string url, int threads, double requests_per_second = 0,
           std::string post_json = "", absl::Duration timeout = absl::Seconds(5));
  ~HttpLoad();
  void Stop();
  // Paces the clients to `requests_per_second` in total (open loop, evenly spread); 0 (the
  // default) lets them run flat out.
  void SetRate(double requests_per_second) { rate_ = requests_per_second; }
  int64_t ok() const { return ok_; }
  int64_t failed() const { return failed_; }
  int64_t total() const { return ok_ + failed_; }
  // Requests and failures that completed between two instants.
  int64_t TotalBetween(absl::Time a, absl::Time b);
  int64_t FailedBetween(absl::Time a, absl::Time b);
  std::string first_error();
  // The longest a request took (answered or not).
  absl::Duration max_latency();

 private:
  void Run();
  const std::string url_;
  const std::string post_json_;
  const absl::Duration timeout_;
  absl::Duration max_latency_ = absl::ZeroDuration();
  int thread_count_;
  std::atomic<double> rate_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> ok_{0}, failed_{0};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<absl::Time> all_, failures_;
  std::string first_error_;
};

// HAProxy from the platform's image (hosting/haproxy:dev) in a container on the services'
// overlay network "hosting": the platform configuration's global and defaults sections, then
// one published frontend per backend. Its runtime API socket is shared through a directory.
class HaproxyContainer {
 public:
  struct Backend {
    std::string name;
    // Lines added to the backend after "balance roundrobin" (e.g. a server-template).
    std::string extra;
    // The frontend holds requests while the backend has no server, counting them in the
    // "holds" table (as the platform's web frontend does), for up to hold_ms.
    bool hold = false;
  };
  // How long a holding frontend holds a request (HOSTING_HOLD_FOR_SERVERS_MS). Before Start.
  void SetHoldMs(int ms) { hold_ms_ = ms; }
  // `prelude`: sections placed before the frontends (e.g. "resolvers docker ...").
  HaproxyContainer(std::string dir, std::vector<Backend> backends, std::string prelude = "");
  ~HaproxyContainer();
  // Where the frontends are published (default 127.0.0.1; a cluster node's address when the
  // container runs on a node of the local cluster). Before Start.
  void PublishOn(std::string address) { publish_address_ = std::move(address); }
  absl::Status Start();
  void Stop();
  // The published port of a backend's frontend (on the publish address).
  int port(const std::string& backend) const;
  std::string url(const std::string& backend, const std::string& path) const {
    return "http://" + publish_address_ + ":" + std::to_string(port(backend)) + path;
  }
  const std::string& socket() const { return socket_; }
  // The last `lines` lines HAProxy logged: one per failed, retried or cut request (the
  // platform configuration logs no successful request).
  std::string Logs(int lines = 40) const;

 private:
  std::string dir_;
  std::vector<Backend> backends_;
  std::string prelude_;
  std::string publish_address_ = "127.0.0.1";
  int hold_ms_ = 5000;
  std::string container_;
  std::string socket_;
  std::map<std::string, int> ports_;
};

// The operations runbooks' documents (docs/operations/runbooks): the contents of a document's
// ```sh blocks, in order.
std::vector<std::string> RunbookDocumentBlocks(const std::string& path);
// Whether the document says another test runs it (a line "<!-- run by: TEST -->"): its
// commands need a platform runbook_docs_test does not start.
bool RunbookDocumentRunsElsewhere(const std::string& path);
// Runs a document's blocks in order in one bash (set -euxo pipefail, in the source tree, with
// hostctl on PATH and `env` set); the script and its output are kept in `dir`. The output and
// exit code.
CommandResult RunRunbookDocument(const std::string& path, const std::string& dir,
                                 const std::vector<std::string>& env);

}  // namespace hosting::testing
