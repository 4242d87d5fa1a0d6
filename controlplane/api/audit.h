#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "controlplane/store/store.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/server_interceptor.h"
#include "hosting/v1/cluster.pb.h"

namespace hosting::controlplane {

// The audit trail: every call that changes something (the permission table's `mutates`), who
// made it, from where, the request with its secrets redacted, and the outcome. Each entry is a
// JSON log line at once (for Loki) and a store row written off the call's path, by one thread
// that retries while the store is down; beyond `max_queued` waiting entries new ones are
// dropped from the store (still logged) and counted.
class AuditLog {
 public:
  AuditLog(Store& store, Clock& clock, size_t max_queued = 10000);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Stamps `entry` with the time, logs it and queues it for the store. Never blocks.
  void Record(hosting::v1::AuditEntry entry);
  // Newest first (ListAudit); INVALID_ARGUMENT for a limit over 1000 or negative.
  absl::StatusOr<std::vector<hosting::v1::AuditEntry>> List(
      const hosting::v1::ListAuditRequest& request);
  // Returns once every entry recorded so far is in the store (or dropped).
  void Flush();
  // Writes what is queued (one try each) and ends the writer.
  void Stop();
  // Entries the store never got (queue full).
  int64_t dropped() const;

 private:
  void Run();

  Store& store_;
  Clock& clock_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<hosting::v1::AuditEntry> queue_;
  bool writing_ = false;
  bool stopping_ = false;
  int64_t dropped_ = 0;
  std::thread writer_;
};

// The request as proto JSON with secrets redacted: the value of every field or map key whose
// name looks like a secret (password, passwd, secret, token, key, credential, auth, private),
// case-insensitive, becomes "[redacted]".
std::string RedactedJson(const google::protobuf::Message& request);

// The service a request names: spec.name, policy.service, service, name, or the service of a
// release ID; empty when none.
std::string ServiceNamedIn(const google::protobuf::Message& request);

// A server interceptor factory that records every call of a method the permission table marks
// `mutates` and that the auth gate let through (refusals are recorded by the gate's hook).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeAuditInterceptorFactory(AuditLog& log);

}  // namespace hosting::controlplane
