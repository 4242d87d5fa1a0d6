#include "controlplane/runbook/restore_runbook.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

namespace fs = std::filesystem;

constexpr char kIdFormat[] = "%Y%m%dT%H%M%SZ";
constexpr char kLog[] = "restore.log";

// When a complete backup finished (hosting-backup.json's finished_at); nullopt when it has no
// manifest (it did not finish).
std::optional<absl::Time> FinishedAt(const std::string& dir) {
  std::ifstream in(dir + "/hosting-backup.json");
  if (!in) return std::nullopt;
  nlohmann::json m = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!m.is_object() || !m.contains("finished_at") || !m["finished_at"].is_string()) {
    return std::nullopt;
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, m["finished_at"].get<std::string>(), &t, &err)) {
    return std::nullopt;
  }
  return t;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

// A TCP port nothing on this machine listens on now.
absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) return absl::InternalError("cannot find a free port");
  return ntohs(addr.sin_port);
}

// The last lines of the restored server's log, for an error.
std::string LogTail(const std::string& data_dir) {
  std::ifstream in(data_dir + "/" + kLog);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const size_t from = lines.size() > 6 ? lines.size() - 6 : 0;
  return absl::StrJoin(lines.begin() + from, lines.end(), "\n");
}

std::string Trimmed(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

}  // namespace

hosting::v1::Runbook RestoreRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("restore");
  r.set_description(
      "Restores a backup to a point in time into a new PostgreSQL instance under hostd "
      "--restore-root, checks it (row counts, amcheck) and states the recovery time; with "
      "`service`, switches that service to it once approved.");
  AddRunbookParameter(r, "target_time", hosting::v1::PARAMETER_TYPE_TIMESTAMP,
                      "the point to recover to (RFC 3339), or latest: all the archive holds",
                      false, "latest");
  AddRunbookParameter(r, "backup", hosting::v1::PARAMETER_TYPE_STRING,
                      "the backup to start from, or auto: the newest finished before target_time",
                      false, "auto");
  AddRunbookParameter(r, "port", hosting::v1::PARAMETER_TYPE_INT,
                      "the port the restored instance listens on (0: a free one)", false, "0");
  AddRunbookParameter(r, "service", hosting::v1::PARAMETER_TYPE_SERVICE,
                      "a service to switch to the restored database once approved (none: none)",
                      false, "");
  AddRunbookParameter(r, "host", hosting::v1::PARAMETER_TYPE_STRING,
                      "the address the service's tasks reach the restored instance at", false,
                      "127.0.0.1");
  AddRunbookParameter(r, "timeout", hosting::v1::PARAMETER_TYPE_DURATION,
                      "how long verification and recovery may each take", false, "1h");
  for (const char* s : {"verify", "prepare", "recover", "check", "switch"}) r.add_steps(s);
  return r;
}

