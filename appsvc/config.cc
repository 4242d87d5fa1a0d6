#include "appsvc/config.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hosting::appsvc {
namespace {

class Reader {
 public:
  explicit Reader(const std::function<const char*(const char*)>& getenv) : getenv_(getenv) {}

  void Str(const char* name, std::string& out) {
    if (const char* v = getenv_(name); v != nullptr) out = v;
  }
  // A secret: from NAME, or from the file NAME_FILE names (a Docker secret under
  // /run/secrets/, so the value is in no environment, spec or `docker inspect`), its trailing
  // newline dropped. Both set is an error; errors name the file, never the value.
  void Secret(const char* name, std::string& out) {
    const std::string file_var = absl::StrCat(name, "_FILE");
    const char* path = getenv_(file_var.c_str());
    if (path == nullptr || *path == '\0') {
      Str(name, out);
      return;
    }
    if (const char* v = getenv_(name); v != nullptr && *v != '\0') {
      errors_.push_back(absl::StrCat(name, " and ", file_var, " are both set: give one"));
      return;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      errors_.push_back(absl::StrCat(file_var, "=", path, ": cannot read the file"));
      return;
    }
    std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    out = std::move(value);
  }
  void Int(const char* name, int& out, int min, int max) {
    int64_t x = out;
    Int64(name, x, min, max);
    out = static_cast<int>(x);
  }
  void Int64(const char* name, int64_t& out, int64_t min, int64_t max) {
    const char* v = getenv_(name);
    if (v == nullptr || *v == '\0') return;
    int64_t x;
    if (!absl::SimpleAtoi(v, &x) || x < min || x > max) {
      errors_.push_back(absl::StrCat(name, "=", v, ": want an integer in [", min, ", ", max, "]"));
      return;
    }
    out = x;
  }
  // Milliseconds.
  void Millis(const char* name, absl::Duration& out) {
    int64_t ms = -1;
    Int64(name, ms, 0, 86'400'000);
    if (ms >= 0) out = absl::Milliseconds(ms);
  }
  void Seconds(const char* name, absl::Duration& out) {
    int64_t s = -1;
    Int64(name, s, 0, 86'400 * 30);
    if (s >= 0) out = absl::Seconds(s);
  }
  void Bool(const char* name, bool& out) {
    const char* v = getenv_(name);
    if (v == nullptr || *v == '\0') return;
    std::string s = v;
    if (s == "1" || s == "true" || s == "yes") {
      out = true;
    } else if (s == "0" || s == "false" || s == "no") {
      out = false;
    } else {
      errors_.push_back(absl::StrCat(name, "=", v, ": want true or false"));
    }
  }
  void Fraction(const char* name, double& out) {
    const char* v = getenv_(name);
    if (v == nullptr || *v == '\0') return;
    double x;
    if (!absl::SimpleAtod(v, &x) || x < 0 || x > 1) {
      errors_.push_back(absl::StrCat(name, "=", v, ": want a number in [0, 1]"));
      return;
    }
    out = x;
  }
  void Error(std::string e) { errors_.push_back(std::move(e)); }
  absl::Status status() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("bad configuration: ", absl::StrJoin(errors_, "; ")));
  }

 private:
  const std::function<const char*(const char*)>& getenv_;
  std::vector<std::string> errors_;
};

// Quotes a libpq connection-string value.
std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace

