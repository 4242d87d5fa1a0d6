#pragma once

#include <atomic>
#include <memory>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/store/store.h"
#include "hosting/v1/auth.pb.h"

namespace hosting::controlplane {

// Who a call comes from, as the auth processor found it.
struct Caller {
  // "token:<accessor>", "cert:<common name>" or "anonymous" (auth off).
  std::string principal;
  hosting::v1::Role role = hosting::v1::ROLE_UNSPECIFIED;
  // Deployer: the only services it may change (empty: all).
  std::vector<std::string> services;
  // Agent: the only node it may join as (empty: any).
  std::string node;
};

// Issues, lists, revokes and checks API tokens. A token's secret is "hst_" and 43 characters of
// base64url (256 random bits); the store keeps its SHA-256 only, so a stolen database holds no
// usable credential. Answers are cached for `cache_ttl` (a revocation on this hostd takes effect
// at once, on another hostd sharing the store within the TTL); when the store cannot be read,
// a secret this hostd has seen valid stays valid (a store outage does not lock operators out).
// Thread-safe.
class TokenAuthority {
 public:
  struct Options {
    absl::Duration cache_ttl = absl::Seconds(5);
    // Beyond this many cached secrets (valid or not) the cache starts over: random secrets
    // cannot grow it without bound.
    size_t max_cached = 10000;
    // A cached answer this close to the end of its TTL asks for a refresh ahead of time (one
    // store read, off the caller's path), so busy callers of one token do not all miss at once.
    absl::Duration refresh_ahead = absl::Seconds(1);
  };

  TokenAuthority(Store& store, Clock& clock, Options options);
  TokenAuthority(Store& store, Clock& clock) : TokenAuthority(store, clock, Options()) {}

  // Makes a token; the answer holds its secret, which nothing keeps. INVALID_ARGUMENT naming
  // the field for a missing role, services on a role other than deployer, a node on a role
  // other than agent, a negative or over-ten-year TTL, a bad service name or description.
  absl::StatusOr<hosting::v1::CreateTokenResponse> Create(
      const hosting::v1::CreateTokenRequest& request, absl::string_view created_by);
  absl::StatusOr<std::vector<hosting::v1::Token>> List();
  // NOT_FOUND naming the accessor when there is no such token.
  absl::StatusOr<hosting::v1::Token> Revoke(absl::string_view accessor);

  // The caller a presented secret names. UNAUTHENTICATED for an unknown, revoked or expired
  // one (saying which); UNAVAILABLE when the store cannot be read and the secret is not known.
  absl::StatusOr<Caller> Authenticate(absl::string_view secret);
  // The cached answer for a secret, without reading the store; nullopt when there is none
  // fresh enough (the processor then reads the store off the gRPC thread).
  // When `refresh_due` is given and the answer is within `refresh_ahead` of going stale, it is
  // set for exactly one caller, which should then call Refresh(secret) off the gRPC thread.
  std::optional<absl::StatusOr<Caller>> AuthenticateCached(absl::string_view secret,
                                                           bool* refresh_due = nullptr);
  // Reads the secret's token from the store and caches the answer (what Authenticate does on
  // a miss).
  absl::StatusOr<Caller> Refresh(absl::string_view secret);

  // Run at start. When the store has no token at all (a new store), or `recover_admin`, makes
  // an admin token and writes its secret to `dir`/admin.token; on a new store also an agent
  // join token to `dir`/agent.token. Files are written 0600 (root-only on a root-run hostd).
  absl::Status Bootstrap(const std::string& dir, bool recover_admin);

  // Makes sure an admin token with this operator-made secret exists (hostd
  // --admin-token-file: several hostd of one store given the same file, or automation that
  // makes the secret). Its accessor derives from the secret's hash, so a repeat changes
  // nothing, and a revoked one stays revoked. INVALID_ARGUMENT for a secret under 32
  // characters.
  absl::Status ImportAdmin(absl::string_view secret);

  // SHA-256 of a secret, lowercase hex (what the store keeps).
  static std::string HashSecret(absl::string_view secret);
  // SHA-256, raw: the cache's key (no hex string made per call).
  using Digest = std::array<unsigned char, 32>;
  static Digest Sha256(absl::string_view data);
  // A token's caller (principal "token:<accessor>").
  static Caller CallerOf(const hosting::v1::Token& token);

 private:
  struct Cached {
    absl::StatusOr<Caller> caller;
    // For expiry checks on cached valid tokens; InfiniteFuture: never.
    absl::Time expires_at;
    std::string accessor;
    absl::Time fetched_at;
    // Whether a caller has claimed this answer's refresh ahead. Read and set under the shared
    // lock (an atomic: the claim must not serialize the callers); a new answer starts unclaimed.
    std::shared_ptr<std::atomic<bool>> refresh_claimed = std::make_shared<std::atomic<bool>>(false);
  };
  absl::StatusOr<Caller> Judge(const hosting::internal::TokenRecord& record, absl::Time now);
  absl::Status WriteSecretFile(const std::string& path, const std::string& secret);

  Store& store_;
  Clock& clock_;
  const Options options_;
  absl::Mutex mu_;
  // Keyed by the secret's hash, never the secret.
  absl::flat_hash_map<Digest, Cached> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hosting::controlplane
