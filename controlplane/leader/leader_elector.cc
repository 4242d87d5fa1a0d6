#include "controlplane/leader/leader_elector.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"

namespace hosting::controlplane {
namespace {

// A holder is this process, not just its address: a restarted hostd on the same address must
// not inherit the epoch of the one before it.
std::string NewHolder(const std::string& address) {
  std::random_device rd;
  return absl::StrFormat("%s#%08x", address, rd());
}

}  // namespace

std::string LeaderElector::AddressOf(const std::string& holder) {
  return holder.substr(0, holder.rfind('#'));
}

LeaderElector::LeaderElector(Store& store, EventLog& events, HostdMetrics& metrics, Clock& clock,
                             LeaderOptions options)
    : store_(store), events_(events), metrics_(metrics), clock_(clock),
      options_(std::move(options)), holder_(NewHolder(options_.address)) {
  // Until elected, no write of desired state commits from this hostd.
  store_.SetFence(holder_, -1);
  metrics_.SetLeader(false, 0);
}

LeaderElector::~LeaderElector() { Stop(); }

void LeaderElector::OnElected(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  on_elected_.push_back(std::move(fn));
}

void LeaderElector::OnStoreAnswer(std::function<void(const absl::Status&)> fn) {
  absl::MutexLock lock(&mu_);
  on_store_answer_.push_back(std::move(fn));
}

void LeaderElector::OnSteppedDown(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  on_stepped_down_.push_back(std::move(fn));
}

bool LeaderElector::IsLeader() {
  absl::MutexLock lock(&mu_);
  return leader_ && clock_.Now() < deadline_;
}

absl::Status LeaderElector::CheckLeader() {
  absl::MutexLock lock(&mu_);
  if (leader_ && clock_.Now() < deadline_) return absl::OkStatus();
  if (seen_holder_.empty() || seen_holder_ == holder_) {
    return absl::UnavailableError(absl::StrCat(
        "hostd ", options_.address, " is not the leader and knows of none (",
        last_error_.empty() ? "an election is under way" : last_error_, "); retry shortly"));
  }
  return absl::UnavailableError(absl::StrCat("hostd ", options_.address,
                                             " is a standby; the leader is ",
                                             AddressOf(seen_holder_), ": send it there"));
}

std::string LeaderElector::leader_address() {
  absl::MutexLock lock(&mu_);
  if (leader_ && clock_.Now() < deadline_) return options_.address;
  return seen_holder_.empty() ? "" : AddressOf(seen_holder_);
}

int64_t LeaderElector::epoch() {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

void LeaderElector::Transition(bool leader, int64_t epoch, const std::string& why) {
  metrics_.SetLeader(leader, epoch);
  metrics_.CountLeaderTransition(leader ? "elected" : "lost");
  const std::string message =
      leader ? absl::StrCat("hostd ", options_.address, " leads the control plane at epoch ",
                            epoch, " (", why, ")")
             : absl::StrCat("hostd ", options_.address, " stopped leading at epoch ", epoch,
                            ": ", why);
  if (leader) {
    LogInfo("leader elected", {{"epoch", std::to_string(epoch)}, {"why", why}});
  } else {
    LogWarning("leadership lost", {{"epoch", std::to_string(epoch)}, {"why", why}});
  }
  events_.Publish(leader ? "leader.elected" : "leader.lost", "", 0, message);
}

void LeaderElector::Step() {
  absl::MutexLock step(&step_mu_);
  const absl::Time sent = clock_.Now();
  absl::StatusOr<Store::Lease> lease = store_.AcquireLease(holder_, options_.lease);
  const absl::Time now = clock_.Now();
  std::vector<std::function<void()>> elected;
  std::vector<std::function<void(const absl::Status&)>> store_answer;
  std::optional<std::pair<bool, std::string>> transition;
  int64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    store_answer = on_store_answer_;
    if (!lease.ok()) {
      last_error_ = absl::StrCat("store: ", lease.status().message());
      if (leader_ && now >= deadline_) {
        leader_ = false;
        store_.SetFence(holder_, -1);
        transition = {false, absl::StrCat("the lease was not renewed in time (", last_error_, ")")};
      }
      epoch = epoch_;
    } else if (lease->holder == holder_) {
      last_error_.clear();
      seen_holder_ = holder_;
      deadline_ = sent + options_.lease * 4 / 5;
      if (!leader_ || lease->epoch != epoch_) {
        // The gauge before the fence: once a write of this leader can commit, /metrics already
        // says it leads (the events and callbacks come after the lock).
        metrics_.SetLeader(true, lease->epoch);
        // Fence first: nothing this hostd writes commits under another epoch.
        store_.SetFence(holder_, lease->epoch);
        transition = {true, leader_ ? "re-elected after a lapse" : "took the lease"};
        leader_ = true;
        epoch_ = lease->epoch;
        elected = on_elected_;
      }
      epoch = epoch_;
    } else {
      last_error_.clear();
      seen_holder_ = lease->expires_at > lease->now ? lease->holder : "";
      if (leader_) {
        leader_ = false;
        // A follower now: its writes fail naming the leader (the old epoch could never match).
        store_.SetFence(holder_, -1);
        transition = {false, absl::StrCat("the lease is held by ", AddressOf(lease->holder),
                                          " at epoch ", lease->epoch)};
      }
      epoch_ = lease->epoch;
      epoch = epoch_;
      metrics_.SetLeader(false, epoch);
    }
  }
  for (auto& fn : store_answer) fn(lease.status());
  if (transition) Transition(transition->first, epoch, transition->second);
  for (auto& fn : elected) fn();
  if (transition && !transition->first) {
    std::vector<std::function<void()>> stepped_down;
    {
      absl::MutexLock lock(&mu_);
      stepped_down = on_stepped_down_;
    }
    for (auto& fn : stepped_down) fn();
  }
}

void LeaderElector::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    // A fixed cadence: a slow round does not push the next renewal further out.
    absl::Time next = clock_.Now() + options_.retry;
    while (!stop_.WaitForNotificationWithTimeout(std::max(absl::ZeroDuration(), next - clock_.Now()))) {
      next = std::max(next + options_.retry, clock_.Now());
      Step();
    }
  });
}

void LeaderElector::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock step(&step_mu_);
  bool was;
  int64_t epoch;
  {
    absl::MutexLock lock(&mu_);
    was = leader_;
    epoch = epoch_;
    leader_ = false;
  }
  if (!was) return;
  store_.SetFence(holder_, -1);
  if (absl::Status st = store_.ReleaseLease(holder_, epoch); !st.ok()) {
    LogWarning("could not give up the leader lease", {{"error", st.ToString()}});
  }
  Transition(false, epoch, "hostd is stopping; the lease was given up");
}

}  // namespace hosting::controlplane
