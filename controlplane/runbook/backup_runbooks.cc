#include "controlplane/runbook/backup_runbooks.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/subprocess.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

namespace fs = std::filesystem;

constexpr char kManifest[] = "hosting-backup.json";
constexpr char kIdFormat[] = "%Y%m%dT%H%M%SZ";
// A backup retention took out of the repository, whose files are being deleted.
constexpr char kExpiredPrefix[] = ".expired-";

// A backup's ID is its UTC start time, 20261207T031500Z (absl's %Y would read every digit).
std::optional<absl::Time> ParseId(const std::string& id) {
  if (id.size() != 16 || id[8] != 'T' || id[15] != 'Z') return std::nullopt;
  int f[6];
  const int at[6][2] = {{0, 4}, {4, 2}, {6, 2}, {9, 2}, {11, 2}, {13, 2}};
  for (int i = 0; i < 6; ++i) {
    if (!absl::SimpleAtoi(id.substr(at[i][0], at[i][1]), &f[i])) return std::nullopt;
  }
  const absl::CivilSecond cs(f[0], f[1], f[2], f[3], f[4], f[5]);
  if (cs.year() != f[0] || cs.month() != f[1] || cs.day() != f[2] || cs.hour() != f[3] ||
      cs.minute() != f[4] || cs.second() != f[5]) {
    return std::nullopt;
  }
  return absl::FromCivil(cs, absl::UTCTimeZone());
}

bool IsBackupId(const std::string& name) { return ParseId(name).has_value(); }

absl::Time IdTime(const std::string& id) { return BackupStartTime(id); }

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

uint64_t TreeBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) bytes += it->file_size(ec);
  }
  return bytes;
}

std::string Mib(uint64_t bytes) { return absl::StrCat(bytes / (1024 * 1024), " MiB"); }

}  // namespace

// A connection string without its password (key=value form or URL).
std::string RedactedConninfo(const std::string& conninfo) {
  std::string out = conninfo;
  if (size_t p = out.find("password="); p != std::string::npos) {
    const size_t end = out.find(' ', p);
    out.replace(p + 9, (end == std::string::npos ? out.size() : end) - (p + 9), "***");
  }
  if (size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t at = out.find('@', scheme);
    const size_t colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  return out;
}

namespace {

std::string Redacted(const std::string& conninfo) { return RedactedConninfo(conninfo); }

absl::Status NotConfigured(const char* flag, const char* what) {
  return absl::FailedPreconditionError(
      absl::StrCat("this hostd has no ", flag, " (", what, "): backups cannot run"));
}

// pg_basebackup into `partial` (made afresh) with every file's CRC-32C taken as pg_basebackup
// closes it; `sums` gets them (nothing when the watch could not start: verification then reads
// every file again).
absl::StatusOr<std::string> CopySummed(BackupTools& tools, const std::string& database,
                                       const std::string& partial, absl::Duration timeout,
                                       BackupTools::Cancelled cancelled,
                                       std::optional<FileSums>& sums) {
  std::error_code ec;
  fs::remove_all(partial, ec);
  sums.reset();
  absl::StatusOr<std::unique_ptr<ChecksumsWhileWriting>> watch =
      ChecksumsWhileWriting::Start(partial, {"pg_wal"});
  if (!watch.ok()) {
    LogWarning("backup: cannot checksum while copying (verification reads the backup again)",
               {{"error", std::string(watch.status().message())}});
  }
  absl::StatusOr<std::string> out =
      tools.BaseBackup(database, partial, timeout, std::move(cancelled));
  if (watch.ok()) {
    FileSums taken = (*watch)->Finish();
    if (out.ok()) sums = std::move(taken);
  }
  return out;
}

// Verifies the backup in `dir`: the CRC-32Cs taken while copying (`sums`) against
// backup_manifest beside pg_verifybackup's other checks (--skip-checksums), or pg_verifybackup
// alone when there are none or the manifest is not all CRC-32C.
absl::StatusOr<std::string> VerifyCopy(BackupTools& tools, const std::string& dir,
                                       const std::optional<FileSums>& sums,
                                       BackupTools::Cancelled cancelled) {
  if (!sums.has_value()) return tools.VerifyBackup(dir, false, std::move(cancelled));
  absl::StatusOr<std::string> crcs;
  std::thread check([&] { crcs = CheckManifestCrc32c(dir, *sums); });
  absl::StatusOr<std::string> rest = tools.VerifyBackup(dir, true, cancelled);
  check.join();
  if (absl::IsFailedPrecondition(crcs.status())) {
    return tools.VerifyBackup(dir, false, std::move(cancelled));
  }
  if (!crcs.ok()) return crcs.status();
  if (!rest.ok()) return rest.status();
  return absl::StrCat(absl::StripAsciiWhitespace(*rest), "; ", *crcs);
}

}  // namespace

absl::StatusOr<std::string> CheckBackupManifest(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadFile(dir + "/" + kManifest);
  if (!text.ok()) {
    return absl::DataLossError(absl::StrCat("backup ", dir, " has no ", kManifest,
                                            ": it did not finish; do not restore it"));
  }
  nlohmann::json m = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!m.is_object() || !m.contains("files") || !m["files"].is_object()) {
    return absl::DataLossError(absl::StrCat(dir, "/", kManifest, " is not a backup manifest"));
  }
  std::vector<std::string> bad;
  int checked = 0;
  for (const auto& [file, want] : m["files"].items()) {
    if (!want.is_object() || !want.contains("sha256")) continue;
    absl::StatusOr<std::string> got = FileSha256(dir + "/" + file);
    if (!got.ok()) {
      bad.push_back(absl::StrCat(file, " is missing"));
    } else if (*got != want["sha256"].get<std::string>()) {
      bad.push_back(absl::StrCat(file, " has SHA-256 ", got->substr(0, 16), "..., the manifest ",
                                 want["sha256"].get<std::string>().substr(0, 16), "..."));
    }
    ++checked;
  }
  if (!bad.empty()) {
    return absl::DataLossError(
        absl::StrCat("backup ", dir, " is corrupt: ", absl::StrJoin(bad, "; ")));
  }
  return absl::StrCat(checked, " files match their SHA-256 in ", kManifest);
}

