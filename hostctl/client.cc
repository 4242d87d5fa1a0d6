#include "hostctl/client.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/bearer_token.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "hostctl/exit_codes.h"

namespace hosting::hostctl {

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitInvalid;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
      return kExitConflict;
    case grpc::StatusCode::UNAVAILABLE:
      return kExitUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitTimeout;
    case grpc::StatusCode::UNIMPLEMENTED:
      return kExitUnimplemented;
    case grpc::StatusCode::UNAUTHENTICATED:
      return kExitUnauthenticated;
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitPermissionDenied;
    default:
      return kExitError;
  }
}

// Prints a failed call, with every bad field when hostd sent google.rpc.BadRequest details.
int Fail(const grpc::Status& status, const std::string& what, std::ostream& err) {
  err << "error: " << what << ": " << status.error_message() << "\n";
  if (!status.error_details().empty()) {
    google::rpc::Status details;
    if (details.ParseFromString(status.error_details())) {
      for (const auto& any : details.details()) {
        google::rpc::BadRequest bad;
        if (any.type_url() == "type.googleapis.com/google.rpc.BadRequest" &&
            bad.ParseFromString(any.value())) {
          for (const auto& v : bad.field_violations()) {
            err << "  " << v.field() << ": " << v.description() << "\n";
          }
        }
      }
    }
  }
  return ExitCodeFor(status.error_code());
}

std::vector<std::string> Client::Servers(const Globals& g) {
  return absl::StrSplit(g.server, ',', absl::SkipWhitespace());
}

absl::StatusOr<std::string> ResolveToken(const Globals& g) {
  if (!g.token_flag.empty()) {
    if (absl::Status st = CheckTokenText(g.token_flag); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--token: ", st.message()));
    }
    return g.token_flag;
  }
  if (const char* env = std::getenv("HOSTCTL_TOKEN"); env != nullptr && *env != '\0') {
    if (absl::Status st = CheckTokenText(env); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("$HOSTCTL_TOKEN: ", st.message()));
    }
    return std::string(env);
  }
  std::string file = g.token_file_flag;
  if (file.empty()) {
    if (const char* env = std::getenv("HOSTCTL_TOKEN_FILE"); env != nullptr) file = env;
  }
  if (!file.empty()) return ReadTokenFile(file, /*private_only=*/false);
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    absl::StatusOr<std::string> token =
        ReadTokenFile(absl::StrCat(home, "/.config/hosting/token"), /*private_only=*/true);
    if (token.ok() || !absl::IsNotFound(token.status())) return token;
  }
  // The bootstrap token belongs to the hostd on this machine's default address.
  if (g.server != kDefaultServer) return std::string();
  absl::StatusOr<std::string> bootstrap =
      ReadTokenFile("/var/lib/hosting/admin.token", /*private_only=*/false);
  return bootstrap.ok() ? *bootstrap : std::string();
}

std::shared_ptr<grpc::Channel> Client::ChannelTo(const Globals& g, const std::string& address) {
  return CreateChannelWithToken(
      address, g.credentials != nullptr ? g.credentials : grpc::InsecureChannelCredentials(),
      grpc::ChannelArguments(), g.token);
}

std::shared_ptr<grpc::Channel> Client::Connect(const Globals& g) {
  const std::vector<std::string> servers = Servers(g);
  auto channel = [&g](const std::string& address) { return ChannelTo(g, address); };
  if (servers.size() <= 1) return channel(g.server);
  for (const std::string& address : servers) {
    std::shared_ptr<grpc::Channel> ch = channel(address);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(
                         std::min(g.timeout_seconds, 3.0) * 1000)));
    hosting::v1::ControlPlane cp;
    if (!hosting::v1::Cluster::NewStub(ch)->GetControlPlane(&ctx, {}, &cp).ok()) continue;
    if (cp.leader()) return ch;
    if (!cp.leader_address().empty()) return channel(cp.leader_address());
  }
  return channel(servers.front());
}

absl::StatusOr<google::protobuf::Duration> ParseDurationFlag(const std::string& text,
                                                              const std::string& what) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", text, "' is not a duration (e.g. 30s, 5m, 1m30s)"));
  }
  return ToDuration(d);
}

}  // namespace hosting::hostctl
