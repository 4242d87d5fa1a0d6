#include "controlplane/auth/auth_gate.h"

#include <atomic>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/auth/permissions.h"

namespace hosting::controlplane {
namespace {

constexpr size_t kMaxQueued = 1000;
// The payload of a refusal that names who was refused.
constexpr char kPrincipalPayload[] = "hosting.principal";

absl::string_view SliceView(const grpc_slice& s) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(s)),
                           GRPC_SLICE_LENGTH(s));
}

grpc_status_code CoreCode(absl::StatusCode code) { return static_cast<grpc_status_code>(code); }

// Finishes the processor's callback with a decision. Nothing is written into the AuthContext
// the processor is given: gRPC hands it the connection's, shared by every call on the
// connection (properties added per call would pile up for the connection's life, be read by
// other callers' handlers, and race between threads). Handlers find their caller through
// CallerOf, from their own call's metadata.
void Answer(grpc_process_auth_metadata_done_cb cb, void* user_data,
            const absl::StatusOr<Caller>& decision) {
  if (!decision.ok()) {
    const std::string message(decision.status().message());
    cb(user_data, nullptr, 0, nullptr, 0, CoreCode(decision.status().code()), message.c_str());
    return;
  }
  cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
}

// The gate whose decisions CallerOf repeats: the one whose credentials the server listens
// with (one per process).
std::atomic<AuthGate*> installed_gate{nullptr};

struct Pending {
  AuthGate* gate;
  grpc_process_auth_metadata_done_cb cb;
  void* user_data;
  std::string method;
  std::string authorization;
};

// The first value of a property of the call's (or its connection's) AuthContext, or "".
absl::string_view Property(const grpc_auth_context* context, const char* name) {
  grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(context, name);
  const grpc_auth_property* p = grpc_auth_property_iterator_next(&it);
  return p == nullptr ? absl::string_view() : absl::string_view(p->value, p->value_length);
}

void Process(void* state, grpc_auth_context* context, const grpc_metadata* md, size_t num_md,
             grpc_process_auth_metadata_done_cb cb, void* user_data) {
  auto* gate = static_cast<AuthGate*>(state);
  absl::string_view method, authorization;
  for (size_t i = 0; i < num_md; ++i) {
    absl::string_view key = SliceView(md[i].key);
    if (key == ":path") method = SliceView(md[i].value);
    if (key == "authorization") authorization = SliceView(md[i].value);
  }
  // No token, but a client certificate the listener verified (mTLS) that names an agent.
  if (authorization.empty() && gate->enabled() &&
      grpc_auth_context_peer_is_authenticated(context)) {
    if (std::optional<Caller> agent = AuthGate::AgentCertificate(
            Property(context, GRPC_X509_SUBJECT_PROPERTY_NAME),
            Property(context, GRPC_X509_CN_PROPERTY_NAME))) {
      absl::StatusOr<Caller> decision = gate->DecideForAgentCertificate(method, *agent);
      if (!decision.ok()) gate->NoteDenied(method, decision.status());
      Answer(cb, user_data, decision);
      return;
    }
  }
  if (std::optional<absl::StatusOr<Caller>> now = gate->DecideCached(method, authorization)) {
    if (!now->ok()) gate->NoteDenied(method, now->status());
    Answer(cb, user_data, *now);
    return;
  }
  // The store must be read: off gRPC's thread. The call keeps the context alive until cb runs
  // (as gRPC C++'s own blocking-processor wrapper relies on).
  auto pending = std::make_shared<Pending>(
      Pending{gate, cb, user_data, std::string(method), std::string(authorization)});
  absl::Status queued = gate->Defer([pending] {
    absl::StatusOr<Caller> decision =
        pending->gate->Decide(pending->method, pending->authorization);
    if (!decision.ok()) pending->gate->NoteDenied(pending->method, decision.status());
    Answer(pending->cb, pending->user_data, decision);
  });
  if (!queued.ok()) Answer(cb, user_data, queued);
}

