// The agent stream as hostd receives it: two agent sessions whose messages (Register first,
// then heartbeats, task changes, snapshots, metrics) come from the input, as the gateway hands
// them to the registry, with lost agents and restarts between them; then every read that
// health gating, analysis, autoscaling and status make of what was reported.
//
// Input: frames of [control byte][length, 2 bytes little-endian][AgentMessage bytes]. Control
// bit 0 picks the session, 0x40 lets 3 s pass and sweeps, 0x80 ends the session first.
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "controlplane/agents/agent_registry.h"
#include "controlplane/store/event_log.h"
#include "controlplane/store/sqlite_store.h"
#include "google/protobuf/stubs/logging.h"
#include "hosting/v1/agent.pb.h"

namespace {

using ::hosting::controlplane::AgentRegistry;
using ::hosting::controlplane::EventLog;
using ::hosting::controlplane::SqliteStore;

struct Slot {
  std::string node_id;
  int64_t session = 0;
};

}  // namespace

// protobuf logs every string that is not UTF-8 as an error: at thousands of inputs a second
// that is most of the run's time.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One store for every input (its migrations are the slow part); the registry is new each time.
  static std::unique_ptr<SqliteStore> store = SqliteStore::Open(":memory:").value();
  hosting::FakeClock clock;
  EventLog events(*store, clock);
  AgentRegistry registry(AgentRegistry::Options{}, events, clock);
  Slot slots[2];
  size_t at = 0;
  while (at + 3 <= size) {
    uint8_t control = data[at];
    size_t len = data[at + 1] | (static_cast<size_t>(data[at + 2]) << 8);
    at += 3;
    len = std::min(len, size - at);
    hosting::v1::AgentMessage message;
    bool parsed = message.ParseFromArray(data + at, static_cast<int>(len));
    at += len;
    Slot& slot = slots[control & 1];
    if ((control & 0x80) && slot.session != 0) {
      registry.Disconnect(slot.node_id, slot.session);
      slot.session = 0;
    }
    if (control & 0x40) {
      clock.Advance(absl::Seconds(3));
      registry.Sweep();
    }
    if (!parsed) continue;  // the gRPC layer refuses what does not parse
    if (slot.session == 0) {
      if (message.body_case() != hosting::v1::AgentMessage::kRegister) continue;
      absl::StatusOr<int64_t> session = registry.Connect(message.register_());
      if (!session.ok()) continue;
      slot.node_id = message.register_().node_id();
      slot.session = *session;
      continue;
    }
    if (!registry.Receive(slot.node_id, slot.session, message).ok()) {
      registry.Disconnect(slot.node_id, slot.session);
      slot.session = 0;
    }
  }
  for (const std::string& service : registry.Services()) {
    registry.Aggregate(service);
    registry.Tasks(service);
    registry.TaskMetrics(service, absl::Seconds(30));
  }
  for (const std::string& node : registry.ConnectedNodes()) registry.Agent(node);
  registry.FindTask("abcdef").status().IgnoreError();
  return 0;
}