absl::StatusOr<std::vector<StepPlan>> RestoreRunbook::Plan(const Parameters& params) {
  if (config_.repository.empty()) {
    return absl::FailedPreconditionError("this hostd has no --backup-repository: nothing to restore");
  }
  if (config_.restore_root.empty()) {
    return absl::FailedPreconditionError(
        "this hostd has no --restore-root (where restored instances go)");
  }
  const absl::Time now = clock_.Now();
  const absl::Time target = params.Time("target_time");
  const bool latest = target == absl::InfiniteFuture();
  if (!latest && config_.wal_source.empty()) {
    return absl::FailedPreconditionError(
        "a point in time needs WAL archiving (hostd --wal-archive-source); without it, "
        "target_time=latest restores a backup as it ended");
  }
  if (!latest && target > now) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters.target_time: ", Rfc3339(target), " is in the future"));
  }
  // The backup: the newest that finished before the target (its consistent point is earlier).
  const std::vector<std::string> all = ListBackups(config_.repository);
  std::string id = params.String("backup");
  if (id == "auto" || id == "latest") {
    id.clear();
    for (const std::string& b : all) {
      std::optional<absl::Time> done = FinishedAt(config_.repository + "/" + b);
      if (done.has_value() && *done <= target) {
        id = b;
        break;
      }
    }
    if (id.empty()) {
      return absl::FailedPreconditionError(
          all.empty()
              ? absl::StrCat("no backup in ", config_.repository, " (hostctl runbook run backup)")
              : absl::StrCat("no backup finished before ", Rfc3339(target), "; the oldest is ",
                             all.back()));
    }
  } else if (std::find(all.begin(), all.end(), id) == all.end()) {
    return absl::NotFoundError(absl::StrCat("parameters.backup: no backup '", id, "' in ",
                                            config_.repository));
  } else if (std::optional<absl::Time> done = FinishedAt(config_.repository + "/" + id);
             !done.has_value() || *done > target) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters.backup: ", id,
        done.has_value() ? absl::StrCat(" finished at ", Rfc3339(*done), ", after target_time")
                         : " did not finish (it has no hosting-backup.json)"));
  }
  int64_t port = params.Int("port");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError("parameters.port: 0 (a free port) or 1-65535");
  }
  if (port == 0) {
    ASSIGN_OR_RETURN(int free, FreePort());
    port = free;
  }
  std::map<std::string, std::string> args = {
      {"id", id},
      {"backup_dir", config_.repository + "/" + id},
      {"data_dir", absl::StrCat(config_.restore_root, "/",
                                absl::FormatTime(kIdFormat, now, absl::UTCTimeZone()), "-from-",
                                id)},
      {"port", absl::StrCat(port)},
      {"target", latest ? "" : Rfc3339(target)},
      {"host", params.String("host")},
      {"service", params.String("service")},
  };
  const absl::Duration timeout = params.Duration("timeout");
  std::vector<StepPlan> steps;
  // Every step but the switch: within `timeout`, safe to run again after a hostd restart.
  auto add = [&](const char* name, std::string detail) {
    StepPlan step;
    step.name = name;
    step.detail = std::move(detail);
    step.timeout = timeout;
    step.resumable = true;
    steps.push_back(std::move(step));
  };
  add("verify", absl::StrCat("backup ", id, ": pg_verifybackup and its SHA-256 manifest"));
  add("prepare",
      absl::StrCat("copy ", id, " to ", args["data_dir"], " with the archived WAL; recover to ",
                   latest ? (config_.wal_source.empty() ? "the backup's end"
                                                        : "the end of the archive")
                          : args["target"]));
  add("recover", absl::StrCat("PostgreSQL on port ", port, " replays WAL and promotes itself"));
  add("check", "row counts of every table; amcheck of every B-tree index and its heap");
  if (!args["service"].empty()) {
    StepPlan sw;
    sw.name = "switch";
    sw.detail = absl::StrCat("service ", args["service"], ": DB_HOST/DB_REPLICA_HOST=",
                             args["host"], ", DB_PORT/DB_REPLICA_PORT=", port);
    sw.requires_approval = true;
    sw.timeout = absl::Minutes(30);  // it follows the release to its end
    // Not resumable: a restarted hostd does not start a second release.
    steps.push_back(sw);
  }
  for (StepPlan& s : steps) s.arguments = args;
  return steps;
}

std::string RestoreRunbook::Conninfo(const StepContext& ctx, const std::string& db) const {
  return absl::StrCat("host=127.0.0.1 port=", ctx.Argument("port"), " user=postgres dbname=", db,
                      " connect_timeout=5");
}

absl::StatusOr<std::string> RestoreRunbook::Execute(StepContext& ctx) {
  const std::string& step = ctx.step().name();
  if (step == "verify") {
    ctx.SetOutput("restore_started_at", Rfc3339(clock_.Now()));
    const std::string dir = ctx.Argument("backup_dir");
    ASSIGN_OR_RETURN(std::string sums, CheckBackupManifest(dir));
    absl::StatusOr<std::string> out = tools_.VerifyBackup(dir, false, [&ctx] { return ctx.cancelled(); });
    if (!out.ok()) {
      return absl::DataLossError(absl::StrCat("backup ", ctx.Argument("id"),
                                              " failed verification: ", out.status().message()));
    }
    return absl::StrCat(Trimmed(*out), "; ", sums);
  }
  if (step == "prepare") return Prepare(ctx);
  if (step == "recover") return Recover(ctx);
  if (step == "check") return Check(ctx);
  if (step == "switch") {
    const std::string service = ctx.Argument("service");
    const std::string host = ctx.Argument("host");
    const std::string port = ctx.Argument("port");
    ASSIGN_OR_RETURN(
        hosting::v1::Release release,
        cluster_.ReleaseEnv(service,
                            {{"DB_HOST", host},
                             {"DB_PORT", port},
                             {"DB_REPLICA_HOST", host},
                             {"DB_REPLICA_PORT", port}},
                            absl::StrCat("runbook ", ctx.run().id(), ": the restored database")));
    ctx.SetOutput("switch_release", release.id());
    RETURN_IF_ERROR(WaitForRelease(ctx, cluster_, release.id()));
    ctx.SetOutput("switched_service", service);
    return absl::StrCat("service ", service, " uses the restored database at ", host, ":", port,
                        " (release ", release.id(), " succeeded)");
  }
  return absl::InvalidArgumentError(absl::StrCat("restore has no step '", step, "'"));
}

