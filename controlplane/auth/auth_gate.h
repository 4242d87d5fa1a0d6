#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/auth/token_authority.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"

struct grpc_server_credentials;

namespace hosting::controlplane {

// The one place a call's credentials are checked: gRPC runs it for every call, before the
// handler, through the server credentials' auth metadata processor (core's server auth filter;
// hosting wires it for plaintext listeners too, where gRPC C++'s own InsecureServerCredentials
// refuses a processor). It authenticates the bearer token, looks the method up in the
// permission table (permissions.h), and either fails the call (UNAUTHENTICATED, or
// PERMISSION_DENIED naming the permission missing) or lets it through; the handler finds the
// caller again with CallerOf, from the call's own metadata. A token not in the cache is
// checked against the store on the gate's own threads, never on gRPC's.
class AuthGate {
 public:
  // `tokens` null: auth is off (--insecure-no-auth): every call passes as "anonymous" admin,
  // except a method missing from the table.
  explicit AuthGate(TokenAuthority* tokens, int workers = 2);
  ~AuthGate();
  AuthGate(const AuthGate&) = delete;
  AuthGate& operator=(const AuthGate&) = delete;

  bool enabled() const { return tokens_ != nullptr; }

  // The decision for a call to `method` presenting `authorization` (the metadata value, empty
  // when absent), when it can be made without the store: nullopt otherwise.
  std::optional<absl::StatusOr<Caller>> DecideCached(absl::string_view method,
                                                     absl::string_view authorization);
  // The decision, reading the store when needed (blocks).
  absl::StatusOr<Caller> Decide(absl::string_view method, absl::string_view authorization);
  // The decision for a call with no token from a peer whose verified client certificate
  // (hostd --tls-client-ca) names an agent: subject OU=hosting-agent, the node as its CN
  // (`agent` from AgentCertificate). Such a caller holds the agent role, bound to that node.
  absl::StatusOr<Caller> DecideForAgentCertificate(absl::string_view method, Caller agent);

  // The organizational unit that makes a client certificate an agent's.
  static constexpr char kAgentCertificateUnit[] = "hosting-agent";
  // The agent a certificate subject and common name name, or nullopt when the subject (RFC 2253
  // form, as gRPC reports it) has no OU=hosting-agent or the common name is empty.
  static std::optional<Caller> AgentCertificate(absl::string_view subject,
                                                absl::string_view common_name);

  // Called for every refused call of a method that changes something (the table's `mutates`)
  // or of a method missing from the table: the audit trail's refusals. `principal` is who the
  // token named ("unauthenticated" when none did). Set before the server starts.
  using DeniedHook = std::function<void(absl::string_view method, const std::string& principal,
                                        const absl::Status& status)>;
  void SetDeniedHook(DeniedHook hook) { denied_hook_ = std::move(hook); }
  // Reports a refusal to the hook when it is one the audit trail keeps.
  void NoteDenied(absl::string_view method, const absl::Status& status);

  // Runs `work` on the gate's threads: UNAVAILABLE once the gate stopped (hostd is shutting
  // down), RESOURCE_EXHAUSTED when 1,000 calls already wait for their token to be checked.
  absl::Status Defer(std::function<void()> work);
  // Ends the threads; work still queued runs first. Call before the server shuts down.
  void Stop();

  // Server credentials over `core` (owned from here on) whose processor is this gate; the gate
  // CallerOf asks from then on.
  std::shared_ptr<grpc::ServerCredentials> Wrap(grpc_server_credentials* core);

  // The caller of a call this gate let through, from the call's own credentials: its bearer
  // token (the cached answer), else the agent its verified client certificate names, else
  // anonymous (a public method, or auth off).
  Caller CallerFor(absl::string_view authorization, const grpc::AuthContext* peer);
  static Caller Anonymous();

 private:
  // The caller once authenticated (or the error), judged against the method's rule.
  absl::StatusOr<Caller> Authorize(absl::string_view method, absl::StatusOr<Caller> caller);
  // The rule check that needs no credential; nullopt when the method needs one.
  std::optional<absl::StatusOr<Caller>> Precheck(absl::string_view method,
                                                 absl::string_view authorization,
                                                 absl::string_view* secret);
  void Work();

  TokenAuthority* const tokens_;
  DeniedHook denied_hook_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The caller of a call the gate let through (anonymous admin when auth is off), found from
// the call's own metadata by the gate that serves (AuthGate::CallerFor); an empty Caller when no
// gate serves.
Caller CallerOf(const grpc::ServerContextBase& ctx);

// OK when the caller may change `service`: PERMISSION_DENIED naming the services a limited
// deployer's token allows otherwise. The gate cannot see requests, so a handler of every
// method the table marks service_scoped calls this with the service its request names.
absl::Status CheckServiceAccess(const grpc::ServerContextBase& ctx, absl::string_view service);
// The same check for a caller already known (the HTTP gateway's).
absl::Status CheckServiceAccess(const Caller& caller, absl::string_view service);

}  // namespace hosting::controlplane
