#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hosting::appsvc {

// The shared cache (Redis). Calls block briefly (bounded by the configured timeout) and run on
// database workers. Any error means "no cache": callers fall back to PostgreSQL.
class RemoteCache {
 public:
  virtual ~RemoteCache() = default;

  virtual absl::StatusOr<std::optional<std::string>> Get(const std::string& key) = 0;
  virtual absl::Status Set(const std::string& key, const std::string& value,
                           absl::Duration ttl) = 0;
  // Deletes the keys and tells every appsvc replica to drop them from its in-process layer.
  virtual absl::Status Invalidate(const std::vector<std::string>& keys) = 0;
  // False while the last attempt failed and the retry time has not come.
  virtual bool available() = 0;
  // True while invalidations from other replicas are being received. When false, an
  // in-process copy may be stale and must not be used.
  virtual bool invalidations_live() = 0;
};

}  // namespace hosting::appsvc
