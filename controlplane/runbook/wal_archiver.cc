#include "controlplane/runbook/wal_archiver.h"

#include "common/log.h"

namespace hosting::controlplane {

void WalArchiver::Start() {
  if (thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void WalArchiver::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

WalArchiver::Status WalArchiver::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void WalArchiver::Loop() {
  auto stopping = [this] {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  const std::string source = RedactedConninfo(config_.wal_source);
  while (!stopping()) {
    {
      absl::MutexLock lock(&mu_);
      status_.streaming = true;
      ++status_.starts;
    }
    LogInfo("WAL archiving: streaming", {{"source", source}, {"into", config_.wal_dir()}});
    const absl::Status ended =
        tools_.ReceiveWal(config_.wal_source, config_.wal_dir(), kWalArchiveSlot, stopping);
    {
      absl::MutexLock lock(&mu_);
      status_.streaming = false;
      status_.last_error = ended.ok() ? "the stream ended" : std::string(ended.message());
      if (stopping_) break;
    }
    LogWarning("WAL archiving stopped; restarting",
               {{"source", source},
                {"error", std::string(ended.message())},
                {"retry_in", absl::FormatDuration(retry_)}});
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), retry_);
  }
}

}  // namespace hosting::controlplane
