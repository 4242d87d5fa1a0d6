#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "hosting/v1/autoscaling.pb.h"
#include "hosting/v1/cluster.pb.h"
#include "hosting/v1/releases.pb.h"
#include "hosting/v1/service.pb.h"

namespace hosting::hostctl {

enum class Format { kTable, kJson, kYaml };

// Parses "table", "json" or "yaml".
absl::StatusOr<Format> ParseFormat(const std::string& name);

// Writes a message as indented proto JSON (field names as in the .proto) or YAML.
void PrintMessage(const google::protobuf::Message& message, Format format, std::ostream& out);

void PrintServices(const std::vector<hosting::v1::Service>& services, Format format,
                   std::ostream& out);
void PrintService(const hosting::v1::Service& service, Format format, std::ostream& out);
void PrintServiceHealth(const hosting::v1::ServiceHealthStatus& status, Format format,
                        std::ostream& out);
void PrintNodes(const std::vector<hosting::v1::Node>& nodes, Format format, std::ostream& out);
// One line per event in table format, one JSON object per line in json format.
void PrintEvent(const hosting::v1::Event& event, Format format, std::ostream& out);

void PrintReleases(const std::vector<hosting::v1::Release>& releases, Format format,
                   std::ostream& out);
void PrintRelease(const hosting::v1::Release& release, Format format, std::ostream& out);
// A release's analyses judged again (release judge): each one's new verdict beside its old.
void PrintJudged(const hosting::v1::JudgeReleaseResponse& judged, Format format,
                 std::ostream& out);
// One line per release event (table), or one JSON object per line.
void PrintReleaseEvent(const hosting::v1::ReleaseEvent& event, Format format, std::ostream& out);
// "progressing", "rolled back", ...
std::string ReleaseStateText(hosting::v1::ReleaseState state);
// A one-line summary: state, step, weight, tasks.
std::string ReleaseSummary(const hosting::v1::Release& r);

void PrintAutoscalingPolicy(const hosting::v1::AutoscalingPolicy& policy, Format format,
                            std::ostream& out);
void PrintAutoscalingStatus(const hosting::v1::AutoscalingStatus& status, Format format,
                            std::ostream& out);
// "rps", "cpu", ... or "promql(<query>)".
std::string MetricText(const hosting::v1::MetricTarget& metric);

// Left-aligned columns separated by two spaces.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace hosting::hostctl
