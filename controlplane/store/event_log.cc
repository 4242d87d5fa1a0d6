#include "controlplane/store/event_log.h"

#include <malloc.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "google/protobuf/util/time_util.h"

namespace hosting::controlplane {

void EventLog::Publish(hosting::v1::Event event) {
  if (!event.has_time()) {
    *event.mutable_time() = ToTimestamp(clock_.Now());
  }
  if (event.source().empty()) event.set_source("hostd");
  {
    absl::MutexLock publish_lock(&publish_mu_);
    absl::StatusOr<int64_t> sequence = store_.AppendEvent(event);
    if (sequence.ok()) {
      event.set_sequence(*sequence);
    } else {
      LogError("event not stored",
               {{"type", event.type()}, {"error", sequence.status().ToString()}});
    }
    queue_.push_back(std::move(event));
    // One thread at a time hands events out, in sequence order; the others only queue.
    if (deliverer_.has_value()) return;
    deliverer_ = std::this_thread::get_id();
  }
  Deliver();
}

void EventLog::Deliver() {
  while (true) {
    hosting::v1::Event event;
    {
      absl::MutexLock publish_lock(&publish_mu_);
      if (queue_.empty()) {
        deliverer_.reset();
        return;
      }
      event = std::move(queue_.front());
      queue_.pop_front();
      ++fanouts_started_;
    }
    std::vector<Subscriber> subscribers;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, s] : subscribers_) subscribers.push_back(s);
    }
    // No lock held: a subscriber may read the store or publish itself.
    for (const auto& s : subscribers) s(event);
    absl::MutexLock publish_lock(&publish_mu_);
    ++fanouts_done_;
  }
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

bool EventLog::AcquireWatcherSlot() {
  absl::MutexLock lock(&mu_);
  if (watchers_ >= max_watchers_.load()) return false;
  ++watchers_;
  return true;
}

void EventLog::ReleaseWatcherSlot() {
  bool last = false;
  {
    absl::MutexLock lock(&mu_);
    last = --watchers_ == 0;
  }
  // Streams' buffers are freed across malloc's arenas; without a trim the process keeps them.
  if (last) malloc_trim(0);
}

void EventLog::Unsubscribe(int64_t id) {
  {
    absl::MutexLock lock(&mu_);
    subscribers_.erase(id);
  }
  // A fan-out that began before the erase may hold a copy of the subscriber: wait for it to
  // end, unless this thread is that fan-out (a subscriber unsubscribing itself).
  absl::MutexLock publish_lock(&publish_mu_);
  if (deliverer_ == std::this_thread::get_id()) return;
  std::pair<EventLog*, int64_t> wait(this, fanouts_started_);
  publish_mu_.Await(absl::Condition(
      +[](std::pair<EventLog*, int64_t>* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return a->first->fanouts_done_ >= a->second;
      },
      &wait));
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