std::string BackupIdAt(absl::Time t) { return absl::FormatTime(kIdFormat, t, absl::UTCTimeZone()); }

absl::Time BackupStartTime(const std::string& id) {
  return ParseId(id).value_or(absl::InfinitePast());
}

std::string BackupStartWalFile(const std::string& dir) {
  absl::StatusOr<std::string> label = ReadFile(dir + "/backup_label");
  if (!label.ok()) return "";
  // START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
  const size_t at = label->find("(file ");
  if (at == std::string::npos || label->size() < at + 6 + 24) return "";
  return label->substr(at + 6, 24);
}

absl::StatusOr<std::string> FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof(buf));
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), len));
}

std::vector<std::string> ArchivedWal(const std::string& wal_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(wal_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string base = absl::StrContains(name, ".") ? name.substr(0, name.find('.')) : name;
    const bool partial = name == base + ".partial";
    if (base.size() == 24 && (partial || name == base) &&
        base.find_first_not_of("0123456789ABCDEF") == std::string::npos) {
      out.push_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ListBackups(const std::string& repository) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(repository, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory(ec) && IsBackupId(name)) out.push_back(name);
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

absl::StatusOr<std::string> ProcessBackupTools::BaseBackup(const std::string& database,
                                                           const std::string& dir,
                                                           absl::Duration timeout,
                                                           Cancelled cancelled) {
  ProcessOptions o;
  o.timeout = timeout;
  o.cancelled = std::move(cancelled);
  return RunProcess(
      {pg_bin_ + "/pg_basebackup", "--dbname", database, "--pgdata", dir, "--wal-method=stream",
       "--checkpoint=fast", "--manifest-checksums=CRC32C", "--no-password"},
      o);
}

absl::StatusOr<std::string> ProcessBackupTools::VerifyBackup(const std::string& dir,
                                                             bool checksums_checked,
                                                             Cancelled cancelled) {
  ProcessOptions o;
  o.timeout = absl::Hours(2);
  o.cancelled = std::move(cancelled);
  // The files hosting adds beside PostgreSQL's (checked against hosting-backup.json instead).
  std::vector<std::string> verify = {pg_bin_ + "/pg_verifybackup", "--ignore=redis.rdb",
                                     absl::StrCat("--ignore=", kManifest),
                                     absl::StrCat("--ignore=", kManifest, ".tmp")};
  if (checksums_checked) verify.push_back("--skip-checksums");
  // pg_verifybackup checks every file's checksum, then parses the WAL the backup needs from
  // its start to its end. The two are independent: the WAL is parsed by pg_waldump over the
  // same ranges beside the checksum pass (--no-parse-wal), which takes the verification from
  // their sum to the longer of the two. A manifest without WAL ranges leaves it all to
  // pg_verifybackup (which then says what is wrong with the manifest).
  struct WalRange {
    uint64_t timeline;
    std::string start, end;
  };
  std::vector<WalRange> ranges;
  if (absl::StatusOr<std::string> text = ReadFile(dir + "/backup_manifest"); text.ok()) {
    nlohmann::json m = nlohmann::json::parse(*text, nullptr, false);
    if (m.is_object() && m.contains("WAL-Ranges") && m["WAL-Ranges"].is_array()) {
      for (const nlohmann::json& r : m["WAL-Ranges"]) {
        if (!r.is_object() || !r.contains("Timeline") || !r["Timeline"].is_number_unsigned() ||
            !r.contains("Start-LSN") || !r["Start-LSN"].is_string() || !r.contains("End-LSN") ||
            !r["End-LSN"].is_string()) {
          ranges.clear();
          break;
        }
        ranges.push_back({r["Timeline"].get<uint64_t>(), r["Start-LSN"].get<std::string>(),
                          r["End-LSN"].get<std::string>()});
      }
    }
  }
  if (ranges.empty()) {
    verify.push_back(dir);
    return RunProcess(verify, o);
  }
  absl::Status wal = absl::OkStatus();
  std::thread parse([&] {
    for (const WalRange& r : ranges) {
      absl::StatusOr<std::string> out = RunProcess(
          {pg_bin_ + "/pg_waldump", "--quiet", absl::StrCat("--path=", dir, "/pg_wal"),
           absl::StrCat("--timeline=", r.timeline), absl::StrCat("--start=", r.start),
           absl::StrCat("--end=", r.end)},
          o);
      if (!out.ok()) {
        wal = absl::DataLossError(absl::StrCat("WAL parsing failed (timeline ", r.timeline, " ",
                                               r.start, " to ", r.end,
                                               "): ", out.status().message()));
        return;
      }
    }
  });
  verify.push_back("--no-parse-wal");
  verify.push_back(dir);
  absl::StatusOr<std::string> checked = RunProcess(verify, o);
  parse.join();
  if (!checked.ok()) return checked.status();
  if (!wal.ok()) return wal;
  return absl::StrCat(absl::StripAsciiWhitespace(*checked), "; WAL parsed from ",
                      ranges.front().start, " to ", ranges.back().end);
}

absl::StatusOr<std::string> ProcessBackupTools::RedisSnapshot(const std::string& address,
                                                              const std::string& file,
                                                              Cancelled cancelled) {
  const size_t colon = address.rfind(':');
  ProcessOptions o;
  o.timeout = absl::Minutes(30);
  o.cancelled = std::move(cancelled);
  return RunProcess(
      {"redis-cli", "-h", address.substr(0, colon), "-p",
       colon == std::string::npos ? "6379" : address.substr(colon + 1), "--rdb", file},
      o);
}

absl::Status ProcessBackupTools::ReceiveWal(const std::string& source, const std::string& dir,
                                            const std::string& slot, Cancelled cancelled) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot make ", dir, ": ", ec.message()));
  ProcessOptions o;
  o.timeout = absl::Minutes(1);
  o.cancelled = cancelled;
  RETURN_IF_ERROR(RunProcess({pg_bin_ + "/pg_receivewal", "--dbname", source, "--slot", slot,
                              "--create-slot", "--if-not-exists", "--no-password"},
                             o)
                      .status());
  // Until the connection ends or hostd stops it; --synchronous flushes every write, so what
  // the primary has committed is in the archive a moment later.
  o.timeout = absl::InfiniteDuration();
  return RunProcess({pg_bin_ + "/pg_receivewal", "--dbname", source, "--directory", dir,
                     "--slot", slot, "--synchronous", "--no-loop", "--no-password"},
                    o)
      .status();
}

absl::StatusOr<std::string> ProcessBackupTools::Query(const std::string& conninfo,
                                                     const std::string& sql,
                                                     Cancelled cancelled) {
  ProcessOptions o;
  o.timeout = absl::Hours(2);
  o.cancelled = std::move(cancelled);
  o.max_output = 4 << 20;
  return RunProcess({pg_bin_ + "/psql", "--no-psqlrc", "--quiet", "--no-align", "--tuples-only",
                     "--no-password", "--set=ON_ERROR_STOP=1", "--dbname", conninfo,
                     "--command", sql},
                    o);
}

std::vector<std::string> ProcessBackupTools::AsServer(std::vector<std::string> argv) const {
  if (geteuid() != 0 || server_user_.empty()) return argv;
  argv.insert(argv.begin(), {"runuser", "-u", server_user_, "--"});
  return argv;
}

absl::Status ProcessBackupTools::GiveToServer(const std::string& dir) {
  if (geteuid() != 0 || server_user_.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(RunProcess({"chown", "-R", server_user_ + ":", dir}).status());
  // The server's user must reach the directory through its parents.
  return RunProcess(AsServer({"test", "-x", dir})).ok()
             ? absl::OkStatus()
             : absl::FailedPreconditionError(absl::StrCat(
                   "the user ", server_user_, " cannot reach ", dir,
                   ": a parent directory is not searchable (chmod o+x it, or choose "
                   "another hostd --restore-root)"));
}

absl::Status ProcessBackupTools::StartServer(const std::string& data_dir, const std::string& log,
                                             absl::Duration timeout, Cancelled cancelled) {
  ProcessOptions o;
  o.timeout = timeout + absl::Seconds(10);
  o.cancelled = std::move(cancelled);
  return RunProcess(AsServer({pg_bin_ + "/pg_ctl", "--pgdata", data_dir, "--log", log, "--wait",
                              absl::StrCat("--timeout=", absl::ToInt64Seconds(timeout)),
                              "start"}),
                    o)
      .status();
}

absl::Status ProcessBackupTools::StopServer(const std::string& data_dir) {
  std::error_code ec;
  if (!fs::exists(data_dir + "/postmaster.pid", ec)) return absl::OkStatus();
  return RunProcess(AsServer({pg_bin_ + "/pg_ctl", "--pgdata", data_dir, "--mode=fast", "--wait",
                              "stop"}))
      .status();
}

absl::StatusOr<std::string> WriteBackupManifest(const std::string& dir, const std::string& id,
                                                const std::string& run_id, absl::Time finished) {
  std::error_code ec;
  nlohmann::json m;
  m["id"] = id;
  m["created_at"] = absl::FormatTime(absl::RFC3339_sec, IdTime(id), absl::UTCTimeZone());
  m["finished_at"] = absl::FormatTime(absl::RFC3339_sec, finished, absl::UTCTimeZone());
  m["run"] = run_id;
  if (absl::StatusOr<std::string> v = ReadFile(dir + "/PG_VERSION"); v.ok()) {
    m["postgresql_version"] = std::string(absl::StripAsciiWhitespace(*v));
  }
  if (absl::StatusOr<std::string> pg = ReadFile(dir + "/backup_manifest"); pg.ok()) {
    nlohmann::json pm = nlohmann::json::parse(*pg, nullptr, false);
    if (pm.is_object() && pm.contains("WAL-Ranges")) m["wal_ranges"] = pm["WAL-Ranges"];
  }
  for (const char* file : {"backup_manifest", "backup_label", "redis.rdb"}) {
    if (!fs::exists(dir + "/" + file, ec)) continue;
    ASSIGN_OR_RETURN(std::string sum, FileSha256(dir + "/" + file));
    m["files"][file] = {{"sha256", sum}, {"bytes", fs::file_size(dir + "/" + file, ec)}};
  }
  m["bytes"] = TreeBytes(dir);
  const std::string tmp = dir + "/" + kManifest + ".tmp";
  {
    std::ofstream out(tmp);
    out << m.dump(2) << "\n";
    if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  fs::rename(tmp, dir + "/" + kManifest, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write the manifest: ", ec.message()));
  return absl::StrCat(dir, "/", kManifest, ": ", m["files"].size(), " files");
}

absl::StatusOr<std::string> TakeVerifiedBackup(const BackupConfig& config, BackupTools& tools,
                                               Clock& clock, const std::string& id,
                                               const std::string& run_id, absl::Duration timeout,
                                               BackupTools::Cancelled cancelled) {
  if (config.database.empty()) return NotConfigured("--backup-database", "the PostgreSQL to copy");
  const std::string dir = config.repository + "/" + id;
  std::error_code ec;
  if (fs::exists(dir + "/" + kManifest, ec)) return absl::StrCat("backup ", id, " was made already");
  const std::string partial = dir + ".partial";
  fs::remove_all(partial, ec);
  fs::remove_all(dir, ec);
  fs::create_directories(config.repository, ec);
  const absl::Time start = clock.Now();
  std::optional<FileSums> sums;
  ASSIGN_OR_RETURN(std::string out,
                   CopySummed(tools, config.database, partial, timeout, cancelled, sums));
  fs::rename(partial, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", partial, ": ", ec.message()));
  absl::StatusOr<std::string> verified = VerifyCopy(tools, dir, sums, cancelled);
  if (!verified.ok()) {
    fs::remove_all(dir, ec);
    return absl::DataLossError(absl::StrCat("backup ", id, " failed verification (removed): ",
                                            verified.status().message()));
  }
  RETURN_IF_ERROR(WriteBackupManifest(dir, id, run_id, clock.Now()).status());
  return absl::StrCat("backup ", id, ": ", Mib(TreeBytes(dir)), " in ",
                      absl::FormatDuration(clock.Now() - start), ", verified");
}

hosting::v1::Runbook BackupRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("backup");
  r.set_description(
      "A verified base backup of the application's PostgreSQL (taken from the replica when "
      "hostd --backup-database names it) and a Redis snapshot beside it, into the backup "
      "repository with a SHA-256 manifest; then retention.");
  AddRunbookParameter(r, "keep", hosting::v1::PARAMETER_TYPE_INT, "backups kept, newest first",
                      false, "7");
  AddRunbookParameter(r, "max_age", hosting::v1::PARAMETER_TYPE_DURATION,
                      "backups older than this are removed (the newest is always kept)", false,
                      "720h");
  AddRunbookParameter(r, "timeout", hosting::v1::PARAMETER_TYPE_DURATION,
                      "how long the base backup may take", false, "1h");
  for (const char* s : {"wal-archive", "base-backup", "verify", "redis", "manifest", "retention"}) {
    r.add_steps(s);
  }
  return r;
}

absl::StatusOr<std::vector<StepPlan>> BackupRunbook::Plan(const Parameters& params) {
  if (config_.repository.empty()) return NotConfigured("--backup-repository", "where backups go");
  if (config_.database.empty()) {
    return NotConfigured("--backup-database",
                         "the PostgreSQL to copy, its replica when it has one");
  }
  if (params.Int("keep") < 1) return absl::InvalidArgumentError("parameters.keep: at least 1");
  const std::string id = absl::FormatTime(kIdFormat, clock_.Now(), absl::UTCTimeZone());
  const std::string dir = config_.repository + "/" + id;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("backup ", id, " exists already; try again"));
  }
  const std::map<std::string, std::string> args = {{"id", id}, {"dir", dir}};
  std::vector<StepPlan> steps;
  if (!config_.wal_source.empty()) {
    // First: the WAL after the base backup must reach the archive for a point-in-time restore.
    StepPlan wal;
    wal.name = "wal-archive";
    wal.detail = absl::StrCat("WAL of ", Redacted(config_.wal_source), " streams into ",
                              config_.wal_dir(), " (slot ", kWalArchiveSlot, ")");
    wal.arguments = args;
    wal.timeout = absl::Minutes(1);
    wal.max_attempts = 4;
    wal.backoff = absl::Seconds(5);
    wal.resumable = true;
    steps.push_back(wal);
  }
  StepPlan base;
  base.name = "base-backup";
  base.detail = absl::StrCat("pg_basebackup of ", Redacted(config_.database), " into ", dir);
  base.arguments = args;
  base.timeout = params.Duration("timeout");
  base.max_attempts = 2;
  base.backoff = absl::Seconds(10);
  base.resumable = true;  // starts over from an empty directory
  steps.push_back(base);
  StepPlan verify;
  verify.name = "verify";
  verify.detail = absl::StrCat("pg_verifybackup ", dir);
  verify.arguments = args;
  verify.timeout = params.Duration("timeout");
  verify.resumable = true;
  verify.max_attempts = 2;
  steps.push_back(verify);
  if (!config_.redis.empty()) {
    StepPlan redis;
    redis.name = "redis";
    redis.detail =
        absl::StrCat("RDB snapshot of Redis at ", config_.redis, " into ", dir, "/redis.rdb");
    redis.arguments = args;
    redis.timeout = absl::Minutes(30);
    redis.max_attempts = 3;
    redis.resumable = true;
    steps.push_back(redis);
  }
  StepPlan manifest;
  manifest.name = "manifest";
  manifest.detail = absl::StrCat(dir, "/", kManifest, ": times, WAL range, SHA-256 of files");
  manifest.arguments = args;
  manifest.timeout = absl::Minutes(30);
  manifest.resumable = true;
  steps.push_back(manifest);
  StepPlan retention;
  retention.name = "retention";
  retention.detail =
      absl::StrCat("keep the newest ", params.Int("keep"), " in ", config_.repository,
                   ", none older than ", absl::FormatDuration(params.Duration("max_age")));
  retention.arguments = args;
  retention.arguments["keep"] = params.String("keep");
  retention.arguments["max_age"] = params.String("max_age");
  retention.timeout = absl::Minutes(10);
  retention.resumable = true;
  steps.push_back(retention);
  return steps;
}

BackupRunbook::~BackupRunbook() { WaitForExpiredDeleted(); }

void BackupRunbook::WaitForExpiredDeleted() {
  absl::MutexLock lock(&reaper_mu_);
  if (reaper_.joinable()) reaper_.join();
}

void BackupRunbook::DeleteExpiredInBackground() {
  absl::MutexLock lock(&reaper_mu_);
  // One reaper at a time: the one before has finished or is about to (retention runs once a
  // backup); joining it keeps at most one thread.
  if (reaper_.joinable()) reaper_.join();
  reaper_ = std::thread([repository = config_.repository] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(repository, ec)) {
      if (absl::StartsWith(entry.path().filename().string(), kExpiredPrefix)) {
        std::error_code rm;
        fs::remove_all(entry.path(), rm);
        if (rm) {
          LogWarning("backup retention: cannot delete an expired backup (the next retention "
                     "tries again)",
                     {{"path", entry.path().string()}, {"error", rm.message()}});
        }
      }
    }
  });
}

absl::StatusOr<std::string> BackupRunbook::Execute(StepContext& ctx) {
  const std::string& step = ctx.step().name();
  const std::string id = ctx.Argument("id");
  const std::string dir = ctx.Argument("dir");
  auto cancelled = [&ctx] { return ctx.cancelled(); };
  std::error_code ec;
  if (step == "wal-archive") {
    ASSIGN_OR_RETURN(
        std::string active,
        tools_.Query(config_.wal_source,
                     absl::StrCat("SELECT active FROM pg_replication_slots WHERE slot_name = '",
                                  kWalArchiveSlot, "'"),
                     cancelled));
    active = std::string(absl::StripAsciiWhitespace(active));
    if (active != "t") {
      return absl::UnavailableError(absl::StrCat(
          "WAL archiving is not streaming: the slot ", kWalArchiveSlot, " on ",
          Redacted(config_.wal_source), active.empty() ? " does not exist" : " is inactive",
          " (hostd's log says why pg_receivewal stopped)"));
    }
    std::vector<std::string> segments = ArchivedWal(config_.wal_dir());
    return absl::StrCat("streaming into ", config_.wal_dir(), "; newest segment ",
                        segments.empty() ? "(none yet)" : segments.back());
  }
  if (step == "base-backup") {
    if (fs::exists(dir + "/backup_manifest", ec)) {
      return absl::StrCat("backup ", id, " was complete already (", Mib(TreeBytes(dir)), ")");
    }
    const std::string partial = dir + ".partial";
    fs::create_directories(config_.repository, ec);
    const absl::Time start = clock_.Now();
    std::optional<FileSums> sums;
    ASSIGN_OR_RETURN(std::string out,
                     CopySummed(tools_, config_.database, partial,
                                FromDuration(ctx.step().timeout()), cancelled, sums));
    fs::rename(partial, dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot rename ", partial, ": ", ec.message()));
    {
      // Kept until the backup verifies (a failed verification's retry checks them again);
      // those of backups that are gone go now.
      absl::MutexLock lock(&sums_mu_);
      absl::erase_if(copy_sums_, [](const auto& entry) {
        std::error_code gone;
        return !fs::exists(entry.first, gone);
      });
      if (sums.has_value()) copy_sums_[dir] = *std::move(sums);
    }
    const absl::Duration took = clock_.Now() - start;
    ctx.SetOutput("backup_id", id);
    ctx.SetOutput("backup_dir", dir);
    ctx.SetOutput("base_backup_seconds", absl::StrCat(absl::ToDoubleSeconds(took)));
    const uint64_t bytes = TreeBytes(dir);
    ctx.SetOutput("backup_bytes", absl::StrCat(bytes));
    return absl::StrCat("backup ", id, ": ", Mib(bytes), " in ", absl::FormatDuration(took),
                        out.empty() ? "" : absl::StrCat("\n", out));
  }
  if (step == "verify") {
    std::optional<FileSums> sums;
    {
      absl::MutexLock lock(&sums_mu_);
      if (auto it = copy_sums_.find(dir); it != copy_sums_.end()) sums = it->second;
    }
    ASSIGN_OR_RETURN(std::string out, VerifyCopy(tools_, dir, sums, cancelled));
    absl::MutexLock lock(&sums_mu_);
    copy_sums_.erase(dir);
    return std::string(absl::StripAsciiWhitespace(out));
  }
  if (step == "redis") {
    ASSIGN_OR_RETURN(std::string out,
                     tools_.RedisSnapshot(config_.redis, dir + "/redis.rdb", cancelled));
    return absl::StrCat("redis.rdb: ", Mib(fs::file_size(dir + "/redis.rdb", ec)), "\n",
                        absl::StripAsciiWhitespace(out));
  }
  if (step == "manifest") return WriteBackupManifest(dir, id, ctx.run().id(), clock_.Now());
  if (step == "retention") {
    int keep = 7;
    (void)absl::SimpleAtoi(ctx.Argument("keep"), &keep);
    absl::Duration max_age = absl::Hours(720);
    (void)absl::ParseDuration(ctx.Argument("max_age"), &max_age);
    const std::vector<std::string> all = ListBackups(config_.repository);
    std::vector<std::string> removed;
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == id) continue;
      const bool beyond_count = static_cast<int>(i) >= keep;
      const bool too_old = clock_.Now() - IdTime(all[i]) > max_age;
      if (!beyond_count && !too_old) continue;
      fs::rename(config_.repository + "/" + all[i],
                 absl::StrCat(config_.repository, "/", kExpiredPrefix, all[i]), ec);
      if (ec)
        return absl::InternalError(
            absl::StrCat("cannot remove backup ", all[i], ": ", ec.message()));
      removed.push_back(all[i]);
    }
    DeleteExpiredInBackground();
    ctx.SetOutput("backups_kept", absl::StrCat(all.size() - removed.size()));
    // Archived WAL older than the oldest backup kept can restore nothing any more.
    std::string wal_note;
    const std::vector<std::string> kept = ListBackups(config_.repository);
    if (!config_.wal_source.empty() && !kept.empty()) {
      const std::string oldest = BackupStartWalFile(config_.repository + "/" + kept.back());
      int wal_removed = 0;
      for (const std::string& segment : ArchivedWal(config_.wal_dir())) {
        if (oldest.size() != 24 || segment.substr(8, 16) >= oldest.substr(8, 16)) continue;
        if (fs::remove(config_.wal_dir() + "/" + segment, ec)) ++wal_removed;
      }
      wal_note = absl::StrCat("; removed ", wal_removed, " archived WAL segments before ", oldest);
    }
    return absl::StrCat(removed.empty()
                            ? absl::StrCat("kept all ", all.size(), " backups")
                            : absl::StrCat("removed ", absl::StrJoin(removed, ", "), "; kept ",
                                           all.size() - removed.size()),
                        wal_note);
  }
  return absl::InvalidArgumentError(absl::StrCat("backup has no step '", step, "'"));
}

