#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/bearer_token.h"
#include "google/protobuf/duration.pb.h"
#include "grpcpp/grpcpp.h"
#include "hostctl/output.h"
#include "hosting/v1/auth.grpc.pb.h"
#include "hosting/v1/autoscaling.grpc.pb.h"
#include "hosting/v1/cluster.grpc.pb.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/runbooks.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"

namespace hosting::hostctl {

inline constexpr char kDefaultServer[] = "127.0.0.1:50051";

// The exit code for a failed call's gRPC status (see ExitCode).
int ExitCodeFor(grpc::StatusCode code);

// Prints a failed call, with every bad field when hostd sent google.rpc.BadRequest details, and
// returns its exit code.
int Fail(const grpc::Status& status, const std::string& what, std::ostream& err);

// Options every command shares.
struct Globals {
  // One hostd address, or several separated by commas: the leader among them is used.
  std::string server;
  std::string output = "table";
  double timeout_seconds = 30;
  Format format = Format::kTable;
  // --token and --token-file as given; `token` is what every call sends (ResolveToken).
  std::string token_flag;
  std::string token_file_flag;
  std::string token;
  // --tls-ca/--tls-cert/--tls-key (env HOSTCTL_TLS_CA, HOSTCTL_TLS_CERT, HOSTCTL_TLS_KEY), and
  // the credentials made from them (plaintext when all are empty).
  TlsClientFiles tls;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// The token hostctl sends, from the first of: --token, $HOSTCTL_TOKEN, --token-file,
// $HOSTCTL_TOKEN_FILE, ~/.config/hosting/token (refused unless private: mode 0600), and, for
// the default --server only, /var/lib/hosting/admin.token (the local hostd's bootstrap token,
// readable by root only). Empty when
// none is found (hostd then answers UNAUTHENTICATED). An error names a file given but unusable.
absl::StatusOr<std::string> ResolveToken(const Globals& g);

// One channel to hostd and its stubs.
class Client {
 public:
  explicit Client(const Globals& g)
      : globals_(g),
        channel_(Connect(g)),
        services_(hosting::v1::ServiceManager::NewStub(channel_)),
        cluster_(hosting::v1::Cluster::NewStub(channel_)),
        releases_(hosting::v1::Releases::NewStub(channel_)),
        autoscaling_(hosting::v1::Autoscaling::NewStub(channel_)),
        auth_(hosting::v1::Auth::NewStub(channel_)),
        runbooks_(hosting::v1::Runbooks::NewStub(channel_)) {}

  // A context with the per-call deadline (--timeout).
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<int64_t>(globals_.timeout_seconds * 1000)));
    return ctx;
  }
  hosting::v1::ServiceManager::Stub& services() { return *services_; }
  hosting::v1::Cluster::Stub& cluster() { return *cluster_; }
  hosting::v1::Releases::Stub& releases() { return *releases_; }
  hosting::v1::Autoscaling::Stub& autoscaling() { return *autoscaling_; }
  hosting::v1::Auth::Stub& auth() { return *auth_; }
  hosting::v1::Runbooks::Stub& runbooks() { return *runbooks_; }

  // The addresses in --server, in order.
  static std::vector<std::string> Servers(const Globals& g);
  // A channel to the one address given, or to the leader among several: the first that answers
  // GetControlPlane says whether it leads or who does. When none answers, the first address
  // (whose calls then fail with UNAVAILABLE).
  static std::shared_ptr<grpc::Channel> Connect(const Globals& g);
  // A channel to one address that sends the token.
  static std::shared_ptr<grpc::Channel> ChannelTo(const Globals& g, const std::string& address);

 private:
  const Globals& globals_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<hosting::v1::ServiceManager::Stub> services_;
  std::unique_ptr<hosting::v1::Cluster::Stub> cluster_;
  std::unique_ptr<hosting::v1::Releases::Stub> releases_;
  std::unique_ptr<hosting::v1::Autoscaling::Stub> autoscaling_;
  std::unique_ptr<hosting::v1::Auth::Stub> auth_;
  std::unique_ptr<hosting::v1::Runbooks::Stub> runbooks_;
};

// What a command group's callbacks share. Callbacks run after the group is added (during
// parsing), so they hold it by pointer.
struct CommandEnv {
  Globals& g;
  std::function<Client&()> client;
  int& code;
  std::ostream& out;
  std::ostream& err;
};

// A duration flag ("30s", "5m", "1m30s"); `what` names the flag in the error.
absl::StatusOr<google::protobuf::Duration> ParseDurationFlag(const std::string& text,
                                                              const std::string& what);

}  // namespace hosting::hostctl
