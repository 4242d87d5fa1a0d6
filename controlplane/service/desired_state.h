#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "controlplane/reconcile/reconciler.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/store.h"
#include "hosting/v1/cluster.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::controlplane {

// What one change to a service's desired state does besides writing the record. A mutator
// fills it; DesiredState acts on it only once the write has committed.
struct Mutation {
  // False: nothing to write (the stored record is returned as it is).
  bool write = true;
  // A new revision written in the same transaction (from DesiredState::NewRevision).
  std::optional<RevisionRecord> revision;
  // False for what the reconciler does not act on (an autoscaling policy): no hint then.
  bool changes_what_runs = true;
  // With a new revision, older ones beyond the spec's revision_history_limit (and this) go.
  int min_revisions_kept = 1;
  // Published in order after the commit, never before.
  std::vector<hosting::v1::Event> events;
  // Writes the record in place of Store::PutService (e.g. with a release in one transaction);
  // returns the new generation. Same contract as PutService.
  std::function<absl::StatusOr<int64_t>(const ServiceRecord& record, int64_t expected_generation,
                                        const RevisionRecord* revision)>
      commit;

  void Publish(std::string type, std::string message,
               std::map<std::string, std::string> attributes = {});
};

struct MutateOptions {
  // The service may not exist yet (the mutator then sees a record with generation 0).
  bool may_create = false;
  // Non-zero: the write must find this generation (ABORTED otherwise, not retried).
  int64_t expected_generation = 0;
};

// The one writer of services' desired state (the record in the store). Every change, whether
// from an API call, the autoscaler or a release, goes through Mutate: read, change, compare-
// and-swap, retried on a lost race, then the change's events and the reconciler's hint. What
// happens after the commit cannot fail the call: the change is made and the caller is told so.
class DesiredState {
 public:
  DesiredState(Store& store, Reconciler& reconciler, EventLog& events, Clock& clock)
      : store_(store), reconciler_(reconciler), events_(events), clock_(clock) {}

  // Calls `mutate` on the stored record until its write wins (at most kAttempts reads).
  // `mutate` may return an error (returned as is, nothing written) and must be idempotent:
  // it runs again after a lost race, on the record the winner wrote.
  using Mutator = std::function<absl::Status(ServiceRecord& record, Mutation& mutation)>;
  absl::StatusOr<ServiceRecord> Mutate(const std::string& name, const Mutator& mutate,
                                       MutateOptions options = {});

  // Deletes the service and its revisions (retried like Mutate); its Swarm services go next.
  absl::StatusOr<ServiceRecord> Delete(const std::string& name);

  // The next revision of `name` running `spec` (numbers are never reused, even after a
  // delete). Written by the Mutation that carries it.
  absl::StatusOr<RevisionRecord> NewRevision(const std::string& name,
                                             const hosting::v1::ServiceSpec& spec);

  absl::StatusOr<ServiceRecord> Get(const std::string& name) { return store_.GetService(name); }

  static constexpr int kAttempts = 5;

 private:
  Store& store_;
  Reconciler& reconciler_;
  EventLog& events_;
  Clock& clock_;
};

}  // namespace hosting::controlplane