absl::StatusOr<std::string> RestoreRunbook::Prepare(StepContext& ctx) {
  auto cancelled = [&ctx] { return ctx.cancelled(); };
  const std::string backup = ctx.Argument("backup_dir");
  const std::string data = ctx.Argument("data_dir");
  const std::string target = ctx.Argument("target");
  std::vector<std::string> notes;
  // What the primary has written until now should be in the archive first (a restore to
  // "latest" then has it). When the primary is gone, the archive is what there is.
  if (!config_.wal_source.empty()) {
    absl::StatusOr<std::string> lsn =
        tools_.Query(config_.wal_source, "SELECT pg_current_wal_lsn()", cancelled);
    if (!lsn.ok()) {
      notes.push_back("the primary cannot be asked how far its WAL goes; the archive is used as "
                      "it is");
    } else {
      const std::string want = Trimmed(*lsn);
      absl::Status caught_up = ctx.WaitUntil(
          [&]() -> absl::StatusOr<bool> {
            ASSIGN_OR_RETURN(std::string got,
                             tools_.Query(config_.wal_source,
                                          absl::StrCat("SELECT count(*) FROM pg_stat_replication "
                                                       "WHERE application_name = "
                                                       "'pg_receivewal' AND flush_lsn >= '",
                                                       want, "'"),
                                          cancelled));
            return Trimmed(got) != "0";
          },
          absl::Minutes(1), absl::Milliseconds(200), "the WAL archive to reach the primary");
      if (!caught_up.ok() && ctx.cancelled()) return caught_up;
      notes.push_back(caught_up.ok()
                          ? absl::StrCat("the archive holds the primary's WAL up to ", want)
                          : absl::StrCat("the archive is behind the primary (",
                                         caught_up.message(), ")"));
    }
  }
  // A copy of the backup (a previous attempt's is stopped and replaced).
  std::error_code ec;
  RETURN_IF_ERROR(tools_.StopServer(data));
  fs::remove_all(data, ec);
  fs::create_directories(fs::path(data).parent_path(), ec);
  fs::copy(backup, data, fs::copy_options::recursive, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot copy ", backup, " to ", data, ": ",
                                                  ec.message()));
  for (const char* extra : {"hosting-backup.json", "redis.rdb", "standby.signal"}) {
    fs::remove(fs::path(data) / extra, ec);
  }
  // The archived WAL from the backup's start on, the segment being written as a whole one.
  int segments = 0;
  if (!config_.wal_source.empty()) {
    const std::string start = BackupStartWalFile(data);
    fs::create_directories(data + "/restore_wal", ec);
    for (const std::string& name : ArchivedWal(config_.wal_dir())) {
      const std::string segment = name.substr(0, 24);
      if (start.size() == 24 && segment.substr(8) < start.substr(8)) continue;
      const fs::path to = fs::path(data) / "restore_wal" / segment;
      if (fs::exists(to, ec)) continue;  // a complete segment beats its .partial
      fs::copy_file(fs::path(config_.wal_dir()) / name, to, ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot copy WAL ", name, ": ", ec.message()));
      ++segments;
    }
    for (const auto& entry : fs::directory_iterator(config_.wal_dir(), ec)) {
      if (entry.path().extension() == ".history") {
        fs::copy_file(entry.path(), fs::path(data) / "restore_wal" / entry.path().filename(),
                      fs::copy_options::overwrite_existing, ec);
      }
    }
    notes.push_back(absl::StrCat(segments, " archived WAL segments from ",
                                 start.empty() ? "the start" : start));
  }
  {
    std::ofstream conf(data + "/postgresql.auto.conf", std::ios::app);
    conf << "\n# hosting restore, run " << ctx.run().id() << "\n"
         << "port = " << ctx.Argument("port") << "\n"
         << "unix_socket_directories = ''\n"
         << "primary_conninfo = ''\n"
         << "archive_mode = off\n"
         << "hot_standby = on\n"
         << "restore_command = 'cp restore_wal/%f \"%p\"'\n"
         << "recovery_target_action = 'promote'\n";
    if (!target.empty()) {
      absl::Time t;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, target, &t, &err)) {
        return absl::InvalidArgumentError(absl::StrCat("target ", target, ": ", err));
      }
      // PostgreSQL's own form: 2026-12-07 04:34:50.476786+00.
      conf << "recovery_target_time = '"
           << absl::FormatTime("%Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone()) << "'\n";
    }
    std::ofstream(data + "/recovery.signal").flush();
    if (!conf.flush()) return absl::InternalError(absl::StrCat("cannot write ", data, "/postgresql.auto.conf"));
  }
  fs::permissions(data, fs::perms::owner_all, fs::perm_options::replace, ec);
  RETURN_IF_ERROR(tools_.GiveToServer(data));
  ctx.SetOutput("restored_data_dir", data);
  return absl::StrCat(data, " from backup ", ctx.Argument("id"), "; recovery target ",
                      target.empty() ? "the end of the WAL" : target,
                      notes.empty() ? "" : absl::StrCat("; ", absl::StrJoin(notes, "; ")));
}