absl::StatusOr<Config> ConfigFromLookup(const std::function<const char*(const char*)>& getenv) {
  Config c;
  Reader r(getenv);
  r.Int("PORT", c.port, 1, 65535);
  r.Str("BIND_ADDRESS", c.bind_address);
  r.Int("APP_THREADS", c.io_threads, 0, 256);
  r.Int64("MAX_BODY_BYTES", c.max_body_bytes, 1024, 64 << 20);
  r.Seconds("IDLE_TIMEOUT_S", c.idle_timeout);
  r.Seconds("READ_TIMEOUT_S", c.read_timeout);
  r.Str("DB_HOST", c.db_host);
  r.Int("DB_PORT", c.db_port, 1, 65535);
  r.Str("DB_NAME", c.db_name);
  r.Str("DB_USER", c.db_user);
  r.Secret("DB_PASSWORD", c.db_password);
  r.Str("DB_REPLICA_HOST", c.db_replica_host);
  r.Int("DB_REPLICA_PORT", c.db_replica_port, 1, 65535);
  r.Int("DB_POOL_SIZE", c.db_pool_size, 1, 512);
  r.Millis("DB_CONNECT_TIMEOUT_MS", c.db_connect_timeout);
  r.Millis("DB_STATEMENT_TIMEOUT_MS", c.db_statement_timeout);
  r.Millis("DB_REPLICA_MAX_LAG_MS", c.replica_max_lag);
  r.Millis("DB_PRIMARY_WAIT_MS", c.db_primary_wait);
  r.Bool("MIGRATE_ON_START", c.migrate_on_start);
  r.Str("MIGRATIONS_DIR", c.migrations_dir);
  r.Str("REDIS_HOST", c.redis_host);
  r.Int("REDIS_PORT", c.redis_port, 1, 65535);
  r.Secret("REDIS_PASSWORD", c.redis_password);
  r.Millis("REDIS_TIMEOUT_MS", c.redis_timeout);
  r.Seconds("CACHE_TTL_USER_S", c.cache_ttl_user);
  r.Seconds("CACHE_TTL_LIST_S", c.cache_ttl_list);
  r.Int("LOCAL_CACHE_ENTRIES", c.local_cache_entries, 0, 10'000'000);
  r.Millis("LOCAL_CACHE_TTL_MS", c.local_cache_ttl);
  r.Millis("DRAIN_DELAY_MS", c.drain_delay);
  r.Millis("SHUTDOWN_GRACE_MS", c.shutdown_grace);
  r.Str("ACCESS_LOG", c.access_log);
  if (c.access_log != "off" && c.access_log != "on" && c.access_log.rfind("sample:", 0) != 0) {
    r.Error(absl::StrCat("ACCESS_LOG=", c.access_log, ": want off, on or sample:N"));
  }
  r.Fraction("FAULT_ERROR_RATE", c.fault_error_rate);
  r.Millis("FAULT_LATENCY_MS", c.fault_latency);
  r.Bool("FAULT_HEALTH_FAIL", c.fault_health_fail);
  r.Str("NODE_ENV", c.env);
  r.Str("APP_ENV", c.env);
  r.Str("HOSTING_REVISION", c.hosting_revision);
  r.Str("HOSTING_SERVICE", c.hosting_service);
  if (c.redis_timeout <= absl::ZeroDuration()) r.Error("REDIS_TIMEOUT_MS must be positive");
  if (auto s = r.status(); !s.ok()) return s;
  return c;
}

absl::StatusOr<Config> ConfigFromEnv() {
  return ConfigFromLookup([](const char* name) { return std::getenv(name); });
}

std::string PgConnInfo(const Config& c, bool replica) {
  std::string info = absl::StrCat(
      "host=", Quote(replica ? c.db_replica_host : c.db_host),
      " port=", replica ? c.db_replica_port : c.db_port, " dbname=", Quote(c.db_name),
      " user=", Quote(c.db_user), " connect_timeout=",
      std::max<int64_t>(1, absl::ToInt64Seconds(c.db_connect_timeout + absl::Milliseconds(999))),
      " application_name=appsvc keepalives=1 keepalives_idle=10 keepalives_interval=5");
  if (!c.db_password.empty()) absl::StrAppend(&info, " password=", Quote(c.db_password));
  absl::StrAppend(&info, " options='-c statement_timeout=",
                  absl::ToInt64Milliseconds(c.db_statement_timeout), "'");
  return info;
}

}  // namespace hosting::appsvc
