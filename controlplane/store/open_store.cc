#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controlplane/store/postgres_store.h"
#include "controlplane/store/sqlite_store.h"
#include "controlplane/store/store.h"

namespace hosting::controlplane {

absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view url) {
  constexpr absl::string_view kSqlite = "sqlite://";
  if (absl::StartsWith(url, kSqlite)) {
    std::string path(url.substr(kSqlite.size()));
    if (path != ":memory:" && (path.empty() || path[0] != '/')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--store: sqlite needs an absolute path, as in sqlite:///var/lib/hosting/hostd.db; got '",
          url, "'"));
    }
    ASSIGN_OR_RETURN(auto store, SqliteStore::Open(path));
    return std::unique_ptr<Store>(std::move(store));
  }
  if (absl::StartsWith(url, "postgres://") || absl::StartsWith(url, "postgresql://")) {
    ASSIGN_OR_RETURN(auto store, PostgresStore::Open(std::string(url)));
    return std::unique_ptr<Store>(std::move(store));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--store must be sqlite:///absolute/path or postgres://[user@]host[:port][,host2...]/db"
      "[?target_session_attrs=read-write...], got '",
      PostgresStore::Redacted(url), "'"));
}

}  // namespace hosting::controlplane
