#pragma once

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controlplane/runbook/backup_runbooks.h"

namespace hosting::controlplane {

// Continuous WAL archiving: streams the primary's WAL into the backup repository's wal/
// directory through a replication slot (BackupTools::ReceiveWal, pg_receivewal), restarting it
// `retry` after it ends, until Stop. The slot keeps the primary's WAL while nothing streams
// (hostd down), so the archive has no gap; it admits one stream at a time, so several hostds
// may run an archiver and one streams.
class WalArchiver {
 public:
  struct Status {
    bool streaming = false;
    int starts = 0;
    std::string last_error;
  };

  WalArchiver(BackupConfig config, BackupTools& tools, absl::Duration retry = absl::Seconds(5))
      : config_(std::move(config)), tools_(tools), retry_(retry) {}
  ~WalArchiver() { Stop(); }

  void Start();
  void Stop();
  Status status() const;

 private:
  void Loop();

  const BackupConfig config_;
  BackupTools& tools_;
  const absl::Duration retry_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace hosting::controlplane