// ServerCredentials around core credentials: the only way to give a plaintext listener a
// processor (gRPC C++'s InsecureServerCredentials aborts on SetAuthMetadataProcessor).
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  CoreServerCredentials(grpc_server_credentials* core, AuthGate* gate) : core_(core) {
    grpc_server_credentials_set_auth_metadata_processor(
        core_, grpc_auth_metadata_processor{Process, nullptr, gate});
  }
  ~CoreServerCredentials() override { grpc_server_credentials_release(core_); }
  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/) override {}

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), core_);
  }

  grpc_server_credentials* core_;
};

}  // namespace

AuthGate::AuthGate(TokenAuthority* tokens, int workers) : tokens_(tokens) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
}

AuthGate::~AuthGate() {
  Stop();
  AuthGate* self = this;
  installed_gate.compare_exchange_strong(self, nullptr);
}

std::shared_ptr<grpc::ServerCredentials> AuthGate::Wrap(grpc_server_credentials* core) {
  installed_gate.store(this);
  return std::make_shared<CoreServerCredentials>(core, this);
}

Caller AuthGate::CallerFor(absl::string_view authorization, const grpc::AuthContext* peer) {
  if (tokens_ == nullptr) return Anonymous();
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.size() > 7 && absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    // The gate let this call through on this token a moment ago: the answer is cached.
    absl::StatusOr<Caller> caller =
        tokens_->Authenticate(absl::StripAsciiWhitespace(value.substr(7)));
    if (caller.ok()) return *std::move(caller);
    return Caller();
  }
  if (peer != nullptr && peer->IsPeerAuthenticated()) {
    auto first = [&](const char* name) {
      std::vector<grpc::string_ref> v = peer->FindPropertyValues(name);
      return v.empty() ? absl::string_view() : absl::string_view(v.front().data(), v.front().size());
    };
    if (std::optional<Caller> agent = AgentCertificate(first(GRPC_X509_SUBJECT_PROPERTY_NAME),
                                                       first(GRPC_X509_CN_PROPERTY_NAME))) {
      return *std::move(agent);
    }
  }
  // A public method called without credentials.
  return Anonymous();
}

Caller AuthGate::Anonymous() {
  Caller anonymous;
  anonymous.principal = "anonymous";
  anonymous.role = hosting::v1::ROLE_ADMIN;
  return anonymous;
}

absl::Status AuthGate::Defer(std::function<void()> work) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("hostd is shutting down");
  if (queue_.size() >= kMaxQueued) {
    return absl::ResourceExhaustedError("too many calls waiting for their token to be checked");
  }
  queue_.push_back(std::move(work));
  cv_.notify_one();
  return absl::OkStatus();
}

void AuthGate::Work() {
  while (true) {
    std::function<void()> work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

void AuthGate::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

std::optional<absl::StatusOr<Caller>> AuthGate::Precheck(absl::string_view method,
                                                         absl::string_view authorization,
                                                         absl::string_view* secret) {
  const MethodRule* rule = FindMethodRule(method);
  if (rule == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("method ", method, " is not in hostd's permission table"));
  }
  if (rule->permission == Permission::kPublic || tokens_ == nullptr) return Anonymous();
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        method, " needs a token: send \"authorization: Bearer <token>\" (hostctl: --token, "
                "HOSTCTL_TOKEN or a token file; docs/security.md)"));
  }
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not \"Bearer <token>\"");
  }
  *secret = absl::StripAsciiWhitespace(value.substr(7));
  return std::nullopt;
}

absl::StatusOr<Caller> AuthGate::Authorize(absl::string_view method,
                                           absl::StatusOr<Caller> caller) {
  if (!caller.ok()) return caller;
  const MethodRule* rule = FindMethodRule(method);
  if (!RoleHas(caller->role, rule->permission)) {
    absl::Status denied = absl::PermissionDeniedError(absl::StrCat(
        caller->principal, " (role ", RoleName(caller->role), ") lacks the '",
        PermissionName(rule->permission), "' permission ", method, " needs"));
    denied.SetPayload(kPrincipalPayload, absl::Cord(caller->principal));
    return denied;
  }
  return caller;
}

