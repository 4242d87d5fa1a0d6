#include "controlplane/event_log.h"

#include <vector>

#include "absl/strings/match.h"
#include "common/log.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {

void EventLog::Publish(hosting::v1::Event event) {
  if (!event.has_time()) {
    *event.mutable_time() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_.Now()));
  }
  if (event.source().empty()) event.set_source("hostd");
  absl::MutexLock publish_lock(&publish_mu_);
  absl::StatusOr<int64_t> sequence = store_.AppendEvent(event);
  if (sequence.ok()) {
    event.set_sequence(*sequence);
  } else {
    LogError("event not stored", {{"type", event.type()}, {"error", sequence.status().ToString()}});
  }
  std::vector<Subscriber> subscribers;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : subscribers_) subscribers.push_back(s);
  }
  for (const auto& s : subscribers) s(event);
}

void EventLog::Publish(std::string type, std::string service, int64_t revision,
                       std::string message, std::map<std::string, std::string> attributes) {
  hosting::v1::Event event;
  event.set_type(std::move(type));
  event.set_service(std::move(service));
  event.set_revision(revision);
  event.set_message(std::move(message));
  for (auto& [k, v] : attributes) (*event.mutable_attributes())[k] = std::move(v);
  Publish(std::move(event));
}

int64_t EventLog::Subscribe(Subscriber subscriber) {
  absl::MutexLock lock(&mu_);
  int64_t id = next_id_++;
  subscribers_[id] = std::move(subscriber);
  return id;
}

void EventLog::Unsubscribe(int64_t id) {
  // Taking publish_mu_ first guarantees no fan-out still holds a copy of this subscriber when
  // Unsubscribe returns.
  absl::MutexLock publish_lock(&publish_mu_);
  absl::MutexLock lock(&mu_);
  subscribers_.erase(id);
}

bool EventLog::Matches(const hosting::v1::Event& event, const std::string& service,
                       const std::vector<std::string>& types) {
  if (!service.empty() && event.service() != service) return false;
  if (types.empty()) return true;
  for (const auto& t : types) {
    if (event.type() == t) return true;
    if (!t.empty() && t.back() == '.' && absl::StartsWith(event.type(), t)) return true;
  }
  return false;
}

}  // namespace hosting::controlplane
