#include "controlplane/auth/token_authority.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "controlplane/auth/permissions.h"
#include "controlplane/spec/validation.h"

namespace hosting::controlplane {
namespace {

constexpr absl::Duration kMaxTtl = absl::Hours(24 * 3650);

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // OpenSSL's generator failing is not something to serve on.
    LogError("RAND_bytes failed: no secure random numbers");
    std::abort();
  }
  return out;
}

}  // namespace

TokenAuthority::TokenAuthority(Store& store, Clock& clock, Options options)
    : store_(store), clock_(clock), options_(options) {}

TokenAuthority::Digest TokenAuthority::Sha256(absl::string_view data) {
  // OpenSSL 3's one-shot SHA256() looks the algorithm up in its provider on every call (a
  // global lock and a property query): fetched once here, with a context per thread, hashing
  // a call's token costs the hash alone.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                           &EVP_MD_CTX_free);
  Digest digest{};
  unsigned int size = 0;
  if (kSha256 == nullptr || ctx == nullptr || !EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) ||
      !EVP_DigestUpdate(ctx.get(), data.data(), data.size()) ||
      !EVP_DigestFinal_ex(ctx.get(), digest.data(), &size) || size != digest.size()) {
    // Never on a working OpenSSL; the one-shot form then (slower, same digest).
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  }
  return digest;
}

std::string TokenAuthority::HashSecret(absl::string_view secret) {
  const Digest digest = Sha256(secret);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

Caller TokenAuthority::CallerOf(const hosting::v1::Token& token) {
  Caller c;
  c.principal = absl::StrCat("token:", token.accessor());
  c.role = token.role();
  c.services.assign(token.services().begin(), token.services().end());
  c.node = token.node();
  return c;
}

absl::StatusOr<hosting::v1::CreateTokenResponse> TokenAuthority::Create(
    const hosting::v1::CreateTokenRequest& request, absl::string_view created_by) {
  std::vector<FieldViolation> bad;
  if (request.role() == hosting::v1::ROLE_UNSPECIFIED || !hosting::v1::Role_IsValid(request.role())) {
    bad.push_back({"role", "give a role: viewer, deployer, operator, admin or agent"});
  }
  if (!request.services().empty() && request.role() != hosting::v1::ROLE_DEPLOYER) {
    bad.push_back({"services", "only a deployer's token is limited to services"});
  }
  for (int i = 0; i < request.services_size(); ++i) {
    for (FieldViolation& v :
         ValidateServiceName(request.services(i), absl::StrCat("services[", i, "]"))) {
      bad.push_back(std::move(v));
    }
  }
  if (!request.node().empty() && request.role() != hosting::v1::ROLE_AGENT) {
    bad.push_back({"node", "only an agent's token names a node"});
  }
  if (request.node().size() > 128 || request.node().find('\0') != std::string::npos) {
    bad.push_back({"node", "a node ID is at most 128 characters, without NUL"});
  }
  absl::Duration ttl = absl::ZeroDuration();
  if (request.has_ttl()) {
    const auto& d = request.ttl();
    if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() > 999'999'999 ||
        absl::Seconds(d.seconds()) > kMaxTtl) {
      bad.push_back({"ttl", "between 0 (never expires) and 3650 days"});
    } else {
      ttl = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    }
  }
  if (request.description().size() > 200 ||
      request.description().find('\0') != std::string::npos) {
    bad.push_back({"description", "at most 200 characters, without NUL"});
  }
  RETURN_IF_ERROR(InvalidArgumentWithViolations(bad));

  const std::string secret =
      absl::StrCat("hst_", absl::WebSafeBase64Escape(RandomBytes(32)));
  const absl::Time now = clock_.Now();
  hosting::internal::TokenRecord record;
  hosting::v1::Token& token = *record.mutable_token();
  token.set_accessor(absl::BytesToHexString(RandomBytes(8)));
  token.set_role(request.role());
  *token.mutable_services() = request.services();
  token.set_node(request.node());
  token.set_description(request.description());
  token.set_created_by(std::string(created_by));
  *token.mutable_created_at() = ToTimestamp(now);
  if (ttl > absl::ZeroDuration()) *token.mutable_expires_at() = ToTimestamp(now + ttl);
  record.set_secret_sha256(HashSecret(secret));
  RETURN_IF_ERROR(store_.CreateToken(record));
  LogInfo("token created", {{"accessor", token.accessor()},
                            {"role", std::string(RoleName(token.role()))},
                            {"services", absl::StrJoin(token.services(), ",")},
                            {"node", token.node()},
                            {"by", std::string(created_by)}});
  hosting::v1::CreateTokenResponse response;
  *response.mutable_token() = token;
  response.set_secret(secret);
  return response;
}

