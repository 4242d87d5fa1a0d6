#include "hostctl/auth_commands.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "hostctl/exit_codes.h"
#include "hostctl/output.h"

namespace hosting::hostctl {
namespace {

std::string RoleText(hosting::v1::Role role) {
  std::string name = hosting::v1::Role_Name(role);
  if (name.rfind("ROLE_", 0) == 0) name = name.substr(5);
  return absl::AsciiStrToLower(name);
}

std::string TimeText(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

std::string StateText(const hosting::v1::Token& t) {
  if (t.has_revoked_at()) return "revoked " + TimeText(t.revoked_at());
  if (t.has_expires_at() && absl::FromUnixSeconds(t.expires_at().seconds()) <= absl::Now()) {
    return "expired " + TimeText(t.expires_at());
  }
  if (t.has_expires_at()) return "valid until " + TimeText(t.expires_at());
  return "valid";
}

}  // namespace

void AddAuthCommands(CLI::App& app, Globals& g, const std::function<Client&()>& client,
                     int& code, std::ostream& out, std::ostream& err) {
  auto c = std::make_shared<CommandEnv>(CommandEnv{g, client, code, out, err});
  CLI::App* token = app.add_subcommand("token", "Create, list and revoke API tokens (admin)");
  token->require_subcommand(1);

  struct CreateOptions {
    std::string role, ttl, node, description;
    std::vector<std::string> services;
  };
  auto co = std::make_shared<CreateOptions>();
  CLI::App* create = token->add_subcommand(
      "create", "Make a token; prints its secret once (hostd keeps only a hash)");
  create->add_option("--role", co->role, "viewer, deployer, operator, admin or agent")
      ->required()
      ->check(CLI::IsMember({"viewer", "deployer", "operator", "admin", "agent"}));
  create->add_option("--service", co->services,
                     "Deployer: the only service it may change (repeatable)");
  create->add_option("--node", co->node, "Agent: the only node it may join as");
  create->add_option("--ttl", co->ttl, "Valid for this long (e.g. 24h, 90d as 2160h); default: until revoked");
  create->add_option("--description", co->description, "What it is for, shown by token list");
  create->callback([c, co] {
    hosting::v1::CreateTokenRequest req;
    hosting::v1::Role role = hosting::v1::ROLE_UNSPECIFIED;
    hosting::v1::Role_Parse("ROLE_" + absl::AsciiStrToUpper(co->role), &role);
    req.set_role(role);
    for (const std::string& s : co->services) req.add_services(s);
    req.set_node(co->node);
    req.set_description(co->description);
    if (!co->ttl.empty()) {
      absl::StatusOr<google::protobuf::Duration> ttl = ParseDurationFlag(co->ttl, "--ttl");
      if (!ttl.ok()) {
        c->err << "error: " << ttl.status().message() << "\n";
        c->code = kExitUsage;
        return;
      }
      *req.mutable_ttl() = *ttl;
    }
    auto ctx = c->client().Context();
    hosting::v1::CreateTokenResponse resp;
    grpc::Status st = c->client().auth().CreateToken(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "token create", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    // The secret alone on stdout, so `hostctl token create ... > file` stores just it.
    c->out << resp.secret() << "\n";
    c->err << "token " << resp.token().accessor() << " (" << RoleText(resp.token().role())
           << ") created; the secret above is shown once\n";
  });

  CLI::App* list = token->add_subcommand("list", "Every token: accessor, role, limits, state");
  list->callback([c] {
    auto ctx = c->client().Context();
    hosting::v1::ListTokensResponse resp;
    grpc::Status st = c->client().auth().ListTokens(ctx.get(), {}, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "token list", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"ACCESSOR", "ROLE", "LIMITED TO", "STATE", "CREATED", "BY", "DESCRIPTION"}};
    for (const auto& t : resp.tokens()) {
      std::string limit = absl::StrJoin(t.services(), ",");
      if (!t.node().empty()) limit = "node " + t.node();
      rows.push_back({t.accessor(), RoleText(t.role()), limit.empty() ? "-" : limit, StateText(t),
                      TimeText(t.created_at()), t.created_by(), t.description()});
    }
    c->out << FormatTable(rows);
  });

  auto accessor = std::make_shared<std::string>();
  CLI::App* revoke = token->add_subcommand("revoke", "Revoke a token at once");
  revoke->add_option("accessor", *accessor, "The token's accessor (token list)")->required();
  revoke->callback([c, accessor] {
    auto ctx = c->client().Context();
    hosting::v1::RevokeTokenRequest req;
    req.set_accessor(*accessor);
    hosting::v1::Token resp;
    grpc::Status st = c->client().auth().RevokeToken(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "token revoke", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    c->out << "token " << resp.accessor() << " " << StateText(resp) << "\n";
  });

  struct AuditOptions {
    std::string since, service;
    int limit = 0;
  };
  auto ao = std::make_shared<AuditOptions>();
  CLI::App* audit = app.add_subcommand(
      "audit", "The audit trail: calls that changed something, or were refused (admin)");
  audit->add_option("--since", ao->since,
                    "Only entries this recent: a duration (1h, 30m) or a time (2026-12-06T18:00:00Z)");
  audit->add_option("--service", ao->service, "Only entries naming this service");
  audit->add_option("--limit", ao->limit, "At most this many, newest first (100; at most 1000)");
  audit->callback([c, ao] {
    hosting::v1::ListAuditRequest req;
    req.set_service(ao->service);
    req.set_limit(ao->limit);
    if (!ao->since.empty()) {
      absl::Time since;
      absl::Duration ago;
      std::string error;
      if (absl::ParseDuration(ao->since, &ago) && ago >= absl::ZeroDuration()) {
        since = absl::Now() - ago;
      } else if (!absl::ParseTime(absl::RFC3339_full, ao->since, &since, &error)) {
        c->err << "error: --since: '" << ao->since
               << "' is neither a duration (1h) nor an RFC 3339 time\n";
        c->code = kExitUsage;
        return;
      }
      req.mutable_since()->set_seconds(absl::ToUnixSeconds(since));
    }
    auto ctx = c->client().Context();
    hosting::v1::ListAuditResponse resp;
    grpc::Status st = c->client().cluster().ListAudit(ctx.get(), req, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "audit", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"TIME", "WHO", "FROM", "CALL", "SERVICE", "OUTCOME"}};
    for (const auto& e : resp.entries()) {
      std::string call = e.method();
      if (size_t dot = call.rfind('.'); dot != std::string::npos) call = call.substr(dot + 1);
      std::string outcome = e.code();
      if (e.code() != "OK" && !e.message().empty()) outcome += ": " + e.message();
      rows.push_back({TimeText(e.time()), e.principal(), e.peer().empty() ? "-" : e.peer(), call,
                      e.service().empty() ? "-" : e.service(), outcome});
    }
    c->out << FormatTable(rows);
  });

  CLI::App* whoami = app.add_subcommand("whoami", "The identity hostd sees for this token");
  whoami->callback([c] {
    auto ctx = c->client().Context();
    hosting::v1::Identity resp;
    grpc::Status st = c->client().auth().WhoAmI(ctx.get(), {}, &resp);
    if (!st.ok()) {
      c->code = Fail(st, "whoami", c->err);
      return;
    }
    if (c->g.format != Format::kTable) {
      PrintMessage(resp, c->g.format, c->out);
      return;
    }
    c->out << resp.principal() << "  role " << RoleText(resp.role());
    if (resp.services_size() > 0) c->out << "  services " << absl::StrJoin(resp.services(), ",");
    if (!resp.node().empty()) c->out << "  node " << resp.node();
    if (!resp.auth_enabled()) c->out << "  (hostd runs with --insecure-no-auth)";
    c->out << "\n";
  });
}

}  // namespace hosting::hostctl
