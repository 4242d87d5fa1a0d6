#include "controlplane/testing/fake_control_plane.h"

#include "controlplane/store/sqlite_store.h"

namespace hosting::controlplane {

FakeControlPlane::FakeControlPlane(Clock& clock)
    : clock(clock),
      store(SqliteStore::Open(":memory:").value()),
      events(store, clock),
      reconciler(store, docker, events, metrics, clock, ReconcilerOptions{}),
      state(store, reconciler, events, clock),
      services(store, state, reconciler, clock) {}

absl::Status FakeControlPlane::Apply(const std::string& name, const std::string& image,
                                     int replicas) {
  hosting::v1::ApplyServiceRequest req;
  req.mutable_spec()->set_name(name);
  req.mutable_spec()->set_image(image);
  req.mutable_spec()->set_replicas(replicas);
  return services.Apply(req).status();
}

std::vector<std::string> FakeControlPlane::EventTypes() {
  std::vector<std::string> out;
  const std::vector<hosting::v1::Event> all = store.base().ListEvents(0, 100000).value();
  for (const auto& e : all) out.push_back(e.type());
  return out;
}

}  // namespace hosting::controlplane
