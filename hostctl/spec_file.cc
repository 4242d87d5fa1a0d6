#include "hostctl/spec_file.h"

#include <fstream>
#include <iostream>

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

// Bounds on what a spec may be: a file larger than any real spec is refused before parsing, and
// YAML aliases (which repeat a node without copying it) cannot expand it past kMaxSpecValues
// values or kMaxSpecDepth levels (the "billion laughs" spec).
constexpr size_t kMaxSpecBytes = 1 << 20;
constexpr int64_t kMaxSpecValues = 100000;
constexpr int kMaxSpecDepth = 64;

// The offset of the first byte that does not belong to a well-formed UTF-8 sequence, or npos.
// Spec text is UTF-8 (protobuf strings must be), so anything else is refused before parsing.
size_t FirstInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    } else {
      return i;
    }
    if (i + n > text.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      const unsigned char b = static_cast<unsigned char>(text[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return i;
    }
    i += n;
  }
  return absl::string_view::npos;
}

// YAML -> JSON. Plain (unquoted) scalars that read as numbers or booleans become typed JSON
// values; quoted scalars stay strings. `budget` counts down the values still allowed.
absl::StatusOr<nlohmann::json> ToJson(const YAML::Node& node, int depth, int64_t& budget) {
  if (--budget < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec expands to more than ", kMaxSpecValues, " values (YAML aliases repeating nodes?)"));
  }
  if (depth > kMaxSpecDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec nests deeper than ", kMaxSpecDepth, " levels"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        ASSIGN_OR_RETURN(out[kv.first.as<std::string>()], ToJson(kv.second, depth + 1, budget));
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) {
        ASSIGN_OR_RETURN(nlohmann::json value, ToJson(item, depth + 1, budget));
        out.push_back(std::move(value));
      }
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
  if (text.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec is larger than ", kMaxSpecBytes / 1024, " KiB"));
  }
  if (size_t bad = FirstInvalidUtf8(text); bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec is not UTF-8 text (byte ", bad, " starts no valid character)"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec is not valid YAML or JSON: ", e.what()));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("spec must be a mapping of ServiceSpec fields");
  }
  int64_t budget = kMaxSpecValues;
  absl::StatusOr<nlohmann::json> parsed;
  try {
    parsed = ToJson(root, 0, budget);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec is not valid YAML or JSON: ", e.what()));
  }
  RETURN_IF_ERROR(parsed.status());
  nlohmann::json j = *std::move(parsed);
  // Accept both a bare ServiceSpec and {"spec": {...}} (an ApplyServiceRequest).
  if (j.size() == 1 && j.contains("spec") && j["spec"].is_object()) j = j["spec"];
  hosting::v1::ServiceSpec spec;
  RETURN_IF_ERROR(NormalizeDurations(j, spec.GetDescriptor(), ""));
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  std::string json;
  try {
    json = j.dump();
  } catch (const nlohmann::json::exception& e) {
    // A backstop: the text was UTF-8, and no string the YAML parser makes may end hostctl.
    return absl::InvalidArgumentError(absl::StrCat("spec holds a string that is not UTF-8: ",
                                                   e.what()));
  }
  auto status = google::protobuf::util::JsonStringToMessage(json, &spec, opts);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec does not match hosting.v1.ServiceSpec: ", status.message().as_string()));
  }
  return spec;
}

absl::StatusOr<hosting::v1::ServiceSpec> ReadServiceSpecFile(const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot read spec file ", path));
  }
  std::istream& in = path == "-" ? std::cin : file;
  // At most one byte past the limit: /dev/zero or a stream that never ends is not read whole.
  std::string text(kMaxSpecBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": larger than ", kMaxSpecBytes / 1024, " KiB, not a spec"));
  }
  absl::StatusOr<hosting::v1::ServiceSpec> spec = ParseServiceSpec(text);
  if (!spec.ok()) {
    return absl::Status(spec.status().code(), absl::StrCat(path, ": ", spec.status().message()));
  }
  return spec;
}

}  // namespace hosting::hostctl
