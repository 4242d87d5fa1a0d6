#include "controlplane/auth/permissions.h"

#include "absl/container/flat_hash_map.h"

namespace hosting::controlplane {

absl::string_view PermissionName(Permission p) {
  switch (p) {
    case Permission::kPublic: return "public";
    case Permission::kAuthenticated: return "authenticated";
    case Permission::kRead: return "read";
    case Permission::kDeploy: return "deploy";
    case Permission::kOperate: return "operate";
    case Permission::kAdmin: return "admin";
    case Permission::kAgent: return "agent";
  }
  return "unknown";
}

const std::vector<MethodRule>& MethodRules() {
  using P = Permission;
  static const auto* rules = new std::vector<MethodRule>{
      {"/hosting.v1.ServiceManager/ApplyService", P::kDeploy, true, true},
      {"/hosting.v1.ServiceManager/GetService", P::kRead, false, false},
      {"/hosting.v1.ServiceManager/ListServices", P::kRead, false, false},
      {"/hosting.v1.ServiceManager/DeleteService", P::kDeploy, true, true},
      {"/hosting.v1.ServiceManager/ScaleService", P::kDeploy, true, true},

      {"/hosting.v1.Cluster/ListNodes", P::kRead, false, false},
      {"/hosting.v1.Cluster/GetNode", P::kRead, false, false},
      {"/hosting.v1.Cluster/DrainNode", P::kOperate, false, true},
      {"/hosting.v1.Cluster/ActivateNode", P::kOperate, false, true},
      {"/hosting.v1.Cluster/GetServiceStatus", P::kRead, false, false},
      {"/hosting.v1.Cluster/GetTaskLogs", P::kRead, false, false},
      {"/hosting.v1.Cluster/RestartTask", P::kOperate, false, true},
      {"/hosting.v1.Cluster/PullImage", P::kOperate, false, true},
      {"/hosting.v1.Cluster/WatchEvents", P::kRead, false, false},
      {"/hosting.v1.Cluster/GetControlPlane", P::kRead, false, false},
      {"/hosting.v1.Cluster/ListAudit", P::kAdmin, false, false},

      {"/hosting.v1.Releases/StartRelease", P::kDeploy, true, true},
      {"/hosting.v1.Releases/GetRelease", P::kRead, false, false},
      {"/hosting.v1.Releases/ListReleases", P::kRead, false, false},
      {"/hosting.v1.Releases/WatchRelease", P::kRead, false, false},
      {"/hosting.v1.Releases/PromoteRelease", P::kDeploy, true, true},
      {"/hosting.v1.Releases/PauseRelease", P::kDeploy, true, true},
      {"/hosting.v1.Releases/ResumeRelease", P::kDeploy, true, true},
      {"/hosting.v1.Releases/AbortRelease", P::kDeploy, true, true},
      {"/hosting.v1.Releases/RollbackService", P::kDeploy, true, true},
      {"/hosting.v1.Releases/JudgeRelease", P::kRead, false, false},

      {"/hosting.v1.Autoscaling/SetPolicy", P::kDeploy, true, true},
      {"/hosting.v1.Autoscaling/GetPolicy", P::kRead, false, false},
      {"/hosting.v1.Autoscaling/DeletePolicy", P::kDeploy, true, true},
      {"/hosting.v1.Autoscaling/GetStatus", P::kRead, false, false},

      {"/hosting.v1.Runbooks/ListRunbooks", P::kRead, false, false},
      {"/hosting.v1.Runbooks/RunRunbook", P::kOperate, false, true},
      {"/hosting.v1.Runbooks/GetRun", P::kRead, false, false},
      {"/hosting.v1.Runbooks/WatchRun", P::kRead, false, false},
      {"/hosting.v1.Runbooks/ListRuns", P::kRead, false, false},
      {"/hosting.v1.Runbooks/CancelRun", P::kOperate, false, true},
      {"/hosting.v1.Runbooks/ApproveRun", P::kOperate, false, true},

      {"/hosting.v1.AgentGateway/Connect", P::kAgent, false, false},

      {"/hosting.v1.Auth/CreateToken", P::kAdmin, false, true},
      {"/hosting.v1.Auth/ListTokens", P::kAdmin, false, false},
      {"/hosting.v1.Auth/RevokeToken", P::kAdmin, false, true},
      {"/hosting.v1.Auth/WhoAmI", P::kAuthenticated, false, false},

      // Load balancers and orchestrators probe health without credentials.
      {"/grpc.health.v1.Health/Check", P::kPublic, false, false},
      {"/grpc.health.v1.Health/Watch", P::kPublic, false, false},
      // The API's shape (grpcurl's "list" and "describe"), to any valid credential.
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", P::kAuthenticated,
       false, false},
  };
  return *rules;
}

const MethodRule* FindMethodRule(absl::string_view method) {
  static const auto* index = [] {
    auto* m = new absl::flat_hash_map<absl::string_view, const MethodRule*>();
    for (const MethodRule& r : MethodRules()) (*m)[r.method] = &r;
    return m;
  }();
  auto it = index->find(method);
  return it == index->end() ? nullptr : it->second;
}

bool RoleHas(hosting::v1::Role role, Permission permission) {
  if (permission == Permission::kPublic) return true;
  if (role == hosting::v1::ROLE_ADMIN) return true;
  if (role == hosting::v1::ROLE_AGENT) {
    return permission == Permission::kAuthenticated || permission == Permission::kAgent;
  }
  int rank = 0;
  switch (role) {
    case hosting::v1::ROLE_VIEWER: rank = 1; break;
    case hosting::v1::ROLE_DEPLOYER: rank = 2; break;
    case hosting::v1::ROLE_OPERATOR: rank = 3; break;
    default: return false;
  }
  switch (permission) {
    case Permission::kAuthenticated:
    case Permission::kRead: return rank >= 1;
    case Permission::kDeploy: return rank >= 2;
    case Permission::kOperate: return rank >= 3;
    default: return false;
  }
}

absl::string_view RoleName(hosting::v1::Role role) {
  switch (role) {
    case hosting::v1::ROLE_VIEWER: return "viewer";
    case hosting::v1::ROLE_DEPLOYER: return "deployer";
    case hosting::v1::ROLE_OPERATOR: return "operator";
    case hosting::v1::ROLE_ADMIN: return "admin";
    case hosting::v1::ROLE_AGENT: return "agent";
    default: return "none";
  }
}

bool ParseRole(absl::string_view name, hosting::v1::Role* role) {
  for (auto r : {hosting::v1::ROLE_VIEWER, hosting::v1::ROLE_DEPLOYER, hosting::v1::ROLE_OPERATOR,
                 hosting::v1::ROLE_ADMIN, hosting::v1::ROLE_AGENT}) {
    if (name == RoleName(r)) {
      *role = r;
      return true;
    }
  }
  return false;
}

}  // namespace hosting::controlplane