absl::StatusOr<std::vector<hosting::v1::Token>> TokenAuthority::List() {
  ASSIGN_OR_RETURN(std::vector<hosting::internal::TokenRecord> records, store_.ListTokens());
  std::vector<hosting::v1::Token> out;
  out.reserve(records.size());
  for (auto& r : records) out.push_back(std::move(*r.mutable_token()));
  return out;
}

absl::StatusOr<hosting::v1::Token> TokenAuthority::Revoke(absl::string_view accessor) {
  ASSIGN_OR_RETURN(hosting::internal::TokenRecord record,
                   store_.RevokeToken(accessor, clock_.Now()));
  {
    const std::string raw = absl::HexStringToBytes(record.secret_sha256());
    absl::MutexLock lock(&mu_);
    if (raw.size() == sizeof(Digest)) {
      Digest key;
      std::memcpy(key.data(), raw.data(), key.size());
      cache_.erase(key);
    }
  }
  LogInfo("token revoked", {{"accessor", std::string(accessor)}});
  return std::move(*record.mutable_token());
}

absl::StatusOr<Caller> TokenAuthority::Judge(const hosting::internal::TokenRecord& record,
                                             absl::Time now) {
  const hosting::v1::Token& token = record.token();
  if (token.has_revoked_at()) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", token.accessor(), " was revoked"));
  }
  if (token.has_expires_at() && now >= FromTimestamp(token.expires_at())) {
    return absl::UnauthenticatedError(absl::StrCat("token ", token.accessor(), " expired at ",
                                                   absl::FormatTime(FromTimestamp(token.expires_at()))));
  }
  return CallerOf(token);
}

std::optional<absl::StatusOr<Caller>> TokenAuthority::AuthenticateCached(
    absl::string_view secret, bool* refresh_due) {
  if (refresh_due != nullptr) *refresh_due = false;
  const Digest hash = Sha256(secret);
  const absl::Time now = clock_.Now();
  // Every authenticated call reads here: readers share the lock.
  absl::ReaderMutexLock lock(&mu_);
  auto it = cache_.find(hash);
  if (it == cache_.end() || now - it->second.fetched_at > options_.cache_ttl) return std::nullopt;
  if (refresh_due != nullptr &&
      now - it->second.fetched_at > options_.cache_ttl - options_.refresh_ahead) {
    std::atomic<bool>& claimed = *it->second.refresh_claimed;
    // Read first: once claimed, the other callers only read the flag.
    *refresh_due = !claimed.load(std::memory_order_relaxed) && !claimed.exchange(true);
  }
  if (it->second.caller.ok() && now >= it->second.expires_at) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", it->second.accessor, " expired at ",
                     absl::FormatTime(it->second.expires_at)));
  }
  return it->second.caller;
}

absl::StatusOr<Caller> TokenAuthority::Authenticate(absl::string_view secret) {
  if (std::optional<absl::StatusOr<Caller>> cached = AuthenticateCached(secret)) {
    return *std::move(cached);
  }
  return Refresh(secret);
}