absl::StatusOr<std::string> RestoreRunbook::Recover(StepContext& ctx) {
  auto cancelled = [&ctx] { return ctx.cancelled(); };
  const std::string data = ctx.Argument("data_dir");
  const std::string conninfo = Conninfo(ctx, "postgres");
  // A resumed attempt finds it running already.
  if (!tools_.Query(conninfo, "SELECT 1", cancelled).ok()) {
    const absl::Duration left = ctx.deadline() - clock_.Now();
    absl::Status started =
        tools_.StartServer(data, data + "/" + kLog, std::max(left, absl::Seconds(10)), cancelled);
    if (!started.ok()) {
      return absl::Status(started.code(),
                          absl::StrCat("the restored PostgreSQL did not start: ",
                                       started.message(), "\n", data, "/", kLog, " ends:\n",
                                       LogTail(data)));
    }
  }
  RETURN_IF_ERROR(ctx.WaitUntil(
      [&]() -> absl::StatusOr<bool> {
        absl::StatusOr<std::string> r = tools_.Query(conninfo, "SELECT pg_is_in_recovery()", cancelled);
        if (!r.ok()) {
          return absl::Status(r.status().code(),
                              absl::StrCat("the restored PostgreSQL stopped answering: ",
                                           r.status().message(), "\n", LogTail(data)));
        }
        return Trimmed(*r) == "f";
      },
      ctx.deadline() - clock_.Now(), absl::Milliseconds(200), "recovery to end"));
  ASSIGN_OR_RETURN(std::string replayed,
                   tools_.Query(conninfo,
                                "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME "
                                "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'none')",
                                cancelled));
  ctx.SetOutput("recovered_to", Trimmed(replayed));
  ctx.SetOutput("restored_conninfo",
                absl::StrCat("host=", ctx.Argument("host"), " port=", ctx.Argument("port")));
  return absl::StrCat("promoted on port ", ctx.Argument("port"),
                      "; the last transaction replayed committed at ", Trimmed(replayed));
}

absl::StatusOr<std::string> RestoreRunbook::Check(StepContext& ctx) {
  auto cancelled = [&ctx] { return ctx.cancelled(); };
  ASSIGN_OR_RETURN(std::string dbs,
                   tools_.Query(Conninfo(ctx, "postgres"),
                                "SELECT datname FROM pg_database WHERE datallowconn AND NOT "
                                "datistemplate ORDER BY datname",
                                cancelled));
  std::vector<std::string> counts;
  int indexes = 0;
  for (absl::string_view db : absl::StrSplit(dbs, '\n', absl::SkipWhitespace())) {
    const std::string conninfo = Conninfo(ctx, std::string(db));
    // Exact counts, one statement: each table's count(*) through query_to_xml.
    ASSIGN_OR_RETURN(
        std::string rows,
        tools_.Query(conninfo,
                     "SELECT format('%s.%s', table_schema, table_name), (xpath('/row/c/text()', "
                     "query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, "
                     "table_name), false, true, '')))[1]::text FROM information_schema.tables "
                     "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', "
                     "'information_schema') ORDER BY 1",
                     cancelled));
    for (absl::string_view line : absl::StrSplit(rows, '\n', absl::SkipWhitespace())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('|', 1));
      counts.push_back(absl::StrCat(db, ".", kv.first, "=", kv.second));
    }
    absl::StatusOr<std::string> checked = tools_.Query(
        conninfo,
        "CREATE EXTENSION IF NOT EXISTS amcheck; SELECT c.relname, bt_index_check(c.oid, true) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = "
        "c.relam WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready AND "
        "c.relpersistence <> 't'",
        cancelled);
    if (!checked.ok()) {
      return absl::DataLossError(absl::StrCat("amcheck found the restored database ", db,
                                              " damaged: ", checked.status().message()));
    }
    for (absl::string_view line : absl::StrSplit(*checked, '\n', absl::SkipWhitespace())) {
      (void)line;
      ++indexes;
    }
  }
  ctx.SetOutput("row_counts", absl::StrJoin(counts, ","));
  absl::Time started;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, ctx.Output("restore_started_at"), &started, &err)) {
    const absl::Duration rto = clock_.Now() - started;
    ctx.SetOutput("recovery_seconds", absl::StrFormat("%.1f", absl::ToDoubleSeconds(rto)));
  }
  return absl::StrCat(counts.size(), " tables counted (", absl::StrJoin(counts, ", "), "); ",
                      indexes, " B-tree indexes pass amcheck with their heap");
}

}  // namespace hosting::controlplane
