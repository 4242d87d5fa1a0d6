#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "hosting/v1/auth.pb.h"

// Who may call what: one table from every gRPC method hostd serves to the permission it needs,
// and the permissions of each role. The server's auth processor (auth_credentials.h) enforces
// the table before a handler runs; a method missing from it is refused to everyone.
namespace hosting::controlplane {

enum class Permission {
  kPublic,         // no credentials: the gRPC health check
  kAuthenticated,  // any valid credential: WhoAmI, server reflection
  kRead,
  kDeploy,         // changes services; a deployer's token may name the only services it may change
  kOperate,        // runbooks, nodes, tasks, image pulls
  kAdmin,          // tokens, the audit trail
  kAgent,          // hostagent's stream
};

// "read", "deploy", ... as PERMISSION_DENIED names them.
absl::string_view PermissionName(Permission p);

struct MethodRule {
  // The full method path, "/hosting.v1.ServiceManager/ApplyService".
  absl::string_view method;
  Permission permission;
  // The call acts on one service its request names: a token limited to services is checked
  // against it in the handler (CheckServiceAccess), the only place that has the request.
  bool service_scoped;
  // The call changes something: it goes to the audit trail (refused or not).
  bool mutates;
};

// Every rule, in the table's order.
const std::vector<MethodRule>& MethodRules();
// The rule for a method path; nullptr when the table has none (the call is refused).
const MethodRule* FindMethodRule(absl::string_view method);

// Whether `role` carries `permission`. Viewer < deployer < operator < admin, each with what
// the one before has; agent has only kAgent; admin has everything.
bool RoleHas(hosting::v1::Role role, Permission permission);

// "viewer", "deployer", "operator", "admin", "agent"; ParseRole takes those names.
absl::string_view RoleName(hosting::v1::Role role);
bool ParseRole(absl::string_view name, hosting::v1::Role* role);

}  // namespace hosting::controlplane
