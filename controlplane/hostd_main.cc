// hostd: the hosting control-plane daemon. Parses flags, wires Hostd, waits for a signal.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "controlplane/hostd.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC listen address (host:port).");
ABSL_FLAG(std::string, store, "",
          "Store URL: sqlite:///absolute/path.db, or postgres://user@host[:port][,host2]/db "
          "(several hostd on one PostgreSQL elect a leader). Default: "
          "sqlite://<data-dir>/hostd.db.");
ABSL_FLAG(std::string, advertise_address, "",
          "host:port where clients and other hostd reach this one (shown by standbys). "
          "Default: the --listen address.");
ABSL_FLAG(absl::Duration, leader_lease, absl::Milliseconds(750),
          "Leader lease: how long a dead leader holds up the standbys.");
ABSL_FLAG(absl::Duration, leader_retry, absl::Milliseconds(150),
          "How often the leader renews its lease and a standby tries to take it.");
ABSL_FLAG(std::string, data_dir, "/var/lib/hosting",
          "Directory for the default store and the bootstrap tokens (admin.token, agent.token, "
          "written 0600 at first start).");
ABSL_FLAG(bool, insecure_no_auth, false,
          "Local development only: serve every call without a token, as admin. Refused unless "
          "--listen is a loopback address; anyone on this machine then controls hostd.");
ABSL_FLAG(std::string, admin_token_file, "",
          "A file (mode 0600) holding an admin secret of 32+ characters to add to the store "
          "at start: give several hostd of one store the same file, or make the secret in "
          "automation (openssl rand -hex 32).");
ABSL_FLAG(bool, recover_admin_token, false,
          "Write a new admin token to <data-dir>/admin.token at start (when the old one is "
          "lost); the old tokens stay valid until revoked.");
ABSL_FLAG(std::string, docker_host, "unix:///var/run/docker.sock",
          "Docker Engine endpoint: unix:///path or tcp://host:port.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics address; empty to disable.");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:8480",
          "HTTP/JSON gateway and web console address (docs/api.md, docs/console.md); empty to "
          "disable. It has no TLS of its own: anything but loopback needs "
          "--allow-insecure-remote (put a TLS proxy in front).");
ABSL_FLAG(std::string, console_dir, "",
          "The web console's built files (scripts/build-console.sh), served by the HTTP gateway "
          "at /; empty: no console.");
ABSL_FLAG(std::string, network, "hosting", "Overlay network every revision service joins.");
ABSL_FLAG(int, workers, 2, "Reconcile workers.");
ABSL_FLAG(absl::Duration, resync_interval, absl::Seconds(30),
          "Period of the full resync that catches missed Docker events.");
ABSL_FLAG(std::string, haproxy, "",
          "HAProxy runtime API (stats socket at admin level): a unix socket path or host:port. "
          "Empty: releases approximate traffic weights with replica counts.");
ABSL_FLAG(std::string, haproxy_master, "",
          "HAProxy's master CLI (haproxy -W -S PATH), through which platform-restart reloads "
          "it. Empty: master.sock beside a unix-socket --haproxy (where the platform's image "
          "puts it).");
ABSL_FLAG(absl::Duration, drain_traffic_grace, absl::Seconds(3),
          "With --haproxy: a node drain takes the node's tasks out of HAProxy, waits this long "
          "for their open requests, then has Swarm move them.");
ABSL_FLAG(std::string, backup_repository, "/var/lib/hosting/backups",
          "Runbook backup: the directory backups go to, one per backup");
ABSL_FLAG(std::string, backup_database, "",
          "Runbook backup: libpq connection string of the application's PostgreSQL to copy "
          "(its replica when it has one), e.g. 'host=10.0.0.5 port=5432 user=replicator'; a "
          "password belongs in ~/.pgpass, not here");
ABSL_FLAG(std::string, backup_redis, "",
          "Runbook backup: host:port of the Redis to snapshot beside the database (empty: none)");
ABSL_FLAG(std::string, wal_archive_source, "",
          "Continuous WAL archiving: libpq connection string of the application's PostgreSQL "
          "primary, streamed (pg_receivewal, slot hosting_wal_archive) into "
          "<backup-repository>/wal; needed for restores to a point in time. Empty: none");
ABSL_FLAG(std::string, restore_root, "/var/lib/hosting/restores",
          "Runbook restore: the directory restored PostgreSQL instances go to, one per restore");
