#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

// The client side of hostd's bearer tokens: where a client finds its token, and channels that
// send it ("authorization: Bearer <token>") on every call.
namespace hosting {

// A channel to `target` whose every call carries `token` (none when empty). A client
// interceptor adds it, so call sites need not (gRPC's own call credentials are not sent over
// plaintext, which hostd serves on loopback).
std::shared_ptr<grpc::Channel> CreateChannelWithToken(
    const std::string& target, const std::shared_ptr<grpc::ChannelCredentials>& creds,
    const grpc::ChannelArguments& args, const std::string& token);
inline std::shared_ptr<grpc::Channel> CreateChannelWithToken(const std::string& target,
                                                             const std::string& token) {
  return CreateChannelWithToken(target, grpc::InsecureChannelCredentials(),
                                grpc::ChannelArguments(), token);
}

// OK when `token` can be sent as metadata: 1 to 4096 visible ASCII characters (no space,
// newline or control character); INVALID_ARGUMENT saying what is wrong otherwise.
absl::Status CheckTokenText(absl::string_view token);

// The token in a file (its first line, trimmed). `private_only`: refuse a file that group or
// others may read (FAILED_PRECONDITION naming the mode), as ssh does with keys. NOT_FOUND
// when the file does not exist, PERMISSION_DENIED when it cannot be read.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, bool private_only);

// How a client reaches a hostd that serves TLS (--tls-cert) and, with --tls-client-ca, asks
// for a client certificate: PEM file paths. All empty: plaintext.
struct TlsClientFiles {
  std::string ca;    // the CA that signed hostd's certificate; setting it turns TLS on
  std::string cert;  // this client's certificate (mTLS), with `key`
  std::string key;
};
// Channel credentials for `files`: insecure when all are empty, else TLS trusting `ca` and
// presenting `cert`/`key` when given. INVALID_ARGUMENT naming the flag for a certificate
// without its key (or the reverse) or without a CA; the read error naming a file that cannot
// be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsClientFiles& files);

}  // namespace hosting
