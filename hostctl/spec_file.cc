#include "hostctl/spec_file.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace hosting::hostctl {
namespace {

// YAML -> JSON. Plain (unquoted) scalars that read as numbers or booleans become typed JSON
// values; quoted scalars stay strings.
nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = ToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      int64_t i;
      if (absl::SimpleAtoi(s, &i)) return i;
      double d;
      if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.') &&
          absl::SimpleAtod(s, &d)) {
        return d;
      }
      return s;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
  }
  return nullptr;
}

// Rewrites Go-style durations ("500ms", "1m30s") in Duration fields into the "<seconds>s" form
// that proto JSON requires, guided by the message descriptor so that look-alike strings in
// other fields (env values) are left alone.
absl::Status NormalizeDurations(nlohmann::json& j, const google::protobuf::Descriptor* d,
                                const std::string& path) {
  if (!j.is_object()) return absl::OkStatus();
  for (auto& [key, value] : j.items()) {
    const google::protobuf::FieldDescriptor* f = d->FindFieldByName(key);
    if (f == nullptr) f = d->FindFieldByCamelcaseName(key);
    if (f == nullptr || f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) continue;
    const google::protobuf::Descriptor* md = f->message_type();
    std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
    if (md->full_name() == "google.protobuf.Duration") {
      if (!value.is_string()) continue;
      absl::Duration parsed;
      if (!absl::ParseDuration(value.get<std::string>(), &parsed)) {
        return absl::InvalidArgumentError(absl::StrCat(
            field_path, ": '", value.get<std::string>(),
            "' is not a duration (use forms like 500ms, 2s, 1m30s)"));
      }
      int64_t secs = absl::IDivDuration(parsed, absl::Seconds(1), &parsed);
      int64_t nanos = absl::ToInt64Nanoseconds(parsed);
      value = nanos == 0 ? absl::StrCat(secs, "s") : absl::StrFormat("%d.%09ds", secs, nanos);
      continue;
    }
    if (f->is_map()) {
      const google::protobuf::FieldDescriptor* vf = md->FindFieldByName("value");
      if (vf && vf->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE && value.is_object()) {
        for (auto& [k, v] : value.items()) {
          RETURN_IF_ERROR(NormalizeDurations(v, vf->message_type(), absl::StrCat(field_path, "[", k, "]")));
        }
      }
    } else if (f->is_repeated() && value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        RETURN_IF_ERROR(NormalizeDurations(value[i], md, absl::StrCat(field_path, "[", i, "]")));
      }
    } else {
      RETURN_IF_ERROR(NormalizeDurations(value, md, field_path));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<hosting::v1::ServiceSpec> ParseServiceSpec(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec is not valid YAML or JSON: ", e.what()));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("spec must be a mapping of ServiceSpec fields");
  }
  nlohmann::json j = ToJson(root);
  // Accept both a bare ServiceSpec and {"spec": {...}} (an ApplyServiceRequest).
  if (j.size() == 1 && j.contains("spec") && j["spec"].is_object()) j = j["spec"];
  hosting::v1::ServiceSpec spec;
  RETURN_IF_ERROR(NormalizeDurations(j, spec.GetDescriptor(), ""));
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(j.dump(), &spec, opts);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec does not match hosting.v1.ServiceSpec: ", status.message().as_string()));
  }
  return spec;
}

absl::StatusOr<hosting::v1::ServiceSpec> ReadServiceSpecFile(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read spec file ", path));
    ss << in.rdbuf();
  }
  absl::StatusOr<hosting::v1::ServiceSpec> spec = ParseServiceSpec(ss.str());
  if (!spec.ok()) {
    return absl::Status(spec.status().code(), absl::StrCat(path, ": ", spec.status().message()));
  }
  return spec;
}

}  // namespace hosting::hostctl