ABSL_FLAG(std::string, pg_user, "postgres",
          "The OS user restored PostgreSQL servers run as when hostd runs as root");
ABSL_FLAG(std::string, pg_bin, "/usr/lib/postgresql/15/bin",
          "Where pg_basebackup and pg_verifybackup are");
ABSL_FLAG(std::string, prometheus, "",
          "Prometheus base URL (e.g. http://127.0.0.1:9090) for PromQL analysis checks.");
ABSL_FLAG(std::string, loki, "",
          "Loki base URL (e.g. http://127.0.0.1:3100): the log-analysis runbook reads task logs "
          "there (the platform's log shipper labels them by container), else through the agents");
ABSL_FLAG(absl::Duration, release_tick, absl::Milliseconds(250),
          "How often releases advance and HAProxy backends are synced.");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate (enables TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA that client certificates must chain to (mTLS).");
ABSL_FLAG(bool, allow_insecure_remote, false,
          "Allow a non-loopback --listen without TLS.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("hostd: the hosting control-plane daemon (gRPC API hosting.v1)");
  hosting::ParseFlags(argc, argv);

  hosting::controlplane::HostdOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.store_url = absl::GetFlag(FLAGS_store);
  {
    const std::string dir = absl::GetFlag(FLAGS_data_dir);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      hosting::LogError("cannot create --data-dir", {{"dir", dir}, {"error", ec.message()}});
      return 1;
    }
    options.data_dir = std::filesystem::absolute(dir).string();
    if (options.store_url.empty()) options.store_url = "sqlite://" + options.data_dir + "/hostd.db";
  }
  options.auth = !absl::GetFlag(FLAGS_insecure_no_auth);
  options.recover_admin_token = absl::GetFlag(FLAGS_recover_admin_token);
  options.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  options.docker_host = absl::GetFlag(FLAGS_docker_host);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.http.listen = absl::GetFlag(FLAGS_http_listen);
  options.http.console_dir = absl::GetFlag(FLAGS_console_dir);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.allow_insecure_remote = absl::GetFlag(FLAGS_allow_insecure_remote);
  options.reconciler.network = absl::GetFlag(FLAGS_network);
  options.haproxy = absl::GetFlag(FLAGS_haproxy);
  options.haproxy_master = absl::GetFlag(FLAGS_haproxy_master);
  options.drain_traffic_grace = absl::GetFlag(FLAGS_drain_traffic_grace);
  options.releases.tick = absl::GetFlag(FLAGS_release_tick);
  options.prometheus = absl::GetFlag(FLAGS_prometheus);
  options.loki = absl::GetFlag(FLAGS_loki);
  options.backup.repository = absl::GetFlag(FLAGS_backup_repository);
  options.backup.database = absl::GetFlag(FLAGS_backup_database);
  options.backup.redis = absl::GetFlag(FLAGS_backup_redis);
  options.pg_bin = absl::GetFlag(FLAGS_pg_bin);
  options.pg_user = absl::GetFlag(FLAGS_pg_user);
  options.backup.wal_source = absl::GetFlag(FLAGS_wal_archive_source);
  options.backup.restore_root = absl::GetFlag(FLAGS_restore_root);
  options.reconciler.workers = absl::GetFlag(FLAGS_workers);
  options.reconciler.resync_interval = absl::GetFlag(FLAGS_resync_interval);
  options.leader.address = absl::GetFlag(FLAGS_advertise_address);
  options.leader.lease = absl::GetFlag(FLAGS_leader_lease);
  options.leader.retry = absl::GetFlag(FLAGS_leader_retry);
  if (options.leader.retry * 2 >= options.leader.lease) {
    hosting::LogError("hostd failed to start",
                      {{"error", "--leader-retry must be under half of --leader-lease, so the "
                                 "leader renews at least twice per lease"}});
    return 1;
  }

  hosting::BlockStopSignals();

  hosting::controlplane::Hostd hostd(options);
  if (absl::Status s = hostd.Init(); !s.ok()) {
    hosting::LogError("hostd failed to start", {{"error", s.ToString()}});
    return 1;
  }
  if (absl::Status s = hostd.Start(); !s.ok()) {
    hosting::LogError("hostd failed to start", {{"error", s.ToString()}});
    return 1;
  }
  const int sig = hosting::WaitForStopSignal();
  hosting::LogInfo("hostd stopping", {{"signal", std::to_string(sig)}});
  hostd.Shutdown();
  return 0;
}
