#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hosting::controlplane {

// One log line a store kept, with the container (12 hex digits) that wrote it.
struct StoredLogLine {
  std::string container_id;
  absl::Time time;
  std::string text;
};

// Logs kept outside the tasks, so that those of tasks gone are still there (Loki, fed by the
// platform's log shipper: deploy/syslog-ng).
class LogStore {
 public:
  virtual ~LogStore() = default;
  // The lines of these containers in [since, until), oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<StoredLogLine>> Lines(
      const std::vector<std::string>& container_ids, absl::Time since, absl::Time until,
      int limit) = 0;
};

// Loki's HTTP API: GET <base>/loki/api/v1/query_range with the selector the log shipper's
// labels allow, {job="docker", container_id=~"id1|id2"}.
class LokiLogStore final : public LogStore {
 public:
  // `base_url`, e.g. "http://127.0.0.1:3100".
  explicit LokiLogStore(std::string base_url) : base_url_(std::move(base_url)) {}
  absl::StatusOr<std::vector<StoredLogLine>> Lines(const std::vector<std::string>& container_ids,
                                                   absl::Time since, absl::Time until,
                                                   int limit) override;

  // The LogQL selector for these containers (IDs shortened to 12 hex digits; others refused).
  static absl::StatusOr<std::string> Selector(const std::vector<std::string>& container_ids);
  // Parses a query_range answer of resultType "streams": every entry, oldest first. A Docker
  // json-file line the shipper sent whole ({"log": "...", ...}) gives its "log" text.
  static absl::StatusOr<std::vector<StoredLogLine>> ParseStreams(const std::string& body);

 private:
  std::string base_url_;
};

}  // namespace hosting::controlplane
