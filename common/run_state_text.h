#pragma once

#include <string>

#include "hosting/v1/runbooks.pb.h"

namespace hosting {

// A run's state as people read it ("waiting for approval"), for hostd's messages and hostctl.
inline std::string RunStateText(hosting::v1::RunState s) {
  switch (s) {
    case hosting::v1::RUN_STATE_RUNNING:
      return "running";
    case hosting::v1::RUN_STATE_SUCCEEDED:
      return "succeeded";
    case hosting::v1::RUN_STATE_FAILED:
      return "failed";
    case hosting::v1::RUN_STATE_CANCELLED:
      return "cancelled";
    case hosting::v1::RUN_STATE_WAITING_APPROVAL:
      return "waiting for approval";
    case hosting::v1::RUN_STATE_PENDING:
      return "pending";
    default:
      return "unknown";
  }
}

}  // namespace hosting