void AuthGate::NoteDenied(absl::string_view method, const absl::Status& status) {
  if (!denied_hook_) return;
  const MethodRule* rule = FindMethodRule(method);
  if (rule != nullptr && !rule->mutates) return;
  auto principal = status.GetPayload(kPrincipalPayload);
  denied_hook_(method, principal ? std::string(*principal) : "unauthenticated", status);
}

std::optional<absl::StatusOr<Caller>> AuthGate::DecideCached(absl::string_view method,
                                                             absl::string_view authorization) {
  absl::string_view secret;
  if (auto early = Precheck(method, authorization, &secret)) return early;
  bool refresh_due = false;
  std::optional<absl::StatusOr<Caller>> cached = tokens_->AuthenticateCached(secret, &refresh_due);
  if (!cached) return std::nullopt;
  if (refresh_due) {
    // The answer is about to go stale: one store read now, on a worker, keeps every later call
    // on this path (a failed Defer only means the next miss reads the store itself).
    (void)Defer([tokens = tokens_, secret = std::string(secret)] { (void)tokens->Refresh(secret); });
  }
  return Authorize(method, *std::move(cached));
}

absl::StatusOr<Caller> AuthGate::Decide(absl::string_view method,
                                        absl::string_view authorization) {
  absl::string_view secret;
  if (auto early = Precheck(method, authorization, &secret)) return *std::move(early);
  return Authorize(method, tokens_->Authenticate(secret));
}

absl::StatusOr<Caller> AuthGate::DecideForAgentCertificate(absl::string_view method,
                                                           Caller agent) {
  if (FindMethodRule(method) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("method ", method, " is not in hostd's permission table"));
  }
  return Authorize(method, std::move(agent));
}

std::optional<Caller> AuthGate::AgentCertificate(absl::string_view subject,
                                                 absl::string_view common_name) {
  if (common_name.empty()) return std::nullopt;
  // RDNs are separated by commas; a comma inside a value is escaped ("\,").
  bool agent_unit = false;
  size_t start = 0;
  for (size_t i = 0; i <= subject.size(); ++i) {
    if (i < subject.size() && subject[i] == '\\') {
      ++i;
      continue;
    }
    if (i == subject.size() || subject[i] == ',') {
      absl::string_view rdn = absl::StripAsciiWhitespace(subject.substr(start, i - start));
      if (rdn == absl::StrCat("OU=", kAgentCertificateUnit)) agent_unit = true;
      start = i + 1;
    }
  }
  if (!agent_unit) return std::nullopt;
  Caller caller;
  caller.principal = absl::StrCat("cert:", common_name);
  caller.role = hosting::v1::ROLE_AGENT;
  caller.node = std::string(common_name);
  return caller;
}

Caller CallerOf(const grpc::ServerContextBase& ctx) {
  AuthGate* gate = installed_gate.load();
  if (gate == nullptr) return Caller();
  absl::string_view authorization;
  const auto& md = ctx.client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::shared_ptr<const grpc::AuthContext> peer = ctx.auth_context();
  return gate->CallerFor(authorization, peer.get());
}

absl::Status CheckServiceAccess(const grpc::ServerContextBase& ctx, absl::string_view service) {
  return CheckServiceAccess(CallerOf(ctx), service);
}

absl::Status CheckServiceAccess(const Caller& caller, absl::string_view service) {
  if (caller.role != hosting::v1::ROLE_DEPLOYER || caller.services.empty()) {
    return absl::OkStatus();
  }
  for (const std::string& s : caller.services) {
    if (s == service) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(caller.principal, " may change only ", absl::StrJoin(caller.services, ", "),
                   "; not '", service, "'"));
}

}  // namespace hosting::controlplane
