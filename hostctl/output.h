#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "hosting/v1/cluster.pb.h"
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

// Left-aligned columns separated by two spaces.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace hosting::hostctl