absl::StatusOr<Caller> TokenAuthority::Refresh(absl::string_view secret) {
  const Digest hash = Sha256(secret);
  absl::StatusOr<hosting::internal::TokenRecord> record = store_.FindToken(
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(hash.data()),
                                               hash.size())));
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (!record.ok() && !absl::IsNotFound(record.status())) {
    // The store is out of reach: what this hostd knew valid stays valid, and its refresh may
    // be claimed again.
    auto it = cache_.find(hash);
    if (it != cache_.end()) it->second.refresh_claimed->store(false);
    if (it != cache_.end() && it->second.caller.ok() && now < it->second.expires_at) {
      return it->second.caller;
    }
    return absl::UnavailableError(
        absl::StrCat("cannot check the token: the store is unavailable (",
                     record.status().message(), ")"));
  }
  Cached entry;
  entry.fetched_at = now;
  entry.expires_at = absl::InfiniteFuture();
  if (!record.ok()) {
    entry.caller = absl::UnauthenticatedError("the token is not valid (no token has this secret)");
  } else {
    entry.caller = Judge(*record, now);
    entry.accessor = record->token().accessor();
    if (record->token().has_expires_at()) entry.expires_at = FromTimestamp(record->token().expires_at());
  }
  if (cache_.size() >= options_.max_cached) cache_.clear();
  auto [it, inserted] = cache_.insert_or_assign(hash, std::move(entry));
  return it->second.caller;
}

absl::Status TokenAuthority::WriteSecretFile(const std::string& path, const std::string& secret) {
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  }
  const std::string line = secret + "\n";
  const bool written = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!written || !synced || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status TokenAuthority::ImportAdmin(absl::string_view secret) {
  if (secret.size() < 32) {
    return absl::InvalidArgumentError(
        "--admin-token-file: the secret must be at least 32 characters (e.g. openssl rand "
        "-hex 32)");
  }
  hosting::internal::TokenRecord record;
  record.set_secret_sha256(HashSecret(secret));
  hosting::v1::Token& token = *record.mutable_token();
  token.set_accessor(HashSecret(record.secret_sha256()).substr(0, 16));
  token.set_role(hosting::v1::ROLE_ADMIN);
  token.set_description("admin token from --admin-token-file");
  token.set_created_by("admin-token-file");
  *token.mutable_created_at() = ToTimestamp(clock_.Now());
  absl::Status st = store_.CreateToken(record);
  if (absl::IsAlreadyExists(st)) return absl::OkStatus();
  if (st.ok()) LogInfo("admin token imported", {{"accessor", token.accessor()}});
  return st;
}

absl::Status TokenAuthority::Bootstrap(const std::string& dir, bool recover_admin) {
  ASSIGN_OR_RETURN(std::vector<hosting::internal::TokenRecord> existing, store_.ListTokens());
  const bool fresh = existing.empty();
  if (!fresh && !recover_admin) return absl::OkStatus();
  hosting::v1::CreateTokenRequest admin;
  admin.set_role(hosting::v1::ROLE_ADMIN);
  admin.set_description(fresh ? "bootstrap admin token, written at first start"
                              : "admin token written by --recover-admin-token");
  ASSIGN_OR_RETURN(hosting::v1::CreateTokenResponse made,
                   Create(admin, fresh ? "bootstrap" : "recover-admin-token"));
  const std::string admin_path = dir + "/admin.token";
  RETURN_IF_ERROR(WriteSecretFile(admin_path, made.secret()));
  LogWarning("admin token written: it gives full control of hostd; keep it root-only",
             {{"file", admin_path}, {"accessor", made.token().accessor()}});
  if (!fresh) return absl::OkStatus();
  hosting::v1::CreateTokenRequest agent;
  agent.set_role(hosting::v1::ROLE_AGENT);
  agent.set_description("bootstrap agent join token, written at first start");
  ASSIGN_OR_RETURN(made, Create(agent, "bootstrap"));
  const std::string agent_path = dir + "/agent.token";
  RETURN_IF_ERROR(WriteSecretFile(agent_path, made.secret()));
  LogInfo("agent join token written", {{"file", agent_path},
                                       {"accessor", made.token().accessor()}});
  return absl::OkStatus();
}

}  // namespace hosting::controlplane