hosting::v1::Runbook BackupVerifyRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("backup-verify");
  r.set_description(
      "Checks a backup in the repository again: pg_verifybackup (every PostgreSQL file and the "
      "WAL against the backup's manifest), then every file the hosting manifest lists against "
      "its SHA-256.");
  r.set_target_parameter("backup");
  AddRunbookParameter(r, "backup", hosting::v1::PARAMETER_TYPE_STRING,
                      "the backup's ID (its directory's name), or latest", false, "latest");
  r.add_steps("pg-verify");
  r.add_steps("checksums");
  return r;
}

absl::StatusOr<std::vector<StepPlan>> BackupVerifyRunbook::Plan(const Parameters& params) {
  if (config_.repository.empty()) return NotConfigured("--backup-repository", "where backups go");
  std::string id = params.String("backup");
  const std::vector<std::string> all = ListBackups(config_.repository);
  if (id == "latest") {
    if (all.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no backup in ", config_.repository, " (hostctl runbook run backup)"));
    }
    id = all.front();
  } else if (std::find(all.begin(), all.end(), id) == all.end()) {
    return absl::NotFoundError(
        absl::StrCat("no backup '", id, "' in ", config_.repository,
                     all.empty() ? "" : absl::StrCat(" (newest: ", all.front(), ")")));
  }
  const std::map<std::string, std::string> args = {{"id", id},
                                                   {"dir", config_.repository + "/" + id}};
  StepPlan pg;
  pg.name = "pg-verify";
  pg.detail = absl::StrCat("pg_verifybackup ", args.at("dir"));
  pg.arguments = args;
  pg.timeout = absl::Hours(2);
  pg.resumable = true;
  StepPlan sums;
  sums.name = "checksums";
  sums.detail = absl::StrCat("the files of ", args.at("dir"), "/", kManifest);
  sums.arguments = args;
  sums.timeout = absl::Minutes(30);
  sums.resumable = true;
  return std::vector<StepPlan>{pg, sums};
}

absl::StatusOr<std::string> BackupVerifyRunbook::Execute(StepContext& ctx) {
  const std::string dir = ctx.Argument("dir");
  if (ctx.step().name() == "pg-verify") {
    absl::StatusOr<std::string> out = tools_.VerifyBackup(dir, false, [&ctx] { return ctx.cancelled(); });
    if (!out.ok()) {
      return absl::DataLossError(absl::StrCat("backup ", ctx.Argument("id"),
                                              " failed verification: ", out.status().message()));
    }
    return std::string(absl::StripAsciiWhitespace(*out));
  }
  if (ctx.step().name() == "checksums") {
    ctx.SetOutput("verified", ctx.Argument("id"));
    return CheckBackupManifest(dir);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("backup-verify has no step '", ctx.step().name(), "'"));
}

}  // namespace hosting::controlplane
